"""Weight precisions and how their values are packed into bytes.

This is the one definition of int8/int4 storage. The weight formats, both simulators, the
compiler and the RTL decompressor/MAC array all derive from it.

Packing rule: values are two's complement. int8 takes one byte per value. int4 packs two
values per byte, the *lower-addressed element in the low nibble*, so that a byte-serial
decompressor emits elements in address order by taking the low nibble first. An odd count
leaves the high nibble of the last byte zero.
"""

from __future__ import annotations

import numpy as np

from edgenpu.labelled import LabelledEnum

__all__ = ["Precision", "check_range", "pack", "packed_size", "unpack"]


class Precision(LabelledEnum):
    """A weight precision. The integer value is its ISA encoding."""

    INT8 = 0
    INT4 = 1

    @property
    def bits(self) -> int:
        return 8 if self is Precision.INT8 else 4

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1


def packed_size(count: int, precision: Precision) -> int:
    """Bytes taken by ``count`` densely packed values."""
    return (count * precision.bits + 7) // 8


def check_range(values: np.ndarray, precision: Precision) -> None:
    """Raise ``ValueError`` if any value does not fit ``precision``."""
    if values.size and (values.min() < precision.min or values.max() > precision.max):
        bad = values[(values < precision.min) | (values > precision.max)][0]
        raise ValueError(
            f"value {int(bad)} does not fit {precision.label} [{precision.min}, {precision.max}]"
        )


def pack(values: np.ndarray, precision: Precision) -> bytes:
    """Pack integer ``values`` (any shape, row-major) densely at ``precision``."""
    flat = np.asarray(values).reshape(-1).astype(np.int64)
    check_range(flat, precision)
    if precision is Precision.INT8:
        return flat.astype(np.int8).tobytes()
    nibbles = (flat & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()


def unpack(data: bytes | np.ndarray, count: int, precision: Precision) -> np.ndarray:
    """Unpack ``count`` values stored densely at ``precision``; returns int8.

    ``data`` must hold at least ``packed_size(count, precision)`` bytes; extra bytes are
    ignored.
    """
    raw = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    need = packed_size(count, precision)
    if raw.size < need:
        raise ValueError(f"{count} {precision.label} values need {need} bytes, got {raw.size}")
    raw = raw[:need].astype(np.uint8, copy=False)
    if precision is Precision.INT8:
        return raw.view(np.int8).copy()
    nibbles = np.empty(need * 2, dtype=np.uint8)
    nibbles[0::2] = raw & 0xF
    nibbles[1::2] = raw >> 4
    # Sign-extend the 4-bit two's complement values.
    return ((nibbles[:count].astype(np.int8) ^ 8) - 8).astype(np.int8)
