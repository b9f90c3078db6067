"""The hand-written backward pass through time against autograd on the plain loop."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.rnnt.recurrence import lstm_recurrence


def autograd_recurrence(projected, w_hh, h, c, update=None):
    """The same recurrence written step by step for autograd (the reference)."""
    hidden = w_hh.shape[1]
    outputs = []
    for t in range(projected.shape[1]):
        i, f, g, o = (projected[:, t] + h @ w_hh.t()).split(hidden, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        if update is None:
            h, c = h_new, c_new
            outputs.append(h_new)
        else:
            u = update[:, t, None]
            h = h + u * (h_new - h)
            c = c + u * (c_new - c)
            outputs.append(h_new * (u > 0))
    return torch.stack(outputs, dim=1), h, c


def inputs(batch=3, frames=6, hidden=4, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    tensors = (
        torch.randn(batch, frames, 4 * hidden, dtype=dtype),
        torch.randn(4 * hidden, hidden, dtype=dtype) * 0.5,
        torch.randn(batch, hidden, dtype=dtype),
        torch.randn(batch, hidden, dtype=dtype),
    )
    return [t.requires_grad_() for t in tensors]


def soft_update(batch, frames, dtype=torch.float32, zeros=True):
    # All-ones steps (no blending), exact zeros (held, as past a length), and soft values.
    # The output switches off at exactly 0, a step finite differences cannot straddle, so
    # gradcheck gets no zeros.
    update = torch.rand(batch, frames, dtype=dtype) * 0.9 + 0.05
    update[:, 0] = 1.0
    update[0, 2] = 1.0
    if zeros:
        update[1, 3:] = 0.0
    return update.requires_grad_()


@pytest.mark.parametrize("gated", [False, True])
def test_values_and_gradients_match_autograd(gated):
    ours = inputs()
    ref = [t.detach().clone().requires_grad_() for t in ours]
    update = soft_update(3, 6) if gated else None
    ref_update = None if update is None else update.detach().clone().requires_grad_()
    y, h, c = lstm_recurrence(*ours, update)
    y_ref, h_ref, c_ref = autograd_recurrence(*ref, ref_update)
    for a, b in ((y, y_ref), (h, h_ref), (c, c_ref)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.manual_seed(9)
    weights = [torch.randn_like(t) for t in (y, h, c)]
    sum((w * t).sum() for w, t in zip(weights, (y, h, c), strict=True)).backward()
    sum((w * t).sum() for w, t in zip(weights, (y_ref, h_ref, c_ref), strict=True)).backward()
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4)
    if gated:
        torch.testing.assert_close(update.grad, ref_update.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("gated", [False, True])
def test_gradcheck(gated):
    tensors = inputs(batch=2, frames=4, hidden=3, dtype=torch.float64, seed=1)
    update = soft_update(2, 4, torch.float64, zeros=False) if gated else None
    assert torch.autograd.gradcheck(
        lambda *a: lstm_recurrence(*a[:4], update=a[4] if gated else None),
        (*tensors, update if gated else torch.zeros(1, dtype=torch.float64)),
    )


def test_no_graph_path_gives_the_same_values():
    tensors = [t.detach() for t in inputs(seed=2)]
    update = soft_update(3, 6).detach()
    with torch.no_grad():
        plain = lstm_recurrence(*tensors, update)
    graph = lstm_recurrence(*[t.clone().requires_grad_() for t in tensors], update)
    for a, b in zip(plain, graph, strict=True):
        assert torch.equal(a, b.detach())
