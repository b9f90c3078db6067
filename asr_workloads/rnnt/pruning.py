"""Gradual magnitude pruning (Zhu & Gupta 2017), unstructured or N:M.

Low-magnitude weights are driven to zero over the training steps on a polynomial schedule,
so that by the end a fixed fraction of every prunable matrix (``model_config.is_prunable``:
the matrices the MAC array multiplies) is exactly zero. Masks are per matrix. The model
multiplies each weight by its mask in the forward pass (pruned weights get no gradient),
and :class:`Pruner` also zeroes the stored weights, so optimizer momentum or weight decay
cannot revive them and a saved checkpoint carries its masks as its zeros.
"""

from __future__ import annotations

import dataclasses

import torch

from ..model_config import is_prunable

__all__ = ["Pruner", "PruningSchedule", "magnitude_mask", "nm_mask", "polynomial_sparsity"]


def polynomial_sparsity(
    step: int, start: int, end: int, final: float, initial: float = 0.0, power: int = 3
) -> float:
    """Target sparsity at ``step`` on Zhu & Gupta's schedule.

    ``s = final + (initial - final) * (1 - (step - start) / (end - start)) ** power`` for
    ``start <= step < end``: fast pruning early, while the network can still recover, and
    slow near the end. Before ``start`` nothing is pruned (0); from ``end`` on it is
    ``final`` (``start == end`` prunes in one shot).
    """
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
        raise ValueError(f"pruning needs integer steps 0 <= start <= end, not {start!r}, {end!r}")
    if not 0.0 <= initial <= final < 1.0:
        raise ValueError(
            f"pruning needs sparsities 0 <= initial <= final < 1, not {initial!r}, {final!r}"
        )
    if not isinstance(power, int) or isinstance(power, bool) or power < 1:
        raise ValueError(f"pruning power must be a positive integer, not {power!r}")
    if step < start:
        return 0.0
    if step >= end:
        return float(final)
    remaining = 1.0 - (step - start) / (end - start)
    return final + (initial - final) * remaining**power


def _check_matrix(w: torch.Tensor) -> None:
    if w.dim() != 2:
        raise ValueError(f"masks are per matrix and need a 2-D weight, not {tuple(w.shape)}")


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """0/1 mask (``w``'s dtype) zeroing the ``floor(sparsity * w.numel() + 1/2)`` smallest ``|w|``.

    Ties are broken by position (row-major, first pruned first), so the zero count is exact
    and repeatable; weights already at zero are pruned first, so masks only grow.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must lie in [0, 1], not {sparsity!r}")
    count = int(sparsity * w.numel() + 0.5)
    order = torch.argsort(w.detach().abs().reshape(-1), stable=True)
    mask = torch.ones(w.numel(), dtype=w.dtype, device=w.device)
    mask[order[:count]] = 0
    return mask.view_as(w)


def nm_mask(w: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """0/1 mask keeping the ``n`` largest ``|w|`` of each aligned group of ``m`` in a row.

    Groups run along the input dimension (``w[r, g m : g m + m]``), the layout an N:M
    decompressor walks. A row whose length is not a multiple of ``m`` ends in a partial
    group, which keeps its ``min(n, size)`` largest. Ties keep the earlier element.
    """
    _check_matrix(w)
    for name, value in (("n", n), ("m", m)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"N:M {name} must be a positive integer, not {value!r}")
    if n > m:
        raise ValueError(f"N:M needs n <= m, not {n}:{m}")
    rows, cols = w.shape
    groups = -(-cols // m)
    # Padding scores -1 (below any |w|) so a partial group never keeps a padding slot.
    score = torch.full((rows, groups * m), -1.0, dtype=torch.float64, device=w.device)
    score[:, :cols] = w.detach().abs()
    score = score.view(rows, groups, m)
    # Stable descending sort: among equal magnitudes the earlier element ranks first.
    order = torch.argsort(-score, dim=2, stable=True)
    keep = torch.zeros_like(score, dtype=torch.bool)
    keep.scatter_(2, order[:, :, :n], True)
    keep &= score >= 0
    return keep.view(rows, groups * m)[:, :cols].to(w.dtype)


def _pattern(pattern: str) -> tuple[int, int] | None:
    """``None`` for ``"unstructured"``, else ``(n, m)`` from ``"n:m"``."""
    if pattern == "unstructured":
        return None
    try:
        n, m = (int(part) for part in pattern.split(":"))
    except (AttributeError, ValueError):
        raise ValueError(
            f"pruning pattern must be 'unstructured' or 'n:m', not {pattern!r}"
        ) from None
    nm_mask(torch.zeros(1, m), n, m)
    return n, m


@dataclasses.dataclass(frozen=True)
class PruningSchedule:
    """When, how much and in what pattern to prune (the fields of the recipe's pruning).

    Parameters
    ----------
    sparsity : float
        Final fraction of zeros in every prunable matrix, reached at ``end``.
    start, end : int
        Steps at which pruning begins and ends.
    pattern : str
        ``"unstructured"`` (per matrix) or ``"n:m"`` such as ``"2:4"``: each update then
        prunes the smallest weights among those :func:`nm_mask` would drop, so at
        ``sparsity = 1 - n/m`` every matrix is exactly N:M.
    every : int
        Masks are recomputed every ``every`` steps from ``start`` (and at ``end``).
    initial : float
        Sparsity applied at ``start``.
    power : int
        Exponent of the polynomial schedule (3 in Zhu & Gupta).
    """

    sparsity: float
    start: int
    end: int
    pattern: str = "unstructured"
    every: int = 1
    initial: float = 0.0
    power: int = 3

    def __post_init__(self) -> None:
        polynomial_sparsity(
            self.start, self.start, self.end, self.sparsity, self.initial, self.power
        )
        if not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 1:
            raise ValueError(f"pruning every must be a positive integer, not {self.every!r}")
        n_m = _pattern(self.pattern)
        if n_m is not None and self.sparsity > 1 - n_m[0] / n_m[1] + 1e-12:
            raise ValueError(
                f"pruning sparsity {self.sparsity} exceeds what {self.pattern} removes "
                f"({1 - n_m[0] / n_m[1]})"
            )

    @classmethod
    def of(cls, config: object) -> PruningSchedule:
        """A schedule from any object with these fields (e.g. the recipe's pruning section)."""
        if isinstance(config, cls):
            return config
        fields = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in fields[:3] if not hasattr(config, name)]
        if missing:
            raise TypeError(
                f"a pruning schedule needs {', '.join(fields[:3])}; "
                f"{type(config).__name__} lacks {missing[0]}"
            )
        return cls(**{name: getattr(config, name) for name in fields if hasattr(config, name)})

    @property
    def n_m(self) -> tuple[int, int] | None:
        """``(n, m)`` of an N:M pattern, None if unstructured."""
        return _pattern(self.pattern)

    def target(self, step: int) -> float:
        """Target sparsity at ``step``."""
        return polynomial_sparsity(
            step, self.start, self.end, self.sparsity, self.initial, self.power
        )

    def updates_at(self, step: int) -> bool:
        """Whether masks are recomputed at ``step``."""
        return self.start <= step <= self.end and (
            (step - self.start) % self.every == 0 or step == self.end
        )


def _structured_mask(w: torch.Tensor, sparsity: float, n: int, m: int) -> torch.Tensor:
    """Prune the smallest of the weights outside the N:M keep set, up to ``sparsity``."""
    keep = nm_mask(w, n, m).bool()
    # Kept weights score +inf, so magnitude pruning reaches them only past the N:M budget,
    # which the schedule's sparsity forbids; the count is capped at the candidates.
    score = torch.where(keep, torch.full_like(w, float("inf")), w.detach().abs())
    candidates = int((~keep).sum())
    sparsity = min(sparsity, candidates / w.numel())
    return magnitude_mask(score, sparsity)


class Pruner:
    """Keeps an RNN-T's prunable matrices on a pruning schedule.

    Per training step: :meth:`update` before the forward pass (on update steps it
    recomputes the masks from the current weight magnitudes and installs them with
    ``model.set_mask``), and :meth:`apply` after the optimizer step (it zeroes the pruned
    weights, which optimizer momentum or weight decay would otherwise revive).

    Parameters
    ----------
    model : torch.nn.Module
        A model with ``set_mask(name, mask)`` and ``masks`` (an :class:`..model.RNNT`).
    schedule : PruningSchedule or object
        When and how much; any object with the schedule's fields is accepted (the recipe's
        ``compression.pruning``).
    """

    def __init__(self, model: torch.nn.Module, schedule: object) -> None:
        self.model = model
        self.schedule = PruningSchedule.of(schedule)
        self.params = {name: param for name, param in model.named_parameters() if is_prunable(name)}
        if not self.params:
            raise ValueError("the model has no prunable parameters")

    @torch.no_grad()
    def update(self, step: int) -> float:
        """Recompute the masks if ``step`` is an update step; returns the target sparsity."""
        schedule = self.schedule
        sparsity = schedule.target(step)
        if schedule.updates_at(step):
            n_m = schedule.n_m
            for name, w in self.params.items():
                if n_m is None:
                    mask = magnitude_mask(w, sparsity)
                else:
                    mask = _structured_mask(w, sparsity, *n_m)
                self.model.set_mask(name, mask)
            self.apply()
        return sparsity

    @torch.no_grad()
    def apply(self) -> None:
        """Zero the pruned weights."""
        for name, w in self.params.items():
            mask = self.model.masks.get(name)
            if mask is not None:
                w.mul_(mask)

    def masks(self) -> dict[str, torch.Tensor]:
        """Boolean masks (True = kept) of the pruned parameters, for export."""
        return {
            name: self.model.masks[name] != 0 for name in self.params if name in self.model.masks
        }

    def sparsity(self) -> dict[str, float]:
        """Measured fraction of zeros of each prunable weight."""
        return {name: float((w == 0).float().mean()) for name, w in self.params.items()}

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        """The masks, for a training checkpoint (they are not in the model's state_dict)."""
        return {"masks": {name: mask.clone() for name, mask in self.masks().items()}}

    def load_state_dict(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        """Reinstall masks saved by :meth:`state_dict`."""
        masks = state.get("masks") if isinstance(state, dict) else None
        if not isinstance(masks, dict):
            raise ValueError("pruner state must be a mapping with a 'masks' mapping")
        for name, mask in masks.items():
            if name not in self.params:
                raise ValueError(f"pruner state has a mask for {name!r}, not a prunable parameter")
            self.model.set_mask(name, mask)
