"""What the compiler refuses, each in one line naming the culprit."""

from __future__ import annotations

import pytest

from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.spec import CompileSpec
from edgenpu.config import load_config, override
from edgenpu.errors import CompileError

from .conftest import bundled_model, small_model


def test_a_model_too_large_for_dram_names_the_bytes():
    # The int8 edge model's weights alone (1.9 MB) exceed the tiny config's 1 MiB of DRAM.
    with pytest.raises(
        CompileError,
        match=r"int8.yaml: the weights need at least \d+ bytes of DRAM \(their non-zero "
        r"values alone\) but config tiny has 1048576",
    ):
        compile_model(bundled_model("int8"), load_config("tiny"))


def test_an_image_too_large_for_dram_names_the_bytes_by_kind():
    # The non-zero int4 weights alone (~0.48 MB) fit 512 KiB; with their formats' metadata,
    # the constants and the buffers they do not.
    small = override(load_config("default"), {"name": "small-dram", "dram.bytes": 1 << 19})
    with pytest.raises(
        CompileError,
        match=r"int4_sparse.yaml: the compiled model needs \d+ bytes of DRAM but config "
        r"small-dram has 524288 \(weights \d+, constants \d+",
    ):
        compile_model(bundled_model("int4_sparse"), small)


def test_srams_too_small_for_any_plan_name_the_kernel_and_buffers():
    starved = override(load_config("tiny"), {"name": "starved", "sram.activation_bytes": 256})
    with pytest.raises(CompileError, match=r"does not fit config starved: kernel \w+: "):
        compile_model(small_model("reduce_first"), starved)


def test_formats_the_config_lacks_are_refused():
    dense_only = override(
        load_config("tiny"), {"name": "dense-only", "decompressor.formats": ["dense"]}
    )
    with pytest.raises(
        CompileError,
        match="none of the spec's formats \\(bitmask\\) is supported by config dense-only",
    ):
        compile_model(small_model("three_layers"), dense_only, CompileSpec(formats=("bitmask",)))
    compiled = compile_model(small_model("three_layers"), dense_only)
    assert {c.format for c in compiled.choices} == {"dense"}
