"""The ``load_wgt`` half of the load unit: DRAM beats -> decompressor -> weight SRAM writes.

A ``load_wgt`` streams a compressed weight tensor from DRAM ``dram`` through the
decompressor (``rtl/decompressor.py``), which writes ``count`` dense weights to WGT from
``wgt`` on. The DMA does not know the stream's length: it requests beats from the one holding
``dram`` on, one per cycle, until the decompressor is done, and never past the beat holding
``dram + max_encoded_size(count, format, prec) - 1``; beats still in flight when the
decompressor is done are dropped as they arrive. The timing rules are in
``docs/microarchitecture.md`` ("DMA", rules W1-W4).

Datapath: responses enter a FIFO of ``L + 4`` beats (credits: a request is made only if the
FIFO has room for it and every beat in flight, so a response, which cannot be refused, always
has room); an aligner turns the ``B``-byte DRAM beats into the decompressor's input beats,
the stream's first byte in lane 0 (``Cat(previous, current) >> offset``). The decompressor's
command is issued in the cycle its first input beat is ready, so from then on its input is
never empty and its own timing rules hold unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from edgenpu.formats import BLOCK, WeightFormat, bitmask, max_encoded_size, nm
from edgenpu.isa import DRAM_ADDR_BITS, Opcode, spec_for
from edgenpu.precision import Precision, packed_size

from .decompressor import Decompressor
from .dma_walker import beats_bits
from .isa_layout import command_layout

__all__ = ["WeightFetch", "fifo_beats"]

_FIELDS = {f.name: f for f in spec_for(Opcode.LOAD_WGT).fields}
_LOG_BLOCK = (BLOCK - 1).bit_length()
assert 1 << _LOG_BLOCK == BLOCK and packed_size(3, Precision.INT4) == 2


def fifo_beats(latency: int) -> int:
    """Beats of the response FIFO: enough that the decompressor, taking at most a beat a
    cycle, never finds it empty while a refill is ``latency`` cycles away."""
    return latency + 4


class WeightFetch(wiring.Component):
    """DRAM reads for ``load_wgt``, and the decompressor they feed.

    Parameters
    ----------
    beat_bytes : int
        ``B``, bytes per DRAM beat; must equal the decompressor's ``input_bytes``.
    latency : int
        ``L``, the DRAM read latency (sizes the response FIFO, :func:`fifo_beats`).
    output_elements, formats, precisions, addr_bits
        The decompressor's parameters (see :class:`~edgenpu.rtl.decompressor.Decompressor`).

    Members
    -------
    cmd : ``In(stream.Signature(command_layout(Opcode.LOAD_WGT)))``
        ``wgt``, ``dram``, ``count``, ``format``, ``prec``. Ready while idle.
    done : ``Out(stream.Signature(done_layout))``
        ``beats`` (DRAM beats requested, dropped ones included) and ``consumed`` (the
        stream's bytes, as ``decode`` returns them); in the decompressor's ``done`` cycle.
    rd_req : ``Out(stream.Signature(StructLayout({"addr": DRAM_ADDR_BITS - log2(B)})))``
    rd_resp : ``In(stream.Signature(data.ArrayLayout(8, B)))``
        The DRAM read channel. The owner routes a response here while ``in_flight`` is
        non-zero (responses come in request order); ``ready`` is always high.
    in_flight : Out
        Requests made and not yet answered (including those of a finished command).
    wr : ``Out(stream.Signature(Decompressor.wr_layout))``
        The decompressor's weight-SRAM writes (always taken).
    """

    def __init__(
        self,
        *,
        beat_bytes: int,
        latency: int,
        output_elements: int,
        formats: Iterable[WeightFormat],
        precisions: Iterable[Precision],
        addr_bits: int,
    ) -> None:
        self.decompressor = Decompressor(
            input_bytes=beat_bytes,
            output_elements=output_elements,
            formats=formats,
            precisions=precisions,
            addr_bits=addr_bits,
        )
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ValueError(f"latency must be a non-negative integer, not {latency!r}")
        self.beat_bytes, self.latency = beat_bytes, latency
        self.log_b = (beat_bytes - 1).bit_length()
        self.depth = fifo_beats(latency)
        count = _FIELDS["count"]
        self.cmd_layout = command_layout(Opcode.LOAD_WGT)
        largest = max(
            max_encoded_size(count.max, f, p)
            for f in self.decompressor.formats
            for p in self.decompressor.precisions
        )
        self.size_bits = largest.bit_length()
        self.done_layout = data.StructLayout(
            {"beats": beats_bits(beat_bytes), "consumed": self.size_bits}
        )
        super().__init__(
            {
                "cmd": In(stream.Signature(self.cmd_layout)),
                "done": Out(stream.Signature(self.done_layout)),
                "rd_req": Out(
                    stream.Signature(data.StructLayout({"addr": DRAM_ADDR_BITS - self.log_b}))
                ),
                "rd_resp": In(stream.Signature(data.ArrayLayout(8, beat_bytes))),
                "in_flight": Out(range(self.depth + 1)),
                "wr": Out(stream.Signature(self.decompressor.wr_layout)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        B, log_b, depth = self.beat_bytes, self.log_b, self.depth
        m.submodules.decompressor = dec = self.decompressor

        cmd = Signal(self.cmd_layout)
        busy, started, empty = Signal(), Signal(), Signal()
        take = self.cmd.valid & self.cmd.ready
        m.d.comb += self.cmd.ready.eq(~busy)
        incoming = self.cmd.payload

        # The stream's bound, max_encoded_size(count, format, prec), as the codecs define it.
        count, int4 = incoming.count, incoming.prec == Precision.INT4.value
        blocks = (count + BLOCK - 1) >> _LOG_BLOCK

        def per_precision(f):
            return Mux(int4, f(Precision.INT4), f(Precision.INT8))

        dense = Mux(int4, (count + 1) >> 1, count)  # packed_size: two int4 per byte
        bound = Signal(self.size_bits + 1)
        m.d.comb += bound.eq(
            Mux(
                incoming.format == WeightFormat.BITMASK.value,
                blocks * per_precision(lambda p: bitmask.MASK_BYTES + packed_size(BLOCK, p)),
                Mux(
                    incoming.format == WeightFormat.NM2_4.value,
                    blocks * per_precision(nm.block_bytes),
                    dense,
                ),
            )
        )
        first_beat = incoming.dram[log_b:]
        last_byte = Signal(DRAM_ADDR_BITS)
        m.d.comb += last_byte.eq(incoming.dram + bound - 1)

        next_beat = Signal(DRAM_ADDR_BITS - log_b)
        total = Signal(DRAM_ADDR_BITS - log_b + 1)  # beats up to the bound
        requested = Signal(self.done.payload.beats.shape())
        popped = Signal(DRAM_ADDR_BITS - log_b + 1)
        off = Signal(log_b)
        in_flight = Signal(range(depth + 1))
        drop = Signal(range(depth + 1))
        level = Signal(range(depth + 1))
        m.d.comb += self.in_flight.eq(in_flight)

        with m.If(take):
            m.d.sync += [
                cmd.eq(incoming),
                busy.eq(1),
                started.eq(0),
                empty.eq(count == 0),
                next_beat.eq(first_beat),
                total.eq(Mux(count == 0, 0, last_byte[log_b:] - first_beat + 1)),
                requested.eq(0),
                popped.eq(0),
                off.eq(incoming.dram[:log_b]),
            ]

        # Requests, while the FIFO has room for every beat in flight.
        req = self.rd_req
        room = (in_flight + level) < depth
        m.d.comb += [
            req.valid.eq(busy & ~empty & (requested != total) & room & ~dec.done.valid),
            req.payload.addr.eq(next_beat),
        ]
        requesting = req.valid & req.ready
        with m.If(requesting):
            m.d.sync += [next_beat.eq(next_beat + 1), requested.eq(requested + 1)]
        arriving = self.rd_resp.valid
        m.d.comb += self.rd_resp.ready.eq(1)
        m.d.sync += in_flight.eq(in_flight + requesting - arriving)

        # The FIFO; responses of a finished command are dropped.
        fifo = Memory(shape=8 * B, depth=depth, init=[])
        m.submodules.fifo = fifo
        wp, rp = fifo.write_port(), fifo.read_port(domain="comb")
        w_ptr, r_ptr = Signal(range(depth)), Signal(range(depth))
        push = arriving & (drop == 0) & busy
        pop = Signal()
        m.d.comb += [
            wp.addr.eq(w_ptr),
            wp.data.eq(self.rd_resp.payload.as_value()),
            wp.en.eq(push),
            rp.addr.eq(r_ptr),
        ]
        with m.If(push):
            m.d.sync += w_ptr.eq(Mux(w_ptr == depth - 1, 0, w_ptr + 1))
        with m.If(pop):
            m.d.sync += [r_ptr.eq(Mux(r_ptr == depth - 1, 0, r_ptr + 1)), popped.eq(popped + 1)]
        m.d.sync += level.eq(level + push - pop)
        with m.If(arriving & (drop != 0)):
            m.d.sync += drop.eq(drop - 1)

        # Aligner: input beat j = stream bytes j*B .. j*B + B - 1.
        head, head_valid = rp.data, level != 0
        prev = Signal(8 * B)
        prev_valid = Signal()
        prev_last = popped == total  # prev holds the bound's last beat: no successor
        out = Signal(8 * B)
        out_valid = Signal()
        aligned = off == 0
        m.d.comb += [
            out.eq(Mux(aligned, head, Cat(prev, head).bit_select(off * 8, 8 * B))),
            out_valid.eq(Mux(aligned, head_valid, prev_valid & (head_valid | prev_last))),
        ]
        src_take = dec.src.valid & dec.src.ready
        prime = ~aligned & ~prev_valid & head_valid  # the stream's first beat, unaligned
        # (One expression rather than assignments in branches: Icarus evaluates a continuous
        # assignment at time 0, a process only once an input changes.)
        m.d.comb += pop.eq(prime | (src_take & head_valid))
        with m.If(prime | src_take):
            m.d.sync += [prev.eq(head), prev_valid.eq(head_valid)]

        m.d.comb += [
            dec.cmd.valid.eq(busy & ~empty & ~started & out_valid),
            dec.cmd.payload.format.eq(cmd.format),
            dec.cmd.payload.precision.eq(cmd.prec),
            dec.cmd.payload.count.eq(cmd.count),
            dec.cmd.payload.addr.eq(cmd.wgt),
            dec.src.valid.eq(started & out_valid),
            dec.src.payload.eq(out),
        ]
        with m.If(dec.cmd.valid & dec.cmd.ready):
            m.d.sync += started.eq(1)
        wiring.connect(m, dec.wr, wiring.flipped(self.wr))

        d = self.done
        m.d.comb += [
            d.valid.eq(busy & (empty | dec.done.valid)),
            d.payload.beats.eq(requested),
            d.payload.consumed.eq(dec.done.payload.consumed),
            dec.done.ready.eq(d.ready & ~empty),
        ]
        with m.If(d.valid & d.ready):
            m.d.sync += [
                busy.eq(0),
                # What is still to come belongs to this command: drop it.
                drop.eq(in_flight - arriving),
                w_ptr.eq(0),
                r_ptr.eq(0),
                level.eq(0),
                prev_valid.eq(0),
            ]
        return m
