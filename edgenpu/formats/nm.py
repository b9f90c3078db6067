"""N:M structured-sparse format (2:4): at most N non-zeros in every aligned group of M.

Layout: values are zero-padded to whole blocks of :data:`BLOCK` elements (``GROUPS`` groups,
``SLOTS`` slots), each block a fixed ``block_bytes(precision)`` bytes::

    metadata  META_BYTES bytes, little-endian; slot s's index at bits INDEX_BITS*s upwards.
              Slots N*g .. N*g + N-1 belong to group g of the block; an index is the slot's
              element position 0..M-1 inside its group.
    values    the SLOTS slot values in slot order, ``pack``-ed at the precision.

Canonical encoding (what :func:`encode` emits): a group's slot indices are strictly
increasing; they are the positions of its non-zeros, topped up with its lowest zero positions,
so an unused slot holds 0 at the smallest index that keeps the order. As (index, value)
slots: ``[0, 0, 0, 5]`` -> ``(0, 0), (3, 5)``; ``[4, 0, 0, 0]`` -> ``(0, 4), (1, 0)``;
``[0, 0, 0, 0]`` -> ``(0, 0), (1, 0)``.

Hardware semantics (``strict=False``): the decompressor writes
``out[group * M + index] = value`` for the group's slots in slot order, so a later slot
overwrites an earlier one with the same index; elements past the count are dropped.

The functions here take values already flattened and range-checked (see :mod:`.codec`).
"""

from __future__ import annotations

import numpy as np

from ..precision import Precision, pack, packed_size, unpack
from .format import BLOCK, FormatError, TruncatedStream, WeightFormat

__all__ = [
    "GROUPS",
    "INDEX_BITS",
    "M",
    "META_BYTES",
    "N",
    "SLOTS",
    "block_bytes",
    "block_sizes",
    "canonical_indices",
    "decode",
    "encode",
    "encoded_size",
    "max_size",
]

N = 2
M = 4
GROUPS = BLOCK // M
SLOTS = GROUPS * N
INDEX_BITS = (M - 1).bit_length()
META_BYTES = SLOTS * INDEX_BITS // 8
# Both layouts rely on whole bytes: the metadata word, and the slot values at every precision
# (so each block's values start byte-aligned and one ``pack`` call serves all blocks).
assert SLOTS * INDEX_BITS % 8 == 0 and all(SLOTS * p.bits % 8 == 0 for p in Precision)


def block_bytes(precision: Precision) -> int:
    """Bytes per block: the metadata word and ``SLOTS`` packed values."""
    return META_BYTES + packed_size(SLOTS, precision)


def max_size(count: int, precision: Precision) -> int:
    """Bytes the decompressor reads for ``count`` elements (every block is the same size)."""
    return -(-count // BLOCK) * block_bytes(precision)


def _groups(values: np.ndarray) -> np.ndarray:
    """``values`` zero-padded to whole blocks, one group of ``M`` per row."""
    nblocks = -(-values.size // BLOCK)
    padded = np.zeros(nblocks * BLOCK, dtype=np.int64)
    padded[: values.size] = values
    return padded.reshape(nblocks * GROUPS, M)


def canonical_indices(groups: np.ndarray) -> np.ndarray:
    """The canonical slot indices, shape ``(len(groups), N)``, of groups with <= N non-zeros."""
    position = np.arange(M)
    # Non-zero positions sort before zero positions; within each kind, position order.
    priority = np.where(groups != 0, position, position + M)
    return np.sort(np.sort(priority, axis=1)[:, :N] % M, axis=1)


def _check_sparsity(groups: np.ndarray) -> None:
    nonzeros = np.count_nonzero(groups, axis=1)
    bad = np.flatnonzero(nonzeros > N)
    if bad.size:
        g = int(bad[0])
        raise FormatError(
            f"not {N}:{M} sparse: group {g} (elements {g * M}..{g * M + M - 1}) "
            f"has {nonzeros[g]} non-zeros"
        )


def encode(values: np.ndarray, precision: Precision) -> bytes:
    """Encode flat, range-checked ``values``; raises ``FormatError`` if not N:M sparse."""
    groups = _groups(values)
    _check_sparsity(groups)
    nblocks = len(groups) // GROUPS
    index = canonical_indices(groups)
    slot_values = np.take_along_axis(groups, index, axis=1)
    index_bits = (index.reshape(nblocks, SLOTS, 1) >> np.arange(INDEX_BITS)) & 1
    metadata = np.packbits(
        index_bits.reshape(nblocks, SLOTS * INDEX_BITS).astype(np.uint8),
        axis=1,
        bitorder="little",
    )
    packed = np.frombuffer(pack(slot_values, precision), dtype=np.uint8)
    packed = packed.reshape(nblocks, packed_size(SLOTS, precision))
    return np.hstack([metadata, packed]).tobytes()


def encoded_size(values: np.ndarray, precision: Precision) -> int:
    """Bytes :func:`encode` produces for ``values``; raises ``FormatError`` if not N:M sparse."""
    _check_sparsity(_groups(values))
    return -(-values.size // BLOCK) * block_bytes(precision)


def _check_length(raw: np.ndarray, count: int, precision: Precision) -> int:
    """Return the stream length for ``count`` values; raise if ``raw`` is shorter."""
    size = block_bytes(precision)
    need = -(-count // BLOCK) * size
    if raw.size < need:
        block = raw.size // size
        offset = block * size
        raise TruncatedStream(WeightFormat.NM2_4, block, offset, size, raw.size - offset)
    return need


def _where(g: int) -> str:
    return f"nm2_4 block {g // GROUPS}, group {g} (elements {g * M}..{g * M + M - 1})"


def decode(
    raw: np.ndarray, count: int, precision: Precision, strict: bool
) -> tuple[np.ndarray, int]:
    """Decode ``count`` values from the uint8 array ``raw``; see :func:`.codec.decode`."""
    need = _check_length(raw, count, precision)
    nblocks = -(-count // BLOCK)
    blocks = raw[:need].reshape(nblocks, block_bytes(precision))
    bits = np.unpackbits(blocks[:, :META_BYTES], axis=1, bitorder="little")
    index = (bits.reshape(nblocks * GROUPS, N, INDEX_BITS) << np.arange(INDEX_BITS)).sum(axis=2)
    slot_values = unpack(blocks[:, META_BYTES:].reshape(-1), nblocks * SLOTS, precision)
    slot_values = slot_values.reshape(nblocks * GROUPS, N)

    dense = np.zeros((nblocks * GROUPS, M), dtype=np.int8)
    rows = np.arange(nblocks * GROUPS)
    for slot in range(N):
        # Slot order is write order in the decompressor: a repeated index keeps the last.
        dense[rows, index[:, slot]] = slot_values[:, slot]
    flat = dense.reshape(-1)

    if strict:
        unordered = np.flatnonzero((np.diff(index, axis=1) <= 0).any(axis=1))
        if unordered.size:
            g = int(unordered[0])
            raise FormatError(
                f"{_where(g)}: slot indices {tuple(index[g].tolist())} are not strictly increasing"
            )
        padding = np.flatnonzero(flat[count:])
        if padding.size:
            e = count + int(padding[0])
            raise FormatError(
                f"nm2_4 block {e // BLOCK}: element {e} past count {count} holds {flat[e]}, not 0"
            )
        expected = canonical_indices(dense)
        wrong = np.flatnonzero((expected != index).any(axis=1))
        if wrong.size:
            g = int(wrong[0])
            raise FormatError(
                f"{_where(g)}: slot indices {tuple(index[g].tolist())} are not canonical "
                f"(expected {tuple(expected[g].tolist())})"
            )
    return flat[:count].copy(), need


def block_sizes(raw: np.ndarray, count: int, precision: Precision) -> np.ndarray:
    """Bytes per block (all blocks are the same size)."""
    _check_length(raw, count, precision)
    return np.full(-(-count // BLOCK), block_bytes(precision), dtype=np.int64)
