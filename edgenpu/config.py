"""The hardware configuration: one typed, frozen object read from YAML.

The RTL is elaborated from it, and the simulators, the performance model and the compiler
all read the same object. It describes the *architecture* only; how the compiler behaves is
a separate object (see STYLE.md, rule 4).

Every field is required, unknown keys are rejected, and every error names the file and the
dotted field path, e.g. ``configs/tiny.yaml: mac.lanes: must be a power of two, not 12``.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from edgenpu import isa
from edgenpu.errors import ConfigError
from edgenpu.formats import WeightFormat
from edgenpu.precision import Precision

__all__ = [
    "ControlConfig",
    "DecompressorConfig",
    "DramConfig",
    "EnergyConfig",
    "HardwareConfig",
    "MacArrayConfig",
    "SramConfig",
    "VectorConfig",
    "ZeroSkipConfig",
    "bundled_configs",
    "config_from_dict",
    "config_to_dict",
    "override",
    "load_config",
]


@dataclass(frozen=True)
class MacArrayConfig:
    """The multiply-accumulate array.

    Parameters
    ----------
    lanes : int
        Output rows computed in parallel; each lane owns one weight row at a time.
    macs_per_lane : int
        int8 x int8 multiply-accumulates a lane performs per cycle. In int4 mode two
        weights share an int8 slot, so a lane performs twice as many.
    precisions : tuple of Precision
        Weight precisions the array supports.
    """

    lanes: int
    macs_per_lane: int
    precisions: tuple[Precision, ...]

    def macs_per_cycle(self, precision: Precision) -> int:
        """Peak MACs per cycle over the whole array at ``precision``."""
        return self.lanes * self.macs_per_lane * (8 // precision.bits)


@dataclass(frozen=True)
class SramConfig:
    """On-chip memories. Sizes in bytes; the accumulator SRAM holds int32 words."""

    weight_bytes: int
    activation_bytes: int
    accumulator_bytes: int
    lut_tables: int

    @property
    def accumulator_words(self) -> int:
        return self.accumulator_bytes // 4

    @property
    def lut_bytes(self) -> int:
        return self.lut_tables * isa.LUT_ENTRIES


@dataclass(frozen=True)
class DramConfig:
    """Off-chip memory as the DMA engine sees it."""

    bytes: int
    bandwidth_bytes_per_cycle: int
    latency_cycles: int


@dataclass(frozen=True)
class DecompressorConfig:
    """The on-chip sparse-weight decompressor between the DMA engine and weight SRAM."""

    input_bytes_per_cycle: int
    output_elements_per_cycle: int
    formats: tuple[WeightFormat, ...]


@dataclass(frozen=True)
class ZeroSkipConfig:
    """Which zero operands the MAC array skips (saves cycles) rather than only gates.

    Parameters
    ----------
    weights, activations : bool
        Skip pairs whose weight (activation) is zero.
    lookahead : int
        How many cycles' worth of pairs a lane looks at per window; skipping can make the
        array at most this much faster than dense (see docs/microarchitecture.md).
    """

    weights: bool
    activations: bool
    lookahead: int


@dataclass(frozen=True)
class VectorConfig:
    """The vector unit (requantize, LUT, elementwise ops)."""

    lanes: int


@dataclass(frozen=True)
class ControlConfig:
    """Instruction dispatch and the dependency-token queues between the three streams."""

    token_queue_depth: int
    instruction_queue_depth: int


@dataclass(frozen=True)
class EnergyConfig:
    """Energy per event in picojoules."""

    mac_int8: float
    mac_int4: float
    mac_gated: float
    vector_op: float
    sram_read_byte: float
    sram_write_byte: float
    dram_read_byte: float
    dram_write_byte: float
    decompress_byte: float
    static_per_cycle: float


@dataclass(frozen=True)
class HardwareConfig:
    """A whole processor configuration. Load one with :func:`load_config`."""

    name: str
    clock_mhz: float
    mac: MacArrayConfig
    sram: SramConfig
    dram: DramConfig
    decompressor: DecompressorConfig
    zero_skip: ZeroSkipConfig
    vector: VectorConfig
    control: ControlConfig
    energy: EnergyConfig

    def sram_size(self, space: isa.Space) -> int:
        """Size of an on-chip memory in its addressing unit (bytes; words for ACC)."""
        return {
            isa.Space.WGT: self.sram.weight_bytes,
            isa.Space.ACT: self.sram.activation_bytes,
            isa.Space.ACC: self.sram.accumulator_words,
            isa.Space.LUT: self.sram.lut_bytes,
        }[space]


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# Checks beyond types: (dotted path, predicate, what it must be). Bounds that come from the
# ISA are derived from its field widths, so a config can never describe memory the
# instructions cannot address.
def _rules() -> list[tuple[str, typing.Callable[[Any], bool], str]]:
    sram_limit = 1 << isa.SRAM_ADDR_BITS
    acc_limit = 4 << isa.ACC_ADDR_BITS
    return [
        ("clock_mhz", lambda v: v > 0, "positive"),
        ("mac.lanes", _is_power_of_two, "a power of two"),
        ("mac.macs_per_lane", _is_power_of_two, "a power of two"),
        ("mac.precisions", lambda v: len(v) > 0, "a non-empty list"),
        ("sram.weight_bytes", lambda v: 0 < v <= sram_limit, f"in 1..{sram_limit}"),
        ("sram.activation_bytes", lambda v: 0 < v <= sram_limit, f"in 1..{sram_limit}"),
        (
            "sram.accumulator_bytes",
            lambda v: 0 < v <= acc_limit and v % 4 == 0,
            f"a multiple of 4 in 4..{acc_limit}",
        ),
        ("sram.lut_tables", lambda v: 1 <= v <= isa.LUT_TABLES, f"in 1..{isa.LUT_TABLES}"),
        ("dram.bytes", lambda v: 0 < v <= 1 << isa.DRAM_ADDR_BITS, "in 1..2**32"),
        (
            "dram.bandwidth_bytes_per_cycle",
            lambda v: _is_power_of_two(v) and v >= 4,
            "a power of two, at least 4 (one accumulator word)",
        ),
        ("dram.latency_cycles", lambda v: v >= 0, "non-negative"),
        ("decompressor.input_bytes_per_cycle", _is_power_of_two, "a power of two"),
        ("decompressor.output_elements_per_cycle", _is_power_of_two, "a power of two"),
        ("decompressor.formats", lambda v: WeightFormat.DENSE in v, "a list including dense"),
        ("zero_skip.lookahead", _is_power_of_two, "a power of two"),
        ("vector.lanes", _is_power_of_two, "a power of two"),
        ("control.token_queue_depth", lambda v: v >= 1, "at least 1"),
        ("control.instruction_queue_depth", lambda v: v >= 1, "at least 1"),
        *((f"energy.{f.name}", lambda v: v >= 0, "non-negative") for f in fields(EnergyConfig)),
    ]


# Checks between fields: (dotted path named in the error, predicate on the whole config, what
# the field must be).
def _relations() -> list[tuple[str, typing.Callable[[HardwareConfig], bool], str]]:
    return [
        (
            "decompressor.input_bytes_per_cycle",
            lambda c: c.decompressor.input_bytes_per_cycle == c.dram.bandwidth_bytes_per_cycle,
            "equal to dram.bandwidth_bytes_per_cycle (the decompressor takes one DRAM beat "
            "per cycle)",
        ),
    ]


def _convert(value: Any, hint: Any, path: str) -> Any:
    """Convert a YAML value to the annotated type, or raise ``ValueError`` saying why."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, list):
            raise ValueError(f"must be a list, not {value!r}")
        items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        if len(set(items)) != len(items):
            raise ValueError(f"has duplicate entries: {value!r}")
        return tuple(items)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if not isinstance(value, str):
            raise ValueError(f"must be a name, not {value!r}")
        return hint.parse(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # a bug here, not user input


class _FieldError(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")


def _build(cls: type, data: Any, path: str) -> Any:
    prefix = f"{path}." if path else ""
    if not isinstance(data, dict):
        raise _FieldError(path or "(top level)", f"must be a mapping, not {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            raise _FieldError(f"{prefix}{key}", f"unknown key (expected one of {', '.join(names)})")
    values = {}
    for name in names:
        if name not in data:
            raise _FieldError(f"{prefix}{name}", "missing")
        try:
            values[name] = _convert(data[name], hints[name], f"{prefix}{name}")
        except ValueError as e:
            raise _FieldError(f"{prefix}{name}", str(e)) from None
    return cls(**values)


def _lookup(config: HardwareConfig, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def config_from_dict(data: Any, source: str = "<config>") -> HardwareConfig:
    """Build and validate a :class:`HardwareConfig` from plain data (as parsed from YAML).

    Raises
    ------
    ConfigError
        Naming ``source`` and the dotted path of the offending field.
    """
    try:
        config = _build(HardwareConfig, data, "")
    except _FieldError as e:
        raise ConfigError(f"{source}: {e}") from None
    for path, ok, expected in _rules():
        value = _lookup(config, path)
        if not ok(value):
            shown = [v.label for v in value] if isinstance(value, tuple) else value
            raise ConfigError(f"{source}: {path}: must be {expected}, not {shown!r}")
    for path, ok, expected in _relations():
        if not ok(config):
            shown = _lookup(config, path)
            raise ConfigError(f"{source}: {path}: must be {expected}, not {shown!r}")
    return config


def config_to_dict(config: HardwareConfig) -> dict[str, Any]:
    """Plain data that :func:`config_from_dict` turns back into the same config."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, enum.Enum):
            return value.label
        return value

    return plain(config)


def override(config: HardwareConfig, changes: Mapping[str, Any]) -> HardwareConfig:
    """``config`` with the fields at dotted paths changed, validated like a YAML file.

    ``override(tiny, {"mac.precisions": ["int8"], "dram.bytes": 16384})`` is the config an
    architect's sweep point or a bench variant needs, checked by the same rules as one
    written by hand; values are given as in YAML (labels for enums).

    Raises
    ------
    ConfigError
        Naming the path of a field that does not exist or of a value the rules reject.
    """
    data = config_to_dict(config)
    source = f"{config.name} with overrides"
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node or isinstance(node[leaf], dict):
            raise ConfigError(f"{source}: {path}: no such field")
        node[leaf] = value
    return config_from_dict(data, source)


def bundled_configs() -> dict[str, Path]:
    """The configurations shipped with edgenpu, by name."""
    from edgenpu import configs

    return {p.stem: p for p in sorted(Path(configs.__file__).parent.glob("*.yaml"))}


def load_config(name_or_path: str | Path) -> HardwareConfig:
    """Load a config from a YAML file, or a bundled one by name (``default``, ``tiny``).

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or fails validation.
    """
    path = Path(name_or_path)
    if not path.exists():
        bundled = bundled_configs()
        if str(name_or_path) not in bundled:
            raise ConfigError(
                f"{name_or_path}: no such file or bundled config (bundled: {', '.join(bundled)})"
            )
        path = bundled[str(name_or_path)]
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    return config_from_dict(data, source=str(path))
