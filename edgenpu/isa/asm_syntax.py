"""The surface syntax of assembly: statements, directive heads, hex strings and the sugar.

This module knows how source text is cut up (comments, continuation lines, commas, ``=``)
and what the shorthand forms mean (vector operands ``d=act.i8[0x40]``, token flags
``wait=load``). It evaluates nothing: :mod:`.asm` gives the pieces meaning. The disassembler
reads the same sugar tables, so the two cannot drift apart. The language is documented in
``docs/assembly.md``.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import NamedTuple

from edgenpu.errors import AsmError
from edgenpu.isa.spec import HEADER, InstructionSpec, OperandKind, Stream

__all__ = [
    "DIRECTIVES",
    "TOKEN_KEYS",
    "DataHead",
    "Item",
    "Statement",
    "check_name",
    "neighbours",
    "operand_names",
    "parse_data_head",
    "parse_hex",
    "parse_operand",
    "read_statements",
    "split_at",
]

#: Every directive, in the order docs/assembly.md describes them.
DIRECTIVES = (".org", ".align", ".entry", ".data", ".output", ".weights", ".bytes", ".word")

#: The token-flag shorthands: ``wait=STREAMS`` pops, ``signal=STREAMS`` pushes.
TOKEN_KEYS = {"wait": "pop", "signal": "push"}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPERAND = re.compile(r"(?P<kind>[a-z0-9_.]+)\s*\[(?P<addr>.*)\]\Z", re.DOTALL)
_DATA_HEAD = re.compile(
    r"(?P<name>\S+?)\s*:\s*(?P<type>[^\[\]]*?)\s*\[(?P<shape>[^\[\]]*)\]\s*(?P<rest>.*)\Z",
    re.DOTALL,
)
_AT_RAW = re.compile(r"(?:@(?P<addr>.*?))?\s*(?P<raw>(?<![A-Za-z0-9_.])raw)?\s*\Z", re.DOTALL)


class Item(NamedTuple):
    """One comma-separated piece of a statement, with the line it is on.

    A named tuple rather than a dataclass: a weights directive can have a million of them.
    """

    line: int
    text: str


@dataclass(frozen=True)
class Statement:
    """One logical line: a keyword (mnemonic or directive) and the text after it.

    Parameters
    ----------
    source : str
        File name for messages.
    line : int
        Line of the keyword.
    keyword : str
        The mnemonic or directive (with its dot).
    text : str
        Everything after the keyword, continuation lines joined by a space.
    starts : tuple of int
        Offset in ``text`` where each physical line begins.
    lines : tuple of int
        Line number of each physical line.
    """

    source: str
    line: int
    keyword: str
    text: str
    starts: tuple[int, ...]
    lines: tuple[int, ...]

    def error(self, message: str, line: int | None = None) -> AsmError:
        """An :class:`AsmError` at ``line`` (default: the statement's first line)."""
        return AsmError(f"{self.source}:{self.line if line is None else line}: {message}")

    def items(self, start: int = 0) -> tuple[Item, ...]:
        """The comma-separated pieces of ``text[start:]``, stripped; empty text gives none.

        Raises
        ------
        AsmError
            For an empty piece (``1,,2``).
        """
        if not self.text[start:].strip():
            return ()
        out: list[Item] = []
        ends = [*(at - 1 for at in self.starts[1:]), len(self.text)]
        for line, begin, end in zip(self.lines, self.starts, ends, strict=True):
            if end < start:
                continue
            pieces = [p.strip() for p in self.text[max(begin, start) : end].split(",")]
            if end < len(self.text):
                # A continued line ends with ',': its empty last piece is not an item.
                pieces.pop()
            if not all(pieces):
                raise self.error("empty item between commas", line)
            out += [Item(line, text) for text in pieces]
        return tuple(out)


def read_statements(text: str, source: str) -> list[Statement]:
    """Cut ``text`` into statements.

    ``;`` starts a comment; blank lines are skipped; a statement whose line (comment
    stripped) ends with a comma continues on the next non-blank line.

    Raises
    ------
    AsmError
        When the text ends in the middle of a continued statement.
    """
    out: list[Statement] = []
    pending: list[tuple[int, str]] = []
    # Split on "\n" only, so that line numbers match what an editor shows.
    for number, raw in enumerate(text.split("\n"), start=1):
        code = raw.split(";", 1)[0].strip()
        if not code:
            continue
        pending.append((number, code))
        if not code.endswith(","):
            out.append(_statement(source, pending))
            pending = []
    if pending:
        raise AsmError(
            f"{source}:{pending[-1][0]}: line ends with ',' but no line follows to continue it"
        )
    return out


def _statement(source: str, parts: list[tuple[int, str]]) -> Statement:
    first_line, first = parts[0]
    keyword_, *rest_ = first.split(None, 1)
    rest = rest_[0] if rest_ else ""
    texts = [rest.strip(), *(code for _, code in parts[1:])]
    starts, at = [], 0
    for t in texts:
        starts.append(at)
        at += len(t) + 1
    return Statement(
        source,
        first_line,
        keyword_,
        " ".join(texts),
        tuple(starts),
        tuple(line for line, _ in parts),
    )


def split_at(statement: Statement, sep: str = "=") -> tuple[str, int | None]:
    """The text before the first ``sep`` and the offset just after it (``None`` if absent)."""
    index = statement.text.find(sep)
    if index < 0:
        return statement.text.strip(), None
    return statement.text[:index].strip(), index + 1


def check_name(statement: Statement, name: str) -> str:
    """``name`` if it can name a symbol, else an :class:`AsmError`."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise statement.error(
            f"bad symbol name {name!r} (letters, digits and '_', not starting with a digit, "
            "not a Python keyword)"
        )
    return name


@dataclass(frozen=True)
class DataHead:
    """The part of a data directive before ``=``: ``NAME: TYPE[SHAPE] [@ ADDR] [raw]``."""

    name: str
    type: tuple[str, ...]
    shape: tuple[str, ...]
    addr: str | None
    raw: bool


def parse_data_head(statement: Statement, head: str, usage: str) -> DataHead:
    """Split a data directive's head; ``usage`` is shown when it does not parse."""
    match = _DATA_HEAD.match(head)
    rest = _AT_RAW.match(match["rest"]) if match else None
    if match is None or rest is None:
        raise statement.error(f"bad {statement.keyword} directive {head!r} (expected {usage})")
    shape = tuple(d.strip() for d in match["shape"].split(",")) if match["shape"].strip() else ()
    if not shape or not all(shape):
        raise statement.error(
            f"{statement.keyword} {match['name']}: shape [{match['shape']}] needs one or more "
            "comma-separated dimensions"
        )
    addr = rest["addr"]
    if addr is not None and not addr.strip():
        raise statement.error(f"{statement.keyword} {match['name']}: missing address after '@'")
    return DataHead(
        check_name(statement, match["name"]),
        tuple(match["type"].split()),
        shape,
        None if addr is None else addr.strip(),
        rest["raw"] is not None,
    )


def parse_hex(statement: Statement, items: tuple[Item, ...]) -> bytes:
    """Bytes from hex digit pairs; whitespace and commas between them are ignored."""
    digits = []
    for item in items:
        text = "".join(item.text.split())
        if not re.fullmatch(r"[0-9a-fA-F]*", text):
            raise statement.error(
                f"{statement.keyword}: {item.text!r} is not hex digits", item.line
            )
        digits.append(text)
    joined = "".join(digits)
    if len(joined) % 2:
        raise statement.error(
            f"{statement.keyword}: odd number of hex digits ({len(joined)}); bytes are 2 digits"
        )
    return bytes.fromhex(joined)


# -- sugar -----------------------------------------------------------------------------


def operand_names(spec: InstructionSpec) -> tuple[str, ...]:
    """Vector operands of ``spec`` (``d``, ``a``, ``b``): pairs ``X_kind``/``X_addr``."""
    names = [f.name for f in spec.fields]
    return tuple(
        f.name[: -len("_kind")]
        for f in spec.fields
        if f.enum is OperandKind
        and f.name.endswith("_kind")
        and f.name[: -len("_kind")] + "_addr" in names
    )


def parse_operand(text: str) -> tuple[OperandKind, str] | None:
    """``(kind, address text)`` for ``act.i8[ADDR]``-style text, else ``None``."""
    match = _OPERAND.match(text.strip())
    if match is None:
        return None
    try:
        return OperandKind.parse(match["kind"]), match["addr"]
    except ValueError:
        return None


def neighbours(stream: Stream | None) -> dict[Stream, str]:
    """The streams ``stream`` exchanges tokens with, and which side (``prev``/``next``)."""
    if stream is None:
        return {}
    out = {}
    if stream.value > 0:
        out[Stream(stream.value - 1)] = "prev"
    if stream.value + 1 < len(Stream):
        out[Stream(stream.value + 1)] = "next"
    return out


# The header flags the sugar stands for, so that a rename in spec.py fails here at import.
assert {f.name for f in HEADER[1:]} == {
    f"{op}_{side}" for op in TOKEN_KEYS.values() for side in ("prev", "next")
}
