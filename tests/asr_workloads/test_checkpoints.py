"""The committed checkpoints load with numpy alone, hold what their recipes promise, and
transcribe real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgenpu.asr_workloads.bundle import load_bundle
from edgenpu.asr_workloads.bundle_sizes import weight_sizes
from edgenpu.asr_workloads.numpy_model import transcribe
from edgenpu.asr_workloads.recipe import load_recipe
from edgenpu.asr_workloads.wav import read_wav

CHECKPOINTS = Path(__file__).parents[2] / "asr_workloads" / "checkpoints"
FSDD = Path(__file__).parents[2].parent / "shared" / "data" / "fsdd" / "recordings"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
BUNDLES = sorted(p.stem for p in CHECKPOINTS.glob("*.yaml"))


def test_the_promised_checkpoints_are_there():
    assert {"int8", "int4_sparse", "int4_2of4", "branching"} <= set(BUNDLES)


@pytest.mark.parametrize("name", BUNDLES)
def test_a_checkpoint_matches_its_recipe(name):
    bundle = load_bundle(CHECKPOINTS / f"{name}.yaml")
    recipe = load_recipe(bundle.metadata["recipe"])
    # As trained, or (a float model) quantized after training.
    trained = bundle.metadata.get("post_training", recipe.compression.precision)
    assert bundle.precision == trained
    assert bundle.metadata["steps"] == recipe.train.steps
    assert bundle.config.encoder == recipe.model.encoder
    assert bundle.frontend.feature_dim == bundle.config.input_dim
    pruning = recipe.compression.pruning
    sizes = weight_sizes(bundle)
    if pruning is None:
        assert sizes.sparsity == 0.0
    else:
        assert bundle.metadata["sparsity"] == pruning.pattern
        assert sizes.sparsity == pytest.approx(pruning.sparsity, abs=0.005)


@pytest.mark.skipif(not FSDD.is_dir(), reason="the FSDD recordings are not beside the project")
@pytest.mark.parametrize("name", BUNDLES)
def test_a_checkpoint_recognises_spoken_digits(name):
    """Digits of a training speaker, with the leading and trailing silence the corpus adds.

    The bar (3 of 10) is what a model that decodes at all clears and a broken bundle or
    decoder does not (an untrained model gets none); the models' real accuracy is in the
    README's table.
    """
    bundle = load_bundle(CHECKPOINTS / f"{name}.yaml")
    correct = 0
    for digit, word in enumerate(DIGITS):
        audio, rate = read_wav(FSDD / f"{digit}_jackson_3.wav")
        silence = np.zeros(int(0.3 * rate), np.float32)
        correct += transcribe(bundle, np.concatenate([silence, audio, silence]), rate) == word
    assert correct >= 3
