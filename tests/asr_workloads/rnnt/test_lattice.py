"""The lattice forward-backward: posteriors that are probabilities, and the autograd gradient."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.rnnt.lattice import lattice_nll, lattice_posteriors


def _lattice(seed, frame_lengths, end_lengths, window):
    torch.manual_seed(seed)
    batch, frames = len(frame_lengths), max(frame_lengths)
    blank = torch.randn(batch, frames, window, dtype=torch.float64).sigmoid().log()
    label = torch.log1p(-blank.exp()) + torch.randn_like(blank).sigmoid().log()
    return blank, label, torch.tensor(frame_lengths), torch.tensor(end_lengths)


def _autograd_nll(blank, label, shifts, frames, ends):
    """The forward recursion alone, differentiated by autograd: the reference."""
    window = blank.shape[2]
    climb = torch.nn.functional.pad(label[..., :-1].cumsum(2), (1, 0))
    below = shifts[..., None] + torch.arange(window)
    alpha, alphas = climb[:, 0], [climb[:, 0]]
    for t in range(1, blank.shape[1]):
        leaving = torch.nn.functional.pad(alpha + blank[:, t - 1], (0, window), value=-1e9)
        alpha = climb[:, t] + torch.logcumsumexp(leaving.gather(1, below[:, t]) - climb[:, t], 1)
        alphas.append(alpha)
    alpha = torch.stack(alphas, 1)
    rows, last = torch.arange(len(frames)), frames - 1
    return -(alpha[rows, last, ends] + blank[rows, last, ends])


@pytest.mark.parametrize(
    ("shifts", "ends"),
    [
        # The full lattice: the window never moves, and the path ends at U.
        ([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], [3, 1]),
        # Windows that climb (the second lattice has 4 frames: its fifth shift is unused).
        ([[0, 1, 0, 2, 0], [0, 0, 1, 1, 0]], [1, 2]),
    ],
)
def test_gradient_and_likelihood_match_autograd_through_the_forward_recursion(shifts, ends):
    blank, label, frames, ends = _lattice(3, [5, 4], ends, window=4)
    shifts = torch.tensor(shifts)
    blank.requires_grad_()
    label.requires_grad_()
    weights = torch.tensor([1.0, -2.5], dtype=torch.float64)

    nll = lattice_nll(blank, label, shifts, frames, ends)
    reference = _autograd_nll(blank, label, shifts, frames, ends)
    torch.testing.assert_close(nll, reference)
    ours = torch.autograd.grad((weights * nll).sum(), (blank, label))
    theirs = torch.autograd.grad((weights * reference).sum(), (blank, label))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_every_path_crosses_each_frame_once_and_takes_each_label_once():
    # On the full lattice every path takes exactly one blank out of each frame t < T_b and
    # the label y_u exactly once, so those posteriors sum to one; nothing past the lengths.
    blank, label, frames, ends = _lattice(5, [6, 3], [4, 2], window=5)
    shifts = torch.zeros(2, 6, dtype=torch.long)
    posteriors = lattice_posteriors(blank, label, shifts, frames, ends)
    assert bool((posteriors.blank >= 0).all()) and bool((posteriors.label >= 0).all())
    for b in range(2):
        t_b, u_b = int(frames[b]), int(ends[b])
        per_frame = posteriors.blank[b, :t_b].sum(dim=1)
        torch.testing.assert_close(per_frame, torch.ones(t_b, dtype=torch.float64))
        per_label = posteriors.label[b, :t_b, :u_b].sum(dim=0)
        torch.testing.assert_close(per_label, torch.ones(u_b, dtype=torch.float64))
        assert float(posteriors.blank[b, t_b:].abs().sum()) == 0.0
        assert float(posteriors.label[b, :, u_b:].abs().sum()) == 0.0


def test_without_a_gradient_only_the_likelihood_is_computed_and_it_agrees():
    blank, label, frames, ends = _lattice(9, [4, 4], [2, 3], window=4)
    shifts = torch.zeros(2, 4, dtype=torch.long)
    with torch.no_grad():
        forward_only = lattice_nll(blank, label, shifts, frames, ends)
    posteriors = lattice_posteriors(blank, label, shifts, frames, ends)
    torch.testing.assert_close(forward_only, posteriors.nll)
