"""A finished training run's model: what ``model.pt`` holds, and how it becomes a bundle.

``model.pt`` keeps the raw float weights, the pruning masks and the precision the model was
trained for, so the model can be evaluated both as trained (fake-quantized) and as float;
:func:`to_bundle` hands the masked float weights to :func:`..bundle.bundle_from_weights`,
which quantizes them with the same rule the fake quantization applied, so the bundle
reproduces the fake-quant model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..bundle import Bundle, bundle_from_weights
from ..frontend import FrontEndConfig
from ..model_config import ModelConfig
from ..recipe import Recipe
from ..rnnt.model import RNNT
from .checkpoint import MODEL

__all__ = ["TrainedModel", "load_trained", "to_bundle", "trained_payload"]


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """The contents of ``model.pt``.

    Attributes
    ----------
    config, frontend : ModelConfig, FrontEndConfig
    recipe : dict
        The recipe that trained it (``Recipe.to_dict``).
    precision : str or None
        Weight precision it was trained (fake-quantized) for.
    state_dict : dict
        Raw float parameters, CTC head included.
    masks : dict
        Boolean pruning masks (True = kept) of the pruned matrices.
    steps : int
        Optimizer steps taken.
    seconds : float or None
        Wall time of training, summed over resumed runs (None if not recorded).
    source : str
        The file it was read from.
    aids : dict
        State dicts of training aids outside the model by name (``"simple_lm"``, the pruned
        loss's simple joint), so that a fine-tune continues the objective its parent
        trained with instead of restarting them (never bundled).
    """

    config: ModelConfig
    frontend: FrontEndConfig
    recipe: dict[str, Any]
    precision: str | None
    state_dict: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    steps: int
    seconds: float | None
    source: str
    aids: dict[str, dict[str, torch.Tensor]] = dataclasses.field(default_factory=dict)

    def model(self, precision: str | None | bool = True) -> RNNT:
        """An :class:`RNNT` in eval mode with the weights and masks installed.

        ``precision=True`` (the default) computes at the precision it was trained for;
        None (float), ``"int8"`` or ``"int4"`` override it (post-training quantization).
        """
        model = RNNT(self.config)
        model.load_state_dict(self.state_dict)
        for name, mask in self.masks.items():
            model.set_mask(name, mask)
        model.set_precision(self.precision if precision is True else precision)
        return model.eval()


def trained_payload(
    model: RNNT,
    frontend: FrontEndConfig,
    recipe: Recipe,
    steps: int,
    seconds: float,
    aids: dict[str, dict[str, torch.Tensor]] | None = None,
) -> dict:
    """What ``model.pt`` stores for a finished ``model`` (and its training ``aids``)."""
    return {
        "config": model.config.to_dict(),
        "frontend": frontend.to_dict(),
        "recipe": recipe.to_dict(),
        "precision": model.precision,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "masks": {name: mask != 0 for name, mask in model.masks.items()},
        "steps": steps,
        "seconds": seconds,
        "aids": dict(aids or {}),
    }


def load_trained(path: str | Path) -> TrainedModel:
    """Read ``model.pt`` (or the training output directory holding it)."""
    from .trainer import TrainingError

    path = Path(path)
    if path.is_dir():
        path = path / MODEL
    if not path.exists():
        raise TrainingError(f"{path}: no trained model (train one with `edgenpu asr train`)")
    try:
        data = torch.load(path, weights_only=False)
        return TrainedModel(
            config=ModelConfig.from_dict(data["config"]),
            frontend=FrontEndConfig.from_dict(data["frontend"]),
            recipe=data["recipe"],
            precision=data["precision"],
            state_dict=data["state_dict"],
            masks=data["masks"],
            steps=data["steps"],
            seconds=data.get("seconds"),
            source=str(path),
            aids=data.get("aids", {}),
        )
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise TrainingError(f"{path}: not a trained edgenpu model ({error})") from None


def to_bundle(
    trained: TrainedModel, metadata: dict[str, Any] | None = None, precision: str | None = None
) -> Bundle:
    """The bundled form of ``trained`` at its training precision, or quantized after
    training to ``precision`` (``"int8"``, ``"int4"``; the rule fake quantization applies)."""
    model = trained.model(precision=None)
    weights = {name: w.numpy() for name, w in model.effective_parameters().items()}
    masks = {name: mask.numpy() for name, mask in trained.masks.items()}
    pruning = (trained.recipe.get("compression") or {}).get("pruning")
    info = {
        "recipe": trained.recipe["name"],
        "steps": trained.steps,
        **({"sparsity": pruning["pattern"]} if pruning else {}),
        **({"post_training": precision} if precision else {}),
        **(metadata or {}),
    }
    return bundle_from_weights(
        trained.config, trained.frontend, weights, precision or trained.precision, masks, info
    )
