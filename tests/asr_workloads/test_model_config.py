"""The architecture contract: validation, derived sizes, YAML round trip, parameter roles."""

from __future__ import annotations

import pytest

from edgenpu.asr_workloads.model_config import ModelConfig, is_prunable, is_quantized

DEFAULT = {
    "input_dim": 120,
    "encoder": {"hidden": [256, 256, 256], "reduce": [1, 2, 1]},
    "predictor": {"embed": 64, "hidden": [256]},
    "joint": {"hidden": 256, "activation": "tanh"},
}


def test_round_trip_and_derived_sizes():
    config = ModelConfig.from_dict(DEFAULT)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert (config.encoder_dim, config.predictor_dim, config.time_reduction) == (256, 256, 2)
    assert config.vocab_size == 29
    assert ModelConfig.from_dict({**DEFAULT, "encoder": {"hidden": [8, 8]}}).encoder.reduce == (
        1,
        1,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoder": {"hidden": [8], "stride": [2]}}, "unknown key model.encoder.stride"),
        ({"encoder": {"hidden": [8, 8], "reduce": [2]}}, "encoder.reduce must have one entry"),
        ({"encoder": {"hidden": []}}, "encoder.hidden must be a non-empty list"),
        ({"joint": {"hidden": 8, "activation": "gelu"}}, "joint.activation must be one of tanh"),
        ({"predictor": {"embed": 0, "hidden": [8]}}, "predictor.embed must be a positive integer"),
        ({"extra": 1}, "unknown key model.extra"),
        (
            {"branching": {"stem_layers": 3, "cheap_hidden": [256]}},
            "branching.stem_layers must leave at least one encoder layer",
        ),
        (
            {"branching": {"stem_layers": 1, "cheap_hidden": [128]}},
            r"encoder.reduce must be 1 after the branching stem .*, not \[2, 1\]",
        ),
        (
            {
                "encoder": {"hidden": [256, 256], "reduce": [2, 1]},
                "branching": {"stem_layers": 1, "cheap_hidden": [128]},
            },
            "branching.cheap_hidden must end with the encoder's last size 256",
        ),
        (
            {
                "encoder": {"hidden": [256, 256], "reduce": [2, 1]},
                "branching": {"stem_layers": 1, "cheap_hidden": [256], "budget": 1.0},
            },
            r"branching.budget must be a number in \(0, 1\), not 1.0",
        ),
    ],
)
def test_bad_configs_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict({**DEFAULT, **change})


def test_parameter_roles():
    assert is_quantized("encoder.0.w_ih") and is_prunable("encoder.0.w_ih")
    assert is_quantized("predictor.embedding") and not is_prunable("predictor.embedding")
    assert is_quantized("gate.weight") and not is_prunable("gate.weight")
    assert is_prunable("joint.output.weight")
    assert not is_quantized("ctc.weight") and not is_prunable("ctc.weight")
    assert not is_quantized("encoder.0.bias") and not is_prunable("joint.output.bias")
