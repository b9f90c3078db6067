"""Locating the first divergence (``sim/divergence.py``) and writing window traces
(``sim/vcd.py``), on memories corrupted on purpose: no RTL needed.

The RTL side of the same report is in ``tests/test_cli_rtl.py`` (a racy program the RTL
really runs differently).
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from edgenpu.config import load_config
from edgenpu.isa.asm import assemble
from edgenpu.sim import functional
from edgenpu.sim.benches.npu_ref import bench_config
from edgenpu.sim.divergence import MEMORIES, find_divergence, written_ranges
from edgenpu.sim.random_programs import random_program
from edgenpu.sim.vcd import Signal, write_vcd

CONFIG = bench_config(load_config("tiny"))

#: Index: 0 load x, 1 vcopy (act 0x40..), 2 store rows 0x100 and 0x110 (stride 16, len 4),
#: 3 vadd in place over act 0x40.., 4 matmul into acc words 0..1 and 4..5 (acc_stride 4),
#: 5 vcopy act 0x80.. from the accumulators.
KERNEL = """
        nop       stream=load
.entry main
        load      space=act, sram=0, dram=x, rows=1, len=8, signal=compute
        vcopy     d=act.i8[0x40], a=act.i8[0], len=8, wait=load, signal=store
        store     space=act, sram=0x40, dram=y, rows=2, len=4, stride=16, wait=compute
        vadd      d=act.i8[0x40], a=act.i8[0x40], b=act.i8[0], len=8
        matmul    acc=0, w=0, x=0, rows=2, cols=4, n=2, x_stride=4, acc_stride=4
        vcopy     d=act.i8[0x80], a=acc.i32[0], len=8
        halt

.data x: i8[8] = 1, 2, 3, 4, 5, 6, 7, 8
.output y: i8[32] @ 0x100
"""


@pytest.fixture
def kernel():
    program = assemble(KERNEL, "kernel.s")
    start = functional.load_image(program, CONFIG)
    start.wgt[:8] = np.arange(1, 9, dtype=np.uint8)  # weights the matmul finds on chip
    final = functional.run(program, CONFIG, entry="main", machine=copy.deepcopy(start)).machine
    return program, start, {name: getattr(final, name).copy() for name in MEMORIES}


def diverge(kernel, rtl):
    program, start, _ = kernel
    return find_divergence(program, CONFIG, start, rtl, entry="main")


def test_agreement_is_none(kernel):
    assert diverge(kernel, kernel[2]) is None


def test_the_earliest_last_writer_is_the_culprit(kernel):
    _, _, rtl = kernel
    rtl["act"][0x82] ^= 0x10  # instruction 6 (the last vcopy)
    rtl["dram"][0x111] ^= 1  # instruction 3 (the store's second row)
    d = diverge(kernel, rtl)
    assert (d.index, d.memory, d.address) == (3, "dram", 0x111)
    assert (
        d.instruction
        == "store wait=compute, space=act, sram=0x40, dram=y, rows=2, len=4, stride=16"
    )
    assert (d.rtl ^ d.functional, d.differing_bytes, d.stray_bytes) == (1, 2, 0)
    assert str(d) == (
        f"first divergence at instruction 3 ({d.instruction}): dram[0x111]: "
        f"RTL {d.rtl:#04x}, functional {d.functional:#04x} (2 bytes differ)"
    )


def test_a_byte_written_twice_is_charged_to_its_last_writer(kernel):
    # act 0x40.. is written by the vcopy (2) and again, in place, by the vadd (4).
    _, _, rtl = kernel
    rtl["act"][0x43] = 0xEE
    d = diverge(kernel, rtl)
    assert (d.index, d.memory, d.address, d.rtl) == (4, "act", 0x43, 0xEE)
    assert d.instruction.startswith("vadd ")


def test_an_accumulator_is_reported_as_its_word(kernel):
    _, _, rtl = kernel
    want = int.from_bytes(rtl["acc"][16:20].tobytes(), "little")  # word 4: vector 1, row 0
    rtl["acc"][18] ^= 0x80
    d = diverge(kernel, rtl)
    assert (d.index, d.memory, d.address) == (5, "acc", 18)
    assert (d.functional, d.rtl) == (want, want ^ 0x800000)
    assert "acc[0x12] (word 0x4): RTL 0x" in str(d)


@pytest.mark.parametrize(
    ("memory", "address", "why"),
    [
        ("dram", 0x10C, "between the store's rows (stride 16, rows of 4)"),
        ("acc", 4 * 2, "between the matmul's output vectors (acc_stride 4, 2 rows)"),
        ("lut", 0, "never written"),
    ],
)
def test_a_byte_no_instruction_writes_is_a_stray_write(kernel, memory, address, why):
    _, _, rtl = kernel
    rtl[memory][address] ^= 0xFF
    d = diverge(kernel, rtl)
    assert d.stray and d.index is None and d.instruction == "", why
    assert (d.memory, d.address, d.stray_bytes) == (memory, address, 1)
    assert str(d).startswith(f"stray write: {memory}[{address:#x}]")


def test_a_stray_write_does_not_hide_a_culprit(kernel):
    _, _, rtl = kernel
    rtl["lut"][5] = 1
    rtl["act"][0x87] ^= 1
    d = diverge(kernel, rtl)
    assert (d.index, d.memory, d.stray_bytes) == (6, "act", 1)
    assert str(d).endswith("(2 bytes differ, 1 of them written by no instruction)")


def test_the_starting_machine_is_not_modified(kernel):
    program, start, rtl = kernel
    before = copy.deepcopy(start)
    rtl["act"][0] ^= 1
    find_divergence(program, CONFIG, start, rtl, entry="main")
    for name in MEMORIES:
        assert np.array_equal(getattr(start, name), getattr(before, name))


def test_a_short_read_back_is_rejected(kernel):
    _, _, rtl = kernel
    rtl["lut"] = rtl["lut"][:-1]
    with pytest.raises(ValueError, match="RTL lut has"):
        diverge(kernel, rtl)


@pytest.mark.parametrize("seed", range(12))
def test_every_byte_an_instruction_changes_is_in_its_footprint(seed):
    # The writer map is only as good as ``written_ranges``: an instruction must never change
    # a byte outside it (random programs exercise strides, in-place and wrapping operands).
    rng = np.random.default_rng(seed)
    program = random_program(rng, CONFIG, length=30).program
    state = functional.load_image(program, CONFIG)
    for name in MEMORIES[1:]:
        getattr(state, name)[:] = rng.integers(0, 256, len(getattr(state, name)), np.uint8)
    stats = functional.ExecStats()
    for ins in functional.dispatch(program, CONFIG).instructions:
        before = {name: getattr(state, name).copy() for name in MEMORIES}
        functional.execute(ins, state, stats)
        allowed = {name: np.zeros(len(before[name]), bool) for name in MEMORIES}
        for name, lo, hi in written_ranges(ins):
            allowed[name][lo:hi] = True
        for name in MEMORIES:
            changed = getattr(state, name) != before[name]
            assert not (changed & ~allowed[name]).any(), (ins, name)


# -- VCD ----------------------------------------------------------------------------------


def read_vcd(text: str) -> tuple[dict[str, int], dict[str, list[tuple[int, int]]]]:
    """A minimal VCD reader: widths by name, and each signal's (time, value) changes."""
    header, _, body = text.partition("$enddefinitions $end")
    assert "$timescale 1ns $end" in header
    widths, names = {}, {}
    for width, code, name in re.findall(r"\$var wire (\d+) (\S+) (\w+) \$end", header):
        widths[name], names[code] = int(width), name
    changes = {name: [] for name in widths}
    t = None
    for token in body.split("\n"):
        if not token or token in ("$dumpvars", "$end"):
            continue
        if token.startswith("#"):
            t = int(token[1:])
        elif token.startswith("b"):
            value, code = token[1:].split(" ")
            changes[names[code]].append((t, int(value, 2)))
        else:
            changes[names[token[1:]]].append((t, int(token[0])))
    return widths, changes


def test_vcd_round_trip(tmp_path):
    path = tmp_path / "w.vcd"
    signals = [Signal("valid", 1), Signal("index", 8), Signal("word", 128)]
    rows = [[0, 3, 1 << 127], [1, 3, 5], [1, 4, 5]]
    write_vcd(path, signals, rows, first_cycle=7, period_ns=10, scope="npu", comment="test")
    widths, changes = read_vcd(path.read_text())
    assert widths == {"clk": 1, "valid": 1, "index": 8, "word": 128}
    assert changes["valid"] == [(70, 0), (80, 1)]
    assert changes["index"] == [(70, 3), (90, 4)]
    assert changes["word"] == [(70, 1 << 127), (80, 5)]
    assert changes["clk"] == [(t, v) for c in (7, 8, 9) for t, v in ((c * 10, 1), (c * 10 + 5, 0))]
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    ("signals", "rows", "message"),
    [
        ([Signal("a", 1)], [[0, 1]], "sample 0 has 2 values for 1 signals"),
        ([Signal("a", 1), Signal("a", 2)], [], "signal names must be unique: ['a', 'a']"),
    ],
)
def test_vcd_rejects(tmp_path, signals, rows, message):
    with pytest.raises(ValueError) as info:
        write_vcd(tmp_path / "w.vcd", signals, rows)
    assert str(info.value) == message
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Signal("clk", 1), "signal name must be an identifier other than clk, not 'clk'"),
        (lambda: Signal("a.b", 1), "signal name must be an identifier other than clk, not 'a.b'"),
        (lambda: Signal("a", 0), "a: width must be a positive integer, not 0"),
    ],
)
def test_signal_rejects(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message
