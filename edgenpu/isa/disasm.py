"""The disassembler: :class:`~edgenpu.isa.program.Program` -> assembly text.

The text assembles back to a program with the same container bytes (``to_bytes``): the same
words, segments and symbols in the same order. Every directive carries its address (``@``),
so nothing depends on the assembler's automatic placement. A symbol whose bytes are exactly
one segment is written with its values (weights: decoded, when re-encoding gives the same
stream; otherwise the stream itself with ``raw``); bytes no symbol describes are written with
``.org`` and ``.bytes``; words that do not decode are written with ``.word``.

A program the assembler could not have produced (a symbol name that is not an identifier,
a weights symbol whose stream shares a segment, segments out of address order, ...) still
disassembles; the text then starts with ``; warning:`` lines saying what will not come back.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping

import numpy as np

from edgenpu.formats import decode as decode_weights
from edgenpu.formats import encode as encode_weights
from edgenpu.isa.asm_syntax import TOKEN_KEYS, neighbours, operand_names
from edgenpu.isa.encoding import IllegalInstruction, Instruction, decode, stream_of
from edgenpu.isa.program import Program, Segment, Symbol, SymbolKind
from edgenpu.isa.spec import DRAM_ADDR_BITS, INSTRUCTION_BITS, Field

__all__ = ["ADDRESS_FIELDS", "disassemble", "disassemble_instruction", "disassemble_word"]

#: Fields printed in hex because they are addresses (any ``*_addr`` field is too).
ADDRESS_FIELDS = ("sram", "dram", "wgt", "acc", "w", "x")
#: Assembly lines are wrapped to this width where a value list allows.
WIDTH = 100
_INDENT = "    "
_HEX_BYTES_PER_LINE = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def disassemble(program: Program) -> str:
    """Assembly text for ``program`` that :func:`~edgenpu.isa.asm.assemble` turns back into it.

    Parameters
    ----------
    program : Program
        Any program, including one with illegal instruction words.

    Returns
    -------
    str
        The text, ending with a newline.
    """
    warnings: list[str] = []
    ordered = sorted(program.segments, key=lambda s: s.addr)
    if list(program.segments) != ordered:
        warnings.append("segments are not in address order; reassembly sorts them")
    if any(b.addr < a.end for a, b in zip(ordered, ordered[1:], strict=False)):
        warnings.append("segments overlap; the text will not assemble")
    owners = _owners(program, warnings)
    names: dict[int, str] = {}
    for index, s in enumerate(program.symbols):
        if index in owners and s.kind is not SymbolKind.ENTRY:
            names.setdefault(s.addr, s.name)

    body: list[str] = []
    owned = {id(g) for g in owners.values() if g is not None}
    anonymous = [g for g in program.segments if id(g) not in owned and g.data]
    for segment in sorted(anonymous, key=lambda s: s.addr):
        body += [f".org {segment.addr:#x}", *_hex_lines(".bytes ", segment.data)]
    if any(not g.data for g in program.segments):
        warnings.append("empty segments are dropped")

    done = 0
    previous = "data" if body else None
    for index, symbol in enumerate(program.symbols):
        if index not in owners:
            continue
        if symbol.kind is SymbolKind.ENTRY:
            if done <= symbol.addr <= len(program.words):
                code = [
                    _INDENT + disassemble_word(w, names) for w in program.words[done : symbol.addr]
                ]
                previous = _separate(body, previous, "code")
                body += [*code, f".entry {symbol.name}"]
                done = symbol.addr
            else:
                previous = _separate(body, previous, "code")
                body.append(f".entry {symbol.name} @ {symbol.addr}")
        else:
            previous = _separate(body, previous, "data")
            body += _directive(symbol, owners[index])
    if done < len(program.words):
        _separate(body, previous, "code")
        body += [_INDENT + disassemble_word(w, names) for w in program.words[done:]]

    head = [
        f"; edgenpu program: {len(program.words)} instructions, {len(program.segments)} "
        f"segments, {len(program.symbols)} symbols"
    ]
    head += [f"; warning: {w}" for w in warnings]
    return "\n".join(head + ([""] if body else []) + body) + "\n"


def disassemble_instruction(ins: Instruction, names: Mapping[int, str] | None = None) -> str:
    """One line of assembly for ``ins``.

    Fields come in spec order; integer fields equal to 0 are left out; enum fields and vector
    operands are always shown; token flags are written ``wait=``/``signal=``.

    Parameters
    ----------
    ins : Instruction
        The instruction.
    names : mapping of int to str, optional
        Symbol names by DRAM address, used for the ``dram`` field.
    """
    spec = ins.spec
    values = ins.fields()
    operands = operand_names(spec)
    parts = _tokens(ins)
    for f in spec.fields:
        if f.name.endswith("_addr") and f.name[: -len("_addr")] in operands:
            continue
        if f.name.endswith("_kind") and f.name[: -len("_kind")] in operands:
            op = f.name[: -len("_kind")]
            parts.append(f"{op}={values[f.name].label}[{values[op + '_addr']:#x}]")
        elif f.enum is not None:
            parts.append(f"{f.name}={values[f.name].label}")
        elif values[f.name] or (f.name == "dram" and names and 0 in names):
            parts.append(f"{f.name}={_number(f, values[f.name], names)}")
    return f"{ins.opcode.label} {', '.join(parts)}".rstrip()


def disassemble_word(word: int, names: Mapping[int, str] | None = None) -> str:
    """One line for a raw instruction word: the instruction, or ``.word`` if it is illegal."""
    try:
        return disassemble_instruction(decode(word), names)
    except IllegalInstruction as e:
        return f".word {word:#0{2 + INSTRUCTION_BITS // 4}x} ; illegal: {e}"


# -- instructions ----------------------------------------------------------------------


def _tokens(ins: Instruction) -> list[str]:
    near = neighbours(stream_of(ins))
    out = []
    for key, action in TOKEN_KEYS.items():
        streams = [s.label for s, side in near.items() if ins[f"{action}_{side}"]]
        if streams:
            out.append(f"{key}={'+'.join(streams)}")
    return out


def _number(f: Field, value: int, names: Mapping[int, str] | None) -> str:
    if f.name == "dram" and names and value in names:
        return names[value]
    if f.name in ADDRESS_FIELDS or f.name.endswith("_addr"):
        return f"{value:#x}"
    return str(value)


# -- data ------------------------------------------------------------------------------


def _owners(program: Program, warnings: list[str]) -> dict[int, Segment | None]:
    """The symbols that can be written, by index, with the segment each owns (its exact bytes)."""
    free: dict[tuple[int, int], list[Segment]] = {}
    for segment in program.segments:
        free.setdefault((segment.addr, len(segment.data)), []).append(segment)
    owners: dict[int, Segment | None] = {}
    taken: set[str] = set()
    for index, symbol in enumerate(program.symbols):
        problem = _name_problem(symbol.name, taken)
        if problem is None and symbol.kind is SymbolKind.ENTRY:
            if not 0 <= symbol.addr < max(len(program.words), 1):
                problem = f"its instruction index {symbol.addr} is outside the code"
        elif problem is None:
            problem = _shape_problem(symbol)
        candidates = free.get((symbol.addr, symbol.nbytes), [])
        weights = symbol.kind is SymbolKind.WEIGHTS
        if problem is None and weights and symbol.nbytes and not candidates:
            problem = (
                f"its {symbol.nbytes} bytes at {symbol.addr:#x} are not one segment of their own"
            )
        if problem is not None:
            warnings.append(f"symbol {symbol.name!r} is left out: {problem}")
            continue
        owns = candidates and (
            symbol.kind is SymbolKind.WEIGHTS
            or (
                symbol.kind is SymbolKind.DATA
                and symbol.nbytes
                and symbol.nbytes == symbol.count * symbol.dtype.size
            )
        )
        owners[index] = candidates.pop(0) if owns else None
        taken.add(symbol.name)
        _check_attributes(symbol, warnings)
    return owners


def _name_problem(name: str, taken: set[str]) -> str | None:
    if not _NAME.match(name) or keyword.iskeyword(name):
        return "its name is not an assembly identifier"
    if name in taken:
        return "its name is used twice"
    return None


def _shape_problem(symbol: Symbol) -> str | None:
    if not symbol.shape:
        return "it has no shape"
    if symbol.kind is SymbolKind.WEIGHTS:
        if symbol.precision is None or symbol.format is None:
            return "weights without a precision and format"
        nbytes = symbol.nbytes
    elif symbol.dtype is None:
        return "data without a dtype"
    else:
        nbytes = symbol.count * symbol.dtype.size
    if symbol.addr + nbytes > 1 << DRAM_ADDR_BITS:
        return f"it runs past the {DRAM_ADDR_BITS}-bit DRAM"
    return None


def _check_attributes(symbol: Symbol, warnings: list[str]) -> None:
    # The container writes these for every kind; the assembler derives them from the kind.
    expected_nbytes = symbol.nbytes
    if symbol.kind in (SymbolKind.DATA, SymbolKind.OUTPUT):
        expected_nbytes = symbol.count * symbol.dtype.size
    if symbol.kind is SymbolKind.ENTRY:
        expected_nbytes = 0
    odd = []
    if symbol.nbytes != expected_nbytes:
        odd.append(f"{symbol.nbytes} bytes (reassembled: {expected_nbytes})")
    if symbol.kind is not SymbolKind.WEIGHTS and symbol.format:
        odd.append(f"a weight format on a {symbol.kind.label} symbol")
    if symbol.kind is SymbolKind.ENTRY and (symbol.shape or symbol.dtype):
        odd.append("a shape or dtype on an entry")
    if odd:
        warnings.append(f"symbol {symbol.name!r} will not come back exactly: {'; '.join(odd)}")


def _directive(symbol: Symbol, segment: Segment | None) -> list[str]:
    shape = ", ".join(str(d) for d in symbol.shape)
    where = f"@ {symbol.addr:#x}"
    if symbol.kind is SymbolKind.OUTPUT:
        return [f".output {symbol.name}: {symbol.dtype.label}[{shape}] {where}"]
    if symbol.kind is SymbolKind.DATA:
        head = f".data {symbol.name}: {symbol.dtype.label}[{shape}] {where}"
        if segment is None:
            return [head]
        values = np.frombuffer(segment.data, dtype=symbol.dtype.numpy)
        return _value_lines(head + " =", [str(v) for v in values.tolist()])
    head = (
        f".weights {symbol.name}: {symbol.precision.label} {symbol.format.label}[{shape}] {where}"
    )
    data = segment.data if segment is not None else b""
    values = _canonical_values(symbol, data)
    if values is None:
        return _hex_lines(head + " raw = ", data)
    return _value_lines(head + " =", [str(v) for v in values.tolist()])


def _canonical_values(symbol: Symbol, data: bytes) -> np.ndarray | None:
    """The weight values, if encoding them gives exactly ``data``; else ``None``."""
    # No format packs more than 8 values per byte (bitmask: a 4-byte mask for 32 zeros), so a
    # larger count cannot be canonical; checking first keeps a corrupt shape from making the
    # decoder walk millions of blocks.
    if symbol.count > 8 * len(data):
        return None
    try:
        values, consumed = decode_weights(data, symbol.count, symbol.format, symbol.precision)
    except ValueError:  # FormatError and TruncatedStream among them
        return None
    if consumed != len(data) or encode_weights(values, symbol.format, symbol.precision) != data:
        return None
    return values


def _value_lines(head: str, values: list[str]) -> list[str]:
    """``head`` then the values, comma-separated, wrapped at :data:`WIDTH` columns."""
    lines, line = [], head
    for i, value in enumerate(values):
        piece = value + ("," if i + 1 < len(values) else "")
        if len(line) + 1 + len(piece) > WIDTH and line != head:
            lines.append(line)
            line = _INDENT + piece
        else:
            line += " " + piece
    return [*lines, line]


def _hex_lines(head: str, data: bytes) -> list[str]:
    """``head`` then ``data`` in hex, 4-byte groups, continued with trailing commas."""
    rows = [data[i : i + _HEX_BYTES_PER_LINE] for i in range(0, len(data), _HEX_BYTES_PER_LINE)]
    text = [" ".join(row[j : j + 4].hex() for j in range(0, len(row), 4)) for row in rows]
    if not text:
        return [head.rstrip()]
    out = [head + text[0]] + [_INDENT + t for t in text[1:]]
    return [line + "," for line in out[:-1]] + [out[-1]]


def _separate(body: list[str], previous: str | None, now: str) -> str:
    if previous is not None and previous != now:
        body.append("")
    return now
