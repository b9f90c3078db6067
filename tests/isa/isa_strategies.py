"""Hypothesis strategies for instructions and programs, shared by the ISA tests.

The token-flag rules are restated here from spec.py's docstring (load has no previous
stream, store no next one, halt none at all) rather than taken from the code under test.
"""

from __future__ import annotations

import keyword

from hypothesis import strategies as st

from edgenpu.isa import SPECS, Field, Instruction, Opcode, Stream

_PREV = {Stream.LOAD: False, Stream.COMPUTE: True, Stream.STORE: True}
_NEXT = {Stream.LOAD: True, Stream.COMPUTE: True, Stream.STORE: False}


def field_values(f: Field) -> st.SearchStrategy[int]:
    """Any legal value of ``f``: an enum member, or an integer in its range."""
    if f.enum is not None:
        return st.sampled_from(list(f.enum))
    return st.integers(f.min, f.max)


@st.composite
def instructions(draw, opcode: Opcode | None = None) -> Instruction:
    """A random legal instruction (of ``opcode`` if given)."""
    op = draw(st.sampled_from(list(Opcode))) if opcode is None else opcode
    spec = SPECS[op]
    values = {f.name: draw(field_values(f)) for f in spec.fields}
    stream = values["stream"] if op is Opcode.NOP else spec.stream
    if stream is not None:
        for side, allowed in (("prev", _PREV[stream]), ("next", _NEXT[stream])):
            if allowed:
                values[f"pop_{side}"] = draw(st.integers(0, 1))
                values[f"push_{side}"] = draw(st.integers(0, 1))
    return Instruction.make(op, **values)


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n)
)
