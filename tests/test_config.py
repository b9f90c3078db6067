"""Hardware config loading and validation."""

from pathlib import Path

import pytest
import yaml

from edgenpu.config import (
    HardwareConfig,
    bundled_configs,
    config_from_dict,
    config_to_dict,
    load_config,
    override,
)
from edgenpu.errors import ConfigError
from edgenpu.formats import WeightFormat
from edgenpu.isa import Space
from edgenpu.precision import Precision


def default_dict() -> dict:
    return config_to_dict(load_config("default"))


def test_bundled_configs_load_and_are_consistent():
    names = set(bundled_configs())
    assert {"default", "tiny"} <= names
    for name in names:
        config = load_config(name)
        assert isinstance(config, HardwareConfig)
        assert config.name == name


def test_default_values_and_derived_quantities():
    c = load_config("default")
    assert c.mac.macs_per_cycle(Precision.INT8) == c.mac.lanes * c.mac.macs_per_lane
    assert c.mac.macs_per_cycle(Precision.INT4) == 2 * c.mac.macs_per_cycle(Precision.INT8)
    assert c.sram_size(Space.ACC) == c.sram.accumulator_bytes // 4
    assert c.sram_size(Space.LUT) == 256 * c.sram.lut_tables
    assert set(c.decompressor.formats) == set(WeightFormat)


def test_round_trip_through_plain_data():
    c = load_config("tiny")
    assert config_from_dict(config_to_dict(c)) == c


def test_config_is_frozen():
    c = load_config("tiny")
    with pytest.raises(AttributeError):
        c.clock_mhz = 1.0  # type: ignore[misc]


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["mac"].update(lanes=12), "mac.lanes: must be a power of two, not 12"),
        (lambda d: d["mac"].update(lanes=True), "mac.lanes: must be an integer, not True"),
        (lambda d: d["mac"].update(extra=1), "mac.extra: unknown key (expected one of"),
        (lambda d: d["mac"].pop("macs_per_lane"), "mac.macs_per_lane: missing"),
        (
            lambda d: d["mac"].update(precisions=["int2"]),
            "mac.precisions: unknown precision 'int2'",
        ),
        (lambda d: d["mac"].update(precisions=[]), "mac.precisions: must be a non-empty list"),
        (
            lambda d: d["mac"].update(precisions=["int8", "int8"]),
            "mac.precisions: has duplicate entries",
        ),
        (
            lambda d: d["decompressor"].update(formats=["bitmask"]),
            "decompressor.formats: must be a list including dense",
        ),
        (
            lambda d: d["sram"].update(accumulator_bytes=1001),
            "sram.accumulator_bytes: must be a multiple of 4",
        ),
        (
            lambda d: d["sram"].update(weight_bytes=2**21),
            "sram.weight_bytes: must be in 1..1048576, not 2097152",
        ),
        (lambda d: d["sram"].update(lut_tables=5), "sram.lut_tables: must be in 1..4, not 5"),
        (lambda d: d["dram"].update(bytes=2**33), "dram.bytes: must be in 1..2**32"),
        (
            lambda d: d["zero_skip"].update(weights="yes"),
            "zero_skip.weights: must be true or false",
        ),
        (lambda d: d["energy"].update(mac_int8=-1), "energy.mac_int8: must be non-negative"),
        (
            lambda d: d["dram"].update(bandwidth_bytes_per_cycle=2),
            "dram.bandwidth_bytes_per_cycle: must be a power of two, at least 4",
        ),
        (
            lambda d: d["decompressor"].update(input_bytes_per_cycle=4),
            "decompressor.input_bytes_per_cycle: must be equal to dram.bandwidth_bytes_per_cycle",
        ),
        (lambda d: d.update(clock_mhz="fast"), "clock_mhz: must be a number, not 'fast'"),
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d.update(mac=3), "mac: must be a mapping, not 3"),
    ],
)
def test_bad_fields_are_named_with_the_file(tmp_path, mutate, message):
    data = default_dict()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_not_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "name: x\nmac: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:3: not valid YAML"):
        load_config(path)


def test_missing_file_lists_bundled_configs():
    with pytest.raises(
        ConfigError, match=r"nope\.yaml: no such file or bundled config \(bundled: .*default"
    ):
        load_config("nope.yaml")


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"\(top level\): must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_override_changes_fields_and_validates():
    tiny = load_config("tiny")
    changed = override(tiny, {"name": "tiny-int8", "mac.precisions": ["int8"], "dram.bytes": 4096})
    assert changed.mac.precisions == (Precision.INT8,)
    assert changed.dram.bytes == 4096 and changed.name == "tiny-int8"
    assert changed.sram == tiny.sram
    assert override(tiny, {}) == tiny


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mac.widht": 3}, "tiny with overrides: mac.widht: no such field"),
        ({"mac": 3}, "tiny with overrides: mac: no such field"),
        ({"mac.lanes.x": 3}, "tiny with overrides: mac.lanes.x: no such field"),
        ({"decompressor.formats": ["bitmask"]}, "tiny with overrides: decompressor.formats: must"),
    ],
)
def test_override_names_the_bad_path(changes, message):
    with pytest.raises(ConfigError) as info:
        override(load_config("tiny"), changes)
    assert str(info.value).startswith(message)
