"""The dispatcher's and token queues' timing rules (``docs/microarchitecture.md``, "Dispatch
and tokens", D1-D4 and T1-T5), stepped cycle by cycle: the literal reading of the rules.

The dispatcher bench checks the RTL against :func:`timing`; the performance model
(:mod:`edgenpu.sim.perf.streams`) computes the same cycles event by event, and is tested
against this module on thousands of programs. What runs and how a program ends is
``edgenpu.sim.functional.dispatch``'s; the execution units are fixed latencies here (a unit
finishes an instruction ``latency`` cycles after taking it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode, Stream, stream_of
from edgenpu.sim.functional import QUEUES, Dispatch, token_queues

__all__ = ["Timing", "timing"]


@dataclass(frozen=True)
class Timing:
    """When things happen, in cycles from the ``start`` transfer (cycle 0)."""

    #: First cycle in which ``halted`` or ``trapped`` is high; also the ``cycles`` output.
    cycles: int
    #: Per stream, the cycle in which each unit instruction is handed to the unit.
    issues: Mapping[Stream, tuple[int, ...]]
    #: The cycle in which each dispatched instruction (``nop`` included) enters its queue.
    dispatches: tuple[int, ...]


def timing(
    plan: Dispatch,
    config: HardwareConfig,
    latencies: Mapping[Stream, int],
    tokens: Mapping[tuple[Stream, Stream], int] | None = None,
) -> Timing:
    """The cycle rules, stepped: ``plan`` is what :func:`dispatch` returned for the program,
    ``latencies`` each unit's cycles from taking an instruction to signalling ``done``
    (at least 1), ``tokens`` the token counts at ``start`` (zero after reset)."""
    qdepth = config.control.instruction_queue_depth
    tdepth = config.control.token_queue_depth
    count = {q: 0 for q in QUEUES} | dict(tokens or {})
    slots = list(plan.instructions)  # then one stop slot (halt, trap or end of program)
    queue: dict[Stream, deque[Instruction]] = {s: deque() for s in Stream}
    busy: dict[Stream, tuple[int, dict] | None] = dict.fromkeys(Stream)
    issues: dict[Stream, list[int]] = {s: [] for s in Stream}
    dispatches: list[int] = []
    phase, k, c = "decode", 0, 1  # D1: the start transfer (cycle 0) fetches the entry word
    while True:
        assert c < 10_000_000, "timing model does not terminate"
        written: tuple[Stream, Instruction] | None = None
        next_phase = phase
        if phase == "decode":  # D2
            next_phase = "check"
        elif phase == "check":  # D3
            if k == len(slots):
                next_phase = "drain"
            else:
                ins = slots[k]
                s = stream_of(ins)
                if len(queue[s]) < qdepth:
                    written = (s, ins)
                    dispatches.append(c)
                    k += 1
                    next_phase = "decode"
        elif phase == "drain" and all(not queue[s] and busy[s] is None for s in Stream):
            # D4
            return Timing(c + 1, {s: tuple(v) for s, v in issues.items()}, tuple(dispatches))
        delta = dict.fromkeys(QUEUES, 0)
        for s in Stream:  # T3-T5, all on the counts at the start of the cycle
            if busy[s] is None and queue[s]:
                ins = queue[s][0]
                flags = token_queues(ins)
                pops = [q for f, q in flags.items() if f.startswith("pop")]
                pushes = [q for f, q in flags.items() if f.startswith("push")]
                pops_ok = all(count[q] > 0 for q in pops)
                if ins.opcode is Opcode.NOP:
                    if pops_ok and all(count[q] < tdepth for q in pushes):
                        queue[s].popleft()
                        for q in pops:
                            delta[q] -= 1
                        for q in pushes:
                            delta[q] += 1
                elif pops_ok:
                    queue[s].popleft()
                    for q in pops:
                        delta[q] -= 1
                    busy[s] = (c + latencies[s], pushes)
                    issues[s].append(c)
            elif busy[s] is not None:
                due, pushes = busy[s]
                if c >= due and all(count[q] < tdepth for q in pushes):
                    for q in pushes:
                        delta[q] += 1
                    busy[s] = None
        for q in QUEUES:
            count[q] += delta[q]
            assert 0 <= count[q] <= tdepth
        if written is not None:
            queue[written[0]].append(written[1])
        phase = next_phase
        c += 1
