"""The compute stream's two units behind one issue port: ``matmul`` to the MAC array, ``v*``
to the vector unit, and their ``done``s merged back.

The compute stream runs one instruction at a time (the issue block waits for ``done`` before
it offers the next), so at most one of the two units is busy and the merge is an OR of the
``done`` valids with no arbitration; the router adds no register, so the units' cycle rules
are the stream's.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.isa import Opcode
from edgenpu.rtl.command_adapter import command_fields
from edgenpu.rtl.isa_layout import INSTRUCTION_LAYOUT, command_layout
from edgenpu.rtl.stream_issue import DONE
from edgenpu.rtl.vector_unit import VECTOR_OPCODES

__all__ = ["ComputeRouter"]


class ComputeRouter(wiring.Component):
    """Routes compute-stream instructions to the MAC array or the vector unit.

    Parameters
    ----------
    issue_layout : data.StructLayout
        The dispatcher's stream payload (a ``word`` member of 128 bits).
    matmul : bool
        Build the MAC array's side. Without it a ``matmul`` is never accepted (the stream
        stalls on it): for a processor without a MAC array, or while one is being built.

    Members
    -------
    issue : In(stream.Signature(issue_layout))
        The dispatcher's ``compute`` stream.
    done : Out(DONE)
        To the dispatcher's ``compute_done``.
    vector : Out(stream.Signature(command_layout(*VECTOR_OPCODES)))
        To the vector unit's ``cmd``.
    vector_done : In(DONE)
        The vector unit's ``done`` handshake (its payload is not needed here).
    mac : Out(stream.Signature(command_layout(Opcode.MATMUL))), with ``matmul``
        To the MAC array's ``cmd``.
    mac_done : In(DONE), with ``matmul``
        The MAC array's ``done`` handshake.
    """

    def __init__(self, issue_layout: data.StructLayout, *, matmul: bool = True) -> None:
        if not isinstance(issue_layout, data.StructLayout) or "word" not in issue_layout.members:
            raise TypeError(
                f"issue_layout must be a StructLayout with a word, not {issue_layout!r}"
            )
        if not isinstance(matmul, bool):
            raise TypeError(f"matmul must be a bool, not {matmul!r}")
        self.issue_layout = issue_layout
        self.matmul = matmul
        members = {
            "issue": In(stream.Signature(issue_layout)),
            "done": Out(DONE),
            "vector": Out(stream.Signature(command_layout(*VECTOR_OPCODES))),
            "vector_done": In(DONE),
        }
        if matmul:
            members["mac"] = Out(stream.Signature(command_layout(Opcode.MATMUL)))
            members["mac_done"] = In(DONE)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        word = self.issue.payload.word
        is_matmul = data.View(INSTRUCTION_LAYOUT, word).halt.opcode == Opcode.MATMUL.value
        for name, value in command_fields(word, VECTOR_OPCODES).items():
            m.d.comb += getattr(self.vector.payload, name).eq(value)
        # Plain expressions, not assignments under m.If: see StreamIssue on Icarus.
        m.d.comb += self.vector.valid.eq(self.issue.valid & ~is_matmul)
        done_valid = self.vector_done.valid
        if self.matmul:
            for name, value in command_fields(word, (Opcode.MATMUL,)).items():
                m.d.comb += getattr(self.mac.payload, name).eq(value)
            m.d.comb += [
                self.mac.valid.eq(self.issue.valid & is_matmul),
                self.issue.ready.eq(
                    (is_matmul & self.mac.ready) | (~is_matmul & self.vector.ready)
                ),
                self.mac_done.ready.eq(self.done.ready),
            ]
            done_valid = done_valid | self.mac_done.valid
        else:
            m.d.comb += self.issue.ready.eq(~is_matmul & self.vector.ready)
        m.d.comb += [self.done.valid.eq(done_valid), self.vector_done.ready.eq(self.done.ready)]
        return m
