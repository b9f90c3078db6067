"""Weight sizes of a bundle, counted by hand and encoded through the hardware formats."""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.asr_workloads.bundle import bundle_from_weights
from edgenpu.asr_workloads.bundle_params import parameter_shapes
from edgenpu.asr_workloads.bundle_sizes import weight_sizes
from edgenpu.asr_workloads.frontend import FrontEndConfig
from edgenpu.asr_workloads.model_config import (
    EncoderConfig,
    JointConfig,
    ModelConfig,
    PredictorConfig,
    is_prunable,
)
from edgenpu.formats import WeightFormat, encode
from edgenpu.precision import Precision

FRONTEND = FrontEndConfig(n_mels=8, f_min=100.0)
CONFIG = ModelConfig(
    input_dim=8,
    encoder=EncoderConfig((8,)),
    predictor=PredictorConfig(embed=4, hidden=(8,)),
    joint=JointConfig(hidden=8),
)
# Matrices: encoder 32x8 + 32x8, embedding 29x4, predictor 32x4 + 32x8, joint 8x8 + 8x8 + 29x8.
ELEMENTS = 256 + 256 + 116 + 128 + 256 + 64 + 64 + 232
ROWS = 32 + 32 + 29 + 32 + 32 + 8 + 8 + 29
BIASES = 32 + 32 + 8 + 8 + 29


def weights(seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.normal(0, 1, s).astype(np.float32) for n, s in parameter_shapes(CONFIG).items()}


@pytest.mark.parametrize("precision", [None, "int8", "int4"])
def test_dense_sizes_follow_the_element_count(precision):
    sizes = weight_sizes(bundle_from_weights(CONFIG, FRONTEND, weights(), precision))
    assert sizes.weights == sizes.kept == ELEMENTS and sizes.sparsity == 0
    assert sizes.float32 == 4 * ELEMENTS
    assert sizes.int8 == ELEMENTS
    assert sizes.int4 == ELEMENTS // 2  # every matrix has an even count: no half-used byte
    assert sizes.biases == 4 * BIASES and sizes.scales == 4 * ROWS
    assert sizes.int8_compressed <= sizes.int8 and sizes.int4_compressed <= sizes.int4


def test_pruned_sizes_are_what_the_formats_encode():
    rng = np.random.default_rng(1)
    masks = {n: rng.random(s) < 0.25 for n, s in parameter_shapes(CONFIG).items() if is_prunable(n)}
    bundle = bundle_from_weights(CONFIG, FRONTEND, weights(), "int8", masks)
    sizes = weight_sizes(bundle)
    assert sizes.kept == ELEMENTS - sum(int((~m).sum()) for m in masks.values())
    expected = 0
    for param in bundle.parameters.values():
        if param.codes is None:
            continue
        candidates = [encode(param.codes, WeightFormat.DENSE, Precision.INT8)]
        candidates.append(encode(param.codes, WeightFormat.BITMASK, Precision.INT8))
        expected += min(map(len, candidates))
    assert sizes.int8_compressed == expected < sizes.int8
    assert sizes.int4_compressed < sizes.int8_compressed
    assert "sparsity" in sizes.table()


def test_two_four_matrices_are_also_sized_in_the_nm_format():
    masks = {
        n: np.tile([True, True, False, False], (s[0], s[1] // 4))
        for n, s in parameter_shapes(CONFIG).items()
        if is_prunable(n)
    }
    bundle = bundle_from_weights(CONFIG, FRONTEND, weights(), "int4", masks, {"sparsity": "2:4"})
    sizes = weight_sizes(bundle)
    assert sizes.sparsity == pytest.approx(0.5 * (ELEMENTS - 116) / ELEMENTS)
    expected = 0
    for name, param in bundle.parameters.items():
        if param.codes is None:
            continue
        formats = [WeightFormat.DENSE, WeightFormat.BITMASK]
        formats += [WeightFormat.NM2_4] if is_prunable(name) else []
        expected += min(len(encode(param.codes, fmt, Precision.INT4)) for fmt in formats)
    assert sizes.int4_compressed == expected
