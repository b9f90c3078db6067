"""The RNN-T loss against brute-force enumeration of alignments, a published value, gradcheck."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.rnnt.loss import rnnt_loss


def brute_force(logits: torch.Tensor, targets: list[int], blank: int) -> float:
    """-log of the summed probability of every alignment, enumerated one by one.

    An alignment is an order of T blanks and U labels that ends with a blank: choose which
    of the first T + U - 1 moves are labels; a blank moves to the next frame, a label to the
    next target, and every move's probability is read at the current (t, u).
    """
    log_probs = logits.double().log_softmax(dim=-1)
    frames, labels = log_probs.shape[0], len(targets)
    moves = frames + labels - 1
    total = 0.0
    for label_moves in combinations(range(moves), labels):
        t = u = 0
        score = 0.0
        for move in range(moves):
            if move in label_moves:
                score += float(log_probs[t, u, targets[u]])
                u += 1
            else:
                score += float(log_probs[t, u, blank])
                t += 1
        score += float(log_probs[t, u, blank])
        total += math.exp(score)
    return -math.log(total)


@pytest.mark.parametrize(
    ("frames", "labels", "vocab", "blank"),
    [
        (1, 0, 3, 0),
        (1, 2, 4, 0),
        (3, 1, 3, 0),
        (4, 3, 5, 0),
        (5, 2, 6, 2),
        (2, 4, 3, 1),
    ],
)
def test_single_utterance_matches_brute_force(frames, labels, vocab, blank):
    torch.manual_seed(frames * 10 + labels)
    logits = torch.randn(1, frames, labels + 1, vocab, dtype=torch.float64) * 2
    choices = [c for c in range(vocab) if c != blank]
    targets = [choices[i % len(choices)] for i in torch.randint(0, 99, (labels,)).tolist()]
    loss = rnnt_loss(
        logits,
        torch.tensor([targets], dtype=torch.long).reshape(1, labels),
        torch.tensor([frames]),
        torch.tensor([labels]),
        blank=blank,
        reduction="none",
    )
    assert float(loss[0]) == pytest.approx(brute_force(logits[0], targets, blank), rel=1e-9)


def test_padded_batch_matches_each_utterance():
    torch.manual_seed(5)
    frame_lengths, target_lengths = [4, 2, 5, 1], [2, 3, 0, 1]
    logits = torch.randn(4, 5, 4, 5, dtype=torch.float64)
    targets = torch.randint(1, 5, (4, 3))
    losses = rnnt_loss(
        logits,
        targets,
        torch.tensor(frame_lengths),
        torch.tensor(target_lengths),
        reduction="none",
    )
    expected = [
        brute_force(logits[b, :t, : u + 1], targets[b, :u].tolist(), 0)
        for b, (t, u) in enumerate(zip(frame_lengths, target_lengths, strict=True))
    ]
    torch.testing.assert_close(losses, torch.tensor(expected, dtype=torch.float64))
    total = rnnt_loss(
        logits, targets, torch.tensor(frame_lengths), torch.tensor(target_lengths), reduction="sum"
    )
    mean = rnnt_loss(logits, targets, torch.tensor(frame_lengths), torch.tensor(target_lengths))
    torch.testing.assert_close(total, torch.tensor(sum(expected), dtype=torch.float64))
    torch.testing.assert_close(mean, total / 4)


def test_warp_transducer_reference_case():
    # The small case of warp-transducer's tests (also torchaudio's docs example), with its
    # published cost and gradients.
    logits = torch.tensor(
        [
            [
                [[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.1, 0.6, 0.1, 0.1], [0.1, 0.1, 0.2, 0.8, 0.1]],
                [[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.1, 0.1], [0.7, 0.1, 0.2, 0.1, 0.1]],
            ]
        ],
        requires_grad=True,
    )
    loss = rnnt_loss(logits, torch.tensor([[1, 2]]), torch.tensor([2]), torch.tensor([2]))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(4.495666, abs=1e-5)
    expected_grad = torch.tensor(
        [
            [
                [
                    [-0.13116688, -0.3999269, 0.17703125, 0.17703125, 0.17703125],
                    [-0.18572757, 0.12247056, -0.18168412, 0.12247056, 0.12247056],
                    [-0.32091254, 0.06269141, 0.06928472, 0.12624499, 0.06269141],
                ],
                [
                    [0.05456069, -0.21824276, 0.05456069, 0.05456069, 0.05456069],
                    [0.12073959, 0.12073959, -0.48295835, 0.12073959, 0.12073959],
                    [-0.6925882, 0.16871116, 0.18645467, 0.16871116, 0.16871116],
                ],
            ]
        ]
    )
    torch.testing.assert_close(logits.grad, expected_grad, atol=1e-5, rtol=1e-4)


def test_gradcheck():
    torch.manual_seed(6)
    logits = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1, 3], [2, 0]])

    def loss(x):
        return rnnt_loss(x, targets, torch.tensor([3, 2]), torch.tensor([2, 1]), reduction="sum")

    assert torch.autograd.gradcheck(loss, (logits,))


def test_bad_inputs_are_named():
    logits = torch.zeros(2, 3, 3, 4)
    targets = torch.ones(2, 2, dtype=torch.long)
    frames, labels = torch.tensor([3, 3]), torch.tensor([2, 2])
    with pytest.raises(ValueError, match=r"targets must be \(B, U\) = \(2, 2\)"):
        rnnt_loss(logits, targets[:, :1], frames, labels)
    with pytest.raises(ValueError, match=r"logit_lengths must lie in \[1, 3\], not 4"):
        rnnt_loss(logits, targets, torch.tensor([3, 4]), labels)
    with pytest.raises(ValueError, match=r"target_lengths must lie in \[0, 2\], not -1"):
        rnnt_loss(logits, targets, frames, torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="must not contain the blank 0"):
        rnnt_loss(logits, torch.tensor([[1, 0], [1, 1]]), frames, labels)
    with pytest.raises(ValueError, match="reduction must be one of mean, sum, none, not 'avg'"):
        rnnt_loss(logits, targets, frames, labels, reduction="avg")
