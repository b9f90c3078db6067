"""The DMA units' timing rules (``docs/microarchitecture.md``, "DMA": M1, L1-L3, S1-S3, W2,
W4).

The one executable definition: the DMA bench checks the RTL against :func:`timing`, and the
performance model charges ``load``, ``store`` and ``load_wgt`` the same cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu.isa import DRAM_ADDR_BITS, Instruction, Opcode
from edgenpu.sim.perf import decompressor_rules

__all__ = ["Timing", "beat_count", "beats", "done_cycle", "timing", "weight_start"]


def beats(ins: Instruction, beat_bytes: int) -> list[tuple[int, int]]:
    """The DRAM beats a ``load`` or ``store`` touches, in order: ``(row, beat address)``.

    Row ``r`` spans DRAM bytes ``[s, s + n)``, ``s = dram + r * stride`` (mod ``2**32``),
    ``n = len * unit_bytes``, hence beats ``s // B .. (s + n - 1) // B``: the ``B``-aligned
    words it touches, whatever its alignment.
    """
    rows, n = ins["rows"], ins["len"] * ins["space"].unit_bytes
    if not rows or not n:
        return []
    out = []
    for r in range(rows):
        s = (ins["dram"] + r * ins["stride"]) % (1 << DRAM_ADDR_BITS)
        out += [(r, a) for a in range(s // beat_bytes, (s + n - 1) // beat_bytes + 1)]
    return out


def beat_count(ins: Instruction, beat_bytes: int) -> int:
    """Rule M1's ``R``: the number of :func:`beats`, counted without listing them."""
    rows, n = ins["rows"], ins["len"] * ins["space"].unit_bytes
    if not rows or not n:
        return 0
    s = (ins["dram"] + np.arange(rows, dtype=np.int64) * ins["stride"]) % (1 << DRAM_ADDR_BITS)
    return int(((s + n - 1) // beat_bytes - s // beat_bytes + 1).sum())


@dataclass(frozen=True)
class Timing:
    """Cycles from the command's transfer (cycle 0), with the DRAM channels always ready and
    ``done`` always taken.

    ``requests``: each DRAM read request (load) or on-chip read (store). ``writes``: each
    on-chip write (load) or DRAM write (store), one per beat. ``done``: the ``done``
    transfer; the unit takes its next command in cycle ``done + 1`` at the earliest.
    """

    requests: tuple[int, ...]
    writes: tuple[int, ...]
    done: int


def weight_start(ins: Instruction, beat_bytes: int, latency: int) -> int:
    """Rule W2: the cycle the decompressor takes a ``load_wgt``'s command, ``S = 2 + L``,
    plus one when ``dram`` is not beat-aligned (the aligner needs the second beat too)."""
    return 2 + latency + (ins["dram"] % beat_bytes != 0)


def done_cycle(opcode: Opcode, beat_total: int, latency: int) -> int:
    """Rules L3 and S3: ``done`` of a ``load`` of ``R`` beats in cycle ``R + L + 1``, of a
    ``store`` in ``R + 2``; of either with ``R = 0`` in cycle 1."""
    if not beat_total:
        return 1
    if opcode is Opcode.LOAD:
        return beat_total + latency + 1
    if opcode is Opcode.STORE:
        return beat_total + 2
    raise ValueError(f"done_cycle covers load and store, not {opcode.label}")


def timing(
    ins: Instruction,
    beat_bytes: int,
    latency: int,
    *,
    block_sizes: tuple[int, ...] | None = None,
    output_elements: int | None = None,
) -> Timing:
    """The DMA timing rules (``docs/microarchitecture.md``, "DMA"), for ``load``/``store``
    and, given the stream's ``block_sizes`` and the decompressor's ``output_elements``,
    ``load_wgt`` (whose ``requests`` are left empty: they depend on the FIFO's credits).

    With ``R`` = ``len(beats(ins, B))``: beat ``k`` is requested (load: DRAM read; store:
    on-chip read) in cycle ``1 + k``. Load: its data arrives and is written on chip in
    cycle ``1 + k + L``; ``done`` in cycle ``R + L + 1``. Store: its DRAM write is in cycle
    ``2 + k``; ``done`` in cycle ``R + 2``. With ``R = 0``, ``done`` is in cycle 1.
    """
    if ins.opcode is Opcode.LOAD_WGT:
        if not ins["count"]:
            return Timing((), (), 1)
        start = weight_start(ins, beat_bytes, latency)
        dec = decompressor_rules.timing(block_sizes, ins["count"], beat_bytes, output_elements)
        return Timing((), tuple(start + c for c in dec.writes), start + dec.done)
    if ins.opcode not in (Opcode.LOAD, Opcode.STORE):
        raise ValueError(f"timing covers load and store, not {ins.opcode.label}")
    R = beat_count(ins, beat_bytes)
    done = done_cycle(ins.opcode, R, latency)
    if not R:
        return Timing((), (), done)
    requests = tuple(1 + k for k in range(R))
    if ins.opcode is Opcode.LOAD:
        return Timing(requests, tuple(1 + k + latency for k in range(R)), done)
    return Timing(requests, tuple(2 + k for k in range(R)), done)
