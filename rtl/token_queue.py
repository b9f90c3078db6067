"""A dependency-token queue between two neighbouring streams: a saturating counter.

A token carries no data, only "one more finished": the queue is its count. The consumer's
issue block pops one before starting an instruction, the producer's pushes one when an
instruction finishes (see ``docs/microarchitecture.md``, "Dispatch and tokens").
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TokenQueue"]


class TokenQueue(wiring.Component):
    """A token counter of ``depth`` places.

    A push in cycle *c* is visible (poppable) from cycle *c* + 1; a pop in cycle *c* frees its
    place from cycle *c* + 1. A push and a pop in the same cycle leave the count unchanged.
    A push while full or a pop while empty is ignored (the issue blocks never do either:
    they wait on ``can_push`` / ``can_pop``), so the count never leaves ``0 .. depth``.

    Parameters
    ----------
    depth : int
        Tokens the queue can hold (``control.token_queue_depth``), at least 1.

    Members
    -------
    push : In(1)
        Add a token this cycle.
    pop : In(1)
        Take a token this cycle.
    count : Out(range(depth + 1))
        Tokens held.
    can_push : Out(1)
        ``count < depth``.
    can_pop : Out(1)
        ``count > 0``.
    """

    def __init__(self, depth: int) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self.depth = depth
        super().__init__(
            {
                "push": In(1),
                "pop": In(1),
                "count": Out(range(depth + 1)),
                "can_push": Out(1),
                "can_pop": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [
            self.can_push.eq(self.count != self.depth),
            self.can_pop.eq(self.count != 0),
        ]
        push = self.push & self.can_push
        pop = self.pop & self.can_pop
        with m.If(push & ~pop):
            m.d.sync += self.count.eq(self.count + 1)
        with m.Elif(pop & ~push):
            m.d.sync += self.count.eq(self.count - 1)
        return m
