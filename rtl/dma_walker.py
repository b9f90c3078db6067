"""The DMA engines' address walker: the DRAM beats of a 2-D (rows x bytes, strided) transfer.

Both DMA units move ``rows`` rows of ``row_bytes`` bytes, row ``r`` at DRAM byte address
``dram + r * stride``, in beats of ``B`` bytes aligned to ``B``. A row touches the beats
``(start // B) .. ((start + row_bytes - 1) // B)``; this walker lists them, one per step,
row after row with no gap between rows (the rule the DMA timing is built on: see
``docs/microarchitecture.md``, "DMA"). The load unit runs two (one issues read requests, one
follows the responses), the store unit one.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.isa import DRAM_ADDR_BITS, Opcode, spec_for

__all__ = ["DmaWalker", "beats_bits", "done_layout"]

_FIELDS = {f.name: f for f in spec_for(Opcode.LOAD).fields}


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def beats_bits(beat_bytes: int) -> int:
    """Width of a count of the beats of one transfer: the most rows, each of the longest
    row (``len`` words of 4 bytes) touching as many beats as it can."""
    rows, length = _FIELDS["rows"].max, _FIELDS["len"].max * 4
    return (rows * ((length + beat_bytes - 2) // beat_bytes + 1)).bit_length()


def done_layout(beat_bytes: int) -> data.StructLayout:
    """The DMA units' ``done`` payload: ``beats``, the DRAM beats the command moved."""
    return data.StructLayout({"beats": beats_bits(beat_bytes)})


class DmaWalker(wiring.Component):
    """Lists the ``B``-byte DRAM beats of a strided 2-D transfer, one per transfer of ``beat``.

    Parameters
    ----------
    beat_bytes : int
        ``B``, a power of two.
    row_bytes_bits : int
        Width of ``row_bytes`` (the ISA's ``len`` times the largest element, in bytes).

    Members
    -------
    start : In(1)
        Load ``dram``, ``rows``, ``row_bytes``, ``stride`` and start walking (any walk in
        progress is abandoned). The first beat is offered in the next cycle.
    dram, rows, stride : In
        As the ISA fields (``DRAM_ADDR_BITS``, and the ``rows`` and ``stride`` field widths).
    row_bytes : In(row_bytes_bits)
        Bytes per row. With ``rows`` or ``row_bytes`` 0 there is no beat.
    beat : ``Out(stream.Signature(beat_layout))``
        ``addr`` (beat address, ``DRAM_ADDR_BITS - log2(B)`` bits), ``row`` (the row's first
        DRAM byte address, ``DRAM_ADDR_BITS``), ``first`` / ``last`` (the row's first / last
        beat), ``final`` (the transfer's last beat).
    count : Out(beats_bits(B))
        Beats transferred on ``beat`` since ``start``.
    """

    def __init__(self, *, beat_bytes: int, row_bytes_bits: int) -> None:
        if not _is_power_of_two(beat_bytes):
            raise ValueError(f"beat_bytes must be a power of two, not {beat_bytes!r}")
        if isinstance(row_bytes_bits, bool) or not isinstance(row_bytes_bits, int):
            raise TypeError(f"row_bytes_bits must be a positive integer, not {row_bytes_bits!r}")
        if row_bytes_bits < 1:
            raise TypeError(f"row_bytes_bits must be a positive integer, not {row_bytes_bits!r}")
        self.beat_bytes, self.row_bytes_bits = beat_bytes, row_bytes_bits
        self.log_b = (beat_bytes - 1).bit_length()
        self.beat_layout = data.StructLayout(
            {
                "addr": DRAM_ADDR_BITS - self.log_b,
                "row": DRAM_ADDR_BITS,
                "first": 1,
                "last": 1,
                "final": 1,
            }
        )
        super().__init__(
            {
                "start": In(1),
                "dram": In(DRAM_ADDR_BITS),
                "rows": In(_FIELDS["rows"].width),
                "stride": In(_FIELDS["stride"].width),
                "row_bytes": In(row_bytes_bits),
                "beat": Out(stream.Signature(self.beat_layout)),
                "count": Out(beats_bits(beat_bytes)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        log_b = self.log_b
        busy = Signal()
        row = Signal(DRAM_ADDR_BITS)  # the current row's first byte
        addr = Signal(DRAM_ADDR_BITS - log_b)  # the current beat
        rows_left = Signal(self.rows.shape())  # rows after the current one
        stride = Signal(self.stride.shape())
        row_bytes = Signal(self.row_bytes_bits)

        # The row's last beat; DRAM addresses wrap at 2**32 as the ISA's range allows.
        last_byte = Signal(DRAM_ADDR_BITS)
        m.d.comb += last_byte.eq(row + row_bytes - 1)
        last_beat = last_byte[log_b:]
        next_row = Signal(DRAM_ADDR_BITS)
        m.d.comb += next_row.eq(row + stride)

        b = self.beat
        m.d.comb += [
            b.valid.eq(busy),
            b.payload.addr.eq(addr),
            b.payload.row.eq(row),
            b.payload.first.eq(addr == row[log_b:]),
            b.payload.last.eq(addr == last_beat),
            b.payload.final.eq((addr == last_beat) & (rows_left == 0)),
        ]
        with m.If(self.start):
            m.d.sync += [
                busy.eq((self.rows != 0) & (self.row_bytes != 0)),
                row.eq(self.dram),
                addr.eq(self.dram[log_b:]),
                rows_left.eq(self.rows - 1),
                stride.eq(self.stride),
                row_bytes.eq(self.row_bytes),
                self.count.eq(0),
            ]
        with m.Elif(b.valid & b.ready):
            m.d.sync += self.count.eq(self.count + 1)
            with m.If(addr != last_beat):
                m.d.sync += addr.eq(addr + 1)
            with m.Elif(rows_left != 0):
                m.d.sync += [
                    row.eq(next_row),
                    addr.eq(next_row[log_b:]),
                    rows_left.eq(rows_left - 1),
                ]
            with m.Else():
                m.d.sync += busy.eq(0)
        return m
