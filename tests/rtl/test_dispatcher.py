"""The dispatcher (fetch, decode, precise traps, stream queues, token queues) against
``edgenpu.sim.functional.dispatch`` and its timing rules.

Constructor checks; the static trap checks in Amaranth's simulator on configurations the
bundled YAML files do not have (unsupported precisions and formats); the timing model by
hand; and the cocotb bench on Verilator (tiny, default) and Icarus (tiny).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgenpu.config import load_config, override
from edgenpu.formats import WeightFormat
from edgenpu.isa import IllegalInstruction, Instruction, Opcode, Stream, TrapCause, decode
from edgenpu.isa.access import check
from edgenpu.precision import Precision
from edgenpu.rtl.dispatcher import QUEUES, TOKEN_ORDER, Dispatcher, token_queue_of
from edgenpu.rtl.token_queue import TokenQueue
from edgenpu.rtl.trap_check import TrapCheck, allowed_flags
from edgenpu.sim import functional
from edgenpu.sim.benches.dispatcher_ref import (
    expected,
    hand_cases,
    random_words,
    timing,
    word_of,
)
from edgenpu.sim.hdl_build import (
    lint,
    run_bench,
    run_bench_icarus,
    verilog_for,
)
from edgenpu.sim.random_programs import injectable_causes, random_program

BENCH = "edgenpu.sim.benches.dispatcher_bench"
TINY = load_config("tiny")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Dispatcher(TINY, 0),
            ValueError,
            "program_words must be a positive integer, not 0",
        ),
        (lambda: Dispatcher("tiny"), TypeError, "config must be a HardwareConfig, not 'tiny'"),
        (lambda: TokenQueue(0), ValueError, "depth must be a positive integer, not 0"),
        (lambda: TokenQueue(True), ValueError, "depth must be a positive integer, not True"),
        (lambda: TrapCheck(None), TypeError, "config must be a HardwareConfig, not None"),
    ],
)
def test_constructor_rejects(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == message


def test_token_queue_mapping_is_the_functional_one():
    assert QUEUES == functional.QUEUES
    for s in Stream:
        for flag in allowed_flags(Opcode.NOP, s):
            ins = Instruction.make(Opcode.NOP, stream=s, **{flag: 1})
            assert functional.token_queues(ins) == {flag: QUEUES[token_queue_of(s, flag)]}
    ins = Instruction.make(
        Opcode.NOP, stream=Stream.COMPUTE, pop_prev=1, pop_next=1, push_prev=1, push_next=1
    )
    assert tuple(functional.token_queues(ins)) == TOKEN_ORDER


def test_timing_rules_by_hand():
    # tiny: instruction queues of 4. load (latency 3), vcopy (2), halt.
    program = [
        word_of(Instruction.make(Opcode.LOAD, push_next=1)),
        word_of(Instruction.make(Opcode.VCOPY, pop_prev=1)),
        word_of(Instruction.make(Opcode.HALT)),
    ]
    want = expected(functional.Program(tuple(program), (), ()), TINY)
    got = timing(want.plan, TINY, {Stream.LOAD: 3, Stream.COMPUTE: 2, Stream.STORE: 1})
    # D: decode 1, check 2 (load enters its queue), decode 3, check 4 (vcopy), decode 5,
    # check 6 (halt). T3: load issued in 3, done in 6, token pushed (visible from 7);
    # vcopy queued from 5, issued in 7 once the token is there, done in 9; drained in 10.
    assert got.dispatches == (2, 4)
    assert got.issues == {Stream.LOAD: (3,), Stream.COMPUTE: (7,), Stream.STORE: ()}
    assert got.cycles == 11


def test_hand_cases_mean_what_they_say():
    for config in (TINY, load_config("default")):
        for case in hand_cases(config):
            assert expected(case.program(), config, case.entry).cause is case.cause, case.name


def _static_cause(word: int, config) -> TrapCause:
    try:
        ins = decode(word)
    except IllegalInstruction:
        return TrapCause.ILLEGAL_INSTRUCTION
    trap = check(ins, config)
    return trap.cause if trap else TrapCause.NONE


def _variant(precisions, formats):
    return override(TINY, {"mac.precisions": precisions, "decompressor.formats": formats})


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        _variant(["int8"], ["dense"]),
        _variant(["int4"], ["dense", "nm2_4"]),
    ],
    ids=["tiny", "int8-dense", "int4-nm"],
)
def test_trap_check_amaranth_sim(config):
    """TrapCheck's cause equals decode + access.check on hand-written and mutated words."""
    rng = np.random.default_rng(3)
    words = [w for case in hand_cases(TINY) for w in case.words]
    for cause in (None, *injectable_causes(config)):
        words += list(random_program(rng, config, 20, trap=cause).program.words)
    for op in (Opcode.LOAD_WGT, Opcode.MATMUL):  # every precision and format, supported or not
        for prec in Precision:
            extra = {"format": WeightFormat.BITMASK} if op is Opcode.LOAD_WGT else {}
            words.append(word_of(Instruction.make(op, prec=prec, **extra)))
    words = sorted(set(words + random_words(rng, words, 300)))
    dut = TrapCheck(config)
    got = []

    async def bench(ctx):
        for w in words:
            ctx.set(dut.word, w)
            ctx.set(dut.load, 1)
            await ctx.tick()
            got.append(TrapCause(ctx.get(dut.cause)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    seen = set()
    for w, g in zip(words, got, strict=True):
        want = _static_cause(w, config)
        seen.add(want)
        assert g is want, f"word {w:#034x}: {g.label}, expected {want.label}"
    assert {
        TrapCause.NONE,
        TrapCause.ILLEGAL_INSTRUCTION,
        TrapCause.ADDRESS_OUT_OF_RANGE,
        TrapCause.MISALIGNED,
        TrapCause.OPERAND_OVERLAP,
    } <= seen
    if config is not TINY:
        assert TrapCause.UNSUPPORTED in seen


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_verilog_lints_clean(config):
    lint(verilog_for(Dispatcher.from_config, {"config": load_config(config)}))


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_cocotb_bench(config):
    """The cocotb bench on the selected simulator (``EDGENPU_SIM``, default Verilator)."""
    run_bench(Dispatcher.from_config, {"config": load_config(config)}, BENCH)


def test_cocotb_bench_icarus():
    """The Icarus subset: the tiny config."""
    run_bench_icarus(Dispatcher.from_config, {"config": TINY}, BENCH)


def _run_amaranth(config, words: list[int], entry: int = 0) -> tuple[int, int, int, int]:
    """Run ``words`` on the whole dispatcher in Amaranth's simulator, every unit taking an
    instruction at once and finishing it the next cycle; returns (halted, trapped, cause,
    index)."""
    dut = Dispatcher(config, program_words=16)
    out = []

    async def bench(ctx):
        for s in Stream:
            ctx.set(getattr(dut, s.label).ready, 1)
            ctx.set(getattr(dut, f"{s.label}_done").valid, 1)
        for i, w in enumerate(words):
            ctx.set(dut.host.payload.addr, i)
            ctx.set(dut.host.payload.data, w)
            ctx.set(dut.host.valid, 1)
            await ctx.tick()
        ctx.set(dut.host.valid, 0)
        ctx.set(dut.start.payload.entry, entry)
        ctx.set(dut.start.payload.length, len(words))
        ctx.set(dut.start.valid, 1)
        await ctx.tick()
        ctx.set(dut.start.valid, 0)
        for _ in range(200):
            await ctx.tick()
            if ctx.get(dut.halted) or ctx.get(dut.trapped):
                break
        out.append(tuple(ctx.get(x) for x in (dut.halted, dut.trapped, dut.cause, dut.index)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out[0]


def test_unsupported_traps_in_the_whole_dispatcher():
    """The bundled configs support every precision and format, so ``unsupported`` is reached
    end to end only here, on pruned configs, in Amaranth's simulator."""
    nop = word_of(Instruction.make(Opcode.NOP, stream=Stream.LOAD))
    halt = word_of(Instruction.make(Opcode.HALT))
    int8_dense = _variant(["int8"], ["dense"])
    cases = [
        (int8_dense, Instruction.make(Opcode.MATMUL, prec=Precision.INT4)),
        (int8_dense, Instruction.make(Opcode.LOAD_WGT, format=WeightFormat.BITMASK)),
        (int8_dense, Instruction.make(Opcode.LOAD_WGT, prec=Precision.INT4, count=1)),
    ]
    for config, ins in cases:
        words = [nop, word_of(ins), halt]
        want = expected(functional.Program(tuple(words), (), ()), config)
        assert want.cause is TrapCause.UNSUPPORTED
        assert _run_amaranth(config, words) == (0, 1, TrapCause.UNSUPPORTED.value, 1)
    # And a program that runs: halted, no trap.
    words = [nop, word_of(Instruction.make(Opcode.LOAD_WGT, count=1)), halt]
    assert _run_amaranth(int8_dense, words) == (1, 0, 0, 0)
