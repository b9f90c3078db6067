"""Recipes: every preset loads, and each kind of mistake is named with its file and key."""

from __future__ import annotations

import pytest
import yaml

from edgenpu.asr_workloads.recipe import RecipeError, load_recipe, preset_names, with_input_dim


@pytest.mark.parametrize("name", preset_names())
def test_presets_load_and_round_trip(name, tmp_path):
    recipe = load_recipe(name)
    assert recipe.name == name
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(recipe.to_dict()))
    again = load_recipe(path)
    assert again.to_dict() == recipe.to_dict()


def test_input_width_comes_from_the_corpus_bands():
    recipe = load_recipe("default")
    assert with_input_dim(recipe, 40).input_dim == 40 * recipe.stack


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(optimiser="sgd"), "unknown key optimiser"),
        (lambda r: r["train"].update(stpes=3), "unknown key train.stpes"),
        (lambda r: r["model"]["joint"].update(size=3), "unknown key model.joint.size"),
        (lambda r: r.update(compression={"precision": "int2"}), "compression.precision must be"),
        (
            lambda r: r.update(
                compression={"pruning": {"sparsity": 0.7, "start": 0, "end": 5, "pattern": "2:4"}}
            ),
            "compression.pruning.sparsity must be 0.5 for pattern 2:4",
        ),
        (lambda r: r["train"].update(steps=0), "train.steps must be an integer >= 1, not 0"),
        (
            lambda r: r["train"].update(transducer_learning_rate=1e-3, ctc_only_steps=0),
            "train.transducer_learning_rate needs a CTC phase and a transducer phase",
        ),
        (lambda r: r["train"].update(prune_window=-1), "train.prune_window must be an integer"),
        (lambda r: r["train"].update(bfloat16="yes"), "train.bfloat16 must be true or false"),
        (
            lambda r: r["train"].update(vocal_tract_warp=0.6),
            r"train.vocal_tract_warp must be in \[0.0, 0.5\], not 0.6",
        ),
        (
            lambda r: r.update(
                distillation={"teacher": "teacher"}, train={"steps": 9, "prune_window": 4}
            ),
            "distillation compares the joint's outputs over the whole lattice: it needs "
            "train.prune_window 0, not 4",
        ),
        (lambda r: r.pop("corpus"), "missing key corpus"),
        (lambda r: r["frontend"].update(n_mels=80), "unknown key frontend.n_mels"),
        (
            lambda r: r["train"]["spec_augment"].update(time_mask=1),
            "unknown key train.spec_augment.time_mask",
        ),
    ],
)
def test_mistakes_are_named_with_the_file(edit, message, tmp_path):
    data = load_recipe("default").to_dict()
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match=rf"^{path}: .*{message}"):
        load_recipe(path)


def test_unknown_preset_and_unreadable_file(tmp_path):
    with pytest.raises(RecipeError, match="no recipe 'nope': not a .yaml file, nor a preset"):
        load_recipe("nope")
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(tmp_path / "missing.yaml")
