"""The event-driven stream model (``edgenpu.sim.perf.streams``) against the stepped rules
(``edgenpu.sim.perf.dispatch_rules``): the same cycles, issue cycles and dispatch cycles, on
random programs with random per-instruction unit latencies."""

from __future__ import annotations

import os
from collections import deque

import numpy as np
import pytest

from edgenpu.config import load_config
from edgenpu.isa import Instruction, Opcode, Program, Stream, encode, stream_of
from edgenpu.sim import functional
from edgenpu.sim.benches.npu_ref import bench_config
from edgenpu.sim.perf import dispatch_rules, streams
from edgenpu.sim.random_programs import injectable_causes, random_program

CONFIGS = [bench_config(load_config(name)) for name in ("tiny", "default")]


class _PerInstruction(dict):
    """Latencies in the stepped model's form: it reads ``latencies[stream]`` once per
    instruction it hands to that stream's unit, in program order."""

    def __init__(self, per_stream: dict[Stream, list[int]]) -> None:
        super().__init__()
        self._queues = {s: deque(v) for s, v in per_stream.items()}

    def __getitem__(self, stream: Stream) -> int:
        return self._queues[stream].popleft()


def stepped(plan: functional.Dispatch, config, latencies: list[int]) -> dispatch_rules.Timing:
    per_stream: dict[Stream, list[int]] = {s: [] for s in Stream}
    for ins, latency in zip(plan.instructions, latencies, strict=True):
        if ins.opcode is not Opcode.NOP:
            per_stream[stream_of(ins)].append(latency)
    return dispatch_rules.timing(plan, config, _PerInstruction(per_stream))


def _latencies(rng: np.random.Generator, n: int) -> list[int]:
    """Fixed, short, long or mixed: the dispatcher, the queues or the tokens bind."""
    style = int(rng.integers(4))
    if style == 0:
        return [int(rng.integers(1, 3))] * n
    top = (4, 24, 160, 40)[style]
    return [int(v) for v in rng.integers(1, top, size=n)]


def _agree_on(config, programs: int, draws: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    causes = injectable_causes(config)
    cases = 0
    for i in range(programs):
        trap = causes[i % len(causes)] if i % 4 == 3 else None
        made = random_program(rng, config, int(rng.integers(1, 45)), trap=trap)
        plan = functional.dispatch(made.program, config)
        for _ in range(draws):
            lat = _latencies(rng, len(plan.instructions))
            want = stepped(plan, config, lat)
            got = streams.timing(plan.instructions, config, lat)
            assert got == want, (
                f"{config.name} program {i} latencies {lat}: events {got.cycles}, "
                f"stepped {want.cycles}"
            )
            cases += 1
    return cases


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_event_model_equals_stepped_rules(config):
    assert _agree_on(config, programs=100, draws=10, seed=7) == 1000


@pytest.mark.soak
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_event_model_equals_stepped_rules_soak(config):
    programs = int(os.environ.get("EDGENPU_SOAK_PROGRAMS", "5000")) // 10
    _agree_on(config, programs=programs, draws=10, seed=int(os.environ.get("EDGENPU_SEED", "8")))


def _program(code: list[Instruction]) -> Program:
    return Program(tuple(int.from_bytes(encode(i), "little") for i in code))


def test_worked_example():
    # docs/microarchitecture.md, "Dispatch and tokens", worked example: cycles = 11.
    tiny = CONFIGS[0]
    make = Instruction.make
    code = [
        make(Opcode.LOAD, rows=1, len=1, push_next=1),
        make(Opcode.VCOPY, len=1, pop_prev=1),
        make(Opcode.HALT),
    ]
    plan = functional.dispatch(_program(code), tiny)
    sched = streams.schedule(plan.instructions, tiny, [3, 2])
    assert (sched.cycles, sched.dispatched, sched.taken, sched.finished) == (
        11,
        (2, 4),
        (3, 7),
        (6, 9),
    )
    assert sched.token_ready[1] == 7  # the vcopy waited for the load's token


def test_full_token_queue_holds_done():
    # K tokens in flight, then a pop in program order, then one more push; the compute
    # stream is held by a long instruction first, so the loads run ahead and the last one's
    # done waits for the consumer's first pop.
    tiny = CONFIGS[0]
    K = tiny.control.token_queue_depth
    make = Instruction.make
    load = make(Opcode.LOAD, rows=1, len=1, push_next=1)
    vcopy = make(Opcode.VCOPY, len=1, pop_prev=1)
    code = [make(Opcode.VCOPY, len=1)] + [load] * K + [vcopy, load] + [vcopy] * K
    code.append(make(Opcode.HALT))
    plan = functional.dispatch(_program(code), tiny)
    assert plan.halted
    lat = [100] + [1] * K + [5, 1] + [5] * K
    sched = streams.schedule(plan.instructions, tiny, lat)
    first_pop, last_load = sched.taken[K + 1], K + 2
    assert sched.room_ready[last_load] == first_pop + 1
    assert sched.finished[last_load] == first_pop + 1 > sched.taken[last_load] + 1
    assert streams.timing(plan.instructions, tiny, lat) == stepped(plan, tiny, lat)


def test_latency_count_must_match():
    plan = functional.dispatch(_program([Instruction.make(Opcode.HALT)]), CONFIGS[0])
    with pytest.raises(ValueError, match="0 instructions but 1 latencies"):
        streams.schedule(plan.instructions, CONFIGS[0], [1])
