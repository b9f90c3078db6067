"""Dense format: every value, packed at its precision, with no metadata.

Layout: ``pack(values, precision)``. Dense streams have no block structure of their own; for
timing they are cut into blocks of :data:`BLOCK` elements (the last one partial), which are
byte-aligned because a full block is a whole number of bytes at every precision.

The functions here take values already flattened and range-checked (see :mod:`.codec`).
"""

from __future__ import annotations

import numpy as np

from ..precision import Precision, pack, packed_size, unpack
from .format import BLOCK, FormatError, TruncatedStream, WeightFormat

__all__ = ["block_sizes", "decode", "encode", "encoded_size", "max_size"]


def encode(values: np.ndarray, precision: Precision) -> bytes:
    """Pack flat, range-checked ``values``."""
    return pack(values, precision)


def encoded_size(values: np.ndarray, precision: Precision) -> int:
    """Bytes :func:`encode` produces for ``values``."""
    return packed_size(values.size, precision)


def max_size(count: int, precision: Precision) -> int:
    """The most bytes the decompressor reads for ``count`` elements."""
    return packed_size(count, precision)


def _element_counts(count: int) -> np.ndarray:
    """Elements in each timing block (the last one partial)."""
    starts = np.arange(0, count, BLOCK, dtype=np.int64)
    return np.minimum(BLOCK, count - starts)


def _check_length(raw: np.ndarray, count: int, precision: Precision) -> int:
    """Return the stream length for ``count`` values; raise if ``raw`` is shorter."""
    need = packed_size(count, precision)
    if raw.size < need:
        block_bytes = packed_size(BLOCK, precision)
        block = raw.size // block_bytes
        offset = block * block_bytes
        raise TruncatedStream(
            WeightFormat.DENSE, block, offset, min(block_bytes, need - offset), raw.size - offset
        )
    return need


def decode(
    raw: np.ndarray, count: int, precision: Precision, strict: bool
) -> tuple[np.ndarray, int]:
    """Decode ``count`` values from the uint8 array ``raw``; see :func:`.codec.decode`."""
    need = _check_length(raw, count, precision)
    if strict and precision is Precision.INT4 and count % 2:
        # The encoder zeroes the unused high nibble of an odd-length int4 stream.
        pad = int(raw[need - 1]) >> 4
        if pad:
            raise FormatError(
                f"dense block {(count - 1) // BLOCK}: padding nibble at byte offset "
                f"{need - 1} is {pad:#x}, not 0"
            )
    return unpack(raw, count, precision), need


def block_sizes(raw: np.ndarray, count: int, precision: Precision) -> np.ndarray:
    """Bytes per timing block of :data:`BLOCK` elements."""
    _check_length(raw, count, precision)
    return packed_size(_element_counts(count), precision)
