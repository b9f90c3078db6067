"""The vector unit's timing rules (``docs/microarchitecture.md``, "Vector unit", V1-V6).

The one executable definition: the unit's bench checks the RTL against :func:`timing`, and
the performance model charges every ``v*`` instruction the same cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PIPELINE_DEPTH", "Timing", "beats", "done_cycle", "timing"]

#: Cycles from a beat's read to its write (issue, operate, round, write).
PIPELINE_DEPTH = 3


@dataclass(frozen=True)
class Timing:
    """Cycles, counted from the command's transfer (cycle 0), with ``done`` always ready.

    ``reads[k]`` and ``writes[k]`` are beat ``k``'s read and write cycles, ``done`` the cycle
    of the ``done`` transfer and ``next_command`` the first cycle the next command can
    transfer in.
    """

    reads: tuple[int, ...]
    writes: tuple[int, ...]
    done: int
    next_command: int


def beats(length: int, lanes: int) -> int:
    """Rule V1: ``B = ceil(len / V)`` beats, whatever the opcode, kinds, shift and period."""
    return -(-length // lanes)


def done_cycle(length: int, lanes: int) -> int:
    """Rule V5: ``done`` with the last write, in cycle ``B + PIPELINE_DEPTH``; 1 if empty."""
    n = beats(length, lanes)
    return n + PIPELINE_DEPTH if n else 1


def timing(length: int, lanes: int) -> Timing:
    """The vector unit's timing rules (docs/microarchitecture.md, "Vector unit").

    An instruction of ``len`` elements has ``B = ceil(len / V)`` beats, whatever its opcode,
    operand kinds, shift and period. Beat ``k`` is read in cycle ``1 + k`` and written in
    cycle ``1 + k + PIPELINE_DEPTH = 4 + k``; ``done`` transfers with the last write, in
    cycle ``B + 3`` (cycle 1 if ``len`` is 0), and the next command in the cycle after.
    """
    reads = tuple(1 + k for k in range(beats(length, lanes)))
    writes = tuple(r + PIPELINE_DEPTH for r in reads)
    done = done_cycle(length, lanes)
    return Timing(reads, writes, done, done + 1)
