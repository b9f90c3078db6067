"""The assembler: assembly text -> :class:`~edgenpu.isa.program.Program`.

Two passes. The first lays out DRAM and the code: it places every data directive (which needs
its size, so shapes, ``@`` addresses, ``.org``/``.align`` and weight values are evaluated here,
and may only name symbols defined above), defines every symbol and counts instructions. The
second evaluates instruction fields and ``.data`` values, which may name any symbol, so code can
refer to data defined further down. The language is documented in ``docs/assembly.md``;
errors are one :class:`~edgenpu.errors.AsmError` starting ``FILE:LINE:``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgenpu.errors import AsmError
from edgenpu.formats import FormatError, WeightFormat
from edgenpu.formats import encode as encode_weights
from edgenpu.isa.asm_expr import ExprError, evaluate
from edgenpu.isa.asm_instruction import build_instruction, mnemonic_error
from edgenpu.isa.asm_syntax import (
    DataHead,
    Item,
    Statement,
    check_name,
    parse_data_head,
    parse_hex,
    read_statements,
    split_at,
)
from edgenpu.isa.encoding import encode
from edgenpu.isa.program import DType, Program, Segment, Symbol, SymbolKind
from edgenpu.isa.spec import DRAM_ADDR_BITS, INSTRUCTION_BITS
from edgenpu.precision import Precision

__all__ = ["DMA_ALIGN", "assemble", "assemble_file"]

#: Data directives without ``@`` start on this boundary: the DMA moves 64-byte bursts.
DMA_ALIGN = 64
_DRAM_BYTES = 1 << DRAM_ADDR_BITS
_DIM_LIMIT = 1 << 32  # the container stores dimensions as u32
_LAYOUT_ONLY = (
    " (layout values: addresses, shapes, .org, .align and weights may only use "
    "symbols defined above)"
)
_USAGE = {
    ".data": "'.data NAME: DTYPE[SHAPE] [@ ADDR] [= VALUES]'",
    ".output": "'.output NAME: DTYPE[SHAPE] [@ ADDR]'",
    ".weights": "'.weights NAME: PREC FORMAT[SHAPE] [@ ADDR] = VALUES' or '... [@ ADDR] raw = HEX'",
}


def assemble(text: str, source: str = "<asm>") -> Program:
    """Assemble ``text``.

    Parameters
    ----------
    text : str
        Assembly source (see ``docs/assembly.md``).
    source : str
        File name used in error messages.

    Returns
    -------
    Program
        Instructions in source order; one segment per directive that places bytes, sorted by
        address; symbols in definition order.

    Raises
    ------
    AsmError
        The first error, as ``FILE:LINE: message``.
    """
    layout = _Layout()
    for statement in read_statements(text, source):
        layout.add(statement)
    layout.finish()
    symbols = layout.symbols
    words = tuple(_word(st, symbols) for st in layout.code)
    segments = [(addr, _data_bytes(pending, symbols)) for addr, pending in layout.data]
    segments += layout.segments
    return Program(
        words,
        tuple(Segment(addr, data) for addr, data in sorted(segments, key=lambda s: s[0])),
        tuple(symbols.values()),
    )


def assemble_file(path: str | Path) -> Program:
    """Assemble the file at ``path`` (messages name it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AsmError(f"{path}: cannot read: {e}") from None
    return assemble(text, str(path))


@dataclass(frozen=True)
class _PendingData:
    """``.data`` values, evaluated in the second pass so that they may name any symbol."""

    statement: Statement
    name: str
    items: tuple[Item, ...]
    dtype: DType


def _expr(
    statement: Statement,
    text: str,
    symbols: Mapping[str, Symbol],
    line: int | None = None,
    forward: str = "",
) -> int:
    try:
        return evaluate(text, symbols, forward=forward)
    except ExprError as e:
        raise statement.error(str(e), line) from None


def _word(statement: Statement, symbols: dict[str, Symbol]) -> int:
    if statement.keyword != ".word":
        return int.from_bytes(encode(build_instruction(statement, symbols)), "little")
    head, eq = split_at(statement)
    if eq is not None:
        raise statement.error(".word takes one value: '.word VALUE'")
    value = _expr(statement, head, symbols)
    if not 0 <= value < 1 << INSTRUCTION_BITS:
        raise statement.error(f".word {value:#x} does not fit {INSTRUCTION_BITS} bits")
    return value


def _values(
    statement: Statement, items: tuple[Item, ...], symbols: Mapping[str, Symbol], forward: str = ""
) -> list[int]:
    """The integer value of each item."""
    try:
        # Fast path: a long value list is usually all literals.
        return [int(item.text, 0) for item in items]
    except ValueError:
        return [_expr(statement, item.text, symbols, item.line, forward) for item in items]


def _check_range(
    statement: Statement,
    items: tuple[Item, ...],
    values: list[int],
    lo: int,
    hi: int,
    what: str,
    kind: str,
) -> None:
    """Raise naming the first value outside ``[lo, hi]`` (of type ``kind``) and its line."""
    bad = next((i for i, v in enumerate(values) if not lo <= v <= hi), None)
    if bad is not None:
        raise statement.error(
            f"{what}: value {values[bad]} does not fit {kind} [{lo}, {hi}]", items[bad].line
        )


def _data_bytes(pending: _PendingData, symbols: Mapping[str, Symbol]) -> bytes:
    info = np.iinfo(pending.dtype.numpy)
    values = _values(pending.statement, pending.items, symbols)
    _check_range(
        pending.statement,
        pending.items,
        values,
        int(info.min),
        int(info.max),
        f".data {pending.name}",
        pending.dtype.label,
    )
    return np.array(values, dtype=pending.dtype.numpy).tobytes()


class _Layout:
    """The first pass: DRAM placement, symbols and the list of code statements.

    Mutable while :meth:`add` walks the source, read-only after :meth:`finish`.
    """

    def __init__(self) -> None:
        self.symbols: dict[str, Symbol] = {}
        self.defined_at: dict[str, int] = {}
        self.code: list[Statement] = []
        self.data: list[tuple[int, _PendingData]] = []
        self.segments: list[tuple[int, bytes]] = []
        self.placed: list[tuple[int, int, int]] = []  # start, stop, line of placed bytes
        self.entries: list[tuple[Statement, Symbol]] = []
        self.counter = 0

    def add(self, st: Statement) -> None:
        handler = {
            ".org": self._org,
            ".align": self._align,
            ".entry": self._entry,
            ".data": self._data,
            ".output": self._data,
            ".weights": self._weights,
            ".bytes": self._bytes,
        }.get(st.keyword)
        if handler is not None:
            handler(st)
        elif st.keyword.startswith(".") and st.keyword != ".word":
            raise st.error(mnemonic_error(st))
        else:
            self.code.append(st)  # checked in the second pass, once every symbol is known

    def finish(self) -> None:
        """Check what needs the whole source: entries inside the code."""
        for st, symbol in self.entries:
            if not 0 <= symbol.addr < max(len(self.code), 1):
                raise st.error(
                    f"entry {symbol.name} at instruction {symbol.addr} is outside the code "
                    f"({len(self.code)} instructions)"
                )

    # -- helpers ----------------------------------------------------------------------

    def _layout_value(self, st: Statement, text: str, line: int | None = None) -> int:
        return _expr(st, text, self.symbols, line, forward=_LAYOUT_ONLY)

    def _define(self, st: Statement, symbol: Symbol) -> None:
        if symbol.name in self.symbols:
            raise st.error(
                f"duplicate symbol {symbol.name!r} (first defined at line "
                f"{self.defined_at[symbol.name]})"
            )
        self.symbols[symbol.name] = symbol
        self.defined_at[symbol.name] = st.line

    def _no_value(self, st: Statement) -> str:
        head, eq = split_at(st)
        if eq is not None:
            raise st.error(f"{st.keyword} takes no '=': '{st.keyword} {head} ...'")
        if not head:
            raise st.error(f"{st.keyword} needs a value")
        return head

    def _shape(self, st: Statement, head: DataHead) -> tuple[int, ...]:
        shape = tuple(self._layout_value(st, dim) for dim in head.shape)
        for dim in shape:
            if not 0 <= dim < _DIM_LIMIT:
                raise st.error(f"{st.keyword} {head.name}: dimension {dim} is not in [0, 2**32)")
        return shape

    def _address(self, st: Statement, at: str | None) -> int:
        """The address after ``@``, or else the counter aligned for the DMA."""
        if at is None:
            return -(-self.counter // DMA_ALIGN) * DMA_ALIGN
        return self._layout_value(st, at)

    def _place(self, st: Statement, name: str, addr: int, nbytes: int, data: bool) -> int:
        """Claim ``nbytes`` at ``addr`` (checking overlaps if ``data``); advance the counter."""
        what = f"{st.keyword} {name}".rstrip()
        if addr < 0 or addr + nbytes > _DRAM_BYTES:
            raise st.error(
                f"{what} at {addr:#x}..{addr + nbytes:#x} does not fit the "
                f"{DRAM_ADDR_BITS}-bit DRAM address space"
            )
        if data and nbytes:
            for start, stop, line in self.placed:
                if addr < stop and start < addr + nbytes:
                    raise st.error(
                        f"{what} at {addr:#x}..{addr + nbytes:#x} overlaps data placed at "
                        f"{start:#x}..{stop:#x} by line {line}"
                    )
            self.placed.append((addr, addr + nbytes, st.line))
        self.counter = addr + nbytes
        return addr

    # -- directives -------------------------------------------------------------------

    def _org(self, st: Statement) -> None:
        addr = self._layout_value(st, self._no_value(st))
        if not 0 <= addr <= _DRAM_BYTES:
            raise st.error(f".org {addr:#x} is outside the {DRAM_ADDR_BITS}-bit DRAM")
        if addr < self.counter:
            for start, stop, line in self.placed:
                if addr < stop and start < self.counter:
                    raise st.error(
                        f".org {addr:#x} goes back over data placed at {start:#x}..{stop:#x} "
                        f"by line {line}"
                    )
        self.counter = addr

    def _align(self, st: Statement) -> None:
        n = self._layout_value(st, self._no_value(st))
        if n < 1 or n & (n - 1):
            raise st.error(f".align {n}: not a power of two")
        self.counter = -(-self.counter // n) * n

    def _entry(self, st: Statement) -> None:
        name, at, index = self._no_value(st).partition("@")
        where = self._layout_value(st, index) if at else len(self.code)
        symbol = Symbol(check_name(st, name.strip()), SymbolKind.ENTRY, where)
        self._define(st, symbol)
        self.entries.append((st, symbol))

    def _data(self, st: Statement) -> None:
        text, eq = split_at(st)
        head = parse_data_head(st, text, _USAGE[st.keyword])
        if head.raw:
            raise st.error(f"{st.keyword} {head.name}: 'raw' is only for .weights")
        if len(head.type) != 1:
            raise st.error(f"{st.keyword} {head.name}: expected one DTYPE, got {text!r}")
        dtype = self._parse(st, head, DType, head.type[0])
        shape = self._shape(st, head)
        count = math.prod(shape)
        items = None
        if eq is not None:
            if st.keyword == ".output":
                raise st.error(f".output {head.name} reserves space; it takes no values")
            items = st.items(eq)
            _check_count(st, head.name, count, items)
        nbytes = count * dtype.size
        addr = self._address(st, head.addr)
        self._place(st, head.name, addr, nbytes, data=items is not None)
        kind = SymbolKind.OUTPUT if st.keyword == ".output" else SymbolKind.DATA
        self._define(st, Symbol(head.name, kind, addr, nbytes, shape, dtype=dtype))
        if items and nbytes:
            self.data.append((addr, _PendingData(st, head.name, items, dtype)))

    def _weights(self, st: Statement) -> None:
        text, eq = split_at(st)
        head = parse_data_head(st, text, _USAGE[".weights"])
        if len(head.type) != 2:
            raise st.error(f".weights {head.name}: expected 'PREC FORMAT', got {text!r}")
        precision = self._parse(st, head, Precision, head.type[0])
        fmt = self._parse(st, head, WeightFormat, head.type[1])
        shape = self._shape(st, head)
        if eq is None:
            raise st.error(
                f".weights {head.name} needs its values ('= v, ...') or its stream ('raw = HEX')"
            )
        items = st.items(eq)
        if head.raw:
            data = parse_hex(st, items)
        else:
            _check_count(st, head.name, math.prod(shape), items)
            data = self._encode(st, head.name, items, fmt, precision)
        addr = self._address(st, head.addr)
        self._place(st, head.name, addr, len(data), data=True)
        symbol = Symbol(
            head.name, SymbolKind.WEIGHTS, addr, len(data), shape, precision=precision, format=fmt
        )
        self._define(st, symbol)
        if data:
            self.segments.append((addr, data))

    def _encode(
        self,
        st: Statement,
        name: str,
        items: tuple[Item, ...],
        fmt: WeightFormat,
        precision: Precision,
    ) -> bytes:
        values = _values(st, items, self.symbols, _LAYOUT_ONLY)
        _check_range(
            st, items, values, precision.min, precision.max, f".weights {name}", precision.label
        )
        try:
            return encode_weights(np.array(values, dtype=np.int64), fmt, precision)
        except FormatError as e:
            raise st.error(f".weights {name}: {e}") from None

    def _bytes(self, st: Statement) -> None:
        data = parse_hex(st, st.items())
        if not data:
            raise st.error(".bytes needs hex digits")
        addr = self._place(st, "", self.counter, len(data), data=True)
        self.segments.append((addr, data))

    @staticmethod
    def _parse(st: Statement, head: DataHead, enum: type, text: str):
        try:
            return enum.parse(text)
        except ValueError as e:
            raise st.error(f"{st.keyword} {head.name}: {e}") from None


def _check_count(st: Statement, name: str, count: int, items: tuple[Item, ...]) -> None:
    if len(items) != count:
        raise st.error(f"{st.keyword} {name}: expected {count} values, got {len(items)}")
