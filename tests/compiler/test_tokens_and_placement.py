"""The dependency-token pass and the liveness placement: compiled kernels are race-free
under random legal stream orders, every token pushed is popped within its kernel, and
hazards get exactly the ordering they need."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.host import SimulatedModel
from edgenpu.compiler.lowering.allocate import SramOverflow, place
from edgenpu.compiler.lowering.builder import Buffer
from edgenpu.compiler.lowering.tokens import add_tokens
from edgenpu.config import load_config
from edgenpu.isa import Instruction, Opcode, Space, Stream
from edgenpu.sim import functional
from edgenpu.sim.interleave import run_interleaved

from .conftest import random_inputs, small_model

TINY = load_config("tiny")


@pytest.mark.parametrize("schedule", ["layer_major", "frame_major"])
def test_compiled_kernels_are_race_free(schedule, rng):
    from edgenpu.compiler.spec import CompileSpec

    compiled = compile_model(small_model("three_layers"), TINY, CompileSpec(schedule=schedule))
    sim = SimulatedModel.from_compiled(compiled)
    for name, kernel in compiled.qmodel.kernels.items():
        inputs = random_inputs(kernel, rng)
        sim.write(name, inputs)
        start = copy.deepcopy(sim.machine)
        want = functional.run(compiled.program, TINY, entry=name, machine=copy.deepcopy(start))
        for seed in range(3):
            got = run_interleaved(
                compiled.program,
                TINY,
                np.random.default_rng(seed),
                entry=name,
                machine=copy.deepcopy(start),
            )
            for memory in ("dram", "act", "acc", "wgt", "lut"):
                assert np.array_equal(
                    getattr(got.machine, memory), getattr(want.machine, memory)
                ), f"{name}: {memory} differs in stream order {seed}"
        assert all(count == 0 for count in want.machine.tokens.values()), name


def _load(sram, dram, space=Space.ACT, length=16):
    return Instruction.make(Opcode.LOAD, space=space, sram=sram, dram=dram, rows=1, len=length)


def _store(sram, dram, length=16):
    return Instruction.make(Opcode.STORE, space=Space.ACT, sram=sram, dram=dram, rows=1, len=length)


def _copy(d, a, length=16):
    return Instruction.make(Opcode.VCOPY, d_addr=d, a_addr=a, len=length)


def test_independent_streams_get_no_tokens():
    program, _ = add_tokens([_load(0, 0), _copy(64, 32), _store(96, 256)], TINY)
    assert all(
        not any(ins[f] for f in ("pop_prev", "pop_next", "push_prev", "push_next"))
        for ins in program
    )


def test_read_after_load_and_store_after_compute_are_ordered():
    program, _ = add_tokens([_load(0, 0), _copy(64, 0), _store(64, 256)], TINY)
    load, vcopy, store = program
    assert load["push_next"] and vcopy["pop_prev"]
    assert vcopy["push_next"] and store["pop_prev"]


def test_a_load_overwriting_what_a_store_reads_waits_through_a_compute_relay():
    program, origin = add_tokens([_store(0, 256), _load(0, 0)], TINY)
    assert [i.opcode for i in program] == [Opcode.STORE, Opcode.NOP, Opcode.LOAD]
    store, relay, load = program
    assert relay["stream"] == Stream.COMPUTE
    assert store["push_prev"] and relay["pop_next"] and relay["push_prev"] and load["pop_next"]
    assert origin == [0, 1, 1]  # the relay stands for the load it releases


def test_one_token_orders_everything_before_it():
    # Both copies read what the load wrote; once the first has waited, the second need not.
    program, _ = add_tokens([_load(0, 0), _copy(64, 0), _copy(96, 0)], TINY)
    assert program[1]["pop_prev"] and not program[2]["pop_prev"]


def test_buffers_that_are_never_live_together_share_addresses():
    a, b, c = (Buffer(n, Space.ACT, 1024) for n in "abc")
    placed = place("k", {a: (0, 3), b: (4, 9), c: (2, 5)}, TINY)
    assert placed[a] == placed[b] == 0 and placed[c] == 1024


def test_overflow_names_the_kernel_memory_and_live_buffers():
    a, b = Buffer("big", Space.ACT, 1500), Buffer("other", Space.ACT, 1000)
    with pytest.raises(
        SramOverflow,
        match=r"kernel k: ACT needs 2500 bytes but config tiny has 2048 "
        r"\(live: big 1500, other 1000\)",
    ):
        place("k", {a: (0, 5), b: (1, 2)}, TINY)


def test_aligned_buffers_are_aligned():
    a, b = Buffer("odd", Space.ACT, 3), Buffer("i16", Space.ACT, 4, align=2)
    placed = place("k", {a: (0, 2), b: (1, 2)}, TINY)  # a is placed first, at 0
    assert placed[a] == 0 and placed[b] == 4
