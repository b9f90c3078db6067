"""Shared fixtures: the committed small ONNX exports and the bundled checkpoints, compiled
once per module, and helpers to drive compiled kernels with real inputs."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from edgenpu.asr_workloads.bundle import load_bundle
from edgenpu.compiler.frontends.bundle_frontend import from_bundle
from edgenpu.compiler.frontends.onnx_frontend import load_onnx

DATA = Path(__file__).resolve().parent / "data"
CHECKPOINTS = Path(__file__).resolve().parents[2] / "asr_workloads" / "checkpoints"
SMALL_MODELS = ("three_layers", "reduce_first")


@functools.cache
def small_model(name: str):
    """A committed small ONNX export read into the IR."""
    return load_onnx(DATA / name)


@functools.cache
def bundled_model(name: str):
    """A committed checkpoint's graphs."""
    return from_bundle(load_bundle(CHECKPOINTS / f"{name}.yaml"), source=f"{name}.yaml")


def random_inputs(kernel, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible integer inputs for every input of a quantized kernel: a one-hot token,
    int8 codes over their range, int16 cell states within +-2 (the cell's usual range)."""
    inputs = {}
    for name in kernel.inputs:
        tensor = kernel.tensor(name)
        if name.endswith("_onehot"):
            row = np.zeros(tensor.shape, np.int64)
            row[0, rng.integers(tensor.shape[1])] = 1
            inputs[name] = row
        elif tensor.bits == 8:
            inputs[name] = rng.integers(-127, 128, size=tensor.shape)
        else:
            inputs[name] = rng.integers(-4096, 4097, size=tensor.shape)
    return inputs


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)
