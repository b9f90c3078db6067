"""The issue block of one stream: token pops before an instruction, pushes after it.

It sits between the stream's instruction queue and its execution unit, and is where the
dependency-token handshake lives, so that units only see instructions they may start and
only report that they have finished. ``nop`` instructions never reach the unit: they are
token operations only, done here.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.isa import Opcode, Stream
from edgenpu.rtl.isa_layout import INSTRUCTION_LAYOUT
from edgenpu.rtl.trap_check import FLAGS, allowed_flags

__all__ = ["DONE", "StreamIssue"]

#: A unit's "finished" handshake, as the unit sees it: a stream without payload.
DONE = wiring.Signature({"valid": Out(1), "ready": In(1)})


class StreamIssue(wiring.Component):
    """Issue block of ``stream``.

    Cycle rules (``docs/microarchitecture.md``, "Dispatch and tokens", rules T3-T5): while
    idle, the head instruction is offered to the unit (``out.valid``) once every queue it pops
    has a token (``<flag>_ok``); in the transfer cycle the pops happen and the block becomes
    busy. While busy, ``done.ready`` is high once every queue the instruction pushes has room;
    in the ``done`` transfer cycle the pushes happen and the block is idle from the next
    cycle. A ``nop`` at the head completes in one cycle in which its pops have tokens and its
    pushes have room, without leaving the idle state.

    Parameters
    ----------
    stream : Stream
        The stream; it fixes the token flags it has (``FLAGS`` its neighbours allow).
    issue_layout : data.Layout
        Payload of ``queue`` and ``out``; it must have a ``word`` member holding the
        128-bit instruction.

    Members
    -------
    queue : In(stream.Signature(issue_layout))
        The head of the stream's instruction queue; ``ready`` takes it.
    out : Out(stream.Signature(issue_layout))
        Instructions to the unit (never a ``nop``), ``valid`` stable until taken.
    done : In(DONE)
        The unit has finished its instruction (its last memory write is done).
    <flag> : Out(1), one per flag the stream has (``pop_prev``, ``pop_next``, ...)
        Pop from / push to that token queue this cycle.
    <flag>_ok : In(1), one per flag
        The queue has a token (pop flags) or room (push flags).
    idle : Out(1)
        No instruction is between its issue and its ``done``.
    """

    def __init__(self, stream_: Stream, issue_layout: data.Layout) -> None:
        if not isinstance(stream_, Stream):
            raise TypeError(f"stream must be a Stream, not {stream_!r}")
        if not isinstance(issue_layout, data.StructLayout) or "word" not in dict(issue_layout):
            raise TypeError(
                f"issue_layout must be a StructLayout with a word, not {issue_layout!r}"
            )
        self.stream = stream_
        self.issue_layout = issue_layout
        self.flags = allowed_flags(Opcode.NOP, stream_)
        members = {
            "queue": In(stream.Signature(issue_layout)),
            "out": Out(stream.Signature(issue_layout)),
            "done": In(DONE),
            "idle": Out(1),
        }
        for flag in self.flags:
            members[flag] = Out(1)
            members[f"{flag}_ok"] = In(1)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        # The header is common to every opcode.
        head = data.View(INSTRUCTION_LAYOUT, self.queue.payload.word).halt
        is_nop = head.opcode == Opcode.NOP.value
        pops = [f for f in self.flags if f.startswith("pop")]
        pushes = [f for f in self.flags if f.startswith("push")]
        assert set(pops) | set(pushes) == set(self.flags) and set(self.flags) <= set(FLAGS)

        def all_ok(flags, wanted) -> object:
            ok = 1
            for f in flags:
                ok = ok & (~wanted[f] | getattr(self, f"{f}_ok"))
            return ok

        head_flags = {f: getattr(head, f) for f in self.flags}
        busy = Signal()
        # The pushes of the instruction in the unit, latched at issue.
        owed = {f: Signal(name=f"owed_{f}") for f in pushes}
        head_valid = ~busy & self.queue.valid
        nop_go = head_valid & is_nop & all_ok(pops, head_flags) & all_ok(pushes, head_flags)
        issue_go = self.out.valid & self.out.ready
        finish = self.done.valid & self.done.ready
        # Every output is one unconditional expression (a Verilog ``assign``): Icarus never
        # runs an ``always @*`` block whose inputs keep their initial values, so an output
        # computed in one would read X until this stream's first instruction.
        m.d.comb += [
            self.idle.eq(~busy),
            self.out.payload.eq(self.queue.payload),
            self.out.valid.eq(head_valid & ~is_nop & all_ok(pops, head_flags)),
            self.queue.ready.eq(nop_go | issue_go),
            self.done.ready.eq(busy & all_ok(pushes, owed)),
        ]
        for f in pops:
            m.d.comb += getattr(self, f).eq((nop_go | issue_go) & head_flags[f])
        for f in pushes:
            m.d.comb += getattr(self, f).eq((nop_go & head_flags[f]) | (finish & owed[f]))
        with m.If(issue_go):
            m.d.sync += busy.eq(1)
            m.d.sync += [owed[f].eq(head_flags[f]) for f in pushes]
        with m.Elif(finish):
            m.d.sync += busy.eq(0)
        return m
