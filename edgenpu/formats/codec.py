"""Encode, size and decode weight tensors in any :class:`WeightFormat`.

This is the compiler's one encoder and the reference decoder the functional simulator and the
RTL decompressor are checked against. Each format's layout lives in its own module
(:mod:`.dense`, :mod:`.bitmask`, :mod:`.nm`); this module normalises the inputs and dispatches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt

from ..precision import Precision, check_range
from . import bitmask, dense, nm
from .format import FormatError, WeightFormat

__all__ = ["block_sizes", "decode", "encode", "encoded_size", "ideal_size", "max_encoded_size"]


@dataclass(frozen=True)
class _Codec:
    encode: Callable[[np.ndarray, Precision], bytes]
    encoded_size: Callable[[np.ndarray, Precision], int]
    decode: Callable[[np.ndarray, int, Precision, bool], tuple[np.ndarray, int]]
    block_sizes: Callable[[np.ndarray, int, Precision], np.ndarray]
    max_size: Callable[[int, Precision], int]

    @classmethod
    def of(cls, module: ModuleType) -> _Codec:
        return cls(
            module.encode, module.encoded_size, module.decode, module.block_sizes, module.max_size
        )


_CODECS = {
    WeightFormat.DENSE: _Codec.of(dense),
    WeightFormat.BITMASK: _Codec.of(bitmask),
    WeightFormat.NM2_4: _Codec.of(nm),
}


def _values(values: npt.ArrayLike, precision: Precision) -> np.ndarray:
    """Flatten ``values`` (row-major) to int64 and check they fit ``precision``."""
    array = np.asarray(values)
    # An empty list arrives as float64; it has no values to be non-integer.
    if array.dtype.kind not in "iu" and array.size:
        raise TypeError(f"weight values must be integers, not {array.dtype}")
    flat = array.reshape(-1).astype(np.int64)
    try:
        check_range(flat, precision)
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    return flat


def _stream(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """View ``data`` as a flat uint8 array without copying."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(f"a weight stream array must be uint8, not {data.dtype}")
        return data.reshape(-1)
    return np.frombuffer(data, dtype=np.uint8)


def _count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
        raise ValueError(f"count must be a non-negative integer, not {count!r}")
    return int(count)


def encode(values: npt.ArrayLike, fmt: WeightFormat, precision: Precision) -> bytes:
    """Encode a weight tensor.

    Parameters
    ----------
    values : array_like of int
        Weight values, any shape; they are flattened row-major.
    fmt : WeightFormat
        Format to encode in.
    precision : Precision
        Precision every value must fit.

    Returns
    -------
    bytes
        The compressed stream.

    Raises
    ------
    FormatError
        A value does not fit ``precision``, or the values do not have the sparsity structure
        ``fmt`` requires (``nm2_4``: more than 2 non-zeros in an aligned group of 4).
    """
    return _CODECS[fmt].encode(_values(values, precision), precision)


def encoded_size(values: npt.ArrayLike, fmt: WeightFormat, precision: Precision) -> int:
    """Bytes :func:`encode` would produce, computed from the value counts alone.

    Takes and checks the same arguments as :func:`encode`.
    """
    return _CODECS[fmt].encoded_size(_values(values, precision), precision)


def decode(
    data: bytes | bytearray | memoryview | np.ndarray,
    count: int,
    fmt: WeightFormat,
    precision: Precision,
    *,
    strict: bool = True,
) -> tuple[np.ndarray, int]:
    """Decode ``count`` weight values from the start of a stream.

    Parameters
    ----------
    data : bytes-like or uint8 ndarray
        The stream, possibly followed by unrelated bytes (the simulator passes memory from the
        stream's address to the end); only the stream itself is read.
    count : int
        Number of values in the tensor.
    fmt : WeightFormat
        Format of the stream.
    precision : Precision
        Precision of the values.
    strict : bool
        ``True`` (tools, tests): reject any stream :func:`encode` would not produce, with a
        ``FormatError`` naming the block and the problem. ``False``: the hardware decompressor's
        semantics, defined for any bytes (see each format's module for the exact rules).

    Returns
    -------
    values : ndarray of int8
        The ``count`` decoded values, zeros filled back in.
    consumed : int
        Bytes of ``data`` the stream took.

    Raises
    ------
    TruncatedStream
        ``data`` ends before the stream does (in both modes).
    FormatError
        ``strict`` and the stream is not canonical.
    """
    return _CODECS[fmt].decode(_stream(data), _count(count), precision, strict)


def block_sizes(
    data: bytes | bytearray | memoryview | np.ndarray,
    count: int,
    fmt: WeightFormat,
    precision: Precision,
) -> np.ndarray:
    """Compressed bytes of each block of the stream, in stream order.

    Blocks are those of the format (``BLOCK`` elements each); dense streams are cut into
    blocks of ``BLOCK`` elements too, the last one partial. The sizes sum to the stream's
    length, and are what the decompressor consumes per block, so the performance model times
    it from them. Raises ``TruncatedStream`` as :func:`decode` does.
    """
    return _CODECS[fmt].block_sizes(_stream(data), _count(count), precision)


def ideal_size(values: npt.ArrayLike, precision: Precision) -> float:
    """Bytes to store only the non-zero values, with no metadata or padding.

    The yardstick for a format's compression efficiency (``encoded_size / ideal_size``).
    """
    return np.count_nonzero(_values(values, precision)) * precision.bits / 8


def max_encoded_size(count: int, fmt: WeightFormat, precision: Precision) -> int:
    """The most bytes the hardware decompressor can read for ``count`` elements.

    This bounds a weight load's DRAM range before the stream is read, which is what lets an
    out-of-range load trap when it is dispatched rather than half-way through.
    """
    return _CODECS[fmt].max_size(_count(count), precision)
