"""Compressed weight formats: how weights are laid out in DRAM for the on-chip decompressor.

Each format is one module (:mod:`.dense`, :mod:`.bitmask`, :mod:`.nm`) holding its layout;
:mod:`.codec` is the public entry point. Values are packed with :mod:`edgenpu.precision`.
"""

from .codec import block_sizes, decode, encode, encoded_size, ideal_size, max_encoded_size
from .format import BLOCK, FormatError, TruncatedStream, WeightFormat

__all__ = [
    "BLOCK",
    "FormatError",
    "TruncatedStream",
    "WeightFormat",
    "block_sizes",
    "decode",
    "encode",
    "encoded_size",
    "ideal_size",
    "max_encoded_size",
]
