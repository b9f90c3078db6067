"""Every parameter of an RNN-T and its shape, derived from a :class:`ModelConfig`.

This spells out the naming rules of :mod:`.model_config`'s docstring as data, in the order
the model computes with them (encoder, cheap branch and gate, predictor, joint), for the
bundled checkpoint to check a file against and for the compiler to walk. The CTC head is
left out: it is trained but never bundled.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model_config import ModelConfig

__all__ = ["parameter_shapes"]


def _lstm(
    shapes: dict[str, tuple[int, ...]],
    prefix: str,
    hidden: Sequence[int],
    width: int,
    reduce: Sequence[int],
    first: int = 0,
) -> int:
    """Add the ``w_ih``/``w_hh``/``bias`` of an LSTM stack; return its output width."""
    for index, (size, r) in enumerate(zip(hidden, reduce, strict=True), start=first):
        shapes[f"{prefix}.{index}.w_ih"] = (4 * size, r * width)
        shapes[f"{prefix}.{index}.w_hh"] = (4 * size, size)
        shapes[f"{prefix}.{index}.bias"] = (4 * size,)
        width = size
    return width


def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every bundled parameter of ``config``.

    Parameters
    ----------
    config : ModelConfig
        The architecture.

    Returns
    -------
    dict of str to tuple of int
        Ordered as the forward pass uses them. For a branching encoder the expensive
        branch's layers keep their ``encoder.{l}`` indices (``l >= stem_layers``) and the
        cheap branch's are numbered from 0.
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, not {type(config).__name__}")
    shapes: dict[str, tuple[int, ...]] = {}
    encoder = config.encoder
    branching = config.branching
    stem = len(encoder.hidden) if branching is None else branching.stem_layers
    stem_width = _lstm(
        shapes, "encoder", encoder.hidden[:stem], config.input_dim, encoder.reduce[:stem]
    )
    if branching is not None:
        _lstm(
            shapes,
            "encoder",
            encoder.hidden[stem:],
            stem_width,
            encoder.reduce[stem:],
            first=stem,
        )
        ones = (1,) * len(branching.cheap_hidden)
        _lstm(shapes, "cheap", branching.cheap_hidden, stem_width, ones)
        shapes["gate.weight"] = (1, stem_width)
        shapes["gate.bias"] = (1,)
    predictor = config.predictor
    shapes["predictor.embedding"] = (config.vocab_size, predictor.embed)
    _lstm(shapes, "predictor", predictor.hidden, predictor.embed, (1,) * len(predictor.hidden))
    joint = config.joint.hidden
    shapes["joint.encoder.weight"] = (joint, config.encoder_dim)
    shapes["joint.encoder.bias"] = (joint,)
    shapes["joint.predictor.weight"] = (joint, config.predictor_dim)
    shapes["joint.predictor.bias"] = (joint,)
    shapes["joint.output.weight"] = (config.vocab_size, joint)
    shapes["joint.output.bias"] = (config.vocab_size,)
    return shapes
