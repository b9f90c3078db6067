"""The RNN-T loss in pure PyTorch (no torchaudio: it has no build that loads beside torch).

For one utterance with ``T`` encoder frames and targets ``y_1..y_U``, the lattice node
``(t, u)`` means "``u`` labels emitted by frame ``t``". With ``blank[t, u]`` and
``label[t, u] = log P(y_{u+1} | t, u)`` from the log-softmaxed joint logits, the forward
variable is

    alpha[0, 0] = 0
    alpha[t, u] = logaddexp(alpha[t-1, u] + blank[t-1, u], alpha[t, u-1] + label[t, u-1])

and the loss is ``-(alpha[T-1, U] + blank[T-1, U])``. Within one frame the ``u`` recursion
is linear in probability space, so it unrolls: with ``a[u] = alpha[t-1, u] + blank[t-1, u]``
and ``C[u] = label[t, 0] + ... + label[t, u-1]`` (``C[0] = 0``),

    alpha[t, u] = C[u] + logcumsumexp_u(a[u] - C[u]),

one vectorised ``logcumsumexp`` per frame for the whole batch; the loop is over ``t`` only.
The backward pass is the matching backward recursion (:mod:`.lattice`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .lattice import lattice_nll

__all__ = ["REDUCTIONS", "lattice_loss", "rnnt_loss", "transition_log_probs"]

REDUCTIONS = ("mean", "sum", "none")


def _check(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int,
    reduction: str,
) -> None:
    if logits.dim() != 4:
        raise ValueError(f"logits must be (B, T, U+1, V), not {tuple(logits.shape)}")
    batch, frames, nodes, vocab = logits.shape
    if targets.dim() != 2 or targets.shape[0] != batch or targets.shape[1] + 1 != nodes:
        raise ValueError(
            f"targets must be (B, U) = ({batch}, {nodes - 1}) for logits "
            f"{tuple(logits.shape)}, not {tuple(targets.shape)}"
        )
    if not 0 <= blank < vocab:
        raise ValueError(f"blank must be a class index in [0, {vocab}), not {blank!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    for name, lengths, low, high in (
        ("logit_lengths", logit_lengths, 1, frames),
        ("target_lengths", target_lengths, 0, nodes - 1),
    ):
        if lengths.shape != (batch,) or lengths.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"{name} must be a ({batch},) integer tensor, not {lengths.dtype} "
                f"{tuple(lengths.shape)}"
            )
        if batch and (int(lengths.min()) < low or int(lengths.max()) > high):
            bad = lengths[(lengths < low) | (lengths > high)][0]
            raise ValueError(f"{name} must lie in [{low}, {high}], not {int(bad)}")
    if targets.numel():
        valid = torch.arange(nodes - 1, device=targets.device)[None, :] < target_lengths[:, None]
        used = targets[valid]
        if used.numel() and (int(used.min()) < 0 or int(used.max()) >= vocab):
            raise ValueError(f"targets must be class indices in [0, {vocab})")
        if bool((used == blank).any()):
            raise ValueError(f"targets must not contain the blank {blank}")


def rnnt_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood of the targets under the RNN-T lattice.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, T, U+1, V)`` joint-network outputs (unnormalised).
    targets : torch.Tensor
        ``(B, U)`` label ids, padded past each target length (padding is ignored).
    logit_lengths : torch.Tensor
        ``(B,)`` valid frames, each in ``[1, T]``.
    target_lengths : torch.Tensor
        ``(B,)`` valid labels, each in ``[0, U]``.
    blank : int
        The blank's class index.
    reduction : str
        ``"mean"`` (over the batch, as torchaudio does), ``"sum"`` or ``"none"`` (``(B,)``).
    """
    _check(logits, targets, logit_lengths, target_lengths, blank, reduction)
    blank_lp, label_lp = transition_log_probs(logits.log_softmax(dim=-1), targets, blank)
    losses = lattice_loss(blank_lp, label_lp, logit_lengths, target_lengths)
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def transition_log_probs(
    log_probs: torch.Tensor, targets: torch.Tensor, blank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lattice's two transitions out of each node ``(t, u)``, from normalised logits.

    Parameters
    ----------
    log_probs : torch.Tensor
        ``(B, T, U+1, V)`` log-probabilities of the classes at every node.
    targets : torch.Tensor
        ``(B, U)`` label ids (padding may be any class in range).

    Returns
    -------
    tuple
        ``blank[t, u]`` ``(B, T, U+1)`` and ``label[t, u] = log P(y_{u+1} | t, u)``
        ``(B, T, U)``.
    """
    batch, frames, nodes, vocab = log_probs.shape
    # Padding labels may be anything in range; clamp keeps gather legal, and no path to the
    # end node (t, U_b) uses a label past U_b.
    index = targets.long().clamp(0, vocab - 1)
    label_lp = log_probs[:, :, :-1, :].gather(
        3, index[:, None, :, None].expand(batch, frames, nodes - 1, 1)
    )[..., 0]
    return log_probs[..., blank], label_lp


def lattice_loss(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """``(B,)`` negative log-likelihoods of the lattices with these transition log-probs.

    ``blank_lp: (B, T, U+1)`` and ``label_lp: (B, T, U)`` as :func:`transition_log_probs`
    returns them; lengths as for :func:`rnnt_loss` (not checked here).
    """
    batch, frames, _ = blank_lp.shape
    # The full lattice is the window of all U+1 positions that never moves; the label out
    # of the last position (padding here) is unused.
    padded = F.pad(label_lp, (0, 1))
    shifts = torch.zeros(batch, frames, dtype=torch.long, device=blank_lp.device)
    return lattice_nll(blank_lp, padded, shifts, logit_lengths, target_lengths)
