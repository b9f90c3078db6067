"""The simulation DRAM: a memory behind AXI-like read and write channels, and a host port.

It stands in for the external DRAM in RTL simulations of the whole processor, with the
bandwidth and latency of the configuration (``dram.bandwidth_bytes_per_cycle``,
``dram.latency_cycles``), so that the RTL's cycles are those of the performance model. The
contract (``docs/microarchitecture.md``, "DMA"):

* **read channel**: ``rd_req`` carries the *beat address* (byte address / ``B``) of a
  ``B``-byte aligned word; it is always ready, so one request transfers per cycle. A request
  transferred in cycle *c* returns its ``B`` bytes on ``rd_resp`` in cycle *c* + ``L``
  (``L`` = ``latency``), in request order, pipelined. ``rd_resp`` has no back-pressure (as a
  DRAM PHY has none): the requester must take it (its ``ready`` is ignored).
* **write channel**: ``wr`` carries a beat address, ``B`` bytes and ``B`` byte enables; it
  is always ready, one write per cycle. A write transferred in cycle *c* is in the array
  from cycle *c* + 1.
* A read samples the array in cycle *c* + ``L`` - 1 (``L`` >= 1; in cycle *c* for
  ``L`` = 0), so it returns every write transferred before that cycle.
* **host port**: the bench's way in and out before and after a program (``B`` bytes per
  cycle, not the program's cycles): a write in cycle *c* lands like a channel write; a read
  in cycle *c* returns ``rdata`` in cycle *c* + 1. It must be used only while the channels
  are idle (nothing requested, nothing in flight): it shares the array's one read and one
  write port with them.

Beat addresses wrap at the memory's size (a power of two).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.isa import DRAM_ADDR_BITS

__all__ = ["Dram", "HostPort"]


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


class HostPort(wiring.Signature):
    """The bench's port into the DRAM, as seen by the host (``Out`` = driven by the host).

    Members
    -------
    en : Out(1)
        Access this cycle.
    we : Out(1)
        Write (else read).
    addr : Out(beat_addr_bits)
        Beat address.
    wdata : Out(8 * beat_bytes)
        Bytes to write, byte lane 0 in the low bits; all ``beat_bytes`` are written.
    rdata : In(8 * beat_bytes)
        The beat read, one cycle after a read.
    """

    def __init__(self, beat_addr_bits: int, beat_bytes: int):
        super().__init__(
            {
                "en": Out(1),
                "we": Out(1),
                "addr": Out(beat_addr_bits),
                "wdata": Out(8 * beat_bytes),
                "rdata": In(8 * beat_bytes),
            }
        )


class Dram(wiring.Component):
    """A simulation DRAM of ``size`` bytes, ``beat_bytes`` per beat, ``latency`` cycles.

    Parameters
    ----------
    size : int
        Bytes, a power of two, at least ``beat_bytes``.
    beat_bytes : int
        ``B``: bytes per beat, a power of two.
    latency : int
        ``L``: cycles from a read request to its data, at least 0.

    Members
    -------
    rd_req : ``In(stream.Signature(beat_addr_layout))``
        Read requests: ``addr`` (beat address, ``DRAM_ADDR_BITS - log2(B)`` bits). Always
        ready.
    rd_resp : ``Out(stream.Signature(data.ArrayLayout(8, B)))``
        Read data, byte lane 0 = the beat's lowest address, valid in cycle *c* + ``L`` for
        a request transferred in cycle *c*. ``ready`` is ignored.
    wr : ``In(stream.Signature(write_layout))``
        Writes: ``addr`` (beat address), ``data`` (``B`` bytes), ``mask`` (``B`` byte
        enables). Always ready.
    host : ``In(HostPort(beat_addr_bits, B))``
        The bench's load/unload port (see the module docstring).
    """

    def __init__(self, *, size: int, beat_bytes: int, latency: int) -> None:
        if not _is_power_of_two(beat_bytes):
            raise ValueError(f"beat_bytes must be a power of two, not {beat_bytes!r}")
        if not _is_power_of_two(size) or size < beat_bytes or size > 1 << DRAM_ADDR_BITS:
            raise ValueError(
                f"size must be a power of two in {beat_bytes}..2**{DRAM_ADDR_BITS}, not {size!r}"
            )
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ValueError(f"latency must be a non-negative integer, not {latency!r}")
        self.size, self.beat_bytes, self.latency = size, beat_bytes, latency
        self.depth = size // beat_bytes
        #: Bits of a beat address on the channels (the whole DRAM address space).
        self.beat_addr_bits = DRAM_ADDR_BITS - (beat_bytes - 1).bit_length()
        self.read_layout = data.StructLayout({"addr": self.beat_addr_bits})
        self.write_layout = data.StructLayout(
            {
                "addr": self.beat_addr_bits,
                "data": data.ArrayLayout(8, beat_bytes),
                "mask": beat_bytes,
            }
        )
        self.host_addr_bits = max(1, (self.depth - 1).bit_length())
        super().__init__(
            {
                "rd_req": In(stream.Signature(self.read_layout)),
                "rd_resp": Out(stream.Signature(data.ArrayLayout(8, beat_bytes))),
                "wr": In(stream.Signature(self.write_layout)),
                "host": In(HostPort(self.host_addr_bits, beat_bytes)),
            }
        )

    @classmethod
    def from_config(cls, config: HardwareConfig) -> Dram:
        """The DRAM of ``config`` (its ``dram.bytes`` must be a power of two)."""
        return cls(
            size=config.dram.bytes,
            beat_bytes=config.dram.bandwidth_bytes_per_cycle,
            latency=config.dram.latency_cycles,
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        B, L = self.beat_bytes, self.latency
        mem = Memory(shape=data.ArrayLayout(8, B), depth=self.depth, init=[])
        m.submodules.mem = mem
        wp = mem.write_port(granularity=1)  # one enable per byte (array element)
        rp = mem.read_port(domain="sync" if L else "comb")
        host = self.host
        row_bits = self.host_addr_bits

        m.d.comb += [self.rd_req.ready.eq(1), self.wr.ready.eq(1)]
        with m.If(host.en & host.we):
            m.d.comb += [
                wp.addr.eq(host.addr),
                wp.data.eq(host.wdata),
                wp.en.eq(-1),
            ]
        with m.Else():
            m.d.comb += [
                wp.addr.eq(self.wr.payload.addr[:row_bits]),
                wp.data.eq(self.wr.payload.data),
                wp.en.eq(Mux(self.wr.valid, self.wr.payload.mask, 0)),
            ]

        # The request's address travels L - 1 stages, then reads the array: an address is
        # narrower than its data, so the delay line is cheaper than delaying the data.
        valid = self.rd_req.valid
        addr = self.rd_req.payload.addr[:row_bits]
        for stage in range(max(0, L - 1)):
            v, a = Signal(name=f"req_valid{stage}"), Signal(row_bits, name=f"req_addr{stage}")
            m.d.sync += [v.eq(valid), a.eq(addr)]
            valid, addr = v, a
        m.d.comb += [rp.addr.eq(Mux(host.en, host.addr, addr))]
        if L:
            m.d.comb += rp.en.eq(1)
            resp_valid = Signal()
            m.d.sync += resp_valid.eq(valid)
        else:
            resp_valid = valid
        m.d.comb += [self.rd_resp.valid.eq(resp_valid), self.rd_resp.payload.eq(rp.data)]
        if L:
            m.d.comb += host.rdata.eq(rp.data)
        else:
            m.d.sync += host.rdata.eq(rp.data)  # still one cycle after the host's read
        return m
