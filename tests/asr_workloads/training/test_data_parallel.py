"""Data-parallel training: two worker processes train what one process does, a run resumes
under another worker count, and a worker's error reaches the caller as itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.corpus import open_split
from edgenpu.asr_workloads.model_config import ModelConfig
from edgenpu.asr_workloads.recipe import load_recipe
from edgenpu.asr_workloads.training.batches import make_batch, take_rows
from edgenpu.asr_workloads.training.checkpoint import read_log
from edgenpu.asr_workloads.training.data_parallel import Shard
from edgenpu.asr_workloads.training.trained import load_trained
from edgenpu.asr_workloads.training.trainer import TrainingError, train


def _recipe(**train_fields):
    # Batches of 3 from 16 utterances: every epoch ends with a batch of one, which leaves
    # the second worker no utterance of its own. Every worker draws the same voice warps.
    recipe = load_recipe("tiny")
    fields = {
        "steps": 14,
        "batch_size": 3,
        "log_every": 1,
        "prune_window": 2,
        "vocal_tract_warp": 0.1,
    }
    return dataclasses.replace(
        recipe, train=dataclasses.replace(recipe.train, **fields | train_fields)
    )


def _assert_same_run(a, b):
    """The same weights and log up to the order of floating-point sums."""
    first, second = load_trained(a), load_trained(b)
    for name, value in first.state_dict.items():
        torch.testing.assert_close(second.state_dict[name], value, rtol=1e-4, atol=2e-5, msg=name)
    for x, y in zip(read_log(a), read_log(b), strict=True):
        assert x.keys() == y.keys()
        for key in x.keys() - {"seconds"}:
            assert y[key] == pytest.approx(x[key], rel=1e-4, abs=1e-6), (x["step"], key)


def test_shards_interleave_a_batch_and_trim_its_padding(tiny_corpus, tiny_run):
    assert Shard(0, 2).rows(5).tolist() == [0, 2, 4]
    assert Shard(1, 2).rows(5).tolist() == [1, 3]
    assert Shard(1, 2).rows(1).tolist() == []
    split = open_split(tiny_corpus, "train")
    frontend = load_trained(tiny_run).frontend
    order = np.argsort(split.frame_counts)
    batch = make_batch(split, order[[0, 1, 15]], frontend)
    short = take_rows(batch, np.array([0, 1]))
    assert short.features.shape[1] == short.lengths.max() < batch.features.shape[1]
    assert short.targets.shape[1] == short.target_lengths.max()
    np.testing.assert_array_equal(short.features, batch.features[:2, : short.features.shape[1]])


def test_two_workers_train_what_one_does_and_resume_under_one(tiny_corpus, tmp_path):
    recipe = _recipe()
    train(recipe, tiny_corpus, tmp_path / "one", threads=1)
    relayed = []
    train(
        recipe,
        tiny_corpus,
        tmp_path / "two",
        threads=1,
        workers=2,
        progress=lambda step, steps, record: relayed.append(step),
    )
    assert relayed == list(range(1, 15))
    _assert_same_run(tmp_path / "one", tmp_path / "two")

    train(recipe, tiny_corpus, tmp_path / "parts", threads=1, workers=2, stop_after=6)
    assert not (tmp_path / "parts" / "model.pt").exists()
    assert len(read_log(tmp_path / "parts")) == 6
    train(recipe, tiny_corpus, tmp_path / "parts", threads=1)
    _assert_same_run(tmp_path / "one", tmp_path / "parts")


def test_two_workers_penalise_the_whole_batchs_expensive_fraction(tiny_corpus, tmp_path):
    recipe = _recipe(steps=5, prune_window=0, compute_penalty_start=1)
    model = ModelConfig.from_dict(
        {
            **recipe.model.to_dict(),
            "encoder": {"hidden": [32, 24], "reduce": [2, 1]},
            "branching": {"stem_layers": 1, "cheap_hidden": [24], "penalty": 2.0, "budget": 0.3},
        }
    )
    branching = dataclasses.replace(recipe, model=model)
    train(branching, tiny_corpus, tmp_path / "one", threads=1)
    train(branching, tiny_corpus, tmp_path / "two", threads=1, workers=2)
    _assert_same_run(tmp_path / "one", tmp_path / "two")
    log = read_log(tmp_path / "two")
    assert log[0]["compute"] == 0.0 and log[1]["compute"] > 0


def test_a_workers_error_is_raised_as_itself(tiny_corpus, tmp_path):
    recipe = _recipe()
    train(recipe, tiny_corpus, tmp_path, threads=1, stop_after=1)
    other = dataclasses.replace(recipe, seed=recipe.seed + 1)
    with pytest.raises(TrainingError, match="checkpoint.pt: was made by a different recipe"):
        train(other, tiny_corpus, tmp_path, threads=1, workers=2)
    with pytest.raises(TrainingError, match="workers must be an integer >= 1, not 0"):
        train(recipe, tiny_corpus, tmp_path, workers=0)
