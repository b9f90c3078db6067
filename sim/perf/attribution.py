"""Where every cycle of every unit goes: busy, or stalled for a named cause.

From the event schedule (:mod:`.streams`) and the instructions' unit costs (:mod:`.units`),
each stream's cycles ``0 .. cycles - 1`` are cut into segments, each busy with one
instruction or stalled for one :class:`StallCause`, so that per unit busy plus stalls is
exactly the program's cycles. A gap before an instruction is charged first to the dispatcher
(the instruction was not in its queue yet), then to the dependency token it waited for; cycles
after its ``done`` was due are charged to a full token queue; inside an instruction's own
occupancy, DRAM latency and the decompressor's output rate are charged as stalls, the rest is
busy. The MAC array and the vector unit share the compute stream: each sees the other's
occupancy as :attr:`StallCause.SHARED`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from edgenpu.isa import Instruction, Opcode, Stream, stream_of
from edgenpu.sim.perf.streams import Schedule
from edgenpu.sim.perf.units import Unit, UnitCost, unit_of

__all__ = ["Segment", "StallCause", "UnitTime", "segments", "unit_times"]


class StallCause(enum.Enum):
    """Why a unit does no work in a cycle."""

    #: Its next instruction is not in its queue yet (the dispatcher's pace or its stalls).
    DISPATCH = "dispatch"
    #: It waits for a dependency token from another stream.
    TOKEN = "token"
    #: Its ``done`` is held: the token queue it signals is full (the consumer lags).
    TOKEN_FULL = "token_full"
    #: Inside a DMA instruction: waiting for DRAM read data (the latency).
    DRAM = "dram"
    #: Inside a ``load_wgt``: waiting for the decompressor to write out a block.
    DECOMPRESSOR = "decompressor"
    #: The issue block completes a ``nop`` (synchronisation only).
    NOP = "nop"
    #: The compute stream is held by its other unit (MAC array <-> vector unit).
    SHARED = "shared"
    #: The dispatcher waits for room in a stream's full instruction queue (a busy unit).
    QUEUE_FULL = "queue_full"
    #: The dispatcher, after the halt or trap, waits for the streams to drain.
    DRAIN = "drain"
    #: No instruction left for it (or none at all).
    IDLE = "idle"


@dataclass(frozen=True)
class Segment:
    """Cycles ``start .. stop - 1`` of a stream: busy with slot ``slot`` (``cause`` None) or
    stalled for ``cause`` (``slot`` the instruction concerned, -1 if none)."""

    start: int
    stop: int
    cause: StallCause | None
    slot: int


def _stream_segments(
    stream: Stream,
    instructions: Sequence[Instruction],
    costs: Sequence[UnitCost],
    plan: Schedule,
) -> list[Segment]:
    out: list[Segment] = []

    def add(start: int, stop: int, cause: StallCause | None, slot: int) -> None:
        if stop > start:
            out.append(Segment(start, stop, cause, slot))

    cursor = 0
    for k, ins in enumerate(instructions):
        if stream_of(ins) is not stream:
            continue
        take = plan.taken[k]
        arrived = max(cursor, min(take, plan.queued[k]))
        add(cursor, arrived, StallCause.DISPATCH, k)
        add(arrived, take, StallCause.TOKEN, k)
        if ins.opcode is Opcode.NOP:
            add(take, take + 1, StallCause.NOP, k)
        else:
            cost = costs[k]
            at = take + 1  # the command cycle
            add(take, at, None, k)
            add(at, at + cost.dram_wait, StallCause.DRAM, k)
            at += cost.dram_wait
            own_end = take + cost.done + 1
            busy_end = own_end - cost.decompressor_wait
            add(at, busy_end, None, k)
            add(busy_end, own_end, StallCause.DECOMPRESSOR, k)
            add(own_end, plan.finished[k] + 1, StallCause.TOKEN_FULL, k)
        cursor = plan.finished[k] + 1
    add(cursor, plan.cycles, StallCause.IDLE, -1)
    return out


def _dispatcher_segments(plan: Schedule) -> list[Segment]:
    out: list[Segment] = []
    cursor = 0
    for k, (decoded, checked) in enumerate(zip(plan.decoded, plan.dispatched, strict=True)):
        if checked > decoded + 1:
            out.append(Segment(cursor, decoded + 1, None, -1))
            out.append(Segment(decoded + 1, checked, StallCause.QUEUE_FULL, k))
            cursor = checked
    out.append(Segment(cursor, plan.stop_decided + 1, None, -1))
    out.append(Segment(plan.stop_decided + 1, plan.cycles, StallCause.DRAIN, -1))
    return out


def segments(
    instructions: Sequence[Instruction], costs: Sequence[UnitCost], plan: Schedule
) -> dict[Stream | None, list[Segment]]:
    """Every stream's segments, and the dispatcher's under the key None."""
    out: dict[Stream | None, list[Segment]] = {
        s: _stream_segments(s, instructions, costs, plan) for s in Stream
    }
    out[None] = _dispatcher_segments(plan)
    return out


@dataclass(frozen=True)
class UnitTime:
    """A unit's cycles: ``busy`` plus the ``stalls`` (by cause) are the program's cycles."""

    unit: Unit
    busy: int
    stalls: dict[StallCause, int]
    instructions: int

    @property
    def total(self) -> int:
        return self.busy + sum(self.stalls.values())


_STREAM_UNITS = {
    Unit.LOAD: Stream.LOAD,
    Unit.MAC_ARRAY: Stream.COMPUTE,
    Unit.VECTOR_UNIT: Stream.COMPUTE,
    Unit.STORE: Stream.STORE,
}


def unit_times(
    instructions: Sequence[Instruction], parts: dict[Stream | None, list[Segment]]
) -> tuple[UnitTime, ...]:
    """Busy and stall cycles per unit, from :func:`segments`."""
    owners = [unit_of(ins) for ins in instructions]
    out = []
    for unit in Unit:
        stream = _STREAM_UNITS.get(unit)
        busy = 0
        stalls = dict.fromkeys(StallCause, 0)
        for seg in parts[stream]:
            cycles = seg.stop - seg.start
            owner = owners[seg.slot] if seg.slot >= 0 and stream else None
            shared = stream is Stream.COMPUTE and owner is not None and owner is not unit
            if shared and seg.cause in (None, StallCause.DRAM, StallCause.TOKEN_FULL):
                stalls[StallCause.SHARED] += cycles
            elif seg.cause is None:
                busy += cycles
            else:
                stalls[seg.cause] += cycles
        count = len(instructions) if stream is None else owners.count(unit)
        out.append(UnitTime(unit, busy, {c: n for c, n in stalls.items() if n}, count))
    return tuple(out)
