"""The bundled checkpoint: quantization by the one rule, save/load round trips, atomic saves,
and one test per error a bad bundle file can cause."""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pytest
import yaml

from edgenpu.asr_workloads.bundle import (
    Bundle,
    BundleError,
    StoredParameter,
    bundle_files,
    bundle_from_weights,
    load_bundle,
    save_bundle,
)
from edgenpu.asr_workloads.bundle_params import parameter_shapes
from edgenpu.asr_workloads.frontend import FrontEndConfig
from edgenpu.asr_workloads.model_config import (
    BranchingConfig,
    EncoderConfig,
    JointConfig,
    ModelConfig,
    PredictorConfig,
    is_prunable,
    is_quantized,
)
from edgenpu.asr_workloads.weight_quant import dequantize
from edgenpu.errors import EdgenpuError

FRONTEND = FrontEndConfig(n_mels=8, stack=2, subsample=2, f_min=100.0)
CONFIG = ModelConfig(
    input_dim=16,
    encoder=EncoderConfig((8, 8), (2, 1)),
    predictor=PredictorConfig(embed=4, hidden=(8,)),
    joint=JointConfig(hidden=8),
)
BRANCHING = ModelConfig(
    input_dim=16,
    encoder=EncoderConfig((8, 8), (2, 1)),
    predictor=PredictorConfig(embed=4, hidden=(8,)),
    joint=JointConfig(hidden=8, activation="relu"),
    branching=BranchingConfig(stem_layers=1, cheap_hidden=(8,)),
)


def random_weights(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0, 0.5, shape).astype(np.float32)
        for name, shape in parameter_shapes(config).items()
    }


def random_masks(config: ModelConfig, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.random(shape) < 0.5
        for name, shape in parameter_shapes(config).items()
        if is_prunable(name)
    }


def make(precision="int8", config=CONFIG, masks=True, metadata=None) -> Bundle:
    return bundle_from_weights(
        config,
        FRONTEND,
        random_weights(config),
        precision,
        random_masks(config) if masks else None,
        {"recipe": "tiny", "steps": 10} if metadata is None else metadata,
    )


def assert_same(a: Bundle, b: Bundle) -> None:
    assert a.config == b.config and a.frontend == b.frontend and a.precision == b.precision
    assert dict(a.metadata) == dict(b.metadata)
    assert list(a.parameters) == list(b.parameters)
    for name, param in a.parameters.items():
        arrays, other = param.arrays(), b.parameters[name].arrays()
        assert arrays.keys() == other.keys(), name
        for part, array in arrays.items():
            assert array.dtype == other[part].dtype
            np.testing.assert_array_equal(array, other[part], err_msg=f"{name}.{part}")


# --- building -------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_weights_are_weight_quant_of_the_masked_weights_exactly(precision):
    weights, masks = random_weights(CONFIG), random_masks(CONFIG)
    bundle = bundle_from_weights(CONFIG, FRONTEND, weights, precision, masks)
    effective = bundle.weights()
    for name, w in weights.items():
        masked = np.where(masks[name], w, 0) if name in masks else w
        expected = dequantize(masked, precision, np) if is_quantized(name) else masked
        assert effective[name].dtype == np.float32
        np.testing.assert_array_equal(effective[name], expected, err_msg=name)
        param = bundle.parameters[name]
        if is_quantized(name):
            assert param.codes.dtype == np.int8 and param.values is None
            assert param.scales.shape == (w.shape[0],)
        else:
            assert param.values is not None and param.codes is None


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_exporting_fake_quantized_weights_gives_the_same_bundle(precision):
    # Training exports the weights it computes with, already on the grid: quantizing them
    # again must give back the same codes and scales.
    weights, masks = random_weights(CONFIG), random_masks(CONFIG)
    bundle = bundle_from_weights(CONFIG, FRONTEND, weights, precision, masks)
    again = bundle_from_weights(CONFIG, FRONTEND, bundle.weights(), precision, masks)
    assert_same(bundle, again)


def test_float_bundle_keeps_the_weights_and_zeroes_the_pruned_ones():
    weights, masks = random_weights(CONFIG), random_masks(CONFIG)
    bundle = bundle_from_weights(CONFIG, FRONTEND, weights, None, masks)
    for name, w in bundle.weights().items():
        expected = np.where(masks[name], weights[name], 0) if name in masks else weights[name]
        np.testing.assert_array_equal(w, expected)
        assert bundle.parameters[name].codes is None
    assert bundle.masks().keys() == masks.keys()


def test_a_kept_weight_can_quantize_to_zero_and_stays_kept():
    weights = random_weights(CONFIG)
    weights["joint.output.weight"][0, :2] = [100.0, 0.01]  # 0.01 rounds to code 0 at int4
    masks = {"joint.output.weight": np.ones((29, 8), dtype=bool)}
    bundle = bundle_from_weights(CONFIG, FRONTEND, weights, "int4", masks)
    param = bundle.parameters["joint.output.weight"]
    assert param.codes[0, 1] == 0 and param.mask[0, 1]


def test_ctc_head_is_left_out_and_inputs_are_copied():
    weights = random_weights(CONFIG)
    weights["ctc.weight"] = np.zeros((29, 8), np.float32)
    bundle = bundle_from_weights(CONFIG, FRONTEND, weights, None)
    assert "ctc.weight" not in bundle.parameters
    before = bundle.weights()["encoder.0.bias"].copy()
    weights["encoder.0.bias"][:] = 7
    np.testing.assert_array_equal(bundle.weights()["encoder.0.bias"], before)
    with pytest.raises(ValueError, match="read-only"):
        bundle.weights()["encoder.0.bias"][0] = 1
    with pytest.raises(ValueError, match="read-only"):
        bundle.parameters["encoder.0.bias"].values[0] = 1
    with pytest.raises(TypeError):
        bundle.parameters["encoder.0.bias"] = None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w, m: w.pop("joint.output.bias"), "missing parameter 'joint.output.bias'"),
        (lambda w, m: w.update(extra=np.zeros(2)), "unknown parameter 'extra'"),
        (
            lambda w, m: w.update({"encoder.0.bias": np.zeros(3)}),
            "parameter 'encoder.0.bias': shape [3] differs from the model's [32]",
        ),
        (
            lambda w, m: w["encoder.1.w_hh"].__setitem__((0, 0), np.nan),
            "parameter 'encoder.1.w_hh': weights hold NaN or infinity",
        ),
        (
            lambda w, m: m.update({"encoder.0.w_hh": np.ones((32, 8))}),
            "mask of 'encoder.0.w_hh' must be bool of shape [32, 8], not float64 of shape [32, 8]",
        ),
        (
            lambda w, m: m.update({"predictor.embedding": np.ones((29, 4), bool)}),
            "parameter 'predictor.embedding': has a mask, but pruning never touches it",
        ),
        (lambda w, m: m.update(nope=np.ones(2, bool)), "mask of unknown parameter 'nope'"),
    ],
)
def test_bundle_from_weights_names_the_culprit(change, message):
    weights, masks = random_weights(CONFIG), random_masks(CONFIG)
    change(weights, masks)
    with pytest.raises(BundleError, match=re.escape(message)):
        bundle_from_weights(CONFIG, FRONTEND, weights, "int8", masks)


def test_in_memory_checks():
    bundle = make()
    params = dict(bundle.parameters)
    with pytest.raises(
        BundleError, match="precision must be None or one of int8, int4, not 'int2'"
    ):
        Bundle(CONFIG, FRONTEND, "int2", params)
    with pytest.raises(
        BundleError, match="frontend: stack \\* n_mels = 8 differs from the model's"
    ):
        Bundle(CONFIG, FrontEndConfig(n_mels=8, f_min=100.0), "int8", params)
    with pytest.raises(BundleError, match=r"metadata\.wer\.clean is a float32; metadata must be"):
        Bundle(CONFIG, FRONTEND, "int8", params, {"wer": {"clean": np.float32(0.1)}})
    with pytest.raises(
        BundleError, match="'encoder.0.w_ih': a float bundle stores float values, not codes"
    ):
        Bundle(CONFIG, FRONTEND, None, params)
    with pytest.raises(BundleError, match="codes must be a int8 array, not int16"):
        StoredParameter(codes=np.zeros((2, 2), np.int16), scales=np.ones(2, np.float32))
    with pytest.raises(BundleError, match=r"scales must have one entry per row \(2,\)"):
        StoredParameter(codes=np.zeros((2, 2), np.int8), scales=np.ones(3, np.float32))
    with pytest.raises(BundleError, match="either values or codes, not both or none"):
        StoredParameter(mask=np.ones(2, bool))


def test_two_four_sparsity_is_checked_against_the_masks():
    masks = {
        name: np.tile([True, False, True, False], (shape[0], shape[1] // 4))
        for name, shape in parameter_shapes(CONFIG).items()
        if is_prunable(name)
    }
    weights = random_weights(CONFIG)
    bundle_from_weights(CONFIG, FRONTEND, weights, "int4", masks, {"sparsity": "2:4"})
    masks["joint.encoder.weight"][3, 4:8] = [True, True, True, False]
    with pytest.raises(
        BundleError,
        match="parameter 'joint.encoder.weight': metadata says sparsity 2:4, but row 3 keeps 3 "
        "weights in columns 4..7",
    ):
        bundle_from_weights(CONFIG, FRONTEND, weights, "int4", masks, {"sparsity": "2:4"})
    with pytest.raises(BundleError, match="metadata.sparsity must be one of unstructured, 2:4"):
        bundle_from_weights(CONFIG, FRONTEND, weights, "int4", masks, {"sparsity": "3:4"})


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", [None, "int8", "int4"])
@pytest.mark.parametrize("config", [CONFIG, BRANCHING], ids=["plain", "branching"])
def test_round_trip(tmp_path, precision, config):
    metadata = {
        "recipe": "r",
        "steps": 3,
        "sparsity": "unstructured",
        "wer": {"fsdd": np.float64(0.25), "layers": (1, 2)},  # stored as a float and a list
    }
    bundle = make(precision, config, metadata=metadata)
    yaml_path, npz_path = save_bundle(bundle, tmp_path / "model.v1")
    assert (yaml_path.name, npz_path.name) == ("model.v1.yaml", "model.v1.npz")
    assert sorted(os.listdir(tmp_path)) == ["model.v1.npz", "model.v1.yaml"]
    for path in (tmp_path / "model.v1", yaml_path, npz_path):
        loaded = load_bundle(path)
        assert_same(bundle, loaded)
        assert type(loaded.metadata["wer"]["fsdd"]) is float
        assert loaded.metadata["wer"]["layers"] == [1, 2]
        for name, w in bundle.weights().items():
            np.testing.assert_array_equal(w, loaded.weights()[name])


def test_yaml_is_readable_and_lists_checksums(tmp_path):
    bundle = make("int4")
    yaml_path, _ = save_bundle(bundle, tmp_path / "m")
    doc = yaml.safe_load(yaml_path.read_text())
    assert doc["format"] == "edgenpu-bundle" and doc["version"] == 1
    assert doc["precision"] == "int4" and doc["model"]["encoder"]["reduce"] == [2, 1]
    assert doc["frontend"]["stack"] == 2
    entry = doc["parameters"]["encoder.0.w_ih"]
    assert entry["shape"] == [32, 32]  # two stacked frames of 16
    codes = bundle.parameters["encoder.0.w_ih"].codes
    assert entry["arrays"]["codes"] == {
        "dtype": "int8",
        "sha256": hashlib.sha256(codes.tobytes()).hexdigest(),
    }
    assert set(entry["arrays"]) == {"codes", "scales", "mask"}
    assert set(doc["parameters"]["encoder.0.bias"]["arrays"]) == {"values"}


def test_a_failed_save_leaves_the_previous_bundle(tmp_path, monkeypatch):
    old = make("int8", metadata={"recipe": "old"})
    save_bundle(old, tmp_path / "m")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(make("int4"), tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "m.yaml"]
    assert_same(old, load_bundle(tmp_path / "m"))


def test_a_crash_between_the_renames_is_caught_by_the_checksums(tmp_path, monkeypatch):
    save_bundle(make("int8", metadata={"recipe": "old"}), tmp_path / "m")
    calls = []
    real_replace = os.replace

    def replace_once(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands for the process dying before the YAML's rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_once)
    with pytest.raises(KeyboardInterrupt):
        save_bundle(make("int8", masks=False), tmp_path / "m")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "m.yaml"]  # temporaries removed
    with pytest.raises(
        BundleError, match="array .encoder.0.w_ih.codes. does not match its checksum"
    ):
        load_bundle(tmp_path / "m")


# --- load errors ----------------------------------------------------------------------------


def rewrite(base, *, doc=None, arrays=None):
    """Rewrite a saved bundle's YAML document and/or arrays, keeping checksums consistent."""
    yaml_path, npz_path = bundle_files(base)
    document = yaml.safe_load(yaml_path.read_text())
    if arrays is not None:
        with np.load(npz_path) as archive:
            content = {key: archive[key] for key in archive.files}
        arrays(content)
        for key, array in content.items():
            name, part = key.rsplit(".", 1)
            entry = document["parameters"][name]["arrays"].setdefault(part, {})
            entry.update(dtype=str(array.dtype), sha256=hashlib.sha256(array.tobytes()).hexdigest())
        with open(npz_path, "wb") as handle:
            np.savez(handle, **content)
    if doc is not None:
        doc(document)
    yaml_path.write_text(yaml.safe_dump(document, sort_keys=False))


def _set(path, value):
    def apply(document):
        *keys, last = path
        for key in keys:
            document = document[key]
        if value is KeyError:
            del document[last]
        else:
            document[last] = value

    return apply


YAML_ERRORS = [
    (
        _set(["colour"], "red"),
        "unknown key bundle.colour (known: format, frontend, metadata, model, parameters, "
        "precision, version)",
    ),
    (_set(["precision"], KeyError), "missing key bundle.precision"),
    (_set(["version"], 2), "format 'edgenpu-bundle' version 2 is not 'edgenpu-bundle' version 1"),
    (_set(["precision"], "int2"), "precision must be null or one of int8, int4, not 'int2'"),
    (_set(["model", "encoder", "depth"], 3), "model: unknown key model.encoder.depth"),
    (_set(["model", "joint", "activation"], "gelu"), "model: joint.activation must be one of"),
    (_set(["frontend", "stack"], 0), "frontend: stack must be a positive integer"),
    (_set(["frontend", "stack"], 3), "frontend: stack * n_mels = 24 differs from the model's"),
    (_set(["parameters", "gate.weight"], {}), "unknown parameter 'gate.weight'"),
    (_set(["parameters", "joint.output.bias"], KeyError), "missing parameter 'joint.output.bias'"),
    (
        _set(["parameters", "encoder.1.w_ih", "shape"], [32, 9]),
        "parameters.encoder.1.w_ih.shape is [32, 9], but the model's is [32, 8]",
    ),
    (
        _set(["parameters", "encoder.0.bias", "arrays", "mask"], {}),
        "unknown key parameters.encoder.0.bias.arrays.mask",
    ),
    (
        _set(["parameters", "encoder.0.w_hh", "arrays", "scales"], KeyError),
        "missing key parameters.encoder.0.w_hh.arrays.scales",
    ),
    (
        _set(["parameters", "encoder.0.w_hh", "arrays", "codes", "dtype"], "int16"),
        "parameters.encoder.0.w_hh.arrays.codes.dtype is 'int16', not 'int8'",
    ),
    (_set(["metadata", "sparsity"], "blocky"), "metadata.sparsity must be one of"),
]


@pytest.mark.parametrize(("doc", "message"), YAML_ERRORS)
def test_yaml_errors_name_the_file_and_key(tmp_path, doc, message):
    save_bundle(make("int8"), tmp_path / "m")
    rewrite(tmp_path / "m", doc=doc)
    with pytest.raises(BundleError, match=re.escape(f"{tmp_path / 'm.yaml'}: {message}")):
        load_bundle(tmp_path / "m")


def _scale(content, key, factor):
    content[key] = content[key] * factor


NPZ_ERRORS = [
    (
        lambda c: c.__setitem__("encoder.0.w_hh.codes", np.full((32, 8), -128, np.int8)),
        "parameter 'encoder.0.w_hh': code -128 at (0, 0) is out of range for int8 [-127, 127]",
    ),
    (
        lambda c: c.__setitem__("joint.encoder.weight.codes", np.full((8, 8), 3, np.int8)),
        "parameter 'joint.encoder.weight': mask and codes disagree: weight (0, 0) is pruned but "
        "stored as 3",
    ),
    (
        lambda c: c.__setitem__("joint.output.weight.scales", np.zeros(29, np.float32)),
        "parameter 'joint.output.weight': scale 0.0 of row 0 is not > 0",
    ),
    (
        lambda c: c.__setitem__("joint.output.bias.values", np.full(29, np.inf, np.float32)),
        "parameter 'joint.output.bias': values hold NaN or infinity",
    ),
    (
        lambda c: c.__setitem__("encoder.0.bias.values", np.zeros(31, np.float32)),
        "array 'encoder.0.bias.values' is float32 [31], not float32 [32]",
    ),
]


@pytest.mark.parametrize(("arrays", "message"), NPZ_ERRORS)
def test_array_errors_name_the_file_and_parameter(tmp_path, arrays, message):
    bundle = make("int8")
    assert not bundle.parameters["joint.encoder.weight"].mask[0, 0]  # the pruned weight above
    save_bundle(bundle, tmp_path / "m")
    rewrite(tmp_path / "m", arrays=arrays)
    with pytest.raises(BundleError, match=re.escape(f"{tmp_path / 'm.npz'}: {message}")):
        load_bundle(tmp_path / "m")


def test_arrays_that_do_not_match_the_yaml(tmp_path):
    base, other = tmp_path / "m", tmp_path / "other"
    npz = bundle_files(base)[1]

    def fails(message):
        with pytest.raises(BundleError, match=re.escape(f"{npz}: {message}")):
            load_bundle(base)

    save_bundle(make("int8"), base)
    save_bundle(make("int8", masks=False), other)
    os.replace(bundle_files(other)[1], npz)
    fails(
        "array 'encoder.0.w_ih.codes' does not match its checksum in the YAML file "
        "(files from different saves, or corrupt)"
    )

    save_bundle(make("int8"), base)
    with np.load(npz) as archive:
        content = {key: archive[key] for key in archive.files}
    np.savez(npz, **content, **{"extra.values": np.zeros(1, np.float32)})
    fails("unknown array 'extra.values'")
    np.savez(npz, **{k: v for k, v in content.items() if k != "encoder.0.w_ih.mask"})
    fails("missing array 'encoder.0.w_ih.mask'")
    np.savez(npz, **{**content, "encoder.0.bias.values": content["encoder.0.bias.values"] * 1.0})
    np.savez(npz, **{**content, "encoder.0.bias.values": np.zeros(32)})
    fails("array 'encoder.0.bias.values' is float64 [32], not float32 [32]")
    npz.write_bytes(b"not a zip")
    fails("not a readable npz archive")


def test_missing_files_and_bad_yaml(tmp_path):
    with pytest.raises(BundleError, match=re.escape(f"{tmp_path / 'm.yaml'}: no such bundle file")):
        load_bundle(tmp_path / "m")
    save_bundle(make(), tmp_path / "m")
    (tmp_path / "m.npz").unlink()
    with pytest.raises(BundleError, match=re.escape(f"{tmp_path / 'm.npz'}: no such bundle file")):
        load_bundle(tmp_path / "m")
    save_bundle(make(), tmp_path / "m")
    (tmp_path / "m.yaml").write_text("model: [unclosed\n")
    with pytest.raises(BundleError, match=r"m\.yaml: not valid YAML: while parsing") as error:
        load_bundle(tmp_path / "m")
    assert "\n" not in str(error.value)
    (tmp_path / "m.yaml").write_text("- a list\n")
    with pytest.raises(BundleError, match=r"m\.yaml: bundle must be a mapping, not list"):
        load_bundle(tmp_path / "m")


def test_errors_are_edgenpu_errors():
    assert issubclass(BundleError, EdgenpuError) and issubclass(BundleError, ValueError)
