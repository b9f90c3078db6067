"""The dispatcher and the three streams, event by event: the rules D1-D4 and T1-T5 of
``docs/microarchitecture.md`` ("Dispatch and tokens") without stepping every cycle.

Every event of the rules happens in the first cycle its conditions hold, and every condition
is "some earlier event happened in a cycle before this one": a queue has room once the
instruction ``Q`` places ahead in the same stream was taken; a pop has a token once the
producer's matching push happened; a push has room once the consumer's matching pop
happened (token counts only move one way per stream, so the ``m``-th pop of a queue waits
for exactly its ``(m - initial)``-th push). So each event's cycle is the maximum of a few
earlier events' cycles plus one, a longest path through an acyclic graph, computed here as
soon as its inputs are known. The cost is a few operations per instruction, whatever the
latencies; :mod:`edgenpu.sim.perf.dispatch_rules` is the stepped reading it is tested
against, cycle for cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode, Stream, stream_of
from edgenpu.sim.functional import QUEUES, token_queues
from edgenpu.sim.perf.dispatch_rules import Timing

__all__ = ["Schedule", "schedule", "timing"]

_QUEUE_INDEX = {q: i for i, q in enumerate(QUEUES)}


@dataclass(frozen=True)
class Schedule:
    """When every event of a program happens, in cycles from the ``start`` transfer.

    Per dispatched slot ``k`` (program order, ``nop`` included): ``decoded[k]`` (``D_k``),
    ``dispatched[k]`` (``C_k``, the cycle it enters its queue), ``taken[k]`` (the issue
    block hands it to the unit; a ``nop`` completes then) and ``finished[k]`` (the ``done``
    transfer; a ``nop``'s is ``taken[k]``). For stall attribution, the bounds the rules put
    on ``taken[k]``: ``queued[k]`` (``C_k + 1``, T1), ``free[k]`` (the stream's previous
    instruction's finish plus one, T4/T5) and ``token_ready[k]`` (its pops' tokens and, for a
    ``nop``, its pushes' room, T2/T3/T5; 0 if it waits for none); and on ``finished[k]``,
    ``room_ready[k]`` (its pushes' room, T4; 0 if none). ``stop_decided`` is the cycle the
    halt or trap is decided, ``cycles`` the ``cycles`` output (D4).
    """

    cycles: int
    stop_decided: int
    decoded: tuple[int, ...]
    dispatched: tuple[int, ...]
    taken: tuple[int, ...]
    finished: tuple[int, ...]
    queued: tuple[int, ...]
    free: tuple[int, ...]
    token_ready: tuple[int, ...]
    room_ready: tuple[int, ...]
    latencies: tuple[int, ...]


@dataclass(frozen=True)
class _Slot:
    stream: int
    nop: bool
    #: Per popped queue ``(queue, ordinal)``: the ``ordinal``-th pop of ``queue`` (from 1).
    pops: tuple[tuple[int, int], ...]
    #: Per pushed queue ``(queue, ordinal)``.
    pushes: tuple[tuple[int, int], ...]
    #: Place in its stream's order (from 0).
    place: int


def _slots(instructions: Sequence[Instruction]) -> list[_Slot]:
    pops = [0] * len(QUEUES)
    pushes = [0] * len(QUEUES)
    places = [0, 0, 0]
    out = []
    for ins in instructions:
        s = int(stream_of(ins))
        my_pops, my_pushes = [], []
        for flag, queue in token_queues(ins).items():
            q = _QUEUE_INDEX[queue]
            if flag.startswith("pop"):
                pops[q] += 1
                my_pops.append((q, pops[q]))
            else:
                pushes[q] += 1
                my_pushes.append((q, pushes[q]))
        out.append(_Slot(s, ins.opcode is Opcode.NOP, tuple(my_pops), tuple(my_pushes), places[s]))
        places[s] += 1
    return out


def schedule(
    instructions: Sequence[Instruction],
    config: HardwareConfig,
    latencies: Sequence[int],
    tokens: Mapping[tuple[Stream, Stream], int] | None = None,
) -> Schedule:
    """Every event's cycle for the dispatched ``instructions`` (``functional.dispatch``'s
    ``instructions``: up to, not including, the halt or trapping word).

    Parameters
    ----------
    instructions : sequence of Instruction
        What is dispatched, in program order.
    config : HardwareConfig
        ``control.instruction_queue_depth`` (``Q``) and ``control.token_queue_depth`` (``K``).
    latencies : sequence of int
        Per instruction, its unit's cycles from taking it to ``done`` (at least 1; ignored
        for a ``nop``).
    tokens : mapping, optional
        Token counts at ``start`` (zero after reset).
    """
    Q = config.control.instruction_queue_depth
    K = config.control.token_queue_depth
    initial = [int((tokens or {}).get(q, 0)) for q in QUEUES]
    slots = _slots(instructions)
    n = len(slots)
    if len(latencies) != n:
        raise ValueError(f"{n} instructions but {len(latencies)} latencies")
    by_stream: list[list[int]] = [[], [], []]
    for k, slot in enumerate(slots):
        by_stream[slot.stream].append(k)
    push_at: list[list[int]] = [[] for _ in QUEUES]
    pop_at: list[list[int]] = [[] for _ in QUEUES]
    decoded, dispatched = [0] * n, [0] * n
    taken, finished = [-1] * n, [-1] * n
    free_at, token_at, room_at = [0] * n, [0] * n, [0] * n

    def pops_ready(slot: _Slot) -> int | None:
        """The first cycle every pop of ``slot`` has a token, or None if not known yet."""
        ready = 0
        for q, m in slot.pops:
            need = m - initial[q]
            if need > 0:
                if len(push_at[q]) < need:
                    return None
                ready = max(ready, push_at[q][need - 1] + 1)
        return ready

    def room_ready(slot: _Slot) -> int | None:
        """The first cycle every push of ``slot`` has room, or None if not known yet."""
        ready = 0
        for q, p in slot.pushes:
            need = initial[q] + p - K
            if need > 0:
                if len(pop_at[q]) < need:
                    return None
                ready = max(ready, pop_at[q][need - 1] + 1)
        return ready

    k = 0  # the dispatcher's next slot
    decode = 1  # D1: the start transfer (cycle 0) reads the entry word; D_0 = 1
    cursor = [0, 0, 0]  # per stream, its next instruction (index into by_stream)
    busy = [False, False, False]  # per stream, is that instruction taken and not finished
    free = [0, 0, 0]  # per stream, the first cycle its issue block is idle again
    while True:
        progress = False
        while k < n:  # D2, D3
            slot = slots[k]
            check = decode + 1
            if slot.place >= Q:
                ahead = taken[by_stream[slot.stream][slot.place - Q]]
                if ahead < 0:
                    break
                check = max(check, ahead + 1)
            decoded[k], dispatched[k] = decode, check
            decode = check + 1
            k += 1
            progress = True
        for s in range(3):
            order = by_stream[s]
            while cursor[s] < len(order):
                j = order[cursor[s]]
                slot = slots[j]
                if busy[s]:  # T4: done, once its pushes have room
                    room = room_ready(slot)
                    if room is None:
                        break
                    at = max(taken[j] + latencies[j], room)
                    room_at[j] = room
                else:
                    if j >= k:  # not dispatched yet
                        break
                    ready = pops_ready(slot)
                    if ready is None:
                        break
                    if slot.nop:  # T5: pops and pushes at once
                        room = room_ready(slot)
                        if room is None:
                            break
                        ready = max(ready, room)
                    at = max(dispatched[j] + 1, free[s], ready)  # T1, T3
                    free_at[j], token_at[j] = free[s], ready
                    taken[j] = at
                    for q, _ in slot.pops:
                        pop_at[q].append(at)
                    if not slot.nop:
                        busy[s] = True
                        progress = True
                        continue
                finished[j] = at
                for q, _ in slot.pushes:
                    push_at[q].append(at)
                busy[s] = False
                free[s] = at + 1
                cursor[s] += 1
                progress = True
        if k == n and all(cursor[s] == len(by_stream[s]) for s in range(3)):
            break
        if not progress:
            raise RuntimeError(
                f"the streams deadlock at slot {k} (a program that dispatch accepted cannot)"
            )
    stop = decode + 1  # D3: the stop slot is decided in the cycle after its decode
    drained = max([stop + 1, *free])  # D4: queues empty and every issue block idle
    return Schedule(
        cycles=drained + 1,
        stop_decided=stop,
        decoded=tuple(decoded),
        dispatched=tuple(dispatched),
        taken=tuple(taken),
        finished=tuple(finished),
        queued=tuple(c + 1 for c in dispatched),
        free=tuple(free_at),
        token_ready=tuple(token_at),
        room_ready=tuple(room_at),
        latencies=tuple(int(x) for x in latencies),
    )


def timing(
    instructions: Sequence[Instruction],
    config: HardwareConfig,
    latencies: Sequence[int],
    tokens: Mapping[tuple[Stream, Stream], int] | None = None,
) -> Timing:
    """:func:`schedule` in the form of :func:`edgenpu.sim.perf.dispatch_rules.timing`'s
    result (``cycles``, per-stream issue cycles of unit instructions, dispatch cycles)."""
    plan = schedule(instructions, config, latencies, tokens)
    issues: dict[Stream, list[int]] = {s: [] for s in Stream}
    for ins, at in zip(instructions, plan.taken, strict=True):
        if ins.opcode is not Opcode.NOP:
            issues[stream_of(ins)].append(at)
    return Timing(plan.cycles, {s: tuple(v) for s, v in issues.items()}, plan.dispatched)
