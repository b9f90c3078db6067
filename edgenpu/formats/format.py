"""The weight format enumeration, the block size every format shares, and the format errors."""

from __future__ import annotations

from ..errors import EdgenpuError
from ..labelled import LabelledEnum

__all__ = ["BLOCK", "FormatError", "TruncatedStream", "WeightFormat"]

#: Elements per compressed block. The decompressor fills one 32-element row of weight SRAM per
#: block, and a 32-bit bitmask / 2:4 metadata word covers exactly one block. Dense streams are
#: also *timed* in blocks of this size so that the performance model treats every format alike.
BLOCK = 32


class WeightFormat(LabelledEnum):
    """A compressed weight format. The integer value is its ISA encoding; the label
    (``dense``, ``bitmask``, ``nm2_4``) is its name in YAML, assembly and reports."""

    DENSE = 0
    BITMASK = 1
    NM2_4 = 2


class FormatError(EdgenpuError, ValueError):
    """A weight stream or tensor that a format cannot represent, or a corrupt weight stream."""


class TruncatedStream(FormatError):
    """The stream ends before the data it describes does.

    Parameters
    ----------
    fmt : WeightFormat
        Format being decoded.
    block : int
        Index of the block that does not fit.
    offset : int
        Byte offset of that block from the start of the stream.
    needed : int
        Bytes the block needs (as far as the decoder could tell before running out).
    available : int
        Bytes left in the stream from ``offset``.
    """

    def __init__(
        self, fmt: WeightFormat, block: int, offset: int, needed: int, available: int
    ) -> None:
        self.fmt = fmt
        self.block = block
        self.offset = offset
        self.needed = needed
        self.available = available
        super().__init__(
            f"truncated {fmt.label} stream: block {block} at byte offset {offset} needs "
            f"{needed} bytes, {available} available"
        )

    def __reduce__(self):
        # Exceptions pickle through ``self.args`` (the message) by default, which does not
        # match this constructor; sweeps on a Dask cluster ship errors between processes.
        return type(self), (self.fmt, self.block, self.offset, self.needed, self.available)
