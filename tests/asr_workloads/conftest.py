"""Shared fixtures of the speech-workload tests: the tiny corpus and a tiny trained model,
each built once per session (the corpus needs espeak-ng and flite, the model PyTorch)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The ``tiny`` corpus preset, built (a few seconds)."""
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("espeak-ng and flite are needed (apt-get install espeak-ng flite)")
    from edgenpu.asr_workloads.corpus import build_corpus, preset_spec

    out = tmp_path_factory.mktemp("tiny_corpus")
    build_corpus(preset_spec("tiny"), out, jobs=1)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_corpus):
    """The ``tiny`` recipe trained on the tiny corpus: its output folder."""
    pytest.importorskip("torch")
    from edgenpu.asr_workloads.recipe import load_recipe
    from edgenpu.asr_workloads.training.trainer import train

    out = tmp_path_factory.mktemp("tiny_run")
    # One thread: the models are small and step frame by frame; on a shared machine more
    # threads mostly wait on each other.
    train(load_recipe("tiny"), tiny_corpus, out, threads=1)
    return out


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The test models are tiny: one thread beats two that wait on each other."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
