"""The load unit: executes ``load`` (DRAM -> any on-chip memory, 2-D strided) and
``load_wgt`` (DRAM -> decompressor -> WGT, in ``rtl/weight_fetch.py``).

A ``load`` moves ``rows`` rows of ``len`` elements (bytes; int32 words in ACC), row ``r``
from DRAM ``dram + r * stride``, into the space's memory contiguously from ``sram``. The
unit requests every ``B``-byte DRAM beat each row touches, one per cycle, rows back to
back; a second walker follows the responses (in order, ``L`` cycles later) and turns each
response beat into exactly one write of the space's memory in the cycle it arrives. The
timing rules are in ``docs/microarchitecture.md`` ("DMA"), executable as
``edgenpu.sim.benches.dma_ref.timing``.

Alignment: the DRAM rows may start at any byte and the on-chip destination at any element.
Byte spaces need no realignment (a port writes at any address): a beat's bytes of the row
go to the on-chip address they belong at, the row's first beat shifted down to its first
byte. In ACC a word may straddle two beats when the row does not start at a multiple of 4,
so the unit keeps the previous beat and writes, per beat, the words that *end* in it.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.isa import DRAM_ADDR_BITS, SRAM_ADDR_BITS, Opcode, Space, spec_for

from .dma_walker import DmaWalker, done_layout
from .isa_layout import command_layout
from .ports import SramWritePort
from .sram import addr_bits_for
from .weight_fetch import WeightFetch

__all__ = ["LoadUnit"]

_LEN = {f.name: f for f in spec_for(Opcode.LOAD).fields}["len"]


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def _check_sizes(sizes: object) -> dict[Space, int]:
    if not isinstance(sizes, dict) or set(sizes) != set(Space):
        raise TypeError(f"sizes must map every Space to a size, not {sizes!r}")
    for space, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise TypeError(f"size of {space.label} must be a positive integer, not {size!r}")
    return {s: sizes[s] for s in Space}


class LoadUnit(wiring.Component):
    """The DMA engine of the load stream: ``load`` and, with ``weights``, ``load_wgt``.

    Parameters
    ----------
    beat_bytes : int
        ``B``: DRAM bytes per beat (``dram.bandwidth_bytes_per_cycle``), a power of two,
        at least 4 (one ACC word).
    sizes : dict of Space to int
        Each on-chip memory's size in its unit (``HardwareConfig.sram_size``); fixes the
        width of each write port's ``addr`` (as ``rtl/sram.py``'s ``addr_bits_for``).
    weights : dict, optional
        Build the ``load_wgt`` path (:class:`~edgenpu.rtl.weight_fetch.WeightFetch`) with
        these arguments: ``latency`` (DRAM read latency), ``output_elements``, ``formats``,
        ``precisions`` (the decompressor's; its input beat is ``B``).

    Members
    -------
    cmd : ``In(stream.Signature(command_layout(Opcode.LOAD, Opcode.LOAD_WGT)))``
        ``opcode`` (the ISA's 5 bits) and the fields of both instructions (``space``,
        ``sram``, ``dram``, ``rows``, ``len``, ``stride``, ``wgt``, ``count``, ``format``,
        ``prec``; widths from the ISA); without ``weights``, ``command_layout(Opcode.LOAD)``.
        Ready exactly while the unit is idle.
    done : ``Out(stream.Signature(done_layout))``
        One transfer per command, after its last on-chip write: ``beats`` (DRAM beats
        read, 0 for an empty command) and, with ``weights``, ``consumed`` (the ``load_wgt``
        stream's bytes; 0 for ``load``).
    rd_req : ``Out(stream.Signature(StructLayout({"addr": DRAM_ADDR_BITS - log2(B)})))``
        DRAM read requests (beat addresses), to ``Dram.rd_req``.
    rd_resp : ``In(stream.Signature(data.ArrayLayout(8, B)))``
        DRAM read data, from ``Dram.rd_resp``; always ready (the unit takes every beat in
        the cycle it arrives).
    wgt : ``Out(SramWritePort(addr_bits, max(B, OUT), 8))``
        Write port of the weight memory (``OUT``: the decompressor's output beat; ``B``
        without ``weights``), shared by ``load`` and the decompressor.
    act, lut : ``Out(SramWritePort(addr_bits, B, 8))``
        Write ports of the byte memories: ``B`` bytes per write.
    acc : ``Out(SramWritePort(addr_bits, B // 4, 32))``
        Write port of the accumulator memory: ``B / 4`` words per write.
    """

    def __init__(
        self, *, beat_bytes: int, sizes: dict[Space, int], weights: dict | None = None
    ) -> None:
        if not _is_power_of_two(beat_bytes) or beat_bytes < 4:
            raise ValueError(f"beat_bytes must be a power of two, at least 4, not {beat_bytes!r}")
        self.sizes = _check_sizes(sizes)
        self.beat_bytes = beat_bytes
        self.log_b = (beat_bytes - 1).bit_length()
        self.beat_addr_bits = DRAM_ADDR_BITS - self.log_b
        if weights is None:
            self.weights = None
            self.cmd_layout = command_layout(Opcode.LOAD)
            self.done_layout = done_layout(beat_bytes)
            wgt_width = beat_bytes
        else:
            self.weights = WeightFetch(
                beat_bytes=beat_bytes, addr_bits=addr_bits_for(self.sizes[Space.WGT]), **weights
            )
            self.cmd_layout = command_layout(Opcode.LOAD, Opcode.LOAD_WGT)
            self.done_layout = self.weights.done_layout
            wgt_width = max(beat_bytes, self.weights.decompressor.output_elements)
        members = {
            "cmd": In(stream.Signature(self.cmd_layout)),
            "done": Out(stream.Signature(self.done_layout)),
            "rd_req": Out(stream.Signature(data.StructLayout({"addr": self.beat_addr_bits}))),
            "rd_resp": In(stream.Signature(data.ArrayLayout(8, beat_bytes))),
        }
        for space in Space:
            unit = space.unit_bytes
            width = wgt_width if space is Space.WGT else beat_bytes // unit
            members[space.label] = Out(
                SramWritePort(addr_bits_for(self.sizes[space]), width, 8 * unit)
            )
        super().__init__(members)

    @classmethod
    def from_config(cls, config: HardwareConfig) -> LoadUnit:
        """The load unit of ``config``: its DRAM beat, its memories' sizes and its
        decompressor (whose input beat must be the DRAM's)."""
        B = config.dram.bandwidth_bytes_per_cycle
        if config.decompressor.input_bytes_per_cycle != B:
            raise ValueError(
                f"config {config.name}: decompressor.input_bytes_per_cycle "
                f"({config.decompressor.input_bytes_per_cycle}) must equal "
                f"dram.bandwidth_bytes_per_cycle ({B}) for load_wgt"
            )
        return cls(
            beat_bytes=B,
            sizes={s: config.sram_size(s) for s in Space},
            weights={
                "latency": config.dram.latency_cycles,
                "output_elements": config.decompressor.output_elements_per_cycle,
                "formats": config.decompressor.formats,
                "precisions": config.mac.precisions,
            },
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        B, log_b = self.beat_bytes, self.log_b
        row_bytes_bits = _LEN.width + 2  # len words of 4 bytes
        m.submodules.requests = req = DmaWalker(beat_bytes=B, row_bytes_bits=row_bytes_bits)
        m.submodules.responses = resp = DmaWalker(beat_bytes=B, row_bytes_bits=row_bytes_bits)

        cmd = Signal(self.cmd_layout)
        busy = Signal()
        done = Signal()
        is_acc = Signal()
        m.d.comb += is_acc.eq(cmd.space == Space.ACC.value)

        incoming = self.cmd.payload
        wf = self.weights
        if wf is not None:
            m.submodules.weights = wf
            is_wgt = incoming.opcode == Opcode.LOAD_WGT.value
            m.d.comb += [
                self.cmd.ready.eq(~busy & wf.cmd.ready),
                wf.cmd.valid.eq(self.cmd.valid & ~busy & is_wgt),
            ]
            for name in wf.cmd_layout.members:
                m.d.comb += getattr(wf.cmd.payload, name).eq(getattr(incoming, name))
            take = self.cmd.valid & self.cmd.ready & ~is_wgt
            # Responses come in request order: a load_wgt's (even dropped ones) first.
            # (With L = 0 a response comes in its request's cycle, before it is counted.)
            to_weights = (wf.in_flight != 0) | (wf.rd_req.valid & self.rd_req.ready)
            resp_valid = self.rd_resp.valid & ~to_weights
            m.d.comb += [
                wf.rd_resp.valid.eq(self.rd_resp.valid & to_weights),
                wf.rd_resp.payload.eq(self.rd_resp.payload),
            ]
        else:
            m.d.comb += self.cmd.ready.eq(~busy)
            take = self.cmd.valid & self.cmd.ready
            resp_valid = self.rd_resp.valid
        row_bytes = Mux(incoming.space == Space.ACC.value, incoming.len << 2, incoming.len)
        for w in (req, resp):
            m.d.comb += [
                w.start.eq(take),
                w.dram.eq(incoming.dram),
                w.rows.eq(incoming.rows),
                w.stride.eq(incoming.stride),
                w.row_bytes.eq(row_bytes),
            ]
        empty = (incoming.rows == 0) | (incoming.len == 0)
        with m.If(take):
            m.d.sync += [cmd.eq(incoming), busy.eq(1), done.eq(empty)]

        # Requests: one per cycle, straight from the walker (or the weight path's). Written
        # as expressions, not branches: Icarus evaluates a continuous assignment at time 0,
        # a process only once an input changes.
        if wf is not None:
            weights_req = wf.rd_req.valid
            m.d.comb += wf.rd_req.ready.eq(self.rd_req.ready)
            weights_addr = wf.rd_req.payload.addr
        else:
            weights_req, weights_addr = Const(0), Const(0)
        m.d.comb += [
            self.rd_req.valid.eq(req.beat.valid | weights_req),
            self.rd_req.payload.addr.eq(Mux(weights_req, weights_addr, req.beat.payload.addr)),
            req.beat.ready.eq(self.rd_req.ready & ~weights_req),
        ]

        # Responses: the walker knows which row and which beat of it each one is.
        m.d.comb += [self.rd_resp.ready.eq(1), resp.beat.ready.eq(resp_valid)]
        beat = resp.beat.payload
        cur = self.rd_resp.payload.as_value()
        prev = Signal(8 * B)  # the previous beat: an ACC word may have begun in it
        with m.If(resp_valid):
            m.d.sync += prev.eq(cur)

        off = beat.row[:log_b]  # the row's first byte within its first beat
        # ACC rows may start mid-word: ``carry`` bytes of each word-window come from the
        # previous beat, so that every window's words end in the current beat.
        carry = Signal(2)
        m.d.comb += carry.eq(Mux(is_acc, -beat.row[:2], 0))
        # The row's first beat drops the bytes before the row's first (whole) element.
        skip = Signal(log_b + 1)
        m.d.comb += skip.eq(Mux(beat.first, off + carry, 0))
        shift = Signal(log_b + 2)
        m.d.comb += shift.eq(B - carry + skip)
        window = Signal(8 * B)
        m.d.comb += window.eq(Cat(prev, cur, Const(0, 8 * B)).bit_select(shift * 8, 8 * B))

        # Elements of the row still to write, and where the next one goes on chip.
        remaining = Signal(_LEN.width)
        pointer = Signal(SRAM_ADDR_BITS)
        remaining_now = Mux(beat.first, cmd.len, remaining)
        avail = Mux(is_acc, (B - skip) >> 2, B - skip)
        count = Signal(log_b + 1)
        m.d.comb += count.eq(Mux(remaining_now < avail, remaining_now, avail))
        with m.If(resp_valid):
            m.d.sync += [remaining.eq(remaining_now - count), pointer.eq(pointer + count)]
        with m.If(take):
            m.d.sync += pointer.eq(incoming.sram)

        mask = Signal(B)
        m.d.comb += mask.eq((Const(1, B + 1) << count) - 1)
        for space in Space:
            port = getattr(self, space.label)
            en = resp_valid & (cmd.space == space.value)
            addr, data_, mask_ = pointer, window, mask
            if wf is not None and space is Space.WGT:
                # load_wgt: the decompressor's writes (any byte address, up to OUT bytes).
                w = wf.wr
                en = en | w.valid
                addr = Mux(w.valid, w.payload.addr, addr)
                data_ = Mux(w.valid, w.payload.data.as_value(), data_)
                mask_ = Mux(w.valid, w.payload.en, mask_)
            m.d.comb += [
                port.en.eq(en),
                port.addr.eq(addr),
                port.data.eq(data_),
                port.mask.eq(mask_),
            ]
        if wf is not None:
            m.d.comb += wf.wr.ready.eq(1)

        with m.If(resp_valid & beat.final):
            m.d.sync += done.eq(1)
        plain_done = busy & done
        if wf is not None:
            m.d.comb += [
                self.done.valid.eq(plain_done | wf.done.valid),
                self.done.payload.beats.eq(Mux(wf.done.valid, wf.done.payload.beats, resp.count)),
                self.done.payload.consumed.eq(Mux(wf.done.valid, wf.done.payload.consumed, 0)),
                wf.done.ready.eq(self.done.ready),
            ]
        else:
            m.d.comb += [self.done.valid.eq(plain_done), self.done.payload.beats.eq(resp.count)]
        with m.If(plain_done & self.done.ready):
            m.d.sync += [busy.eq(0), done.eq(0)]
        return m
