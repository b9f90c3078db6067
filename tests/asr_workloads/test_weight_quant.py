"""The weight quantization rule, in numpy (the torch path is tested with the models)."""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.asr_workloads.weight_quant import channel_scales, codes, dequantize, qmax


def test_scales_are_per_row_peaks_over_qmax_and_zero_rows_get_one():
    w = np.array([[0.5, -1.27], [0.0, 0.0], [0.07, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(channel_scales(w, "int8", np), [[0.01], [1.0], [0.0005512]], 1e-4)
    np.testing.assert_allclose(channel_scales(w, "int4", np)[2], [0.01])


def test_codes_round_half_up_and_stay_symmetric():
    scale = np.array([[1.0]])
    w = np.array([[-2.5, -0.5, 0.5, 1.5, 200.0, -200.0]])
    np.testing.assert_array_equal(codes(w, scale, "int8", np), [[-2, 0, 1, 2, 127, -127]])
    np.testing.assert_array_equal(codes(w, scale, "int4", np), [[-2, 0, 1, 2, 7, -7]])


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_dequantize_is_on_the_grid_and_within_half_a_step(precision):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 40)).astype(np.float32)
    scale = channel_scales(w, precision, np)
    q = dequantize(w, precision, np)
    steps = q / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert np.abs(steps).max() <= qmax(precision) + 1e-4
    assert np.all(np.abs(q - w) <= scale / 2 + 1e-6)
    # Each row's largest weight is exactly representable.
    np.testing.assert_allclose(np.abs(q).max(axis=1), np.abs(w).max(axis=1), rtol=1e-6)


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="weight precision must be one of int8, int4, not 'int2'"):
        qmax("int2")
