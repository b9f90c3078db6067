"""The rounding, saturation and requantization rules, against plain-integer definitions."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgenpu.fixedpoint import (
    quantize_multipliers,
    requantize,
    rounding_shift_right,
    saturate,
    wrap_int32,
)


def reference_round_shift(x: int, s: int) -> int:
    # Round half up, with exact rational arithmetic: floor(x / 2**s + 1/2).
    if s == 0:
        return x
    return (2 * x + (1 << s)) // (1 << (s + 1))


@given(st.integers(-(2**62), 2**62), st.integers(0, 63))
def test_rounding_shift_matches_exact_definition(x, s):
    assert int(rounding_shift_right(np.array([x]), s)[0]) == reference_round_shift(x, s)


def test_rounding_shift_ties_go_up():
    x = np.array([5, -5, 6, -6, 7, -7, 3, -3])
    assert rounding_shift_right(x, 1).tolist() == [3, -2, 3, -3, 4, -3, 2, -1]


def test_rounding_shift_extreme_product_does_not_overflow():
    extreme = np.array([(-(2**31)) * (-(2**31))], dtype=np.int64)  # 2**62
    assert rounding_shift_right(extreme, 63).tolist() == [1]
    assert rounding_shift_right(-extreme, 63).tolist() == [0]  # -0.5 rounds up to 0


def test_shift_out_of_range():
    with pytest.raises(ValueError, match="shift must be in 0..63, not 64"):
        rounding_shift_right(np.array([1]), 64)


def test_saturate_and_wrap():
    assert saturate(np.array([-200, -128, 0, 127, 300]), 8).tolist() == [-128, -128, 0, 127, 127]
    assert saturate(np.array([40000]), 16).tolist() == [32767]
    assert wrap_int32(np.array([2**31, -(2**31) - 1])).tolist() == [-(2**31), 2**31 - 1]


@given(
    st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=20),
    st.integers(1, 2**31 - 1),
    st.integers(0, 63),
)
def test_requantize_is_multiply_shift_saturate(acc, mult, shift):
    got = requantize(np.array(acc), np.array(mult), shift, 8)
    want = [max(-128, min(127, reference_round_shift(a * mult, shift))) for a in acc]
    assert got.tolist() == want


def test_quantize_multipliers_share_one_shift_and_stay_accurate():
    scales = np.array([0.5, 0.01, 0.0003, 0.49999])
    mult, shift = quantize_multipliers(scales)
    assert mult.max() < 2**31
    assert np.all(np.abs(mult / 2.0**shift - scales) <= 0.5 / 2.0**shift)
    assert mult.max() >= 2**30  # the largest scale keeps 31 significant bits


@pytest.mark.parametrize("bad", [[0.0], [-1.0], [np.inf], [], [2.0**31]])
def test_quantize_multipliers_rejects(bad):
    with pytest.raises(ValueError):
        quantize_multipliers(np.array(bad))
