"""Run a program in a random legal interleaving of its three streams.

The hardware runs the load, compute and store streams concurrently, ordered only by the
dependency tokens. A *race-free* program computes the same result under every such order,
and the functional simulator's program order is one of them. Running under random orders
and comparing with :func:`edgenpu.sim.functional.run` therefore finds races: a program
whose result changes is missing a token. The random-program generator is tested this way,
and a kernel author can check a hand-written kernel the same way.

Each instruction is applied atomically here; the hardware also overlaps instructions in
time, which this does not model, so agreement here is necessary for race freedom, not a
proof of it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode, Program, Stream, stream_of
from edgenpu.sim.functional import (
    ExecStats,
    Machine,
    RunResult,
    dispatch,
    execute,
    load_image,
    resolve_entry,
    run,
    token_queues,
)

__all__ = ["Divergence", "find_race", "run_interleaved"]


def run_interleaved(
    program: Program,
    config: HardwareConfig,
    rng: np.random.Generator,
    *,
    entry: int | str = 0,
    machine: Machine | None = None,
) -> RunResult:
    """Like :func:`~edgenpu.sim.functional.run`, but in a random legal stream order.

    Instructions are dispatched in program order into three unbounded per-stream queues
    (the most freedom the hardware could have); at each step one stream whose head
    instruction has its tokens and room for its pushes is picked at random and executed.
    """
    state = machine if machine is not None else load_image(program, config)
    plan = dispatch(program, config, resolve_entry(program, entry), state.tokens)
    queues: dict[Stream, deque] = {s: deque() for s in Stream}
    for ins in plan.instructions:
        queues[stream_of(ins)].append(ins)
    depth = config.control.token_queue_depth
    stats = ExecStats()

    def ready(stream: Stream) -> bool:
        if not queues[stream]:
            return False
        for flag, queue in token_queues(queues[stream][0]).items():
            count = state.tokens[queue]
            if (count == 0) if flag.startswith("pop") else (count >= depth):
                return False
        return True

    while any(queues.values()):
        candidates = [s for s in Stream if ready(s)]
        # Cannot happen for a program that dispatched cleanly (see edgenpu.isa.spec):
        # program order is always available, so some stream can always move.
        assert candidates, "deadlock in a program that is valid in program order"
        stream = candidates[rng.integers(0, len(candidates))]
        ins = queues[stream].popleft()
        flags = token_queues(ins)
        for flag, queue in flags.items():
            if flag.startswith("pop"):
                state.tokens[queue] -= 1
        execute(ins, state, stats)
        for flag, queue in flags.items():
            if flag.startswith("push"):
                state.tokens[queue] += 1
    if plan.halted:
        stats.count(Instruction.make(Opcode.HALT))
    return RunResult(state, plan.halted, plan.trap, stats, program)


@dataclass(frozen=True)
class Divergence:
    """The first difference between program order and a random stream order."""

    seed: int
    memory: str
    address: int
    in_order: int
    interleaved: int

    def __str__(self) -> str:
        return (
            f"race: stream order {self.seed} leaves {self.memory}[{self.address:#x}] = "
            f"{self.interleaved}, program order leaves {self.in_order}; an instruction is "
            "missing a wait= for the stream that writes or reads it"
        )


def find_race(
    program: Program,
    config: HardwareConfig,
    orders: int,
    *,
    entry: int | str = 0,
) -> Divergence | None:
    """Run ``program`` in ``orders`` random stream orders and compare each final state with
    program order; the first difference found, or ``None`` if all agree."""
    reference = run(program, config, entry=entry).machine
    for seed in range(orders):
        other = run_interleaved(program, config, np.random.default_rng(seed), entry=entry).machine
        for name in ("dram", "wgt", "act", "acc", "lut"):
            a, b = getattr(reference, name), getattr(other, name)
            differ = np.flatnonzero(a != b)
            if differ.size:
                at = int(differ[0])
                return Divergence(seed, name, at, int(a[at]), int(b[at]))
    return None
