"""The instruction memory: program words written by the host, read by the fetch stage."""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.isa import INSTRUCTION_BITS

__all__ = ["InstructionMemory", "host_layout"]


def host_layout(depth: int) -> data.StructLayout:
    """A host write of an instruction memory of ``depth`` words: ``addr``, ``data``."""
    return data.StructLayout({"addr": range(depth), "data": INSTRUCTION_BITS})


class InstructionMemory(wiring.Component):
    """``depth`` 128-bit instruction words, one host write port and one fetch read port.

    Parameters
    ----------
    depth : int
        Words, at least 1.

    Members
    -------
    host : In(stream.Signature(StructLayout({"addr": range(depth), "data": 128})))
        Host writes, always ready: a word transferred in cycle *c* is read by a fetch issued
        in cycle *c* + 1 or later. The program is loaded this way before ``start``.
    fetch_addr : In(range(depth))
        Word to read this cycle.
    fetch_data : Out(128)
        The word at the ``fetch_addr`` of the previous cycle (one cycle read latency).
    """

    def __init__(self, depth: int) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self.depth = depth
        self.host_layout = host_layout(depth)
        super().__init__(
            {
                "host": In(stream.Signature(self.host_layout)),
                "fetch_addr": In(range(depth)),
                "fetch_data": Out(INSTRUCTION_BITS),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.words = words = memory.Memory(
            shape=INSTRUCTION_BITS, depth=self.depth, init=[]
        )
        wr = words.write_port()
        rd = words.read_port()
        m.d.comb += [
            self.host.ready.eq(1),
            wr.en.eq(self.host.valid),
            wr.addr.eq(self.host.payload.addr),
            wr.data.eq(self.host.payload.data),
            rd.addr.eq(self.fetch_addr),
            self.fetch_data.eq(rd.data),
        ]
        return m
