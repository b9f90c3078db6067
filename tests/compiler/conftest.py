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
from edgenpu.compiler.report import plausible_inputs

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
    """Plausible integer codes for every input of a quantized kernel (the report's)."""
    codes = plausible_inputs(kernel, rng)
    return {name: codes[name] for name in kernel.inputs}


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)
