"""Liveness-based SRAM placement: buffers whose lifetimes do not overlap share addresses.

A buffer lives from the first to the last instruction that names it (pinned ones for the
whole kernel). Buffers are placed first-fit in order of their first use, each at the
lowest aligned address free for its whole lifetime. Reusing an address is safe although
the streams run concurrently: the token pass (:mod:`.tokens`) orders the new writer after
the old buffer's last reader.
"""

from __future__ import annotations

from collections.abc import Mapping

from edgenpu.config import HardwareConfig
from edgenpu.isa import Space

from ...errors import CompileError

__all__ = ["SramOverflow", "place"]


class SramOverflow(CompileError):
    """The buffers live at one point of a kernel do not fit an SRAM."""


def _fits_at(start: int, size: int, taken: list[tuple[int, int]]) -> int | None:
    """The first address >= ``start`` where ``size`` units fit between ``taken`` ranges."""
    at = start
    for lo, hi in sorted(taken):
        if at + size <= lo:
            return at
        at = max(at, hi)
    return at


def _align(value: int, align: int) -> int:
    return -(-value // align) * align


def place(kernel: str, lifetimes: Mapping, config: HardwareConfig) -> dict:
    """Addresses (in each memory's unit) for buffers with ``(first, last)`` lifetimes.

    Raises
    ------
    CompileError
        Naming the kernel, the memory, what was live at the worst point and the size.
    """
    placed: dict = {}
    order = sorted(lifetimes, key=lambda b: (lifetimes[b][0], not b.pinned, -b.size))
    for buf in order:
        first, last = lifetimes[buf]
        taken = [
            (placed[o], placed[o] + o.size)
            for o in placed
            if o.space is buf.space and lifetimes[o][0] <= last and first <= lifetimes[o][1]
        ]
        at = 0
        while True:
            at = _align(_fits_at(at, buf.size, taken), buf.align)
            if all(at + buf.size <= lo or at >= hi for lo, hi in taken):
                break
        placed[buf] = at
        capacity = config.sram_size(buf.space)
        if at + buf.size > capacity:
            live = sorted(
                (
                    o
                    for o in placed
                    if o.space is buf.space and lifetimes[o][0] <= last and first <= lifetimes[o][1]
                ),
                key=lambda o: -o.size,
            )
            unit = "words" if buf.space is Space.ACC else "bytes"
            listing = ", ".join(f"{o.name} {o.size}" for o in live[:6])
            raise SramOverflow(
                f"kernel {kernel}: {buf.space.label.upper()} needs {at + buf.size} {unit} "
                f"but config {config.name} has {capacity} (live: {listing})"
            )
    return placed
