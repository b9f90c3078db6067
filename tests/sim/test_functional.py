"""The functional simulator, instruction by instruction, against independent numpy.

Programs are built from :class:`Instruction` values directly, so these tests do not depend
on the assembler; the example kernels exercise the assembler and simulator together.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu import formats
from edgenpu.config import load_config
from edgenpu.formats import WeightFormat
from edgenpu.isa import (
    DType,
    Instruction,
    Opcode,
    OperandKind,
    Program,
    Segment,
    Space,
    Symbol,
    SymbolKind,
    TrapCause,
    encode,
)
from edgenpu.precision import Precision, pack
from edgenpu.sim.functional import Machine, load_image, run

TINY = load_config("tiny")
DEFAULT = load_config("default")
I = Instruction.make  # noqa: E741 (reads like the mnemonic lists it builds)
HALT = I(Opcode.HALT)
ACT8, ACT16, ACC32 = OperandKind


def program(*instructions, segments=(), symbols=()) -> Program:
    return Program.from_instructions(list(instructions), tuple(segments), tuple(symbols))


def execute(*instructions, config=DEFAULT, machine: Machine | None = None, segments=()):
    prog = program(*instructions, HALT, segments=segments)
    if machine is not None:
        for seg in segments:
            machine.dram[seg.addr : seg.end] = np.frombuffer(seg.data, np.uint8)
    result = run(prog, config, machine=machine)
    assert result.trap is None, str(result.trap)
    assert result.halted
    return result


def acc_words(machine: Machine, start: int, count: int) -> np.ndarray:
    return machine.acc.view("<i4")[start : start + count].astype(np.int64)


# -- DMA ---------------------------------------------------------------------------------


def test_load_gathers_strided_rows_and_store_scatters_them():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, 4096, dtype=np.uint8)
    result = execute(
        I(Opcode.LOAD, space=Space.ACT, sram=100, dram=16, rows=3, len=5, stride=1000),
        I(Opcode.STORE, space=Space.ACT, sram=100, dram=3000, rows=3, len=5, stride=7),
        segments=[Segment(0, image.tobytes())],
    )
    rows = np.stack([image[16 + r * 1000 : 16 + r * 1000 + 5] for r in range(3)])
    m = result.machine
    assert m.act[100:115].tolist() == rows.reshape(-1).tolist()
    for r in range(3):
        assert m.dram[3000 + 7 * r : 3005 + 7 * r].tolist() == rows[r].tolist()
    assert result.stats.dram_read_bytes == 15 and result.stats.dram_write_bytes == 15


def test_store_with_overlapping_dram_rows_writes_them_in_order():
    m = Machine.empty(DEFAULT)
    m.act[:6] = [1, 2, 3, 4, 5, 6]
    result = execute(
        I(Opcode.STORE, space=Space.ACT, sram=0, dram=10, rows=3, len=2, stride=1), machine=m
    )
    assert result.machine.dram[10:14].tolist() == [1, 3, 5, 6]


def test_load_into_accumulators_counts_words():
    words = np.array([1, -2, 70000, -(2**31)], dtype="<i4")
    result = execute(
        I(Opcode.LOAD, space=Space.ACC, sram=7, dram=64, rows=1, len=4),
        segments=[Segment(64, words.tobytes())],
    )
    assert acc_words(result.machine, 7, 4).tolist() == words.tolist()


@pytest.mark.parametrize("fmt", list(WeightFormat))
@pytest.mark.parametrize("precision", list(Precision))
def test_load_wgt_decompresses_every_format(fmt, precision):
    rng = np.random.default_rng(1)
    values = rng.integers(precision.min, precision.max + 1, 1000)
    values[rng.random(1000) < 0.6] = 0
    if fmt is WeightFormat.NM2_4:
        values.reshape(-1, 4)[:, 2:] = 0
    stream = formats.encode(values, fmt, precision)
    result = execute(
        I(Opcode.LOAD_WGT, wgt=40, dram=128, count=1000, format=fmt, prec=precision),
        segments=[Segment(128, stream)],
    )
    dense = pack(values, precision)
    assert bytes(result.machine.wgt[40 : 40 + len(dense)]) == dense
    assert result.stats.weight_stream_bytes == len(stream)


# -- MAC array ---------------------------------------------------------------------------


@pytest.mark.parametrize("precision", list(Precision))
def test_matmul_strided_batched_accumulate(precision):
    rng = np.random.default_rng(2)
    rows, cols, n, x_stride, acc_stride = 24, 37, 5, 40, 30
    w = rng.integers(precision.min, precision.max + 1, (rows, cols))
    x = rng.integers(-128, 128, (n, cols))
    m = Machine.empty(DEFAULT)
    packed = np.frombuffer(pack(w, precision), np.uint8)
    m.wgt[8 : 8 + packed.size] = packed
    for j in range(n):
        m.act[3 + j * x_stride : 3 + j * x_stride + cols] = x[j].astype(np.int8).view(np.uint8)
    start = rng.integers(-(2**20), 2**20, (n, acc_stride)).astype("<i4")
    m.acc.view("<i4")[5 : 5 + n * acc_stride] = start.reshape(-1)
    mm = dict(
        acc=5,
        w=8,
        x=3,
        rows=rows,
        cols=cols,
        n=n,
        x_stride=x_stride,
        acc_stride=acc_stride,
        prec=precision,
    )
    result = execute(I(Opcode.MATMUL, **mm, accumulate=1), machine=m)
    out = acc_words(result.machine, 5, n * acc_stride).reshape(n, acc_stride)
    assert out[:, :rows].tolist() == (start[:, :rows] + x @ w.T).tolist()
    assert out[:, rows:].tolist() == start[:, rows:].tolist()  # gaps untouched
    stats = result.stats
    assert stats.macs == rows * cols * n
    assert stats.nonzero_weight_macs == np.count_nonzero(w) * n
    assert stats.nonzero_macs == int(((x != 0).astype(int) @ (w != 0).T.astype(int)).sum())
    overwrite = execute(I(Opcode.MATMUL, **mm), machine=result.machine)
    out = acc_words(overwrite.machine, 5, n * acc_stride).reshape(n, acc_stride)
    assert out[:, :rows].tolist() == (x @ w.T).tolist()


def test_matmul_accumulation_wraps_at_32_bits():
    m = Machine.empty(DEFAULT)
    m.wgt[0] = 127
    m.act[0] = 127
    m.acc.view("<i4")[0] = 2**31 - 1
    result = execute(I(Opcode.MATMUL, rows=1, cols=1, n=1, accumulate=1), machine=m)
    assert acc_words(result.machine, 0, 1).tolist() == [-(2**31) + 127 * 127 - 1]


# -- vector unit -------------------------------------------------------------------------


def reference_round_shift(x, s):
    return x if s == 0 else (2 * x + (1 << s)) // (1 << (s + 1))


def sat(x, bits):
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))


BINARY = {
    Opcode.VADD: lambda a, b: a + b,
    Opcode.VSUB: lambda a, b: a - b,
    Opcode.VMUL: lambda a, b: a * b,
    Opcode.VMAX: max,
    Opcode.VMIN: min,
}


def place(m: Machine, kind: OperandKind, addr: int, values) -> None:
    dtype = {ACT8: np.int8, ACT16: "<i2", ACC32: "<i4"}[kind]
    raw = np.asarray(values).astype(dtype).view(np.uint8)
    if kind is ACC32:
        m.acc[4 * addr : 4 * addr + raw.size] = raw
    else:
        m.act[addr : addr + raw.size] = raw


def fetch(m: Machine, kind: OperandKind, addr: int, n: int) -> list[int]:
    if kind is ACC32:
        return acc_words(m, addr, n).tolist()
    if kind is ACT16:
        return m.act[addr : addr + 2 * n].view("<i2").tolist()
    return m.act[addr : addr + n].view(np.int8).tolist()


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize(
    ("d", "a", "b"), [(ACT8, ACC32, ACC32), (ACT16, ACT8, ACT16), (ACC32, ACT16, ACT8)]
)
@pytest.mark.parametrize(("shift", "period"), [(0, 0), (3, 7), (17, 1)])
def test_binary_ops(op, d, a, b, shift, period):
    rng = np.random.default_rng(int(op) * 7 + shift)
    n = 50
    lim = {ACT8: 127, ACT16: 32767, ACC32: 2**31 - 1}
    av = rng.integers(-lim[a], lim[a] + 1, n)
    bv = rng.integers(-lim[b], lim[b] + 1, n)
    m = Machine.empty(DEFAULT)
    place(m, a, 0, av)
    place(m, b, 1000, bv)
    result = execute(
        I(
            op,
            d_kind=d,
            d_addr=2000,
            a_kind=a,
            a_addr=0,
            b_kind=b,
            b_addr=1000,
            len=n,
            shift=shift,
            period=period,
        ),
        machine=m,
    )
    bw = [int(bv[i % period]) if period else int(bv[i]) for i in range(n)]
    want = [
        sat(reference_round_shift(BINARY[op](int(x), y), shift), d.bits)
        for x, y in zip(av, bw, strict=True)
    ]
    assert fetch(result.machine, d, 2000, n) == want


def test_unary_ops_relu_clamp_copy_lut():
    m = Machine.empty(DEFAULT)
    values = np.array([-40000, -300, -5, -1, 0, 1, 6, 255, 70000])
    place(m, ACC32, 0, values)
    table = (np.arange(256) - 128) // 2  # entry for value v is v // 2
    m.lut[256:512] = table.astype(np.int8).view(np.uint8)
    n, common = len(values), dict(a_kind=ACC32, a_addr=0, len=len(values), shift=1)
    result = execute(
        I(Opcode.VCOPY, d_kind=ACT16, d_addr=0, **common),
        I(Opcode.VRELU, d_kind=ACT8, d_addr=100, **common),
        I(Opcode.VCLAMP, d_kind=ACT16, d_addr=200, lo=-3, hi=100, **common),
        I(Opcode.VLUT, d_kind=ACC32, d_addr=50, table=1, **common),
        machine=m,
    )
    halved = [reference_round_shift(int(v), 1) for v in values]
    r = result.machine
    assert fetch(r, ACT16, 0, n) == [sat(v, 16) for v in halved]
    assert fetch(r, ACT8, 100, n) == [sat(max(v, 0), 8) for v in halved]
    assert fetch(r, ACT16, 200, n) == [min(max(v, -3), 100) for v in halved]
    assert fetch(r, ACC32, 50, n) == [(sat(v, 8)) // 2 for v in halved]


def test_clamp_with_lo_above_hi_gives_hi():
    m = Machine.empty(DEFAULT)
    place(m, ACT8, 0, [-5, 0, 5])
    result = execute(
        I(Opcode.VCLAMP, d_kind=ACT8, d_addr=10, a_kind=ACT8, a_addr=0, len=3, lo=4, hi=2),
        machine=m,
    )
    assert fetch(result.machine, ACT8, 10, 3) == [2, 2, 2]


def test_in_place_vector_op_is_allowed():
    m = Machine.empty(DEFAULT)
    place(m, ACT16, 0, [1, 2, 3])
    result = execute(
        I(
            Opcode.VADD,
            d_kind=ACT16,
            d_addr=0,
            a_kind=ACT16,
            a_addr=0,
            b_kind=ACT16,
            b_addr=0,
            len=3,
        ),
        machine=m,
    )
    assert fetch(result.machine, ACT16, 0, 3) == [2, 4, 6]


# -- dependency tokens -------------------------------------------------------------------


def test_token_chain_through_all_streams():
    result = execute(
        I(Opcode.NOP, stream=0, push_next=1),
        I(Opcode.MATMUL, pop_prev=1, push_next=1, push_prev=1),
        I(Opcode.STORE, pop_prev=1, push_prev=1),
        I(Opcode.NOP, stream=1, pop_next=1),
        I(Opcode.NOP, stream=0, pop_next=1),
    )
    assert all(v == 0 for v in result.machine.tokens.values())


def trap_of(*instructions, config=DEFAULT, segments=()):
    result = run(program(*instructions, segments=segments), config)
    assert not result.halted
    assert result.trap is not None
    return result


def test_token_underflow_names_the_queue():
    result = trap_of(I(Opcode.NOP, stream=0), I(Opcode.MATMUL, pop_prev=1), HALT)
    assert result.trap.cause is TrapCause.TOKEN_UNDERFLOW
    assert result.trap.index == 1
    assert "load->compute queue is empty" in result.trap.message


def test_token_overflow_at_the_configured_depth():
    depth = TINY.control.token_queue_depth
    pushes = [I(Opcode.NOP, stream=0, push_next=1)] * (depth + 1)
    result = trap_of(*pushes, HALT, config=TINY)
    assert result.trap.cause is TrapCause.TOKEN_OVERFLOW
    assert result.trap.index == depth
    assert f"queue is full ({depth} tokens)" in result.trap.message


# -- traps -------------------------------------------------------------------------------


def test_trap_is_precise_and_reports_index_and_text():
    m_before = Machine.empty(TINY)
    result = trap_of(
        I(Opcode.LOAD, space=Space.ACT, sram=0, dram=0, rows=1, len=4),
        I(Opcode.LOAD, space=Space.ACT, sram=2040, dram=0, rows=1, len=16),
        I(Opcode.LOAD, space=Space.ACT, sram=100, dram=0, rows=1, len=4),
        HALT,
        config=TINY,
        segments=[Segment(0, bytes([9, 8, 7, 6]))],
    )
    trap = result.trap
    assert trap.cause is TrapCause.ADDRESS_OUT_OF_RANGE
    assert trap.index == 1
    assert trap.text.startswith("load ")
    assert "act range 0x7f8..0x808 exceeds its 0x800 bytes" in trap.message
    m = result.machine
    assert m.act[:4].tolist() == [9, 8, 7, 6]  # the instruction before ran
    assert m.act[2040:].tolist() == m_before.act[2040:].tolist()  # the trapping one did not
    assert m.act[100:104].tolist() == [0, 0, 0, 0]  # nor anything after it
    assert result.stats.executed == 1


@pytest.mark.parametrize(
    ("instruction", "cause", "fragment"),
    [
        (
            I(Opcode.MATMUL, rows=1, cols=1, n=1, prec=Precision.INT4),
            TrapCause.UNSUPPORTED,
            "precision int4 is not supported",
        ),
        (
            I(Opcode.VCOPY, d_kind=ACT16, d_addr=3, a_kind=ACT8, len=1),
            TrapCause.MISALIGNED,
            "operand d: act.i16 address 0x3 is odd",
        ),
        (
            I(
                Opcode.VADD,
                d_kind=ACT8,
                d_addr=2,
                a_kind=ACT8,
                a_addr=0,
                b_kind=ACT8,
                b_addr=100,
                len=4,
            ),
            TrapCause.OPERAND_OVERLAP,
            "partly overlaps operand a",
        ),
        (
            I(
                Opcode.VADD,
                d_kind=ACT8,
                d_addr=0,
                a_kind=ACT8,
                a_addr=50,
                b_kind=ACT8,
                b_addr=0,
                len=4,
                period=2,
            ),
            TrapCause.OPERAND_OVERLAP,
            "partly overlaps operand b",
        ),
        (
            I(Opcode.MATMUL, rows=4, cols=1, n=2, acc_stride=3),
            TrapCause.OPERAND_OVERLAP,
            "acc_stride 3 < rows 4",
        ),
        (
            I(Opcode.VLUT, d_kind=ACT8, a_kind=ACT8, a_addr=10, len=1, table=3),
            TrapCause.ADDRESS_OUT_OF_RANGE,
            "lut range 0x300..0x400",
        ),
        (
            I(Opcode.LOAD_WGT, dram=2**20 - 10, count=64, format=WeightFormat.BITMASK),
            TrapCause.ADDRESS_OUT_OF_RANGE,
            "dram range",
        ),
        (
            I(Opcode.MATMUL, acc=500, rows=20, cols=1, n=1),
            TrapCause.ADDRESS_OUT_OF_RANGE,
            "acc range 0x1f4..0x208 exceeds its 0x200 words",
        ),
    ],
)
def test_static_traps(instruction, cause, fragment):
    config = TINY
    if cause is TrapCause.UNSUPPORTED:
        from dataclasses import replace

        config = replace(TINY, mac=replace(TINY.mac, precisions=(Precision.INT8,)))
    result = trap_of(instruction, HALT, config=config)
    assert result.trap.cause is cause
    assert fragment in result.trap.message


def test_illegal_word_traps_with_its_reason():
    bad = int.from_bytes(encode(HALT), "little") | (1 << 100)
    prog = Program((bad,))
    result = run(prog, TINY)
    assert result.trap.cause is TrapCause.ILLEGAL_INSTRUCTION
    assert "reserved bits" in result.trap.message


def test_unknown_opcode_traps():
    result = run(Program((7,)), TINY)
    assert result.trap.cause is TrapCause.ILLEGAL_INSTRUCTION
    assert "unknown opcode 7" in result.trap.message


def test_running_off_the_end_traps():
    result = trap_of(I(Opcode.NOP, stream=1))
    assert result.trap.cause is TrapCause.END_OF_PROGRAM
    assert result.trap.index == 1


# -- whole programs ----------------------------------------------------------------------


def test_entry_symbols_and_outputs():
    x = np.arange(8, dtype=np.int8)
    prog = program(
        HALT,
        I(Opcode.LOAD, space=Space.ACT, sram=0, dram=0, rows=1, len=8),
        I(Opcode.STORE, space=Space.ACT, sram=0, dram=64, rows=1, len=8),
        HALT,
        segments=[Segment(0, x.tobytes())],
        symbols=[
            Symbol("x", SymbolKind.DATA, 0, 8, (8,), DType.I8),
            Symbol("y", SymbolKind.OUTPUT, 64, 8, (2, 4), DType.I8),
            Symbol("copy", SymbolKind.ENTRY, 1),
        ],
    )
    assert run(prog, TINY).outputs()["y"].tolist() == [[0] * 4] * 2
    result = run(prog, TINY, entry="copy")
    assert result.outputs()["y"].tolist() == x.reshape(2, 4).tolist()
    assert result.stats.by_opcode[Opcode.LOAD] == 1


def test_image_larger_than_dram_is_refused():
    from edgenpu.errors import ProgramError

    prog = program(HALT, segments=[Segment(TINY.dram.bytes - 2, b"1234")])
    with pytest.raises(ProgramError, match="DRAM image needs 0x100002 bytes, config tiny has"):
        load_image(prog, TINY)
