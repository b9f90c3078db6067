"""The transducer lattice's forward-backward: its negative log-likelihood and posteriors.

One recursion serves both the full lattice (:func:`.loss.lattice_loss`) and the pruned one
(:func:`.pruned_loss.pruned_lattice_loss`). Each frame ``t`` holds ``S`` consecutive label
positions ``u = s_t + k`` (``k < S``); the full lattice is the case ``s_t = 0``,
``S = U + 1``. A blank moves ``(t, k)`` to ``(t+1, k - shift[t+1])`` with
``shift[t+1] = s_{t+1} - s_t`` (a path that falls below the next window is dropped); a
label moves ``(t, k)`` to ``(t, k+1)``. The path ends with the blank out of ``(T_b - 1,
end_b)``.

Within one frame the label moves are a running sum, so both directions unroll into one
vectorised cumulative log-sum-exp per frame (see :mod:`.loss`): with ``C[k]`` the
log-probability of the labels ``0 .. k-1`` of the frame in a row,

    alpha[t, k] = C[k] + logcumsumexp_k(a[k] - C[k]),   a[k] = alpha[t-1, k + shift] + blank
    beta[t, k] = -C[k] + reverse_logcumsumexp_k(b[k] + C[k]),   b[k] = blank + beta[t+1, ..]

The gradient of the negative log-likelihood with respect to a transition's log-probability
is minus the posterior probability that a path takes it, ``exp(alpha + transition +
beta_after - log P)``, so the backward pass is the forward-backward algorithm itself rather
than autograd through ``T`` small steps (which recorded several hundred operations per
lattice and cost most of a pruned transducer step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LatticePosteriors", "lattice_nll", "lattice_posteriors"]

# Stands for log(0): finite, so that sums of two of them and differences with finite values
# never make NaN, and so negative that exp() of it is exactly zero in float32 and float64.
LOG_ZERO = -1e9


@dataclass(frozen=True)
class LatticePosteriors:
    """What the forward-backward of a batch of lattices gives.

    Attributes
    ----------
    nll : torch.Tensor
        ``(B,)`` negative log-likelihood of each utterance's targets.
    blank, label : torch.Tensor
        ``(B, T, S)`` posterior probability that a path takes the blank, and the label, out
        of each node (zero at the unused label out of ``k = S - 1`` and past the lengths).
    """

    nll: torch.Tensor
    blank: torch.Tensor
    label: torch.Tensor


def _climb(label_lp: torch.Tensor) -> torch.Tensor:
    """``C[t, k]``: log-probability of emitting the frame's labels ``0 .. k-1`` in a row."""
    return F.pad(label_lp[..., :-1].cumsum(dim=2), (1, 0))


def _alphas(blank_lp: torch.Tensor, climb: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``(B, T, S)`` forward log-probabilities of reaching each node."""
    window = blank_lp.shape[2]
    below = shifts[..., None] + torch.arange(window, device=shifts.device)  # (B, T, S)
    alpha = climb[:, 0]
    alphas = [alpha]
    for t in range(1, blank_lp.shape[1]):
        leaving = F.pad(alpha + blank_lp[:, t - 1], (0, window), value=LOG_ZERO)
        arriving = leaving.gather(1, below[:, t])
        alpha = climb[:, t] + torch.logcumsumexp(arriving - climb[:, t], dim=1)
        alphas.append(alpha)
    return torch.stack(alphas, dim=1)


def _end_nodes(
    alpha: torch.Tensor, blank_lp: torch.Tensor, logit_lengths: torch.Tensor, ends: torch.Tensor
) -> torch.Tensor:
    rows = torch.arange(alpha.shape[0], device=alpha.device)
    t_end = logit_lengths.long() - 1
    return alpha[rows, t_end, ends.long()] + blank_lp[rows, t_end, ends.long()]


@torch.no_grad()
def lattice_posteriors(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    shifts: torch.Tensor,
    logit_lengths: torch.Tensor,
    ends: torch.Tensor,
) -> LatticePosteriors:
    """Forward-backward over a batch of (windowed) lattices.

    Parameters
    ----------
    blank_lp, label_lp : torch.Tensor
        ``(B, T, S)`` log-probabilities of the blank and of the next label out of each node
        (the label out of ``k = S - 1`` is unused).
    shifts : torch.Tensor
        ``(B, T)`` integer ``s_t - s_{t-1}`` (``shifts[:, 0]`` unused), each in ``[0, S-1]``.
    logit_lengths : torch.Tensor
        ``(B,)`` valid frames ``T_b``, each in ``[1, T]``.
    ends : torch.Tensor
        ``(B,)`` window position of the last node, ``U_b - s_{T_b - 1}``.
    """
    batch, frames, window = blank_lp.shape
    device = blank_lp.device
    climb = _climb(label_lp)
    alpha = _alphas(blank_lp, climb, shifts)
    log_likelihood = _end_nodes(alpha, blank_lp, logit_lengths, ends)

    last_frame = logit_lengths.long() - 1
    positions = torch.arange(window, device=device)
    # The final blank, out of (T_b - 1, end_b): the only way out of each lattice.
    final = torch.where(
        positions[None] == ends.long()[:, None], 0.0, torch.full((), LOG_ZERO, device=device)
    ).to(blank_lp.dtype)
    after_blank = torch.full_like(blank_lp, LOG_ZERO)  # beta of the node a blank lands on
    beta_next = torch.full((batch, window), LOG_ZERO, dtype=blank_lp.dtype, device=device)
    betas = [beta_next] * frames
    for t in range(frames - 1, -1, -1):
        if t + 1 < frames:
            # Node k lands on k - shift[t+1] of the next window; below it, off the lattice.
            target = positions[None] - shifts[:, t + 1, None]
            landed = beta_next.gather(1, target.clamp(min=0))
            landed = torch.where(target >= 0, landed, LOG_ZERO)
        else:
            landed = beta_next
        landed = torch.where((t == last_frame)[:, None], final, landed)
        landed = torch.where((t > last_frame)[:, None], LOG_ZERO, landed)
        after_blank[:, t] = landed
        leaving = blank_lp[:, t] + landed + climb[:, t]
        beta_next = torch.logcumsumexp(leaving.flip(1), dim=1).flip(1) - climb[:, t]
        betas[t] = beta_next
    beta = torch.stack(betas, dim=1)

    total = log_likelihood[:, None, None]
    blank = (alpha + blank_lp + after_blank - total).exp()
    after_label = F.pad(beta[..., 1:], (0, 1), value=LOG_ZERO)
    label = (alpha + label_lp + after_label - total).exp()
    return LatticePosteriors(-log_likelihood, blank, label)


class _FromPosteriors(torch.autograd.Function):
    """The negative log-likelihood, with the gradient its posteriors give."""

    @staticmethod
    def forward(ctx, blank_lp, label_lp, nll, blank, label):  # noqa: ARG004
        ctx.save_for_backward(blank, label)
        return nll.clone()

    @staticmethod
    def backward(ctx, grad):
        blank, label = ctx.saved_tensors
        scale = -grad[:, None, None]
        return scale * blank, scale * label, None, None, None


def lattice_nll(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    shifts: torch.Tensor,
    logit_lengths: torch.Tensor,
    ends: torch.Tensor,
    posteriors: LatticePosteriors | None = None,
) -> torch.Tensor:
    """``(B,)`` negative log-likelihoods, differentiable in ``blank_lp`` and ``label_lp``.

    Arguments as for :func:`lattice_posteriors`; pass ``posteriors`` if they are already
    computed for these inputs. Without a gradient to compute, only the forward recursion runs.
    """
    needs_grad = torch.is_grad_enabled() and (blank_lp.requires_grad or label_lp.requires_grad)
    if not needs_grad:
        with torch.no_grad():
            alpha = _alphas(blank_lp, _climb(label_lp), shifts)
            return -_end_nodes(alpha, blank_lp, logit_lengths, ends)
    if posteriors is None:
        posteriors = lattice_posteriors(blank_lp, label_lp, shifts, logit_lengths, ends)
    return _FromPosteriors.apply(
        blank_lp, label_lp, posteriors.nll, posteriors.blank, posteriors.label
    )
