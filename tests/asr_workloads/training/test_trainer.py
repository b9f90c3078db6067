"""The training loop on the tiny corpus: the loss falls, an interrupted run resumes to the
same weights, and the schedules do what the recipe says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.corpus import open_split
from edgenpu.asr_workloads.model_config import ModelConfig
from edgenpu.asr_workloads.recipe import CompressionConfig, DistillationConfig, load_recipe
from edgenpu.asr_workloads.rnnt.loss import rnnt_loss
from edgenpu.asr_workloads.rnnt.model import RNNT
from edgenpu.asr_workloads.text import BLANK
from edgenpu.asr_workloads.training.batches import make_batch
from edgenpu.asr_workloads.training.checkpoint import read_log
from edgenpu.asr_workloads.training.trained import load_trained
from edgenpu.asr_workloads.training.trainer import (
    TrainingError,
    compute_penalty_scale,
    learning_rate,
    predictor_dropout,
    train,
)


def _mean_loss(model, corpus, frontend):
    """RNN-T loss per target token over the whole tiny training split (no augmentation)."""
    split = open_split(corpus, "train")
    batch = make_batch(split, np.arange(len(split)), frontend)
    with torch.no_grad():
        encoded = model.encode(torch.from_numpy(batch.features), torch.from_numpy(batch.lengths))
        tokens = torch.nn.functional.pad(torch.from_numpy(batch.targets), (1, 0), value=BLANK)
        predicted, _ = model.predict(tokens)
        logits = model.joint(encoded.frames, predicted)
        loss = rnnt_loss(
            logits,
            torch.from_numpy(batch.targets),
            encoded.lengths,
            torch.from_numpy(batch.target_lengths),
            reduction="sum",
        )
    return float(loss) / batch.target_lengths.sum()


def test_the_loss_falls(tiny_run, tiny_corpus):
    trained = load_trained(tiny_run)
    recipe = load_recipe("tiny")
    torch.manual_seed(recipe.seed)
    untrained = RNNT(trained.config).eval()
    before = _mean_loss(untrained, tiny_corpus, trained.frontend)
    after = _mean_loss(trained.model(), tiny_corpus, trained.frontend)
    assert after < 0.8 * before, (before, after)
    assert trained.steps == recipe.train.steps
    assert trained.precision == "int4"
    kept = np.mean([m.float().mean() for m in trained.masks.values()])
    assert kept == pytest.approx(0.5, abs=0.01)
    log = read_log(tiny_run)
    assert [r["step"] for r in log] == list(range(4, recipe.train.steps, recipe.train.log_every))
    assert all(np.isfinite(r["loss"]) for r in log)


def test_the_loss_falls_with_the_pruned_transducer_loss(tiny_corpus, tmp_path):
    recipe = load_recipe("tiny")
    pruned = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, prune_window=2))
    train(pruned, tiny_corpus, tmp_path, threads=1)
    trained = load_trained(tmp_path)
    torch.manual_seed(recipe.seed)
    untrained = RNNT(trained.config).eval()
    # Judged by the full lattice's loss: the windows must have followed real alignments.
    before = _mean_loss(untrained, tiny_corpus, trained.frontend)
    after = _mean_loss(trained.model(), tiny_corpus, trained.frontend)
    assert after < 0.8 * before, (before, after)
    log = read_log(tmp_path)
    assert all(r["simple"] > 0 and np.isfinite(r["rnnt"]) for r in log)


@pytest.mark.parametrize("prune_window", [0, 2])
def test_bfloat16_autocast_trains(tiny_corpus, tmp_path, prune_window):
    recipe = load_recipe("tiny")
    runs = {}
    for bfloat16 in (False, True):
        run = dataclasses.replace(
            recipe,
            compression=CompressionConfig(),
            train=dataclasses.replace(recipe.train, bfloat16=bfloat16, prune_window=prune_window),
        )
        train(run, tiny_corpus, tmp_path / str(bfloat16), threads=1)
        runs[bfloat16] = load_trained(tmp_path / str(bfloat16))
    torch.manual_seed(recipe.seed)
    untrained = RNNT(runs[True].config).eval()
    before = _mean_loss(untrained, tiny_corpus, runs[True].frontend)
    after = _mean_loss(runs[True].model(), tiny_corpus, runs[True].frontend)
    assert after < 0.8 * before, (before, after)
    assert runs[True].state_dict["ctc.weight"].dtype == torch.float32
    # The products really ran in bfloat16: same seed and batches, different weights.
    assert not torch.equal(
        runs[True].state_dict["ctc.weight"], runs[False].state_dict["ctc.weight"]
    )


def test_a_fine_tune_continues_its_parents_simple_joint(tiny_corpus, tmp_path):
    recipe = load_recipe("tiny")
    pruned = dataclasses.replace(
        recipe, train=dataclasses.replace(recipe.train, steps=12, prune_window=2)
    )
    train(pruned, tiny_corpus, tmp_path / "parent", threads=1)
    parent = load_trained(tmp_path / "parent").aids["simple_lm"]["weight"]
    rate = pruned.train.learning_rate
    assert float(parent.abs().max()) > 5 * rate  # it has learnt: zero is far away
    child = dataclasses.replace(pruned, train=dataclasses.replace(pruned.train, steps=1))
    train(child, tiny_corpus, tmp_path / "child", init_dir=tmp_path / "parent", threads=1)
    # One Adam step moves each weight by about the learning rate at most.
    moved = load_trained(tmp_path / "child").aids["simple_lm"]["weight"] - parent
    assert float(moved.abs().max()) <= 1.5 * rate


@pytest.mark.parametrize("prune_window", [0, 2])
def test_an_interrupted_run_resumes_to_the_same_weights(tiny_corpus, tmp_path, prune_window):
    recipe = load_recipe("tiny")
    recipe = dataclasses.replace(
        recipe, train=dataclasses.replace(recipe.train, steps=14, prune_window=prune_window)
    )
    train(recipe, tiny_corpus, tmp_path / "whole", threads=1)
    train(recipe, tiny_corpus, tmp_path / "parts", threads=1, stop_after=7)
    assert not (tmp_path / "parts" / "model.pt").exists()
    train(recipe, tiny_corpus, tmp_path / "parts", threads=1)
    whole = load_trained(tmp_path / "whole")
    parts = load_trained(tmp_path / "parts")
    for name, value in whole.state_dict.items():
        torch.testing.assert_close(parts.state_dict[name], value, rtol=0, atol=0, msg=name)
    assert read_log(tmp_path / "whole") == [
        {**r, "seconds": w["seconds"]}
        for r, w in zip(read_log(tmp_path / "parts"), read_log(tmp_path / "whole"), strict=True)
    ]


def test_a_checkpoint_of_another_recipe_is_refused(tiny_corpus, tmp_path):
    recipe = load_recipe("tiny")
    train(recipe, tiny_corpus, tmp_path, threads=1, stop_after=1)
    other = dataclasses.replace(recipe, seed=recipe.seed + 1)
    with pytest.raises(TrainingError, match="checkpoint.pt: was made by a different recipe"):
        train(other, tiny_corpus, tmp_path, threads=1)


def test_a_checkpoint_from_before_a_new_recipe_field_resumes(tiny_corpus, tmp_path):
    # An older version recorded no transducer_learning_rate; its default means the same run.
    recipe = load_recipe("tiny")
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=4))
    train(recipe, tiny_corpus, tmp_path, threads=1, stop_after=2)
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    del state["recipe"]["train"]["transducer_learning_rate"]
    torch.save(state, path)
    train(recipe, tiny_corpus, tmp_path, threads=1)
    assert load_trained(tmp_path).steps == 4


def test_schedules():
    recipe = load_recipe("default")
    t = recipe.train
    assert learning_rate(0, recipe) == pytest.approx(t.learning_rate / t.warmup_steps)
    assert learning_rate(t.warmup_steps, recipe) == pytest.approx(t.learning_rate)
    assert learning_rate(t.steps, recipe) == pytest.approx(t.final_learning_rate)
    start = t.ctc_only_steps
    assert predictor_dropout(0, recipe) == predictor_dropout(start, recipe) == t.predictor_dropout
    middle = (start + t.predictor_dropout_until) // 2
    assert predictor_dropout(middle, recipe) == pytest.approx(t.predictor_dropout / 2)
    assert predictor_dropout(t.predictor_dropout_until, recipe) == 0.0


def test_two_phase_schedule_restarts_at_the_transducer():
    recipe = load_recipe("default")
    train = dataclasses.replace(recipe.train, transducer_learning_rate=1e-3)
    recipe = dataclasses.replace(recipe, train=train)
    start, final = train.ctc_only_steps, train.final_learning_rate
    assert learning_rate(train.warmup_steps, recipe) == pytest.approx(train.learning_rate)
    warmup = train.transducer_warmup_steps
    # The CTC phase decays to the final rate at its end, not at the run's end.
    assert learning_rate(start - 1, recipe) == pytest.approx(final, rel=1e-3)
    assert learning_rate(start, recipe) == pytest.approx(1e-3 / warmup)
    assert learning_rate(start + warmup, recipe) == pytest.approx(1e-3)
    middle = (start + warmup + train.steps) / 2
    assert learning_rate(int(middle), recipe) == pytest.approx((1e-3 + final) / 2, rel=1e-2)
    assert learning_rate(train.steps, recipe) == pytest.approx(final)


def test_distillation_from_a_trained_teacher(tiny_run, tiny_corpus, tmp_path):
    recipe = load_recipe("tiny")
    student = dataclasses.replace(
        recipe,
        train=dataclasses.replace(recipe.train, steps=5, log_every=1),
        distillation=DistillationConfig(teacher="tiny", weight=0.5, temperature=2.0),
    )
    with pytest.raises(TrainingError, match="distils from 'tiny': give the teacher's output"):
        train(student, tiny_corpus, tmp_path / "a", threads=1)
    train(student, tiny_corpus, tmp_path / "b", teacher_dir=tiny_run, threads=1)
    log = read_log(tmp_path / "b")
    assert len(log) == 5
    assert all(r["distill"] > 0 and np.isfinite(r["distill"]) for r in log)


@pytest.mark.parametrize(("prune_window", "bfloat16"), [(0, False), (2, False), (2, True)])
def test_a_branching_model_trains_with_its_compute_penalty(
    tiny_corpus, tmp_path, prune_window, bfloat16
):
    recipe = load_recipe("tiny")
    model = ModelConfig.from_dict(
        {
            **recipe.model.to_dict(),
            "encoder": {"hidden": [32, 24], "reduce": [2, 1]},
            "branching": {"stem_layers": 1, "cheap_hidden": [24], "penalty": 2.0},
        }
    )
    branching = dataclasses.replace(
        recipe,
        model=model,
        train=dataclasses.replace(
            recipe.train,
            steps=4,
            log_every=1,
            compute_penalty_start=1,
            compute_penalty_ramp=2,
            prune_window=prune_window,
            bfloat16=bfloat16,
        ),
    )
    assert [compute_penalty_scale(s, branching) for s in range(4)] == [0.0, 0.5, 1.0, 1.0]
    train(branching, tiny_corpus, tmp_path, threads=1)
    log = read_log(tmp_path)
    assert log[0]["compute"] == 0.0
    # The gate's choices are logged whether or not the penalty is on yet.
    assert all(0 < r["expensive_fraction"] < 1 for r in log)
    # Half the weight at step 1, the full weight (2.0) times a fraction in (0, 1) after.
    assert 0 < log[1]["compute"] < 1.0
    assert 0 < log[2]["compute"] < 2.0
    assert load_trained(tmp_path).config.branching.penalty == 2.0


def test_a_branching_models_budget_penalises_both_ways(tiny_corpus, tmp_path):
    recipe = load_recipe("tiny")
    model = ModelConfig.from_dict(
        {
            **recipe.model.to_dict(),
            "encoder": {"hidden": [32, 24], "reduce": [2, 1]},
            "branching": {"stem_layers": 1, "cheap_hidden": [24], "penalty": 2.0, "budget": 0.3},
        }
    )
    branching = dataclasses.replace(
        recipe, model=model, train=dataclasses.replace(recipe.train, steps=3, log_every=1)
    )
    train(branching, tiny_corpus, tmp_path, threads=1)
    log = read_log(tmp_path)
    for record in log:
        expected = 2.0 * (record["expensive_fraction"] - 0.3) ** 2
        assert record["compute"] == pytest.approx(expected, rel=1e-4)
    # The gate starts open on most frames: the penalty acts from the first step.
    assert log[0]["expensive_fraction"] > 0.5
