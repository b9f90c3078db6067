"""Integer expressions in assembly: numbers, symbols, and a few operators, never ``eval``.

An expression is parsed with Python's :mod:`ast` and evaluated by walking only the node types
listed here, so assembly source cannot run code. Operators: ``+ - * // % << >>``, unary
``-``/``+`` and parentheses. Operands: integer literals (decimal, ``0x``, ``0b``, ``0o``),
symbol names (their address; an entry's instruction index) and the symbol attributes
``NAME.size`` (DRAM bytes), ``NAME.count`` (elements) and ``NAME.end`` (address + size).
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Mapping

from edgenpu.isa.program import Symbol

__all__ = ["ATTRIBUTES", "ExprError", "evaluate"]

#: Symbol attributes, and how each is computed from a :class:`Symbol`.
ATTRIBUTES: dict[str, Callable[[Symbol], int]] = {
    "size": lambda s: s.nbytes,
    "count": lambda s: s.count,
    "end": lambda s: s.addr + s.nbytes,
}

_BINARY: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}
_UNARY: dict[type[ast.unaryop], Callable[[int], int]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
# No field or address is wider than 128 bits; a bound on shifts keeps `1 << 10**9` from
# hanging the assembler.
_MAX_SHIFT = 256


class ExprError(ValueError):
    """An expression that cannot be evaluated; the message names the culprit."""


def evaluate(text: str, symbols: Mapping[str, Symbol], *, forward: str = "") -> int:
    """The integer value of the expression ``text``.

    Parameters
    ----------
    text : str
        The expression.
    symbols : mapping of str to Symbol
        The symbols it may name.
    forward : str
        Appended to the message for an undefined symbol (e.g. why only earlier symbols are
        visible at this point).

    Raises
    ------
    ExprError
        Bad syntax, an operator or operand outside the language, division by zero, or an
        undefined symbol.
    """
    text = text.strip()
    try:
        # Fast path: most values in a data directive are plain literals.
        return int(text, 0)
    except ValueError:
        pass
    if not text:
        raise ExprError("missing value")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ExprError(f"bad expression {text!r}") from None
    return _eval(tree.body, text, symbols, forward)


def _eval(node: ast.AST, text: str, symbols: Mapping[str, Symbol], forward: str) -> int:
    if isinstance(node, ast.Constant):
        if type(node.value) is not int:
            raise ExprError(f"bad expression {text!r}: {node.value!r} is not an integer")
        return node.value
    if isinstance(node, ast.Name):
        return _symbol(node.id, symbols, forward).addr
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        symbol = _symbol(node.value.id, symbols, forward)
        if node.attr not in ATTRIBUTES:
            raise ExprError(
                f"{node.value.id}.{node.attr}: unknown symbol attribute "
                f"(expected one of {', '.join(ATTRIBUTES)})"
            )
        return ATTRIBUTES[node.attr](symbol)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, text, symbols, forward))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _eval(node.left, text, symbols, forward)
        right = _eval(node.right, text, symbols, forward)
        if isinstance(node.op, ast.FloorDiv | ast.Mod) and right == 0:
            raise ExprError(f"division by zero in {text!r}")
        if isinstance(node.op, ast.LShift | ast.RShift) and not 0 <= right <= _MAX_SHIFT:
            raise ExprError(f"shift by {right} in {text!r} (allowed: 0..{_MAX_SHIFT})")
        return _BINARY[type(node.op)](left, right)
    try:
        culprit = ast.get_source_segment(text, node) or type(node).__name__
    except Exception:  # pragma: no cover - only for the message
        culprit = type(node).__name__
    raise ExprError(
        f"bad expression {text!r}: {culprit!r} is not allowed "
        "(integers, symbols, NAME.size/.count/.end, + - * // % << >> and parentheses)"
    )


def _symbol(name: str, symbols: Mapping[str, Symbol], forward: str) -> Symbol:
    try:
        return symbols[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(symbols), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ExprError(f"undefined symbol {name!r}{hint}{forward}") from None
