"""The parameter list of a config against one written out by hand from the contract."""

from __future__ import annotations

import pytest

from edgenpu.asr_workloads.bundle_params import parameter_shapes
from edgenpu.asr_workloads.model_config import (
    BranchingConfig,
    EncoderConfig,
    JointConfig,
    ModelConfig,
    PredictorConfig,
)


def test_plain_encoder_with_time_reduction():
    config = ModelConfig(
        input_dim=12,
        encoder=EncoderConfig((8, 6), (1, 3)),
        predictor=PredictorConfig(embed=5, hidden=(7,)),
        joint=JointConfig(hidden=9),
        vocab_size=4,
    )
    assert parameter_shapes(config) == {
        "encoder.0.w_ih": (32, 12),
        "encoder.0.w_hh": (32, 8),
        "encoder.0.bias": (32,),
        "encoder.1.w_ih": (24, 24),  # 3 frames of 8 concatenated
        "encoder.1.w_hh": (24, 6),
        "encoder.1.bias": (24,),
        "predictor.embedding": (4, 5),
        "predictor.0.w_ih": (28, 5),
        "predictor.0.w_hh": (28, 7),
        "predictor.0.bias": (28,),
        "joint.encoder.weight": (9, 6),
        "joint.encoder.bias": (9,),
        "joint.predictor.weight": (9, 7),
        "joint.predictor.bias": (9,),
        "joint.output.weight": (4, 9),
        "joint.output.bias": (4,),
    }


def test_branching_encoder_names_the_cheap_branch_and_gate():
    config = ModelConfig(
        input_dim=4,
        encoder=EncoderConfig((3, 5), (2, 1)),
        predictor=PredictorConfig(embed=2, hidden=(3, 2)),
        joint=JointConfig(hidden=6, activation="relu"),
        branching=BranchingConfig(stem_layers=1, cheap_hidden=(2, 5)),
        vocab_size=29,
    )
    shapes = parameter_shapes(config)
    assert list(shapes) == [
        *(f"encoder.{i}.{p}" for i in (0, 1) for p in ("w_ih", "w_hh", "bias")),
        *(f"cheap.{i}.{p}" for i in (0, 1) for p in ("w_ih", "w_hh", "bias")),
        "gate.weight",
        "gate.bias",
        "predictor.embedding",
        *(f"predictor.{i}.{p}" for i in (0, 1) for p in ("w_ih", "w_hh", "bias")),
        *(f"joint.{n}.{p}" for n in ("encoder", "predictor", "output") for p in ("weight", "bias")),
    ]
    assert shapes["encoder.0.w_ih"] == (12, 8)
    assert shapes["encoder.1.w_ih"] == (20, 3)  # the expensive branch reads the stem
    assert shapes["cheap.0.w_ih"] == (8, 3)
    assert shapes["cheap.1.w_ih"] == (20, 2)
    assert shapes["gate.weight"] == (1, 3)
    assert shapes["predictor.1.w_ih"] == (8, 3)
    assert shapes["joint.encoder.weight"] == (6, 5)
    assert shapes["joint.predictor.weight"] == (6, 2)


def test_rejects_what_is_not_a_config():
    with pytest.raises(TypeError, match="config must be a ModelConfig, not dict"):
        parameter_shapes({})
