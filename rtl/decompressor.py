"""The sparse weight decompressor: a compressed weight stream in, dense weight-SRAM writes out.

It sits between the DMA engine and the weight SRAM and reproduces
``edgenpu.formats.decode(..., strict=False)`` bit for bit, for every format and precision the
configuration lists. Its timing is a fixed function of the stream's block sizes; the rules are
in ``docs/microarchitecture.md`` (section "Decompressor"), which the performance model follows.

Datapath, in two stages joined by a one-block handoff:

* **gather**: input beats enter a byte window of ``2 * input_bytes`` bytes; each cycle the
  gatherer moves ``min(input_bytes, bytes left in the block)`` bytes from the window's front
  into a block register. It never takes bytes of two blocks in one cycle, so a block of ``b``
  bytes takes exactly ``ceil(b / input_bytes)`` cycles.
* **expand/write**: the block's header (bitmask or 2:4 metadata) and values are emitted as
  ``ceil(n / output_elements)`` weight-SRAM writes of ``output_elements`` elements each.
"""

from __future__ import annotations

from collections.abc import Iterable

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.formats import BLOCK, WeightFormat, bitmask, max_encoded_size, nm
from edgenpu.isa import SRAM_ADDR_BITS, Opcode, spec_for
from edgenpu.precision import Precision, packed_size

__all__ = ["Decompressor"]

#: Header bytes in front of a block's values: the bitmask, or the 2:4 slot indices. Both
#: formats use one 32-bit word per block, which is what lets one header path serve both.
HEADER_BYTES = bitmask.MASK_BYTES
assert nm.META_BYTES == HEADER_BYTES and HEADER_BYTES * 8 == BLOCK
assert nm.M == 4 and nm.N == 2 and nm.INDEX_BITS == 2

_LOAD_WGT_FIELDS = {f.name: f for f in spec_for(Opcode.LOAD_WGT).fields}


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def _block_bytes(fmt: WeightFormat, precision: Precision) -> int:
    """The most bytes one block of ``fmt`` can take."""
    if fmt is WeightFormat.DENSE:
        return packed_size(BLOCK, precision)
    if fmt is WeightFormat.BITMASK:
        return bitmask.MASK_BYTES + packed_size(BLOCK, precision)
    return nm.block_bytes(precision)


def _popcount(bits: Value) -> Value:
    """Number of set bits, as a balanced adder tree."""
    terms = [bits[i] for i in range(len(bits))]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        pairs = [terms[i : i + 2] for i in range(0, len(terms), 2)]
        terms = [p[0] + p[1] if len(p) == 2 else p[0] for p in pairs]
    return terms[0]


class Decompressor(wiring.Component):
    """Sparse weight decompressor.

    Decodes one ``LOAD_WGT`` stream per command: ``count`` dense weights in ``format`` at
    ``precision``, written to weight SRAM from byte address ``addr`` on. The written bytes
    are ``precision.pack(decode(stream, count, format, precision, strict=False))``.

    Parameters
    ----------
    input_bytes : int
        Compressed bytes per input beat, a power of two in 4..64: at least a bitmask's 4
        bytes, so that a bitmask block's size is known in its first gather cycle.
    output_elements : int
        Dense elements per write beat, a power of two in 4..32: at least one 2:4 group and
        at most one block, so that a beat never spans two blocks.
    formats : iterable of WeightFormat
        Formats to build logic for. A command naming another format decodes as dense (the
        instruction dispatcher traps such loads before they reach this unit).
    precisions : iterable of Precision
        Precisions to build logic for; as for ``formats``, others are trapped upstream.
    addr_bits : int
        Width of a weight-SRAM byte address, 1..``SRAM_ADDR_BITS``. Addresses wrap.

    Members
    -------
    cmd : ``In(stream.Signature(cmd_layout))``
        One command per ``LOAD_WGT``: ``format`` (``WeightFormat`` value, the ISA field's
        width), ``precision`` (``Precision`` value, 1 bit), ``count`` (dense elements, the
        ISA field's width, 21 bits), ``addr`` (first weight-SRAM byte, ``addr_bits``).
        Accepted only while idle (``ready`` is low from acceptance to the ``done`` transfer).
    src : ``In(stream.Signature(data.ArrayLayout(8, input_bytes)))``
        The compressed stream, byte lane 0 of the first beat after the command being the
        stream's first byte. The unit never waits for a byte past the stream's end and stops
        accepting beats once the last block is gathered; it may accept up to two beats
        holding bytes past the end, which it drops (``done.consumed`` is exact).
        ``src.ready`` depends combinationally on ``wr.ready``: a block is handed over in the
        cycle its predecessor's last beat is written.
    wr : ``Out(stream.Signature(wr_layout))``
        Weight-SRAM writes: ``addr`` (``addr_bits``, byte address of lane 0), ``data``
        (``output_elements`` bytes: int8 one element per byte; int4 two per byte, the lower
        element in the low nibble, in the low ``output_elements // 2`` bytes) and ``en``
        (``output_elements`` bits, one per byte lane). Beat ``k`` of a command writes
        ``addr + k * beat_bytes`` (``beat_bytes`` is ``output_elements`` for int8, half that
        for int4); every beat is full but the command's last.
    done : ``Out(stream.Signature(done_layout))``
        One transfer per command after its last write: ``consumed`` (bytes of the stream
        decoded, exactly as ``decode`` returns it; wide enough for the largest stream).
    """

    def __init__(
        self,
        *,
        input_bytes: int,
        output_elements: int,
        formats: Iterable[WeightFormat],
        precisions: Iterable[Precision],
        addr_bits: int,
    ) -> None:
        if not (_is_power_of_two(input_bytes) and 4 <= input_bytes <= 64):
            raise ValueError(f"input_bytes must be a power of two in 4..64, not {input_bytes!r}")
        if not (_is_power_of_two(output_elements) and 4 <= output_elements <= BLOCK):
            raise ValueError(
                f"output_elements must be a power of two in 4..{BLOCK}, not {output_elements!r}"
            )
        formats = tuple(formats)
        if not formats or not all(isinstance(f, WeightFormat) for f in formats):
            raise TypeError(f"formats must be a non-empty list of WeightFormat, not {formats!r}")
        precisions = tuple(precisions)
        if not precisions or not all(isinstance(p, Precision) for p in precisions):
            raise TypeError(f"precisions must be a non-empty list of Precision, not {precisions!r}")
        if (
            isinstance(addr_bits, bool)
            or not isinstance(addr_bits, int)
            or not (1 <= addr_bits <= SRAM_ADDR_BITS)
        ):
            raise ValueError(
                f"addr_bits must be an integer in 1..{SRAM_ADDR_BITS}, not {addr_bits!r}"
            )

        self.input_bytes = input_bytes
        self.output_elements = output_elements
        self.formats = tuple(f for f in WeightFormat if f in formats)
        self.precisions = tuple(p for p in Precision if p in precisions)
        self.addr_bits = addr_bits

        count = _LOAD_WGT_FIELDS["count"]
        largest = max(
            max_encoded_size(count.max, f, p) for f in self.formats for p in self.precisions
        )
        self.cmd_layout = data.StructLayout(
            {
                "format": _LOAD_WGT_FIELDS["format"].width,
                "precision": _LOAD_WGT_FIELDS["prec"].width,
                "count": count.width,
                "addr": addr_bits,
            }
        )
        self.wr_layout = data.StructLayout(
            {
                "addr": addr_bits,
                "data": data.ArrayLayout(8, output_elements),
                "en": output_elements,
            }
        )
        self.done_layout = data.StructLayout({"consumed": largest.bit_length()})
        super().__init__(
            {
                "cmd": In(stream.Signature(self.cmd_layout)),
                "src": In(stream.Signature(data.ArrayLayout(8, input_bytes))),
                "wr": Out(stream.Signature(self.wr_layout)),
                "done": Out(stream.Signature(self.done_layout)),
            }
        )

    @classmethod
    def from_config(cls, config: HardwareConfig) -> Decompressor:
        """The decompressor of ``config``: its decompressor rates and formats, the MAC
        array's precisions, and the weight SRAM's address width."""
        return cls(
            input_bytes=config.decompressor.input_bytes_per_cycle,
            output_elements=config.decompressor.output_elements_per_cycle,
            formats=config.decompressor.formats,
            precisions=config.mac.precisions,
            addr_bits=max(1, (config.sram.weight_bytes - 1).bit_length()),
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        IN, OUT = self.input_bytes, self.output_elements
        int8 = Precision.INT8 in self.precisions
        int4 = Precision.INT4 in self.precisions
        with_header = WeightFormat.BITMASK in self.formats or WeightFormat.NM2_4 in self.formats
        # Value bytes a block register must hold: 32 int8 or 32 int4 values.
        value_bytes = packed_size(BLOCK, Precision.INT8 if int8 else Precision.INT4)
        largest_block = max(_block_bytes(f, p) for f in self.formats for p in self.precisions)
        chunks = -(-largest_block // IN)

        cmd, src, wr, done = self.cmd, self.src, self.wr, self.done

        # -- command registers -----------------------------------------------------------
        busy = Signal()
        fmt = Signal.like(cmd.payload.format)
        prec = Signal.like(cmd.payload.precision)

        def format_is(f: WeightFormat) -> Value:
            # Unbuilt formats are constant false, so their logic is never elaborated and a
            # stray command falls through to the dense path.
            return fmt == f.value if f in self.formats else Const(0, 1)

        is_bitmask = format_is(WeightFormat.BITMASK)
        is_nm = format_is(WeightFormat.NM2_4)
        is_dense = ~is_bitmask & ~is_nm
        # With one precision built, the other is trapped upstream: a constant prunes its logic.
        is_int4 = prec == Precision.INT4.value if int8 and int4 else Const(int(int4), 1)

        # -- gather stage ---------------------------------------------------------------------
        gathering = Signal()  # blocks of this command still to gather
        left = Signal.like(cmd.payload.count)  # elements not yet in a gathered block
        chunk = Signal(range(chunks))  # input_bytes chunks of the block taken
        need_first = Signal(range(largest_block + 1))
        need_kept = Signal(range(largest_block + 1))  # need_first, kept after the first take
        block = Signal(chunks * IN * 8)
        consumed = Signal.like(done.payload.consumed)
        window = Signal(2 * IN * 8)
        level = Signal(range(2 * IN + 1))  # valid bytes at the window's front

        elements = Signal(range(BLOCK + 1))  # elements of the block being gathered
        m.d.comb += elements.eq(Mux(left >= BLOCK, BLOCK, left))

        # Bytes in the block: only the bitmask's depend on data, and its mask is the block's
        # first word, in the window when the first chunk is taken (input_bytes >= 4).
        dense_need = Mux(is_int4, (elements + 1) >> 1, elements)
        need = Mux(is_dense, dense_need, 0)
        if WeightFormat.NM2_4 in self.formats:
            nm_need = Mux(is_int4, nm.block_bytes(Precision.INT4), nm.block_bytes(Precision.INT8))
            need = Mux(is_nm, nm_need, need)
        if WeightFormat.BITMASK in self.formats:
            present = _popcount(window[: bitmask.MASK_BYTES * 8])
            bm_need = bitmask.MASK_BYTES + Mux(is_int4, (present + 1) >> 1, present)
            need = Mux(is_bitmask, bm_need, need)
        m.d.comb += need_first.eq(need)

        block_need = Signal(range(largest_block + 1))
        m.d.comb += block_need.eq(Mux(chunk == 0, need_first, need_kept))
        remaining = Signal(range(largest_block + 1))
        m.d.comb += remaining.eq(block_need - chunk * IN)
        final = Signal()
        m.d.comb += final.eq(remaining <= IN)
        take_bytes = Signal(range(IN + 1))
        m.d.comb += take_bytes.eq(Mux(final, remaining, IN))

        # -- expand/write stage registers (declared here: the gather stage hands off to it) --
        e_full = Signal()
        e_last = Signal()  # the block is the command's last
        header = Signal(BLOCK)
        values = Signal(value_bytes * 8)
        e_left = Signal(range(BLOCK + 1))  # elements of the block not yet written
        addr = Signal(self.addr_bits)
        done_valid = Signal()

        last_beat = Signal()
        m.d.comb += last_beat.eq(e_left <= OUT)
        # The block register frees in the same cycle its last beat is written, so a block
        # can be handed over back to back with no bubble between blocks.
        e_free = Signal()
        m.d.comb += e_free.eq(~e_full | (wr.ready & last_beat))

        take = Signal()
        m.d.comb += take.eq(gathering & (level >= take_bytes) & (~final | e_free))
        taken = Signal(range(IN + 1))
        m.d.comb += taken.eq(Mux(take, take_bytes, 0))
        kept = Signal(range(2 * IN + 1))
        m.d.comb += kept.eq(level - taken)
        # Accept a beat only if it fits behind what stays in the window. With a window of two
        # beats this keeps at least one beat's worth in it, so the gatherer never starves
        # while the input keeps up.
        m.d.comb += src.ready.eq(gathering & (kept <= IN))
        accept = src.valid & src.ready

        shifted = Signal.like(window)
        m.d.comb += shifted.eq(window >> (taken * 8))
        next_window = Signal.like(window)
        m.d.comb += next_window.eq(shifted)
        # Bytes past ``level`` are kept zero, so the beat is OR-ed in at ``kept``. ``kept <= IN``
        # whenever a beat is accepted; the last case is the default so that the switch is
        # complete (Verilator's CASEINCOMPLETE lint).
        with m.If(accept), m.Switch(kept):
            for at in range(IN + 1):
                with m.Case(at) if at < IN else m.Default():
                    m.d.comb += next_window.eq(shifted | (src.payload.as_value() << (at * 8)))
        m.d.sync += [
            window.eq(next_window),
            level.eq(kept + Mux(accept, IN, 0)),
        ]

        front = window[: IN * 8]
        # The whole block as it is in the cycle of its final take: earlier chunks from the
        # block register, the current one straight from the window. Bytes past the block's
        # size (the next block's, or stale ones) are never selected by the expand stage.
        complete = Cat(
            *(Mux(chunk == k, front, block.word_select(k, IN * 8)) for k in range(chunks))
        )
        complete = Cat(complete, Const(0, (HEADER_BYTES + value_bytes) * 8))

        with m.If(take & ~final):
            m.d.sync += chunk.eq(chunk + 1)
            with m.Switch(chunk):
                for k in range(chunks):
                    with m.Case(k) if k < chunks - 1 else m.Default():
                        m.d.sync += block.word_select(k, IN * 8).eq(front)
        with m.If(take & (chunk == 0)):
            m.d.sync += need_kept.eq(need_first)

        # -- expand/write stage ----------------------------------------------------------------
        beat_header = header[:OUT]
        lane_values = []
        # ranks[i]: present elements of this beat before lane i; ranks[OUT]: all of them.
        ranks = [Const(0, range(OUT + 1))]
        for i in range(OUT):
            rank = Signal(range(OUT + 1), name=f"rank{i + 1}")
            m.d.comb += rank.eq(ranks[-1] + beat_header[i])
            ranks.append(rank)
        for i in range(OUT):
            sel, idx = Const(1, 1), Const(i, range(OUT))
            if WeightFormat.NM2_4 in self.formats:
                # Lane i is position i % 4 of local group i // 4, whose slots are 2g and
                # 2g + 1. The later slot is written last in decode, so it wins a tie.
                g, pos = i // 4, i % 4
                s0 = beat_header[4 * g : 4 * g + 2]
                s1 = beat_header[4 * g + 2 : 4 * g + 4]
                nm_sel = (s0 == pos) | (s1 == pos)
                nm_idx = Mux(s1 == pos, 2 * g + 1, 2 * g)
                sel, idx = Mux(is_nm, nm_sel, sel), Mux(is_nm, nm_idx, idx)
            if WeightFormat.BITMASK in self.formats:
                # A present element takes the next value: its rank among this beat's present
                # elements, since the value register is advanced beat by beat. A running sum
                # (rather than a popcount per lane) keeps the logic, and Verilator's C++, small.
                sel = Mux(is_bitmask, beat_header[i], sel)
                idx = Mux(is_bitmask, ranks[i], idx)
            # Elements past the count are not written; an int4 one shares its byte, so it is
            # forced to the zero nibble that pack() puts there.
            sel = sel & (i < e_left)
            value = Const(0, 8)
            if int8:
                value = values[: OUT * 8].word_select(idx, 8)
            if int4:
                nibble = values[: OUT * 4].word_select(idx, 4)
                value = Mux(is_int4, nibble, value) if int8 else nibble
            lane = Signal(8, name=f"lane{i}")
            m.d.comb += lane.eq(Mux(sel, value, 0))
            lane_values.append(lane)

        data8 = Cat(*lane_values)
        data4 = Cat(
            *(Cat(lane[:4] for lane in lane_values[2 * k : 2 * k + 2]) for k in range(OUT // 2))
        )
        en8 = Cat(*(i < e_left for i in range(OUT)))
        en4 = Cat(*(2 * k < e_left for k in range(OUT // 2)))
        m.d.comb += [
            wr.valid.eq(e_full),
            wr.payload.addr.eq(addr),
            wr.payload.data.eq(Mux(is_int4, data4, data8)),
            wr.payload.en.eq(Mux(is_int4, en4, en8)),
        ]

        # Values used by this beat: OUT (dense), OUT / 2 slots (2:4), or the present ones.
        step = Mux(is_nm, OUT // 2, OUT)
        if WeightFormat.BITMASK in self.formats:
            step = Mux(is_bitmask, ranks[OUT], step)
        with m.If(wr.valid & wr.ready):
            m.d.sync += [
                e_left.eq(e_left - OUT),
                addr.eq(addr + Mux(is_int4, OUT // 2, OUT)),
                header.eq(header >> OUT),
                values.eq(Mux(is_int4, values >> (step * 4), values >> (step * 8))),
            ]
            with m.If(last_beat):
                m.d.sync += e_full.eq(0)
                with m.If(e_last):
                    m.d.sync += done_valid.eq(1)

        # Handoff from the gather stage; placed after the write logic so that it wins when the
        # last beat of one block and the final take of the next fall in the same cycle.
        with m.If(take & final):
            last_block = left <= BLOCK
            m.d.sync += [
                e_full.eq(1),
                e_last.eq(last_block),
                e_left.eq(elements),
                values.eq(
                    Mux(
                        is_dense,
                        complete[: value_bytes * 8],
                        complete[HEADER_BYTES * 8 : (HEADER_BYTES + value_bytes) * 8],
                    )
                ),
                consumed.eq(consumed + block_need),
                left.eq(left - elements),
                chunk.eq(0),
            ]
            if with_header:
                m.d.sync += header.eq(complete[:BLOCK])
            with m.If(last_block):
                m.d.sync += gathering.eq(0)

        # -- command and completion --------------------------------------------------------
        m.d.comb += [
            cmd.ready.eq(~busy),
            done.valid.eq(done_valid),
            done.payload.consumed.eq(consumed),
        ]
        with m.If(done.valid & done.ready):
            m.d.sync += [done_valid.eq(0), busy.eq(0)]
        with m.If(cmd.valid & cmd.ready):
            count = cmd.payload.count
            m.d.sync += [
                busy.eq(1),
                fmt.eq(cmd.payload.format),
                prec.eq(cmd.payload.precision),
                left.eq(count),
                addr.eq(cmd.payload.addr),
                consumed.eq(0),
                chunk.eq(0),
                window.eq(0),
                level.eq(0),
                gathering.eq(count != 0),
                # An empty load has nothing to gather: it completes at once.
                done_valid.eq(count == 0),
            ]
        return m
