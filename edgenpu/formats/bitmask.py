"""Bitmask format: per block of :data:`BLOCK` elements, a presence mask and the non-zeros.

Layout, block after block, each byte-aligned::

    mask    BLOCK // 8 bytes, little-endian; bit i set <=> element i of the block is non-zero
            (bits past the tensor's count are 0)
    values  the block's non-zeros in element order, ``pack``-ed at the precision
            (int4: ceil(popcount / 2) bytes, the unused high nibble 0)

Hardware semantics (``strict=False``): the decompressor reads the mask, then as many values
as the mask has set bits, *whatever the count*: bits past the count are ignored for output but
their values are still read, so every block consumes ``MASK_BYTES + packed_size(popcount)``
bytes. A listed value of zero is written as zero; the padding nibble is skipped.

The functions here take values already flattened and range-checked (see :mod:`.codec`).
"""

from __future__ import annotations

import functools

import numpy as np

from ..precision import Precision, pack, packed_size, unpack
from .format import BLOCK, FormatError, TruncatedStream, WeightFormat

__all__ = ["MASK_BYTES", "block_sizes", "decode", "encode", "encoded_size", "max_size"]

#: One mask bit per element of a block.
MASK_BYTES = BLOCK // 8


def max_size(count: int, precision: Precision) -> int:
    """The most bytes the decompressor reads for ``count`` elements: every mask bit set,
    including those past the count, whose values are read all the same."""
    return -(-count // BLOCK) * (MASK_BYTES + packed_size(BLOCK, precision))


def _blocks(values: np.ndarray) -> np.ndarray:
    """``values`` zero-padded to whole blocks, one block per row."""
    nblocks = -(-values.size // BLOCK)
    blocks = np.zeros(nblocks * BLOCK, dtype=np.int64)
    blocks[: values.size] = values
    return blocks.reshape(nblocks, BLOCK)


def _segments(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indices ``start .. start + length - 1`` of every segment, concatenated."""
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _ranks(present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block, element and rank among the block's non-zeros of every set entry of ``present``."""
    block, element = np.nonzero(present)
    rank = (np.cumsum(present, axis=1, dtype=np.int64) - 1)[block, element]
    return block, element, rank


def encode(values: np.ndarray, precision: Precision) -> bytes:
    """Encode flat, range-checked ``values``."""
    blocks = _blocks(values)
    present = blocks != 0
    value_bytes = packed_size(present.sum(axis=1), precision)
    # Each block's values start on a byte boundary, so lay them out in a slot array where block
    # b begins at slot (its first value byte) * (values per byte), and pack that in one go.
    per_byte = 8 // precision.bits
    first_byte = np.cumsum(value_bytes) - value_bytes
    block, element, rank = _ranks(present)
    slots = np.zeros(int(value_bytes.sum()) * per_byte, dtype=np.int64)
    slots[first_byte[block] * per_byte + rank] = blocks[block, element]
    packed = np.frombuffer(pack(slots, precision), dtype=np.uint8)

    starts = MASK_BYTES * np.arange(len(blocks), dtype=np.int64) + first_byte
    out = np.empty(len(blocks) * MASK_BYTES + packed.size, dtype=np.uint8)
    # packbits with little bit order puts element i at bit i of a little-endian word.
    out[starts[:, None] + np.arange(MASK_BYTES)] = np.packbits(present, axis=1, bitorder="little")
    out[_segments(starts + MASK_BYTES, value_bytes)] = packed
    return out.tobytes()


def encoded_size(values: np.ndarray, precision: Precision) -> int:
    """Bytes :func:`encode` produces for ``values``, from the per-block popcounts."""
    popcounts = (_blocks(values) != 0).sum(axis=1)
    return int(len(popcounts) * MASK_BYTES + packed_size(popcounts, precision).sum())


def _scan(raw: np.ndarray, count: int, precision: Precision) -> tuple[np.ndarray, np.ndarray, int]:
    """Walk the block headers: offset and popcount of each block, and the bytes consumed.

    This is the one sequential step (a block's offset depends on every earlier mask); it is
    kept to an ``int.bit_count`` per block so that it stays cheap, and remembered for the
    streams seen last: the simulator decodes a stream and the performance model times the
    same stream block by block, once per config of a sweep.
    """
    nblocks = -(-count // BLOCK)
    # Never read (or copy) further than the largest stream ``count`` values can take.
    limit = min(raw.size, nblocks * (MASK_BYTES + packed_size(BLOCK, precision)))
    return _scan_bytes(raw[:limit].tobytes(), raw.size, count, precision)


@functools.lru_cache(maxsize=256)
def _scan_bytes(
    buf: bytes, available: int, count: int, precision: Precision
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`_scan` of the stream's first bytes ``buf`` (of ``available`` in all); the arrays
    are read-only, as they are shared."""
    nblocks = -(-count // BLOCK)
    size_of = [MASK_BYTES + packed_size(k, precision) for k in range(BLOCK + 1)]
    limit = len(buf)
    offsets = [0] * nblocks
    popcounts = [0] * nblocks
    offset = 0
    for b in range(nblocks):
        if offset + MASK_BYTES > limit:
            raise TruncatedStream(WeightFormat.BITMASK, b, offset, MASK_BYTES, available - offset)
        popcount = int.from_bytes(buf[offset : offset + MASK_BYTES], "little").bit_count()
        size = size_of[popcount]
        if offset + size > limit:
            raise TruncatedStream(WeightFormat.BITMASK, b, offset, size, available - offset)
        offsets[b] = offset
        popcounts[b] = popcount
        offset += size
    offsets_array = np.array(offsets, dtype=np.int64)
    popcounts_array = np.array(popcounts, dtype=np.int64)
    offsets_array.flags.writeable = popcounts_array.flags.writeable = False
    return offsets_array, popcounts_array, offset


def decode(
    raw: np.ndarray, count: int, precision: Precision, strict: bool
) -> tuple[np.ndarray, int]:
    """Decode ``count`` values from the uint8 array ``raw``; see :func:`.codec.decode`."""
    offsets, popcounts, consumed = _scan(raw, count, precision)
    masks = raw[offsets[:, None] + np.arange(MASK_BYTES)]
    present = np.unpackbits(masks, axis=1, bitorder="little").view(np.bool_)

    per_byte = 8 // precision.bits
    value_bytes = packed_size(popcounts, precision)
    first_byte = np.cumsum(value_bytes) - value_bytes
    gathered = raw[_segments(offsets + MASK_BYTES, value_bytes)]
    slots = unpack(gathered, gathered.size * per_byte, precision)
    block, element, rank = _ranks(present)
    values = slots[first_byte[block] * per_byte + rank]
    positions = block * BLOCK + element

    if strict:
        _check(raw, count, precision, masks, offsets, popcounts, slots, first_byte)
        zero = np.flatnonzero(values == 0)
        if zero.size:
            j = zero[0]
            raise FormatError(
                f"bitmask block {block[j]}: element {element[j]} is marked non-zero "
                f"but its value is 0"
            )

    out = np.zeros(count, dtype=np.int8)
    keep = positions < count
    out[positions[keep]] = values[keep]
    return out, consumed


def _check(
    raw: np.ndarray,
    count: int,
    precision: Precision,
    masks: np.ndarray,
    offsets: np.ndarray,
    popcounts: np.ndarray,
    slots: np.ndarray,
    first_byte: np.ndarray,
) -> None:
    """Strict-mode checks on the block headers and padding (see :func:`.codec.decode`)."""
    tail = count % BLOCK
    if tail:
        mask = int.from_bytes(masks[-1].tobytes(), "little")
        if mask >> tail:
            raise FormatError(
                f"bitmask block {len(masks) - 1}: mask {mask:#0{2 + 2 * MASK_BYTES}x} has bits "
                f"set past count {count}"
            )
    if precision is Precision.INT4:
        odd = np.flatnonzero(popcounts % 2)
        padding = slots[first_byte[odd] * 2 + popcounts[odd]]
        bad = np.flatnonzero(padding)
        if bad.size:
            b = odd[bad[0]]
            at = offsets[b] + MASK_BYTES + popcounts[b] // 2
            raise FormatError(
                f"bitmask block {b}: padding nibble at byte offset {at} is "
                f"{int(raw[at]) >> 4:#x}, not 0"
            )


def block_sizes(raw: np.ndarray, count: int, precision: Precision) -> np.ndarray:
    """Bytes per block, as the decompressor consumes them."""
    offsets, _, consumed = _scan(raw, count, precision)
    return np.diff(offsets, append=consumed)
