"""SymInt arithmetic equals integer arithmetic at every value of the symbol, and proves the
pad and length identities the ONNX frontend relies on."""

from __future__ import annotations

import itertools

import pytest

from edgenpu.compiler.frontends.symbolic import SymInt, from_dim, to_dim
from edgenpu.compiler.shapes import SymDim
from edgenpu.errors import CompileError

T = SymInt.symbol("T")


def _exprs():
    yield "T", lambda t: t
    for r, k in itertools.product([2, 3, 4], [1, 5]):
        yield f"(r - T % r) % r, r={r}", lambda t, r=r: (r - t % r) % r
        yield f"(k T + 3) // r, r={r} k={k}", lambda t, r=r, k=k: (k * t + 3) // r
        yield f"ceil(T/r) % k, r={r} k={k}", lambda t, r=r, k=k: ((t + r - 1) // r) % (k + 1)


@pytest.mark.parametrize(("name", "fn"), list(_exprs()))
def test_matches_integers_everywhere(name, fn):
    symbolic = fn(T)
    for t in range(0, 50):
        assert symbolic(t) == fn(t) if isinstance(symbolic, SymInt) else symbolic == fn(t)


def test_identities_are_exact():
    for r in (2, 3, 6):
        assert (r - T % r) % r == (-T) % r
        assert to_dim((T + (-T) % r) // r) == SymDim("T", r)
    assert from_dim(SymDim("T", 2)) + 1 != from_dim(SymDim("T", 2))
    assert (T + 1) - T == 1


def test_unsupported_arithmetic_is_refused():
    with pytest.raises(CompileError, match="product of two symbolic sizes"):
        _ = T * T
    with pytest.raises(CompileError, match="mixing the sizes T and N"):
        _ = T + SymInt.symbol("N")
    with pytest.raises(CompileError, match="not of the form ceil"):
        to_dim(2 * T)
