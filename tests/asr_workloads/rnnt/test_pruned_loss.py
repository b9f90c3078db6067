"""The pruned RNN-T loss: the full loss when nothing is pruned, brute force inside windows."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.rnnt.loss import lattice_loss, rnnt_loss, transition_log_probs
from edgenpu.asr_workloads.rnnt.pruned_loss import (
    prune_starts,
    pruned_lattice_loss,
    pruned_rnnt_loss,
    simple_lattice,
    window_indices,
    window_size,
)


def _batch(seed, frame_lengths, target_lengths, vocab=5):
    torch.manual_seed(seed)
    batch, frames, labels = len(frame_lengths), max(frame_lengths), max(target_lengths)
    logits = torch.randn(batch, frames, labels + 1, vocab, dtype=torch.float64) * 2
    targets = torch.randint(1, vocab, (batch, labels))
    return logits, targets, torch.tensor(frame_lengths), torch.tensor(target_lengths)


def _gather_joint(logits):
    """The ``joint`` callable over precomputed full-lattice logits."""

    def joint(positions):
        index = positions[..., None].expand(-1, -1, -1, logits.shape[-1])
        return logits.gather(2, index)

    return joint


def _window_brute_force(logits, targets, starts, window):
    """-log of the summed probability of the alignments whose nodes all lie in the windows."""
    log_probs = logits.double().log_softmax(dim=-1)
    frames, labels = log_probs.shape[0], len(targets)

    def inside(t, u):
        return starts[t] <= u < starts[t] + window

    total = 0.0
    moves = frames + labels - 1
    for label_moves in combinations(range(moves), labels):
        t = u = 0
        score, kept = 0.0, inside(0, 0)
        for move in range(moves):
            if move in label_moves:
                score += float(log_probs[t, u, targets[u]])
                u += 1
            else:
                score += float(log_probs[t, u, 0])
                t += 1
            kept = kept and inside(t, u)
        if kept:
            total += math.exp(score + float(log_probs[t, u, 0]))
    return -math.log(total)


def test_simple_lattice_equals_the_full_lattice_of_the_summed_logits():
    torch.manual_seed(0)
    am = torch.randn(3, 6, 7, dtype=torch.float64) * 4
    lm = torch.randn(3, 4, 7, dtype=torch.float64) * 4
    targets = torch.randint(1, 7, (3, 3))
    blank, label = simple_lattice(am, lm, targets)
    full = (am[:, :, None, :] + lm[:, None, :, :]).log_softmax(dim=-1)
    want_blank, want_label = transition_log_probs(full, targets, 0)
    torch.testing.assert_close(blank, want_blank)
    torch.testing.assert_close(label, want_label)


def test_a_window_over_every_node_is_the_full_loss_and_gradient():
    logits, targets, frames, labels = _batch(1, [6, 3, 5, 1], [3, 2, 0, 1])
    logits.requires_grad_()
    am = torch.randn(4, 6, 5, dtype=torch.float64)
    lm = torch.randn(4, 4, 5, dtype=torch.float64)
    pruned, _ = pruned_rnnt_loss(am, lm, _gather_joint(logits), targets, frames, labels, 4)
    (grad,) = torch.autograd.grad(pruned.sum(), logits)
    full = rnnt_loss(logits, targets, frames, labels, reduction="none")
    (want,) = torch.autograd.grad(full.sum(), logits)
    torch.testing.assert_close(pruned, full)
    torch.testing.assert_close(grad, want)


@pytest.mark.parametrize(("frames", "labels", "window"), [(5, 3, 2), (6, 4, 3), (4, 4, 2)])
def test_pruned_lattice_loss_matches_brute_force_inside_the_windows(frames, labels, window):
    logits, targets, frame_lengths, label_lengths = _batch(frames + labels, [frames], [labels])
    # Random occupancies still give connected starts.
    occupancy = torch.rand(1, frames, labels + 1), torch.rand(1, frames, labels)
    starts = prune_starts(*occupancy, frame_lengths, label_lengths, window)
    positions = window_indices(starts, window)
    log_probs = _gather_joint(logits)(positions).log_softmax(dim=-1)
    next_label = targets[0][positions.clamp(max=labels - 1)]
    loss = pruned_lattice_loss(
        log_probs[..., 0],
        log_probs.gather(3, next_label[..., None])[..., 0],
        starts,
        frame_lengths,
        label_lengths,
    )
    want = _window_brute_force(logits[0], targets[0].tolist(), starts[0].tolist(), window)
    assert float(loss[0]) == pytest.approx(want, rel=1e-9)


def test_starts_are_connected_and_end_at_the_last_label():
    torch.manual_seed(3)
    frame_lengths, label_lengths = torch.tensor([9, 7, 12, 4]), torch.tensor([8, 2, 11, 0])
    window = 3
    occupancy = torch.rand(4, 12, 12) ** 8, torch.rand(4, 12, 11) ** 8
    starts = prune_starts(*occupancy, frame_lengths, label_lengths, window)
    for b in range(4):
        t_end, u_end = int(frame_lengths[b]) - 1, int(label_lengths[b])
        s = starts[b, : t_end + 1]
        assert int(s[0]) == 0
        steps = torch.diff(s)
        assert bool((steps >= 0).all()) and bool((steps <= window - 1).all())
        assert int(s[-1]) <= u_end < int(s[-1]) + window
        assert int(s.max()) <= max(u_end - window + 1, 0)


def test_the_windows_follow_a_confident_alignment():
    # A simple lattice that puts label u on frame 2u: the chosen windows must cover it, and
    # the pruned loss of a joint that agrees is the full loss up to the pruned paths' mass.
    frames, labels, vocab = 12, 5, 6
    targets = torch.arange(1, labels + 1)[None]
    am = torch.full((1, frames, vocab), -6.0, dtype=torch.float64)
    am[0, :, 0] = 6.0
    for u in range(labels):
        am[0, 2 * u, u + 1] = 8.0
    lm = torch.zeros(1, labels + 1, vocab, dtype=torch.float64)
    lengths = torch.tensor([frames]), torch.tensor([labels])
    blank, label = simple_lattice(am, lm, targets)
    blank.requires_grad_()
    label.requires_grad_()
    occupancy = torch.autograd.grad(lattice_loss(blank, label, *lengths).sum(), (blank, label))
    starts = prune_starts(-occupancy[0], -occupancy[1], *lengths, window=3)
    for u in range(labels + 1):
        t = min(2 * u, frames - 1)
        assert int(starts[0, t]) <= u < int(starts[0, t]) + 3
    logits = am[:, :, None, :] + lm[:, None, :, :]
    pruned, simple = pruned_rnnt_loss(am, lm, _gather_joint(logits), targets, *lengths, 3)
    full = rnnt_loss(logits, targets, *lengths, reduction="none")
    torch.testing.assert_close(simple, full)
    assert float(full[0]) <= float(pruned[0]) < float(full[0]) + 1e-3


def test_window_size_widens_for_fast_speech_and_stops_at_the_lattice():
    frames, labels = torch.tensor([3, 10]), torch.tensor([10, 2])
    assert window_size(2, frames, labels, 11) == 5  # ceil(10 / 3) + 1
    assert window_size(5, torch.tensor([4]), torch.tensor([2]), 3) == 3
    with pytest.raises(ValueError, match="at least 1"):
        window_size(0, frames, labels, 11)


def test_pruned_lattice_loss_gradcheck():
    logits, targets, frames, labels = _batch(7, [4, 3], [2, 3])
    blank = logits.log_softmax(-1)[..., 0][:, :, :3].clone().requires_grad_()
    label = torch.randn(2, 4, 3, dtype=torch.float64).log_softmax(-1).requires_grad_()
    starts = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])

    def loss(b, lab):
        return pruned_lattice_loss(b, lab, starts, frames, labels)

    assert torch.autograd.gradcheck(loss, (blank, label))
