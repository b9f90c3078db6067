"""The port signatures through which units reach the on-chip memories.

Every unit that reads or writes an SRAM does so through one of these; the ``Npu`` top owns
the memories (``rtl/sram.py``) and connects each unit's port to a port of its own on the
right memory. Fixing them here lets the units be built and tested separately.

Timing contract (see ``docs/microarchitecture.md``, "Memories"): a read issued in cycle *c*
(``en`` high) returns ``data`` in cycle *c* + 1; a write issued in cycle *c* is visible to a
read issued in cycle *c* + 1. Accesses are ``width`` elements wide at any element address
(no alignment), which is what the ISA allows. Each port is used by one unit only, so no
port ever waits: memories have one port per user (see "Memories" for why).
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SramReadPort", "SramWritePort"]


def _check(addr_bits: int, width: int, element_bits: int) -> None:
    if not isinstance(addr_bits, int) or addr_bits < 1:
        raise TypeError(f"addr_bits must be a positive integer, not {addr_bits!r}")
    if not isinstance(width, int) or width < 1:
        raise TypeError(f"width must be a positive integer, not {width!r}")
    if element_bits not in (8, 32):
        raise TypeError(f"element_bits must be 8 or 32, not {element_bits!r}")


class SramReadPort(wiring.Signature):
    """A read port, as seen by the unit that reads (``Out`` = driven by the unit).

    Members
    -------
    en : Out(1)
        Read this cycle.
    addr : Out(addr_bits)
        First element (byte; word in the accumulator memory).
    data : In(width * element_bits)
        Elements ``addr .. addr + width - 1``, element 0 in the low bits, one cycle after
        ``en``. Elements past the memory's end read as 0.
    """

    def __init__(self, addr_bits: int, width: int, element_bits: int = 8):
        _check(addr_bits, width, element_bits)
        self.addr_bits, self.width, self.element_bits = addr_bits, width, element_bits
        super().__init__(
            {
                "en": Out(1),
                "addr": Out(addr_bits),
                "data": In(width * element_bits),
            }
        )


class SramWritePort(wiring.Signature):
    """A write port, as seen by the unit that writes.

    Members
    -------
    en : Out(1)
        Write this cycle.
    addr : Out(addr_bits)
        First element.
    data : Out(width * element_bits)
        Elements, element 0 in the low bits.
    mask : Out(width)
        One enable per element; disabled elements keep their contents.
    """

    def __init__(self, addr_bits: int, width: int, element_bits: int = 8):
        _check(addr_bits, width, element_bits)
        self.addr_bits, self.width, self.element_bits = addr_bits, width, element_bits
        super().__init__(
            {
                "en": Out(1),
                "addr": Out(addr_bits),
                "data": Out(width * element_bits),
                "mask": Out(width),
            }
        )
