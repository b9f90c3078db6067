"""``edgenpu compile``: what it writes agrees with the program it compiled, and every bad
input is one ``error:`` line with exit status 1 and nothing written."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import yaml
from click.testing import CliRunner
from onnx import TensorProto, helper

from edgenpu.asr_workloads.bundle import load_bundle
from edgenpu.cli import main
from edgenpu.compiler.compile import symbol_name
from edgenpu.isa import Program, SymbolKind
from edgenpu.isa.asm import assemble

from .conftest import CHECKPOINTS, DATA

FILES = ("program.bin", "dram.bin", "manifest.yaml", "listing.s", "report.json")


def invoke(*args):
    return CliRunner().invoke(main, ["compile", *map(str, args)], catch_exceptions=False)


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def check_outputs(outdir) -> tuple[Program, dict]:
    """Every file is there; the manifest's entries, addresses, sizes and shapes are the
    program's symbols; the DRAM image holds the program's segments."""
    assert sorted(p.name for p in outdir.iterdir()) == sorted(FILES)
    program = Program.from_bytes((outdir / "program.bin").read_bytes())
    doc = yaml.safe_load((outdir / "manifest.yaml").read_text())
    dram = (outdir / "dram.bin").read_bytes()
    assert len(dram) == doc["dram"]["bytes"]
    assert doc["program"]["instructions"] == len(program.words)
    for segment in program.segments:
        assert dram[segment.addr : segment.end] == segment.data
    symbols = {s.name: s for s in program.symbols}
    tensors = 0
    for name, kernel in doc["kernels"].items():
        entry = symbols[name]
        assert entry.kind is SymbolKind.ENTRY and entry.addr == kernel["entry"]
        for field in ("inputs", "outputs", "state"):
            for tensor, t in kernel[field].items():
                s = symbols[t["symbol"]]
                assert t["symbol"] == symbol_name(f"{name}.{tensor}")
                assert (s.addr, s.nbytes, list(s.shape)) == (t["addr"], t["bytes"], t["shape"])
                assert t["dtype"] == {1: "int8", 2: "int16"}[s.dtype.size]
                assert t["bytes"] == np.prod(t["shape"]) * s.dtype.size and t["scale"] > 0
                tensors += 1
    assert tensors == sum(s.kind is not SymbolKind.ENTRY for s in program.symbols)
    onehot = doc["kernels"]["predictor_step"]["inputs"]["token_onehot"]
    assert onehot["dtype"] == "int8" and "one-hot" in onehot["note"]
    assert {r["kind"] for r in doc["regions"]} == {"weights", "constants", "lut"}
    return program, doc


def test_onnx_folder(tmp_path):
    out = tmp_path / "out"
    result = invoke(DATA / "three_layers", "-c", "tiny", "-o", out, "--compare-schedules")
    assert result.exit_code == 0, result.output
    program, doc = check_outputs(out)
    assert doc["frontend"] is None and doc["time_reduction"] == 6
    # The listing's instructions and DRAM image reassemble to program.bin's; each
    # instruction line carries its step.
    listing = (out / "listing.s").read_text()
    again = assemble(listing)
    assert again.words == program.words
    assert [(s.addr, s.data) for s in again.segments] == [
        (s.addr, s.data) for s in program.segments
    ]
    assert "  ; [/layers.0/LSTM] /layers.0/LSTM step 0 input tile 0" in listing
    report = json.loads((out / "report.json").read_text())
    assert [k["name"] for k in report["kernels"]] == list(doc["kernels"])
    assert report["encoder_weight_bytes"]["per"] == "encoder input frame"
    assert [r["schedule"] for r in report["schedules"]] == ["layer_major", "frame_major"]
    assert "per encoder input frame, by schedule:" in result.output
    for row in report["layers"]:
        assert row["weight"] in result.output


def test_bundle(tmp_path):
    out = tmp_path / "out"
    spec = tmp_path / "spec.yaml"
    spec.write_text("chunk_frames: 8\n")
    result = invoke(CHECKPOINTS / "int4_sparse.yaml", "-c", "default", "-s", spec, "-o", out)
    assert result.exit_code == 0, result.output
    _, doc = check_outputs(out)
    assert doc["model"].endswith("int4_sparse.yaml") and doc["config"] == "default"
    assert doc["chunk_frames"] == 8 and doc["schedule"] == "layer_major"
    assert doc["frontend"]["hop_ms"] == 10.0 and doc["frontend"]["subsample"] == 3
    width = load_bundle(CHECKPOINTS / "int4_sparse.yaml").config.input_dim
    assert doc["kernels"]["encoder_chunk"]["inputs"]["features"]["shape"] == [8, width]
    assert "DRAM weight bytes per second of audio" in result.output


# --- bad input: one line naming the culprit, nothing written ----------------------------------


def failed(tmp_path, *args) -> str:
    out = tmp_path / "out"
    line = one_error_line(invoke(*args, "-o", out))
    assert not out.exists()
    return line


def test_missing_model(tmp_path):
    line = failed(tmp_path, tmp_path / "nowhere.yaml", "-c", "tiny")
    assert "nowhere.yaml: no such model" in line


def test_unknown_config(tmp_path):
    line = failed(tmp_path, DATA / "three_layers", "-c", "huge")
    assert "huge: no such file or bundled config" in line


def test_bad_spec_key(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("chunk_frames: 6\nscheduel: frame_major\n")
    line = failed(tmp_path, DATA / "three_layers", "-c", "tiny", "-s", spec)
    assert "spec.yaml" in line and "scheduel" in line


def _sin_export(folder):
    """A folder whose encoder.onnx holds a Sin node."""
    folder.mkdir()
    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, "T", 5])
    y = helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, "T", 5])
    node = helper.make_node("Sin", ["features"], ["frames"], name="sin0")
    graph = helper.make_graph([node], "encoder", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, folder / "encoder.onnx")
    return folder


def test_unsupported_op(tmp_path):
    folder = _sin_export(tmp_path / "sin")
    line = failed(tmp_path, folder, "-c", "tiny")
    assert "encoder.onnx: node sin0: unsupported op Sin (supported: " in line


def test_single_onnx_file(tmp_path):
    line = failed(tmp_path, DATA / "three_layers" / "joint.onnx", "-c", "tiny")
    assert "joint.onnx: one ONNX file is one part of an RNN-T" in line


def test_model_too_large_for_dram(tmp_path):
    line = failed(tmp_path, CHECKPOINTS / "int8.yaml", "-c", "tiny")
    assert "int8.yaml: the weights need at least" in line
    assert "bytes of DRAM (their non-zero values alone) but config tiny has 1048576" in line


def test_calibration_samples_set_the_input_scale(tmp_path):
    samples = tmp_path / "features.npz"
    rng = np.random.default_rng(0)
    np.savez(samples, a=rng.normal(size=(12, 5)), b=rng.normal(size=(30, 5)))
    out = tmp_path / "out"
    result = invoke(DATA / "three_layers", "-c", "tiny", "-o", out, "--calibration", samples)
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load((out / "manifest.yaml").read_text())
    scale = doc["kernels"]["encoder_chunk"]["inputs"]["features"]["scale"]
    with np.load(samples) as data:
        peak = max(np.abs(data[k]).max() for k in data.files)
    assert scale == pytest.approx(peak * 1.25 / 127, rel=1e-6)
    assert "quantized vs float on features.npz: encoder max |error|" in result.output
    report = json.loads((out / "report.json").read_text())
    assert 0 <= report["deviation"]["argmax_agreement"] <= 1
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF")
    line = one_error_line(
        invoke(DATA / "three_layers", "-c", "tiny", "-o", out, "--calibration", wav)
    )
    assert "has no front end (an ONNX export); give features as .npz" in line
