"""Fake quantization (forward = the weight rule, backward = identity) and the grid regularizer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.rnnt.fake_quant import fake_quantize, grid_regularizer
from edgenpu.asr_workloads.weight_quant import channel_scales, dequantize


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_forward_is_the_weight_rule_bit_for_bit(precision):
    torch.manual_seed(0)
    w = torch.randn(6, 11)
    w[2] = 0.0  # an all-zero row
    q = fake_quantize(w, precision)
    # The numpy rule on the same float32 numbers gives the very same values.
    assert np.array_equal(q.numpy(), dequantize(w.numpy(), precision, np).astype(np.float32))
    top = 127 if precision == "int8" else 7
    codes = q / (w.abs().amax(dim=1, keepdim=True).clamp(min=1e-30) / top)
    assert torch.allclose(codes[[0, 1, 3, 4, 5]], codes[[0, 1, 3, 4, 5]].round(), atol=1e-4)
    assert torch.all(q[2] == 0)


def test_straight_through_gradient():
    torch.manual_seed(1)
    w = torch.randn(4, 5, requires_grad=True)
    upstream = torch.randn(4, 5)
    (fake_quantize(w, "int4") * upstream).sum().backward()
    assert torch.equal(w.grad, upstream)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="weight precision must be one of int8, int4, not 'int2'"):
        fake_quantize(torch.zeros(2, 2), "int2")
    with pytest.raises(ValueError, match=r"must be 2-D, not \(3,\)"):
        fake_quantize(torch.zeros(3), "int8")
    with pytest.raises(ValueError, match="at least one weight"):
        grid_regularizer([], "int8")


def test_regularizer_is_zero_on_the_grid_and_bounded():
    torch.manual_seed(2)
    w = torch.randn(5, 9)
    on_grid = dequantize(w, "int4", torch)
    assert float(grid_regularizer([on_grid], "int4")) < 1e-10
    value = float(grid_regularizer([w, torch.randn(3, 4) * 100], "int4"))
    assert 0.0 < value <= 0.25
    # A mapping (as RNNT.quantized_parameters returns) counts its values.
    named = grid_regularizer({"a": w, "b": on_grid}, "int4")
    torch.testing.assert_close(named, grid_regularizer([w, on_grid], "int4"))


def test_regularizer_is_scale_free():
    torch.manual_seed(3)
    w = torch.randn(5, 9)
    small = grid_regularizer([w], "int8")
    large = grid_regularizer([w * 1000.0], "int8")
    torch.testing.assert_close(small, large, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_regularizer_decreases_under_sgd(precision):
    torch.manual_seed(4)
    weights = [torch.randn(8, 16, requires_grad=True), torch.randn(4, 6, requires_grad=True)]
    # The gradient is 2 (w - q) / (s^2 N): a rate of s^2 N / 4 moves a weight half-way to
    # its grid point per step at the smallest scale s (and less at larger ones).
    count = sum(w.numel() for w in weights)
    smallest = min(float(channel_scales(w.detach(), precision, torch).min()) for w in weights)
    optimizer = torch.optim.SGD(weights, lr=smallest**2 * count / 4)
    start = float(grid_regularizer(weights, precision).detach())
    before = [w.detach().clone() for w in weights]
    for _ in range(20):
        optimizer.zero_grad()
        grid_regularizer(weights, precision).backward()
        optimizer.step()
    end = float(grid_regularizer(weights, precision).detach())
    assert end < 0.5 * start
    # The weights moved toward their own grid points, not somewhere else.
    for w, w0 in zip(weights, before, strict=True):
        snapped = dequantize(w0, precision, torch)
        assert (w.detach() - snapped).abs().sum() < (w0 - snapped).abs().sum()
