"""``edgenpu asr``: each command on the tiny corpus and model, and each bad input as one
``error:`` line with exit status 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from edgenpu.asr_workloads.wav import write_wav
from edgenpu.cli import main

FSDD = Path(__file__).parents[2].parent / "shared" / "data" / "fsdd" / "recordings"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_help():
    for args in (
        ["asr"],
        *[["asr", c] for c in ("synth", "train", "eval", "export", "transcribe")],
    ):
        result = invoke(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_synth_builds_a_corpus_and_names_a_bad_spec(tmp_path):
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("espeak-ng and flite are needed")
    result = invoke("asr", "synth", "--corpus", "tiny", "-o", tmp_path / "c", "-j", "1")
    assert result.exit_code == 0, result.output
    assert "train: 16 utterances" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseeed: 1\n")
    assert "seeed" in one_error_line(invoke("asr", "synth", "--corpus", bad, "-o", tmp_path / "d"))


def test_train_names_a_bad_recipe_key(tmp_path, tiny_corpus):
    data = yaml.safe_load(
        Path(__file__).parents[2].joinpath("asr_workloads", "recipes", "tiny.yaml").read_text()
    )
    data["train"]["learning_rat"] = 1.0
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(data))
    line = one_error_line(
        invoke("asr", "train", "-r", recipe, "--corpus", tiny_corpus, "-o", tmp_path / "out")
    )
    assert (
        line
        == f"error: {recipe}: unknown key train.learning_rat " + (line[line.index("(known:") :])
    )
    assert not (tmp_path / "out").exists()


def test_train_splits_batches_over_workers_and_their_errors_are_one_line(tmp_path, tiny_corpus):
    pytest.importorskip("torch")
    args = ("asr", "train", "--corpus", tiny_corpus, "-o", tmp_path, "--workers", 2, "--threads", 1)
    result = invoke(*args, "-r", "tiny")
    assert result.exit_code == 0, result.output
    assert "trained tiny" in result.output and (tmp_path / "tiny.yaml").exists()
    data = yaml.safe_load(
        Path(__file__).parents[2].joinpath("asr_workloads", "recipes", "tiny.yaml").read_text()
    )
    data["seed"] += 1
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(data))
    line = one_error_line(invoke(*args, "-r", other))
    checkpoint = tmp_path / "checkpoint.pt"
    assert line.startswith(f"error: {checkpoint}: was made by a different recipe; use a new")


def test_train_without_its_init_model_is_a_usage_error(tmp_path, tiny_corpus):
    result = invoke("asr", "train", "-r", "int8", "--corpus", tiny_corpus, "-o", tmp_path)
    assert result.exit_code == 2
    assert "recipe int8 starts from a trained 'default' model: give --init" in result.stderr


def test_export_quantizes_only_float_models(tiny_run, tmp_path):
    result = invoke("asr", "export", tiny_run, "-o", tmp_path, "--precision", "int8")
    assert result.exit_code == 2
    assert "was trained for int4; --precision quantizes float models" in result.stderr
    assert not any(tmp_path.iterdir())


def test_eval_export_and_transcribe(tiny_run, tiny_corpus, tmp_path):
    result = invoke("asr", "eval", tiny_run, "--corpus", tiny_corpus, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["split"] for r in rows][:3] == ["valid", "heldout_voices", "heldout_synth"]
    assert all(r["utterances"] > 0 and r["cer"] >= 0 for r in rows)

    result = invoke("asr", "export", tiny_run, "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny.yaml").exists() and (tmp_path / "encoder.onnx").exists()
    assert "int4 sparse" in result.output

    # The bundle scores the same as the PyTorch model it came from (same greedy search).
    result = invoke(
        "asr", "eval", tmp_path / "tiny.yaml", "--corpus", tiny_corpus, "--split", "valid", "--json"
    )
    assert json.loads(result.stdout)[0]["cer"] == rows[0]["cer"]

    wav = tmp_path / "tone.wav"
    write_wav(wav, 0.1 * np.sin(np.arange(8000) / 5.0), 8000)
    recordings = sorted(FSDD.glob("*.wav"))[:1] if FSDD.is_dir() else []
    result = invoke("asr", "transcribe", tmp_path / "tiny.yaml", wav, *recordings)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{wav}\t")
    assert len(result.output.splitlines()) == 1 + len(recordings)


def test_bad_audio_and_bad_bundle_are_one_line(tiny_run, tmp_path):
    invoke("asr", "export", tiny_run, "-o", tmp_path)
    noise = tmp_path / "noise.wav"
    noise.write_bytes(b"RIFF not really")
    line = one_error_line(invoke("asr", "transcribe", tmp_path / "tiny.yaml", noise))
    assert str(noise) in line
    low = tmp_path / "low.wav"
    write_wav(low, np.zeros(4000), 4000)
    line = one_error_line(invoke("asr", "transcribe", tmp_path / "tiny.yaml", low))
    assert line == (
        f"error: {low}: sample rate 4000 Hz is below the model's 8000 Hz "
        "(the audio lacks the band from 2000 to 4000 Hz)"
    )
    (tmp_path / "tiny.yaml").write_text("format: edgenpu-bundle\n")
    line = one_error_line(invoke("asr", "transcribe", tmp_path / "tiny.yaml", noise))
    assert "tiny.yaml" in line


def test_eval_of_a_missing_model_is_one_line(tmp_path, tiny_corpus):
    pytest.importorskip("torch")
    line = one_error_line(invoke("asr", "eval", tmp_path, "--corpus", tiny_corpus))
    assert (
        line
        == f"error: {tmp_path / 'model.pt'}: no trained model (train one with `edgenpu asr train`)"
    )


def test_synth_without_the_synthesizers_is_one_line(tmp_path):
    result = CliRunner(env={"PATH": str(tmp_path)}).invoke(
        main, ["asr", "synth", "--corpus", "tiny", "-o", str(tmp_path / "c")]
    )
    line = one_error_line(result)
    assert "install espeak-ng" in line, line


def test_report_rows_and_saved_results(tiny_run, tiny_corpus, tmp_path):
    out = tmp_path / "results.json"
    result = invoke("asr", "report", tiny_run, "--corpus", tiny_corpus, "-o", out, "--limit", 3)
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0].startswith("| model | weights | params | sparsity | model bytes | WER valid %")
    assert table[2].startswith("| tiny | int4 |")
    (row,) = json.loads(out.read_text())
    assert row["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert set(row["wer"]) >= {"valid", "heldout_voices", "heldout_synth"}
