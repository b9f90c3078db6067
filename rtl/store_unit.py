"""The store unit: executes ``store`` (any on-chip memory -> DRAM, 2-D strided).

A ``store`` moves ``rows`` rows of ``len`` elements (bytes; int32 words in ACC) from the
space's memory, contiguous from ``sram``, to DRAM, row ``r`` at ``dram + r * stride``; rows
are written in order, so where rows overlap in DRAM the later row wins. The unit walks the
``B``-byte DRAM beats each row touches, one per cycle, rows back to back: for each beat it
reads, in one cycle, the on-chip elements that hold the beat's bytes of the row, and in the
next cycle (the memory's read latency) issues one DRAM write of the beat, with byte enables
for exactly the row's bytes in it. The timing rules are in ``docs/microarchitecture.md``
("DMA"), executable as ``edgenpu.sim.benches.dma_ref.timing``.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.isa import DRAM_ADDR_BITS, SRAM_ADDR_BITS, Opcode, Space, spec_for

from .dma_walker import DmaWalker, done_layout
from .isa_layout import command_layout
from .load_unit import _check_sizes
from .ports import SramReadPort
from .sram import addr_bits_for

__all__ = ["StoreUnit"]

_LEN = {f.name: f for f in spec_for(Opcode.STORE).fields}["len"]


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def read_width(space: Space, beat_bytes: int) -> int:
    """Elements the store unit reads per beat from ``space``: a beat's ``B`` bytes, plus one
    word in ACC, where a row starting mid-word in DRAM puts ``B`` bytes across ``B / 4 + 1``
    words."""
    return beat_bytes if space.unit_bytes == 1 else beat_bytes // 4 + 1


class StoreUnit(wiring.Component):
    """The DMA engine of the store stream (``store``).

    Parameters
    ----------
    beat_bytes : int
        ``B``: DRAM bytes per beat (``dram.bandwidth_bytes_per_cycle``), a power of two,
        at least 4.
    sizes : dict of Space to int
        Each on-chip memory's size in its unit (``HardwareConfig.sram_size``).

    Members
    -------
    cmd : ``In(stream.Signature(command_layout(Opcode.STORE)))``
        The instruction's fields (``space``, ``sram``, ``dram``, ``rows``, ``len``,
        ``stride``). Ready exactly while the unit is idle.
    done : ``Out(stream.Signature(done_layout(B)))``
        One transfer per command, the cycle after its last DRAM write transferred:
        ``beats``, the DRAM beats written.
    wr : ``Out(stream.Signature(write_layout))``
        DRAM writes, to ``Dram.wr``: ``addr`` (beat address, ``DRAM_ADDR_BITS - log2(B)``
        bits), ``data`` (``B`` bytes, lane 0 = the beat's lowest address), ``mask`` (``B``
        byte enables). Back-pressure is honoured (a stall delays, never drops, a beat).
    wgt, act, lut : ``Out(SramReadPort(addr_bits, B, 8))``
        Read ports of the byte memories.
    acc : ``Out(SramReadPort(addr_bits, B // 4 + 1, 32))``
        Read port of the accumulator memory.
    """

    def __init__(self, *, beat_bytes: int, sizes: dict[Space, int]) -> None:
        if not _is_power_of_two(beat_bytes) or beat_bytes < 4:
            raise ValueError(f"beat_bytes must be a power of two, at least 4, not {beat_bytes!r}")
        self.sizes = _check_sizes(sizes)
        self.beat_bytes = beat_bytes
        self.log_b = (beat_bytes - 1).bit_length()
        self.cmd_layout = command_layout(Opcode.STORE)
        self.write_layout = data.StructLayout(
            {
                "addr": DRAM_ADDR_BITS - self.log_b,
                "data": data.ArrayLayout(8, beat_bytes),
                "mask": beat_bytes,
            }
        )
        self.done_layout = done_layout(beat_bytes)
        members = {
            "cmd": In(stream.Signature(self.cmd_layout)),
            "done": Out(stream.Signature(self.done_layout)),
            "wr": Out(stream.Signature(self.write_layout)),
        }
        for space in Space:
            members[space.label] = Out(
                SramReadPort(
                    addr_bits_for(self.sizes[space]),
                    read_width(space, beat_bytes),
                    8 * space.unit_bytes,
                )
            )
        super().__init__(members)

    @classmethod
    def from_config(cls, config: HardwareConfig) -> StoreUnit:
        """The store unit of ``config``: its DRAM beat and its memories' sizes."""
        return cls(
            beat_bytes=config.dram.bandwidth_bytes_per_cycle,
            sizes={s: config.sram_size(s) for s in Space},
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        B, log_b = self.beat_bytes, self.log_b
        m.submodules.walker = walk = DmaWalker(beat_bytes=B, row_bytes_bits=_LEN.width + 2)

        cmd = Signal(self.cmd_layout)
        busy = Signal()
        done = Signal()
        is_acc = Signal()
        m.d.comb += is_acc.eq(cmd.space == Space.ACC.value)

        take = self.cmd.valid & self.cmd.ready
        m.d.comb += self.cmd.ready.eq(~busy)
        incoming = self.cmd.payload
        row_bytes = Mux(incoming.space == Space.ACC.value, incoming.len << 2, incoming.len)
        m.d.comb += [
            walk.start.eq(take),
            walk.dram.eq(incoming.dram),
            walk.rows.eq(incoming.rows),
            walk.stride.eq(incoming.stride),
            walk.row_bytes.eq(row_bytes),
        ]
        with m.If(take):
            empty = (incoming.rows == 0) | (incoming.len == 0)
            m.d.sync += [cmd.eq(incoming), busy.eq(1), done.eq(empty)]

        # Stage 1 (read): the beat's bytes of the row are row bytes ``q .. q + B - 1``,
        # ``q = beat * B - row start``, negative only in the row's first beat. Read from the
        # element holding row byte max(q, 0); ``row_base`` is the row's first element.
        beat = walk.beat.payload
        q = Signal(_LEN.width + 3)  # row byte of the next non-first beat's lane 0
        row_base = Signal(SRAM_ADDR_BITS)
        off = beat.row[:log_b]
        q_now = Mux(beat.first, 0, q)
        element = Signal(SRAM_ADDR_BITS)
        m.d.comb += element.eq(row_base + Mux(is_acc, q_now >> 2, q_now))
        # Stage 2 (write) registers, and the read data kept if the write channel stalls.
        s2_valid = Signal()
        s2_fresh = Signal()  # the memory's data output still shows this beat's read
        s2_addr = Signal(DRAM_ADDR_BITS - log_b)
        s2_first = Signal()
        s2_final = Signal()
        s2_off = Signal(log_b)
        s2_lo = Signal(2)  # q_now mod 4 (ACC): bytes of the first word read not in the beat
        s2_from = Signal(log_b + 1)  # first lane holding a row byte
        s2_to = Signal(_LEN.width + 3)  # row bytes left from lane 0 (lanes < this are in)
        held = Signal(8 * (B + 4))

        advance = walk.beat.valid & (~s2_valid | self.wr.ready)
        m.d.comb += walk.beat.ready.eq(advance)
        row_bytes_now = Mux(is_acc, cmd.len << 2, cmd.len)
        for space in Space:
            port = getattr(self, space.label)
            m.d.comb += [port.en.eq(advance & (cmd.space == space.value)), port.addr.eq(element)]
        with m.If(advance):
            m.d.sync += [
                q.eq(Mux(beat.first, B - off, q + B)),
                s2_valid.eq(1),
                s2_fresh.eq(1),
                s2_addr.eq(beat.addr),
                s2_first.eq(beat.first),
                s2_final.eq(beat.final),
                s2_off.eq(off),
                s2_lo.eq(Mux(is_acc, q_now[:2], 0)),
                s2_from.eq(Mux(beat.first, off, 0)),
                # Row bytes from this beat's lane 0 on: lane j is in the row iff j < s2_to.
                s2_to.eq(Mux(beat.first, row_bytes_now + off, row_bytes_now - q_now)),
            ]
            with m.If(beat.last):
                m.d.sync += row_base.eq(row_base + cmd.len)
        with m.Elif(self.wr.valid & self.wr.ready):
            m.d.sync += s2_valid.eq(0)
        with m.If(take):
            m.d.sync += row_base.eq(incoming.sram)

        read = Signal(8 * (B + 4))
        with m.Switch(cmd.space):
            for space in Space:
                with m.Case(space.value):
                    m.d.comb += read.eq(getattr(self, space.label).data)
        bytes_in = Mux(s2_fresh, read, held)
        # A stalled write keeps its read data: the port only promises it for one cycle.
        with m.If(s2_valid & s2_fresh & ~self.wr.ready):
            m.d.sync += [held.eq(read), s2_fresh.eq(0)]

        # First beat: row byte 0 goes to lane ``off``; later beats: drop the bytes of the
        # first word that precede the beat (ACC).
        lanes = Signal(8 * B)
        m.d.comb += lanes.eq(
            Mux(s2_first, (bytes_in << (s2_off * 8))[: 8 * B], (bytes_in >> (s2_lo * 8))[: 8 * B])
        )
        mask = Signal(B)
        for j in range(B):
            m.d.comb += mask[j].eq((j >= s2_from) & (j < s2_to))
        m.d.comb += [
            self.wr.valid.eq(s2_valid),
            self.wr.payload.addr.eq(s2_addr),
            self.wr.payload.data.eq(lanes),
            self.wr.payload.mask.eq(mask),
        ]

        with m.If(self.wr.valid & self.wr.ready & s2_final):
            m.d.sync += done.eq(1)
        m.d.comb += [self.done.valid.eq(busy & done), self.done.payload.beats.eq(walk.count)]
        with m.If(self.done.valid & self.done.ready):
            m.d.sync += [busy.eq(0), done.eq(0)]
        return m
