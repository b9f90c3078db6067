"""Gradual magnitude pruning: the schedule, exact masks, N:M, and the pruner on a model."""

from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.model_config import (
    EncoderConfig,
    JointConfig,
    ModelConfig,
    PredictorConfig,
    is_prunable,
)
from edgenpu.asr_workloads.rnnt.model import RNNT
from edgenpu.asr_workloads.rnnt.pruning import (
    Pruner,
    PruningSchedule,
    magnitude_mask,
    nm_mask,
    polynomial_sparsity,
)


def test_polynomial_schedule():
    assert polynomial_sparsity(0, 10, 20, 0.8) == 0.0
    assert polynomial_sparsity(10, 10, 20, 0.8, initial=0.1) == pytest.approx(0.1)
    # Zhu & Gupta: s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3
    assert polynomial_sparsity(15, 10, 20, 0.8) == pytest.approx(0.8 - 0.8 * 0.5**3)
    assert polynomial_sparsity(20, 10, 20, 0.8) == 0.8
    assert polynomial_sparsity(99, 10, 20, 0.8) == 0.8
    values = [polynomial_sparsity(t, 0, 50, 0.9, power=2) for t in range(60)]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


def test_schedule_errors_name_the_value():
    with pytest.raises(ValueError, match="0 <= start <= end, not 5, 4"):
        polynomial_sparsity(0, 5, 4, 0.5)
    with pytest.raises(ValueError, match="0 <= initial <= final < 1, not 0.0, 1.0"):
        PruningSchedule(1.0, 0, 10)
    with pytest.raises(ValueError, match=r"sparsity 0.6 exceeds what 2:4 removes \(0.5\)"):
        PruningSchedule(0.6, 0, 10, pattern="2:4")
    with pytest.raises(ValueError, match="pattern must be 'unstructured' or 'n:m', not '2-4'"):
        PruningSchedule(0.5, 0, 10, pattern="2-4")
    with pytest.raises(ValueError, match="N:M needs n <= m, not 5:4"):
        nm_mask(torch.zeros(2, 4), 5, 4)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_magnitude_mask_is_exact(sparsity):
    torch.manual_seed(0)
    w = torch.randn(13, 17)
    mask = magnitude_mask(w, sparsity)
    pruned = int((mask == 0).sum())
    assert pruned == math.floor(sparsity * w.numel() + 0.5)
    if 0 < pruned < w.numel():
        assert w[mask == 0].abs().max() <= w[mask == 1].abs().min()


def test_magnitude_mask_ties_are_exact():
    mask = magnitude_mask(torch.zeros(4, 5), 0.5)
    assert int((mask == 0).sum()) == 10


def test_nm_mask_keeps_largest_per_group():
    w = torch.tensor([[1.0, -4.0, 3.0, 2.0, 0.0, 0.5, -0.1, 7.0, 9.0, 1.0]])
    assert nm_mask(w, 2, 4).tolist() == [[0, 1, 1, 0, 0, 1, 0, 1, 1, 1]]
    assert nm_mask(w, 1, 4).tolist() == [[0, 1, 0, 0, 0, 0, 0, 1, 1, 0]]


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (4, 8), (3, 4)])
def test_nm_mask_holds_on_random_weights(n, m):
    torch.manual_seed(1)
    w = torch.randn(9, 8 * m)
    groups = nm_mask(w, n, m).view(9, 8, m)
    assert torch.all(groups.sum(dim=2) == n)
    kept_min = torch.where(groups == 1, w.abs().view(9, 8, m), torch.inf).amin(dim=2)
    dropped_max = torch.where(groups == 0, w.abs().view(9, 8, m), -1.0).amax(dim=2)
    assert torch.all(dropped_max <= kept_min)


def small_model() -> RNNT:
    config = ModelConfig(
        input_dim=8,
        encoder=EncoderConfig((12, 12), (2, 1)),
        predictor=PredictorConfig(8, (12,)),
        joint=JointConfig(16),
    )
    torch.manual_seed(2)
    return RNNT(config)


def test_pruner_reaches_target_and_keeps_zeros():
    model = small_model()
    schedule = PruningSchedule(sparsity=0.75, start=2, end=10, every=2)
    pruner = Pruner(model, schedule)
    assert set(pruner.params) == {n for n, _ in model.named_parameters() if is_prunable(n)}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    features, lengths = torch.randn(2, 6, 8), torch.tensor([6, 4])
    previous = {name: torch.ones_like(p) for name, p in pruner.params.items()}
    for step in range(12):
        target = pruner.update(step)
        optimizer.zero_grad()
        frames, _, _ = model.encode(features, lengths)
        pred, _ = model.predict(torch.zeros(2, 3, dtype=torch.long))
        model.joint(frames, pred).square().mean().backward()
        optimizer.step()
        pruner.apply()
        for name, p in pruner.params.items():
            mask = model.masks.get(name, torch.ones_like(p))
            assert torch.all(p[mask == 0] == 0)  # optimizer momentum did not revive them
            assert torch.all(mask <= previous[name])  # masks only grow
            previous[name] = mask
            if schedule.updates_at(step):
                assert int((mask == 0).sum()) == math.floor(target * p.numel() + 0.5)
    assert target == 0.75
    for name, value in pruner.sparsity().items():
        assert value == pytest.approx(0.75, abs=0.5 / pruner.params[name].numel()), name
    # Biases and the embedding are never pruned.
    assert not any(name.endswith((".bias", "embedding")) for name in model.masks)
    # The masks survive a checkpoint: a fresh model and pruner get them back.
    other = small_model()
    other.load_state_dict(model.state_dict())
    again = Pruner(other, schedule)
    again.load_state_dict(pruner.state_dict())
    assert all(torch.equal(other.masks[n], model.masks[n]) for n in model.masks)
    assert all(m.dtype == torch.bool for m in pruner.masks().values())


def test_pruner_ends_in_exact_two_four():
    @dataclasses.dataclass(frozen=True)
    class RecipePruning:  # the recipe's section has the schedule's field names
        sparsity: float
        start: int
        end: int
        pattern: str
        every: int

    model = small_model()
    pruner = Pruner(model, RecipePruning(0.5, 0, 4, "2:4", 2))
    for step in range(5):
        pruner.update(step)
        with torch.no_grad():
            for p in pruner.params.values():
                p.add_(0.01 * torch.randn_like(p))
        pruner.apply()
    for name, p in pruner.params.items():
        groups = (p != 0).view(p.shape[0], -1, 4).sum(dim=2)
        assert torch.all(groups == 2), name


def test_one_shot_pruning():
    model = small_model()
    pruner = Pruner(model, PruningSchedule(sparsity=0.5, start=3, end=3))
    assert pruner.update(2) == 0.0 and not model.masks
    assert pruner.update(3) == 0.5
    assert all(v == 0.5 for v in pruner.sparsity().values())
