"""Dependency tokens: order every cross-stream hazard of a kernel, and nothing more.

The load, compute and store streams run concurrently; only tokens order them (see
:mod:`edgenpu.isa.spec`). For each instruction this pass finds, per other stream, the
latest earlier instruction it conflicts with (read-after-write, write-after-read or
write-after-write on overlapping addresses of any memory, DRAM included) and makes it wait
for that one: the producer pushes a token toward this stream and this instruction pops
it. A stream already ordered after a later instruction of the producer's stream needs no
new token, since each stream runs in order. Load and store are not neighbours: a hazard
between them goes through a compute ``nop`` that pops from one and pushes to the other.

Every push is popped by exactly one later instruction, so the queues are empty when the
kernel ends and the next kernel starts clean.
"""

from __future__ import annotations

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode, Stream, stream_of
from edgenpu.isa.access import Memory, accesses, memory_size

__all__ = ["add_tokens"]

_STREAMS = (Stream.LOAD, Stream.COMPUTE, Stream.STORE)


class _Shadow:
    """The last instruction of each stream that read / wrote each address of a memory."""

    def __init__(self, size: int):
        self.read = np.full((3, size), -1, np.int64)
        self.write = np.full((3, size), -1, np.int64)


class _DramShadow:
    """DRAM is large and mostly read (weights): keep ranges, reads apart from writes, so a
    read is checked against the few stores only."""

    def __init__(self):
        self.reads: list[tuple[int, int, int, int]] = []  # start, stop, stream, index
        self.writes: list[tuple[int, int, int, int]] = []

    def conflicts(self, start: int, stop: int, write: bool) -> dict[int, int]:
        found: dict[int, int] = {}
        for lo, hi, stream, index in self.writes + (self.reads if write else []):
            if lo < stop and start < hi:
                found[stream] = max(found.get(stream, -1), index)
        return found

    def record(self, start: int, stop: int, stream: int, write: bool, index: int) -> None:
        (self.writes if write else self.reads).append((start, stop, stream, index))


def add_tokens(
    instructions: list[Instruction], config: HardwareConfig
) -> tuple[list[Instruction], list[int]]:
    """The kernel with token flags set and relay ``nop`` s inserted, and for each instruction
    the index of the input instruction it is (a relay: the one it releases)."""
    shadows = {m: _Shadow(memory_size(m, config)) for m in Memory if m is not Memory.DRAM}
    dram = _DramShadow()
    out: list[Instruction] = []
    origin: list[int] = []
    flags: list[dict[str, int]] = []
    # synced[(producer, consumer)]: the latest producer instruction (output index) the
    # consumer stream is already ordered after.
    synced = {(p, c): -1 for p in _STREAMS for c in _STREAMS if p is not c}

    def order_after(consumer_index: int, consumer: Stream, producer: Stream, target: int):
        """Make instruction ``consumer_index`` (stream ``consumer``) wait for ``target``."""
        if synced[(producer, consumer)] >= target:
            return
        if abs(producer - consumer) != 1:
            raise AssertionError("only neighbours exchange tokens")
        toward = "next" if consumer > producer else "prev"
        back = "prev" if toward == "next" else "next"
        flags[target][f"push_{toward}"] = 1
        flags[consumer_index][f"pop_{back}"] = 1
        synced[(producer, consumer)] = target

    for source, ins in enumerate(instructions):
        me = stream_of(ins)
        touched = accesses(ins)
        deps: dict[Stream, int] = {}
        for access in touched:
            if access.memory is Memory.DRAM:
                found = dram.conflicts(access.start, access.stop, access.write)
                for stream, index in found.items():
                    if stream != me:
                        deps[Stream(stream)] = max(deps.get(Stream(stream), -1), index)
                continue
            shadow = shadows[access.memory]
            lo, hi = access.start, access.stop
            for other in _STREAMS:
                if other is me:
                    continue
                latest = int(shadow.write[other, lo:hi].max(initial=-1))
                if access.write:
                    latest = max(latest, int(shadow.read[other, lo:hi].max(initial=-1)))
                if latest >= 0:
                    deps[other] = max(deps.get(other, -1), latest)
        far = Stream.STORE if me is Stream.LOAD else Stream.LOAD
        if me is not Stream.COMPUTE and far in deps:
            target = deps.pop(far)
            if synced[(far, me)] < target:
                # Relay through a compute nop: it waits for the far stream, then releases me.
                nop_index = len(out)
                out.append(Instruction.make(Opcode.NOP, stream=Stream.COMPUTE))
                origin.append(source)
                flags.append({})
                order_after(nop_index, Stream.COMPUTE, far, target)
                deps[Stream.COMPUTE] = nop_index
                synced[(far, me)] = target
        index = len(out)
        out.append(ins)
        origin.append(source)
        flags.append({})
        for producer, target in deps.items():
            order_after(index, me, producer, target)
        for access in touched:
            if access.memory is Memory.DRAM:
                dram.record(access.start, access.stop, me, access.write, index)
                continue
            shadow = shadows[access.memory]
            (shadow.write if access.write else shadow.read)[me, access.start : access.stop] = index
    result = [ins.replace(**f) if f else ins for ins, f in zip(out, flags, strict=True)]
    return result, origin
