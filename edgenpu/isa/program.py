"""The binary program container: instructions, DRAM segments and symbols.

Layout (all integers little-endian)::

    header    magic "ENPU", u16 version, u16 reserved (0),
              u32 instructions, u32 segments, u32 symbols
    code      16 bytes per instruction, in program order
    segments  u32 DRAM address, u32 length, then `length` bytes        (repeated)
    symbols   u16 name length, UTF-8 name, u8 kind, u8 element, u8 format, u8 ndim,
              u32 address, u32 bytes, u32 dimension * ndim              (repeated)

Instructions are kept as raw 128-bit words: an illegal encoding is a property of the
program that the simulators report when they reach it, not a reason to refuse the file.
A symbol's ``element`` is a :class:`DType` for data and outputs and a
:class:`~edgenpu.precision.Precision` for weights; ``format`` is only meaningful for weights.
An entry symbol's address is an instruction index.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from edgenpu.errors import ProgramError
from edgenpu.formats import WeightFormat
from edgenpu.isa.encoding import Instruction, decode, encode
from edgenpu.isa.spec import INSTRUCTION_BYTES
from edgenpu.labelled import LabelledEnum
from edgenpu.precision import Precision

__all__ = ["DType", "Program", "Segment", "Symbol", "SymbolKind"]

MAGIC = b"ENPU"
VERSION = 1
_HEADER = struct.Struct("<4sHHIII")
_SEGMENT = struct.Struct("<II")
_SYMBOL = struct.Struct("<BBBBII")


class DType(LabelledEnum):
    """Element type of a data or output region in DRAM."""

    I8 = 0
    I16 = 1
    I32 = 2

    @classmethod
    def noun(cls) -> str:
        return "dtype"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(("<i1", "<i2", "<i4")[self.value])

    @property
    def size(self) -> int:
        return self.numpy.itemsize


class SymbolKind(LabelledEnum):
    """What a symbol names."""

    DATA = 0
    OUTPUT = 1
    WEIGHTS = 2
    ENTRY = 3


@dataclass(frozen=True)
class Symbol:
    """A named DRAM region or program entry point.

    Parameters
    ----------
    name, kind :
        The name and what it names.
    addr : int
        DRAM byte address; for an entry, the instruction index.
    nbytes : int
        DRAM bytes it occupies (0 for an entry).
    shape : tuple of int
        Logical shape of the values (empty for an entry).
    dtype : DType, optional
        Element type, for data and outputs.
    precision, format : optional
        For weights: the precision and the compressed format of the stream.
    """

    name: str
    kind: SymbolKind
    addr: int
    nbytes: int = 0
    shape: tuple[int, ...] = ()
    dtype: DType | None = None
    precision: Precision | None = None
    format: WeightFormat | None = None

    @property
    def count(self) -> int:
        """Number of elements (weights: dense weights)."""
        return math.prod(self.shape) if self.shape else 0


@dataclass(frozen=True)
class Segment:
    """Initial contents of DRAM from ``addr``."""

    addr: int
    data: bytes

    @property
    def end(self) -> int:
        return self.addr + len(self.data)


@dataclass(frozen=True)
class Program:
    """Instructions (raw 128-bit words), initial DRAM segments, and symbols."""

    words: tuple[int, ...]
    segments: tuple[Segment, ...] = ()
    symbols: tuple[Symbol, ...] = field(default=())

    @classmethod
    def from_instructions(
        cls,
        instructions: list[Instruction],
        segments: tuple[Segment, ...] = (),
        symbols: tuple[Symbol, ...] = (),
    ) -> Program:
        words = tuple(int.from_bytes(encode(i), "little") for i in instructions)
        return cls(words, tuple(segments), tuple(symbols))

    def instructions(self) -> list[Instruction]:
        """Decode every instruction (raises ``IllegalInstruction`` on the first bad one)."""
        return [decode(w) for w in self.words]

    def symbol(self, name: str) -> Symbol:
        for s in self.symbols:
            if s.name == name:
                return s
        raise KeyError(name)

    def symbols_of(self, kind: SymbolKind) -> list[Symbol]:
        return [s for s in self.symbols if s.kind is kind]

    @property
    def dram_extent(self) -> int:
        """One past the highest DRAM byte the image or a symbol names."""
        ends = [s.end for s in self.segments]
        ends += [s.addr + s.nbytes for s in self.symbols if s.kind is not SymbolKind.ENTRY]
        return max(ends, default=0)

    # -- binary container -------------------------------------------------------------

    def to_bytes(self) -> bytes:
        out = [
            _HEADER.pack(MAGIC, VERSION, 0, len(self.words), len(self.segments), len(self.symbols))
        ]
        out += [w.to_bytes(INSTRUCTION_BYTES, "little") for w in self.words]
        for seg in self.segments:
            out += [_SEGMENT.pack(seg.addr, len(seg.data)), seg.data]
        for sym in self.symbols:
            name = sym.name.encode()
            weights = sym.kind is SymbolKind.WEIGHTS
            element = sym.precision if weights else sym.dtype
            out += [
                struct.pack("<H", len(name)),
                name,
                _SYMBOL.pack(
                    sym.kind,
                    int(element or 0),
                    int(sym.format or 0) if weights else 0,
                    len(sym.shape),
                    sym.addr,
                    sym.nbytes,
                ),
                struct.pack(f"<{len(sym.shape)}I", *sym.shape),
            ]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<program>") -> Program:
        """Read a container; raises :class:`ProgramError` naming ``source`` and the offset."""
        reader = _Reader(data, source)
        magic, version, _, n_words, n_segments, n_symbols = reader.unpack(_HEADER, "header")
        if magic != MAGIC:
            raise ProgramError(f"{source}: not an edgenpu program (magic {magic!r})")
        if version != VERSION:
            raise ProgramError(f"{source}: container version {version}, expected {VERSION}")
        words = tuple(
            int.from_bytes(reader.take(INSTRUCTION_BYTES, f"instruction {i}"), "little")
            for i in range(n_words)
        )
        segments = []
        for i in range(n_segments):
            addr, length = reader.unpack(_SEGMENT, f"segment {i}")
            segments.append(Segment(addr, reader.take(length, f"segment {i} data")))
        symbols = []
        for i in range(n_symbols):
            (name_len,) = reader.unpack(struct.Struct("<H"), f"symbol {i}")
            raw_name = reader.take(name_len, f"symbol {i} name")
            try:
                name = raw_name.decode()
            except UnicodeDecodeError:
                raise ProgramError(f"{source}: symbol {i}: name is not UTF-8") from None
            kind, element, fmt, ndim, addr, nbytes = reader.unpack(_SYMBOL, f"symbol {name}")
            shape = reader.unpack(struct.Struct(f"<{ndim}I"), f"symbol {name} shape")
            symbols.append(_symbol(source, name, kind, element, fmt, addr, nbytes, shape))
        if reader.at != len(data):
            raise ProgramError(f"{source}: {len(data) - reader.at} trailing bytes")
        program = cls(words, tuple(segments), tuple(symbols))
        program.validate(source)
        return program

    def validate(self, source: str = "<program>") -> None:
        """Check what the container itself promises: unique names, disjoint segments."""
        names = [s.name for s in self.symbols]
        for name in names:
            if names.count(name) > 1:
                raise ProgramError(f"{source}: symbol {name!r} defined twice")
        ordered = sorted(self.segments, key=lambda s: s.addr)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.addr < a.end:
                raise ProgramError(f"{source}: segments at {a.addr:#x} and {b.addr:#x} overlap")
        for s in self.symbols:
            if s.kind is SymbolKind.ENTRY and not 0 <= s.addr < max(len(self.words), 1):
                raise ProgramError(f"{source}: entry {s.name!r} at {s.addr} is past the code")


def _symbol(source, name, kind, element, fmt, addr, nbytes, shape) -> Symbol:
    try:
        kind = SymbolKind(kind)
        weights = kind is SymbolKind.WEIGHTS
        data = kind in (SymbolKind.DATA, SymbolKind.OUTPUT)
        return Symbol(
            name,
            kind,
            addr,
            nbytes,
            tuple(shape),
            dtype=DType(element) if data else None,
            precision=Precision(element) if weights else None,
            format=WeightFormat(fmt) if weights else None,
        )
    except ValueError as e:
        raise ProgramError(f"{source}: symbol {name!r}: {e}") from None


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.source, self.at = data, source, 0

    def take(self, n: int, what: str) -> bytes:
        if self.at + n > len(self.data):
            raise ProgramError(
                f"{self.source}: truncated in {what} at byte {self.at} "
                f"(needs {n}, {len(self.data) - self.at} left)"
            )
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return bytes(chunk)

    def unpack(self, layout: struct.Struct, what: str) -> tuple:
        return layout.unpack(self.take(layout.size, what))
