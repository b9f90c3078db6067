"""A host runtime that knows only what ``edgenpu compile`` wrote (program.bin and
manifest.yaml) drives the compiled kernels through greedy search and gets the quantized
reference's tokens, on the functional simulator; and transcribes real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgenpu.asr_workloads.bundle import load_bundle
from edgenpu.asr_workloads.resample import resample
from edgenpu.asr_workloads.wav import read_wav, write_wav
from edgenpu.cli import main
from edgenpu.compiler.host import SimulatedModel
from edgenpu.compiler.quant import reference
from edgenpu.errors import CompileError

from .conftest import CHECKPOINTS, DATA

FSDD = Path(__file__).parents[2].parent / "shared" / "data" / "fsdd" / "recordings"


def _compile(model, config, out) -> None:
    result = CliRunner().invoke(main, ["compile", str(model), "-c", config, "-o", str(out)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["three_layers", "reduce_first"])
def test_a_manifest_driven_host_decodes_as_the_reference(name, tmp_path, rng):
    _compile(DATA / name, "tiny", tmp_path / "out")
    host = SimulatedModel.load(tmp_path / "out")
    from edgenpu.compiler.cli import load_model
    from edgenpu.compiler.compile import compile_model
    from edgenpu.config import load_config

    qmodel = compile_model(load_model(DATA / name), load_config("tiny")).qmodel
    for length in (0, 7, 19):  # 0: an empty utterance has no frames and no tokens
        features = rng.normal(scale=2.0, size=(length, 5))
        tokens = host.greedy_decode(features)
        assert tokens == reference.greedy_decode(qmodel, features)
        np.testing.assert_array_equal(host.encode(features), reference.encode(qmodel, features))
    # Every call ran to its halt and the decoder made calls of all three kernels.
    assert len(host.stats) > 3 and all(s.executed for s in host.stats)


@pytest.mark.skipif(not FSDD.is_dir(), reason="the FSDD recordings are not beside the project")
def test_the_compiled_bundle_transcribes_speech_like_the_bundle(tmp_path):
    _compile(CHECKPOINTS / "int4_sparse.yaml", "default", tmp_path / "out")
    # The recordings are 8 kHz; the bundle hears its own rate, and trained on these speakers
    # resampled up the same way (`transcribe` refuses audio below the model's rate).
    rate = load_bundle(CHECKPOINTS / "int4_sparse.yaml").frontend.sample_rate
    wavs = []
    for digit in (0, 5):
        audio, recorded = read_wav(FSDD / f"{digit}_jackson_3.wav")
        wavs.append(tmp_path / f"{digit}.wav")
        write_wav(wavs[-1], resample(audio, recorded, rate), rate)
    runner = CliRunner()
    compiled = runner.invoke(main, ["asr", "transcribe", str(tmp_path / "out"), *map(str, wavs)])
    bundle = runner.invoke(
        main, ["asr", "transcribe", str(CHECKPOINTS / "int4_sparse.yaml"), *map(str, wavs)]
    )
    assert compiled.exit_code == 0 and bundle.exit_code == 0, compiled.output + bundle.output
    # The integer program and the float bundle agree on these (the README's WER table:
    # integer and fake-quant within 0.6 points over 600 utterances).
    assert compiled.output == bundle.output
    host = SimulatedModel.load(tmp_path / "out")
    audio, rate = read_wav(wavs[0])
    assert host.transcribe(audio, rate) == compiled.output.split("\t")[1].splitlines()[0]


def test_a_folder_that_is_no_compiled_model_is_named(tmp_path):
    with pytest.raises(CompileError, match=f"{tmp_path}: not a compiled model"):
        SimulatedModel.load(tmp_path)
    (tmp_path / "manifest.yaml").write_text("format: other\nprogram: {file: program.bin}\n")
    (tmp_path / "program.bin").write_bytes(b"")
    with pytest.raises(
        CompileError,
        match="format 'other' version None; this runtime reads edgenpu-compiled-model version 2",
    ):
        SimulatedModel.load(tmp_path)


def test_transcribing_with_a_compiled_onnx_model_names_the_missing_front_end(tmp_path):
    _compile(DATA / "three_layers", "tiny", tmp_path / "out")
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"")
    result = CliRunner().invoke(main, ["asr", "transcribe", str(tmp_path / "out"), str(wav)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'out'}: the compiled model has no front end (an ONNX export)"
    )
