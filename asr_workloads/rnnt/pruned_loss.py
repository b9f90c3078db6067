"""The pruned RNN-T loss: the joint network on a few lattice nodes per frame, not on all.

Most of a transducer training step is the joint network over the whole ``T x (U+1)``
lattice (its forward and backward on a ``(B, T, U+1, J)`` tensor). Most of those nodes lie
far from any likely alignment. The pruned loss (Kuang et al., "Pruned RNN-T for fast,
memory-efficient ASR training", 2022; k2's ``rnnt_loss_pruned``) keeps a window of ``S``
consecutive label positions per frame:

1. A *simple* joint, ``logits[t, u] = am[t] + lm[u]``, gives the whole lattice's transition
   log-probabilities for the cost of one ``(T, V) x (V, U+1)`` matmul of exponentials
   (:func:`simple_lattice`). Its RNN-T loss is trained alongside (it must be good enough to
   find the alignments).
2. The gradient of that loss with respect to its transition log-probabilities is each
   transition's posterior occupancy. Per frame, the window ``[s_t, s_t + S)`` holding the
   most occupancy is kept, then the starts are made connected: ``s_0 = 0``, ``s_t``
   non-decreasing by at most ``S - 1`` per frame, and the last frame's window ends at
   ``U`` (:func:`prune_starts`).
3. The real joint runs on those ``B T S`` nodes only, and the RNN-T forward recursion runs
   in window coordinates (:func:`pruned_lattice_loss`).

With ``S >= U + 1`` every node is kept and the loss is the full RNN-T loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..text import BLANK
from .lattice import lattice_nll, lattice_posteriors

__all__ = [
    "prune_starts",
    "pruned_rnnt_loss",
    "pruned_lattice_loss",
    "simple_lattice",
    "window_indices",
    "window_size",
]


def simple_lattice(
    am: torch.Tensor, lm: torch.Tensor, targets: torch.Tensor, blank: int = BLANK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Transition log-probabilities of the joint ``logits[t, u] = am[t] + lm[u]``.

    Parameters
    ----------
    am : torch.Tensor
        ``(B, T, V)`` per-frame logits.
    lm : torch.Tensor
        ``(B, U+1, V)`` per-label-position logits.
    targets : torch.Tensor
        ``(B, U)`` label ids (padding may be any class in range).

    Returns
    -------
    tuple
        ``blank[t, u]`` ``(B, T, U+1)`` and ``label[t, u]`` ``(B, T, U)``, as
        :func:`.loss.transition_log_probs` gives for the full joint.
    """
    vocab = am.shape[-1]
    # log sum_v exp(am[t, v] + lm[u, v]) as one batched matmul of exponentials, each side
    # shifted by its maximum so that neither overflows.
    am_max = am.detach().amax(dim=-1, keepdim=True)
    lm_max = lm.detach().amax(dim=-1, keepdim=True)
    sums = torch.bmm((am - am_max).exp(), (lm - lm_max).exp().transpose(1, 2))
    shifts = am_max + lm_max.transpose(1, 2)
    normaliser = sums.clamp_min(torch.finfo(sums.dtype).tiny).log() + shifts
    blank_lp = am[..., blank, None] + lm[..., blank][:, None, :] - normaliser
    index = targets.long().clamp(0, vocab - 1)  # (B, U)
    label_am = am.gather(2, index[:, None, :].expand(-1, am.shape[1], -1))  # (B, T, U)
    label_lm = lm[:, :-1].gather(2, index[..., None])[..., 0]  # (B, U)
    return blank_lp, label_am + label_lm[:, None, :] - normaliser[..., :-1]


def window_size(
    wanted: int, logit_lengths: torch.Tensor, target_lengths: torch.Tensor, nodes: int
) -> int:
    """The window ``S`` for a batch: ``wanted``, widened where an utterance needs it.

    Connected windows climb at most ``S - 1`` labels per frame, so an utterance of ``U``
    labels in ``T`` frames needs ``S >= ceil(U / T) + 1``; no window exceeds the lattice's
    ``nodes = U_max + 1`` (which keeps every node).
    """
    if wanted < 1:
        raise ValueError(f"the pruning window must be at least 1 label position, not {wanted}")
    pairs = zip(target_lengths.tolist(), logit_lengths.tolist(), strict=True)
    needed = max((math.ceil(u / t) + 1 for u, t in pairs), default=1)
    return min(max(wanted, needed), nodes)


@torch.no_grad()
def prune_starts(
    blank_occupancy: torch.Tensor,
    label_occupancy: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    window: int,
) -> torch.Tensor:
    """``(B, T)`` first label position of each frame's window of ``window`` positions.

    Parameters
    ----------
    blank_occupancy, label_occupancy : torch.Tensor
        ``(B, T, U+1)`` and ``(B, T, U)`` posterior probabilities of each transition (minus
        the gradient of the simple lattice's loss).
    window : int
        ``S``, at most ``U+1`` and feasible for every utterance (see :func:`window_size`).
    """
    batch, frames, nodes = blank_occupancy.shape
    occupancy = blank_occupancy.clone()
    occupancy[..., :-1] += label_occupancy  # every visited node leaves by one transition
    cumulative = F.pad(occupancy.cumsum(dim=-1), (1, 0))
    sums = cumulative[..., window:] - cumulative[..., :-window]  # (B, T, nodes - S + 1)
    last_start = (target_lengths.long() - window + 1).clamp(min=0)  # the window ending at U
    beyond = torch.arange(sums.shape[-1]) > last_start[:, None, None]
    starts = sums.masked_fill(beyond, -math.inf).argmax(dim=-1)

    t = torch.arange(frames)
    climb = window - 1
    last_frame = logit_lengths.long()[:, None] - 1
    # Reachable from s_0 = 0, and able to reach the last window by the last frame.
    highest = torch.minimum(climb * t[None], last_start[:, None])
    lowest = (last_start[:, None] - climb * (last_frame - t[None])).clamp(min=0)
    starts = torch.maximum(torch.minimum(starts, highest), lowest)
    starts = torch.where(t[None] >= last_frame, last_start[:, None], starts)
    starts = starts.cummax(dim=1).values
    # s_t >= s_{t+1} - climb, from the last frame backwards: a reversed running maximum.
    behind = (starts - climb * t).flip(1).cummax(dim=1).values.flip(1)
    return behind + climb * t


def window_indices(starts: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, T, S)`` label positions ``s_t + k`` of each frame's window."""
    return starts[..., None] + torch.arange(window, device=starts.device)


def pruned_lattice_loss(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    starts: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """``(B,)`` negative log-likelihoods over the paths that stay inside the windows.

    Parameters
    ----------
    blank_lp, label_lp : torch.Tensor
        ``(B, T, S)`` log-probabilities of the blank and of the next label at node
        ``(t, s_t + k)`` (the label out of ``k = S - 1`` leaves the window and is unused).
    starts : torch.Tensor
        ``(B, T)`` from :func:`prune_starts`.
    """
    rows = torch.arange(blank_lp.shape[0], device=blank_lp.device)
    ends = target_lengths.long() - starts[rows, logit_lengths.long() - 1]
    # A blank from (t-1, u) lands on window position u - s_t.
    shifts = torch.diff(starts, dim=1, prepend=starts[:, :1])
    return lattice_nll(blank_lp, label_lp, shifts, logit_lengths, ends)


def pruned_rnnt_loss(
    am: torch.Tensor,
    lm: torch.Tensor,
    joint: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    window: int,
    blank: int = BLANK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pruned RNN-T loss and the simple joint's loss, ``(B,)`` each.

    Parameters
    ----------
    am, lm : torch.Tensor
        The simple joint's ``(B, T, V)`` and ``(B, U+1, V)`` logits (see
        :func:`simple_lattice`).
    joint : callable
        Maps ``(B, T, S)`` label positions to the real joint's ``(B, T, S, V)`` logits of
        frame ``t`` with the prediction network's output at each position.
    targets, logit_lengths, target_lengths, blank
        As for :func:`.loss.rnnt_loss`.
    window : int
        Label positions kept per frame (widened where an utterance needs it; see
        :func:`window_size`).
    """
    simple_blank, simple_label = simple_lattice(am, lm, targets, blank)
    # One forward-backward gives the simple joint's loss, its gradient and the occupancies
    # that choose the windows (a choice, not part of the gradient).
    simple_transitions = (simple_blank, F.pad(simple_label, (0, 1)))
    shifts = torch.zeros_like(simple_blank[..., 0], dtype=torch.long)
    posteriors = lattice_posteriors(*simple_transitions, shifts, logit_lengths, target_lengths)
    simple = lattice_nll(
        *simple_transitions, shifts, logit_lengths, target_lengths, posteriors=posteriors
    )
    occupancy = (posteriors.blank, posteriors.label[..., :-1])
    nodes = simple_blank.shape[2]
    window = window_size(window, logit_lengths, target_lengths, nodes)
    starts = prune_starts(*occupancy, logit_lengths, target_lengths, window)
    positions = window_indices(starts, window)
    log_probs = joint(positions).log_softmax(dim=-1)
    # The label out of each window node; past U it is padding (its paths never reach the
    # end), and the appended column keeps the gather legal when U = 0.
    padded = F.pad(targets.long(), (0, 1), value=blank)
    labels = padded.gather(1, positions.clamp(max=nodes - 1).flatten(1)).view_as(positions)
    label_lp = log_probs.gather(3, labels[..., None])[..., 0]
    pruned = pruned_lattice_loss(
        log_probs[..., blank], label_lp, starts, logit_lengths, target_lengths
    )
    return pruned, simple
