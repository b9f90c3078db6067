"""The decompressor's timing rules (``docs/microarchitecture.md``, "Decompressor", D1-D6).

The one executable definition: the unit's bench checks the RTL against :func:`timing`, and
the performance model charges a ``load_wgt`` the same cycles through :func:`schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu.formats import BLOCK

__all__ = ["Schedule", "Timing", "schedule", "timing"]


@dataclass(frozen=True)
class Timing:
    """Cycles, counted from the command's transfer (cycle 0), of each write beat and of the
    ``done`` transfer, when input and output never stall."""

    writes: tuple[int, ...]
    done: int


@dataclass(frozen=True)
class Schedule:
    """Block by block: ``finals[i]`` is block ``i``'s final gather cycle ``F_i`` and
    ``beats[i]`` its write beats ``w_i``; ``done`` is D4's ``D``; ``output_bound`` the cycles
    by which the blocks' handoffs waited for the previous block's writes rather than for
    their own bytes (``sum max(0, w_(i-1) - g_i)``): the decompressor's output rate, not the
    input, set them."""

    finals: tuple[int, ...]
    beats: tuple[int, ...]
    done: int
    output_bound: int


def schedule(
    block_sizes: np.ndarray | list[int] | tuple[int, ...],
    count: int,
    input_bytes: int,
    output_elements: int,
) -> Schedule:
    """Rules D1-D4: block ``i`` of ``b_i`` bytes and ``e_i`` elements takes
    ``g_i = ceil(b_i / IN)`` gather cycles and ``w_i = ceil(e_i / OUT)`` write beats; its final
    take is in cycle ``F_i``::

        F_0 = 1 + g_0
        F_i = F_(i-1) + max(g_i, w_(i-1))

    and ``done`` transfers in ``F_last + w_last + 1`` (cycle 1 if ``count`` is 0)."""
    if count == 0:
        return Schedule((), (), 1, 0)
    # The recurrence is a prefix sum: F_i = 1 + g_0 + sum over k = 1..i of max(g_k, w_(k-1)).
    sizes = np.asarray(block_sizes, dtype=np.int64)
    gather = -(-sizes // input_bytes)
    elements = np.minimum(BLOCK, count - BLOCK * np.arange(len(sizes), dtype=np.int64))
    beats = -(-elements // output_elements)
    steps = np.maximum(gather[1:], beats[:-1])
    finals = 1 + int(gather[0]) + np.concatenate(([0], np.cumsum(steps)))
    waited = int(np.maximum(0, beats[:-1] - gather[1:]).sum())
    done = int(finals[-1] + beats[-1] + 1)
    return Schedule(tuple(finals.tolist()), tuple(beats.tolist()), done, waited)


def timing(
    block_sizes: np.ndarray | list[int] | tuple[int, ...],
    count: int,
    input_bytes: int,
    output_elements: int,
) -> Timing:
    """The decompressor's timing rules: :func:`schedule`, with block ``i``'s beats written in
    cycles ``F_i + 1 .. F_i + w_i`` (rule D3)."""
    plan = schedule(block_sizes, count, input_bytes, output_elements)
    pairs = zip(plan.finals, plan.beats, strict=True)
    writes = tuple(f + 1 + k for f, w in pairs for k in range(w))
    return Timing(writes, plan.done)
