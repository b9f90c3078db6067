"""How a host runs a branching encoder's expensive branch: gated frames in groups.

The ISA has no branches, so a kernel always computes every frame it was compiled for, and
the gate's decisions go to the host. The expensive branch is an LSTM whose state holds
still on the frames it skips; on the frames it runs it is an ordinary LSTM over those
frames in order. So after an ``encoder_chunk`` call the host gathers the chunk's gated stem
rows and runs them through kernels compiled for 1, 2, 4, ... frames, one per binary digit
of their count (largest first). All of them share one state in DRAM and one copy of the
weights; the weights stream once a group instead of once a frame.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["GRAPH", "group_sizes", "groups", "is_expensive", "kernel_name", "run_groups"]

#: The graph of the expensive branch (one stem frame per row: symbol ``E``).
GRAPH = "encoder_expensive"


def kernel_name(frames: int) -> str:
    """The entry point that runs the expensive branch over ``frames`` gated frames."""
    return f"{GRAPH}_{frames}"


def is_expensive(kernel: str) -> bool:
    """Whether ``kernel`` is one of the expensive branch's entry points."""
    return kernel.startswith(f"{GRAPH}_")


def group_sizes(frames_per_chunk: int) -> tuple[int, ...]:
    """The group sizes compiled for a chunk of ``frames_per_chunk`` encoder frames: the
    powers of two up to it (their sums cover every count from 1 to ``frames_per_chunk``)."""
    if frames_per_chunk < 1:
        raise ValueError(f"a chunk has at least one frame, not {frames_per_chunk}")
    return tuple(1 << k for k in range(frames_per_chunk.bit_length()))


def groups(count: int) -> list[int]:
    """The group sizes that run ``count`` gated frames: its binary digits, largest first."""
    return [1 << k for k in reversed(range(count.bit_length())) if count >> k & 1]


def run_groups(rows: np.ndarray, call: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """The expensive branch's outputs for the gated ``rows`` (at least one, in frame order),
    computed as ``call(size, rows of the group)`` for each of :func:`groups`."""
    outputs, start = [], 0
    for size in groups(len(rows)):
        outputs.append(call(size, rows[start : start + size]))
        start += size
    return np.concatenate(outputs)
