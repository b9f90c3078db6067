"""An on-chip memory with any number of unaligned, masked read and write ports.

Every on-chip memory of the processor (WGT, ACT, ACC, LUT) is one :class:`Sram`, built with
a port for each unit that uses it (see ``docs/microarchitecture.md``, "Memories"). A port
reads or writes ``width`` consecutive elements at *any* element address in one cycle, which
is what the ISA allows (no alignment anywhere), with the timing contract of
:mod:`edgenpu.rtl.ports`.

Structure: the elements are interleaved over ``N`` single-element banks, ``N`` the smallest
power of two at least as wide as the widest port; bank ``b`` holds the elements whose index
is ``b`` modulo ``N``, element ``e`` in its row ``e // N``. A ``width``-element access at
address ``a`` touches each bank at most once (at row ``a // N`` or the next one), so every
bank is a plain ``amaranth.lib.memory.Memory`` with one synchronous read port per read port
and one write port per write port, which is what an SRAM compiler produces; a rotation by
``a % N`` in front of the write ports and behind the read ports puts the elements in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from edgenpu.config import HardwareConfig
from edgenpu.isa import Space

from .ports import SramReadPort, SramWritePort

__all__ = ["Sram", "addr_bits_for"]


def addr_bits_for(size: int) -> int:
    """Width of an element address of a memory of ``size`` elements (as the decompressor
    and every unit use it)."""
    return max(1, (size - 1).bit_length())


def _ports(ports: Iterable[tuple[str, int]], what: str) -> tuple[tuple[str, int], ...]:
    try:
        out = tuple((name, width) for name, width in ports)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a list of (name, width) pairs, not {ports!r}") from None
    for name, width in out:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"{what}: port name must be an identifier, not {name!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise TypeError(
                f"{what}: width of port {name!r} must be a positive integer, not {width!r}"
            )
    return out


class Sram(wiring.Component):
    """An on-chip memory of ``size`` elements.

    Parameters
    ----------
    size : int
        Elements (bytes, or int32 words when ``element_bits`` is 32), at least 1.
    element_bits : int
        8 or 32.
    read_ports : list of (str, int)
        A name and a width (elements per access) for each read port.
    write_ports : list of (str, int)
        The same for each write port. Names are shared by neither list nor the other.
    addr_bits : int, optional
        Width of every port's ``addr``; default :func:`addr_bits_for` ``(size)``.

    Members
    -------
    <name> : ``In(SramReadPort(addr_bits, width, element_bits))``, one per read port
        ``en``, ``addr`` in; ``data`` (``width * element_bits``) out, one cycle after
        ``en``, element 0 in the low bits. Elements at ``addr + k >= size`` read as 0.
        ``data`` holds its value while ``en`` is low.
    <name> : ``In(SramWritePort(addr_bits, width, element_bits))``, one per write port
        ``en``, ``addr``, ``data``, ``mask`` (one bit per element) in. A write in cycle *c*
        is seen by reads issued from cycle *c* + 1 on; elements past the end are dropped.
        Two ports writing one element in the same cycle leave it unspecified.

    Attributes
    ----------
    banks : int
        ``N``, the number of element-wide banks.
    """

    def __init__(
        self,
        *,
        size: int,
        element_bits: int,
        read_ports: Iterable[tuple[str, int]],
        write_ports: Iterable[tuple[str, int]],
        addr_bits: int | None = None,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise TypeError(f"size must be a positive integer, not {size!r}")
        if element_bits not in (8, 32) or isinstance(element_bits, bool):
            raise TypeError(f"element_bits must be 8 or 32, not {element_bits!r}")
        reads = _ports(read_ports, "read_ports")
        writes = _ports(write_ports, "write_ports")
        names = [n for n, _ in reads + writes]
        if len(set(names)) != len(names):
            raise TypeError(f"port names must be unique, not {names!r}")
        if not reads and not writes:
            raise TypeError("an Sram needs at least one port")
        if addr_bits is None:
            addr_bits = addr_bits_for(size)
        if isinstance(addr_bits, bool) or not isinstance(addr_bits, int) or addr_bits < 1:
            raise TypeError(f"addr_bits must be a positive integer, not {addr_bits!r}")
        if (1 << addr_bits) < size:
            raise ValueError(f"addr_bits {addr_bits} cannot address {size} elements")
        self.size, self.element_bits, self.addr_bits = size, element_bits, addr_bits
        self.read_ports, self.write_ports = reads, writes
        widest = max(w for _, w in reads + writes)
        # At least two banks, so that the rotation logic is never degenerate.
        self.banks = max(2, 1 << (widest - 1).bit_length())
        members = {n: In(SramReadPort(addr_bits, w, element_bits)) for n, w in reads}
        members |= {n: In(SramWritePort(addr_bits, w, element_bits)) for n, w in writes}
        super().__init__(members)

    @classmethod
    def for_space(
        cls,
        config: HardwareConfig,
        space: Space,
        *,
        read_ports: Iterable[tuple[str, int]],
        write_ports: Iterable[tuple[str, int]],
    ) -> Sram:
        """The memory ``space`` of ``config`` (size in its unit, 32-bit elements for ACC)."""
        return cls(
            size=config.sram_size(space),
            element_bits=32 if space is Space.ACC else 8,
            read_ports=read_ports,
            write_ports=write_ports,
            addr_bits=addr_bits_for(config.sram_size(space)),
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        N, E, size = self.banks, self.element_bits, self.size
        log_n = (N - 1).bit_length()
        # Equal banks, as a memory compiler makes them; the last row's elements past
        # ``size`` exist but are never written and read as 0.
        depth = -(-size // N)
        banks = []
        for b in range(N):
            bank = Memory(shape=E, depth=depth, init=[])
            m.submodules[f"bank{b}"] = bank
            banks.append(bank)

        def rows(addr: Signal) -> list:
            # The access starts at element addr, so bank b holds its element
            # (b - addr) mod N, which lies in row addr // N, or in the next row for the
            # banks "before" the start within that row.
            base, low = addr >> log_n, addr[:log_n]
            # (The last bank is never "before" the start; no constant compare for lint.)
            return [base + (Const(b, log_n) < low) if b < N - 1 else base for b in range(N)]

        def in_range(addr: Signal, k: int) -> object:
            if (1 << self.addr_bits) - 1 + k < size:
                return Const(1, 1)  # no address reaches past the end
            return (addr + k) < size

        for name, width in self.write_ports:
            port = getattr(self, name)
            low = port.addr[:log_n]
            bank_rows = rows(port.addr)
            # Padded to N elements: a bank no element of the access falls in gets none.
            padded = Cat(port.data, Const(0, (N - width) * E))
            mask = Signal(N, name=f"{name}_mask")
            m.d.comb += mask.eq(Cat(*(port.mask[i] & in_range(port.addr, i) for i in range(width))))
            for b, bank in enumerate(banks):
                wp = bank.write_port()
                # The element of the access that falls in bank b.
                k = Signal(range(N), name=f"{name}_k{b}")
                m.d.comb += k.eq((b - low)[:log_n])
                data = padded.word_select(k, E)
                en = port.en & mask.bit_select(k, 1)
                m.d.comb += [wp.addr.eq(bank_rows[b]), wp.data.eq(data), wp.en.eq(en)]

        for name, width in self.read_ports:
            port = getattr(self, name)
            bank_rows = rows(port.addr)
            read = []
            for b, bank in enumerate(banks):
                rp = bank.read_port(domain="sync")
                m.d.comb += [rp.addr.eq(bank_rows[b]), rp.en.eq(port.en)]
                read.append(rp.data)
            # What the rotation and the past-the-end masking need one cycle later.
            low = Signal(log_n, name=f"{name}_low")
            valid = Signal(width, name=f"{name}_valid")
            with m.If(port.en):
                m.d.sync += [
                    low.eq(port.addr[:log_n]),
                    valid.eq(Cat(in_range(port.addr, i) for i in range(width))),
                ]
            both = Cat(*read, *read)
            rotated = Signal(N * E, name=f"{name}_rot")
            m.d.comb += rotated.eq(both.bit_select(low * E, N * E))
            m.d.comb += port.data.eq(
                Cat(Mux(valid[i], rotated[i * E : (i + 1) * E], 0) for i in range(width))
            )
        return m
