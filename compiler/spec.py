"""The compile spec: the options a compiler user sets per model, read from YAML.

Example::

    chunk_frames: 32          # encoder input frames per encoder_chunk call (auto: omit)
    schedule: layer_major     # or frame_major
    precision:                # per layer (a prefix of weight names) or `default`
      default: int8
      joint.output: int4
    formats: [dense, bitmask] # the formats the compiler may pick from (default: all the
                              # config's decompressor supports)
    input_range: 8.0          # |feature| the encoder input's int8 scale must cover
    hoist_joint: true         # project frames in the encoder, predictions in the predictor

Every field is optional; an unknown key, a bad value or an unknown layer is one line
naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from pathlib import Path

import yaml

from ..asr_workloads.model_config import check_keys
from ..asr_workloads.weight_quant import QUANTIZED
from ..errors import CompileError
from ..formats import WeightFormat

__all__ = ["SCHEDULES", "CompileSpec", "load_spec"]

#: How the encoder orders layers and frames within a chunk.
SCHEDULES = ("layer_major", "frame_major")


@dataclasses.dataclass(frozen=True)
class CompileSpec:
    """Compile options.

    Parameters
    ----------
    chunk_frames : int or None
        Encoder input frames per call; None picks the largest that fits the SRAMs, up to
        :attr:`max_auto_chunk`.
    schedule : str
        ``layer_major``: each layer runs over the whole chunk before the next (its input
        projection is one matrix-matrix op and its weights are fetched once per chunk);
        ``frame_major``: every layer steps once per frame.
    precision : Mapping of str to str
        ``default`` and/or weight-name prefixes -> ``int8``/``int4``; a weight without an
        entry keeps the model's precision (QAT codes), float weights default to int8.
    formats : tuple of WeightFormat or None
        Formats the compiler may choose from; None: all the config supports.
    input_range : float
        The largest |feature| the encoder's int8 input scale covers (features are
        normalized, so 8 standard deviations by default).
    hoist_joint : bool
        Move the joint's input projections into the encoder and predictor kernels
        (:mod:`edgenpu.compiler.joint_split`), so that a joint call runs only the add, the
        activation and the output layer.
    """

    chunk_frames: int | None = None
    schedule: str = "layer_major"
    precision: Mapping[str, str] = dataclasses.field(default_factory=dict)
    formats: tuple[WeightFormat, ...] | None = None
    input_range: float = 8.0
    hoist_joint: bool = True

    #: The largest chunk picked automatically (about 1 s of audio at 30 ms frames).
    max_auto_chunk = 32

    def __post_init__(self) -> None:
        chunk = self.chunk_frames
        if chunk is not None and (
            not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1
        ):
            raise CompileError(f"chunk_frames must be a positive integer, not {chunk!r}")
        if self.schedule not in SCHEDULES:
            raise CompileError(
                f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}"
            )
        if not isinstance(self.precision, Mapping):
            raise CompileError(f"precision must be a mapping, not {self.precision!r}")
        for key, value in self.precision.items():
            if value not in QUANTIZED:
                raise CompileError(
                    f"precision.{key}: {value!r} is not one of {', '.join(QUANTIZED)}"
                )
        object.__setattr__(self, "precision", types.MappingProxyType(dict(self.precision)))
        if self.formats is not None:
            try:
                formats = tuple(
                    WeightFormat.parse(f) if isinstance(f, str) else WeightFormat(f)
                    for f in self.formats
                )
            except (ValueError, KeyError) as error:
                raise CompileError(f"formats: {error}") from None
            if not formats:
                raise CompileError("formats: needs at least one format")
            object.__setattr__(self, "formats", formats)
        if not isinstance(self.hoist_joint, bool):
            raise CompileError(f"hoist_joint must be true or false, not {self.hoist_joint!r}")
        if not (isinstance(self.input_range, int | float) and self.input_range > 0):
            raise CompileError(f"input_range must be a positive number, not {self.input_range!r}")

    def precision_of(self, weight: str) -> str | None:
        """The precision the spec asks for ``weight``: the longest matching prefix (whole
        dot-separated parts), else ``default``, else None."""
        best, found = -1, None
        for key, value in self.precision.items():
            matches = key != "default" and (weight == key or weight.startswith(key + "."))
            if matches and len(key) > best:
                best, found = len(key), value
        return found if found is not None else self.precision.get("default")

    def check_layers(self, weights: list[str]) -> None:
        """Raise unless every precision key names a prefix of some weight."""
        for key in self.precision:
            if key != "default" and not any(w == key or w.startswith(key + ".") for w in weights):
                raise CompileError(f"precision.{key}: no weight of the model is named {key}*")


def load_spec(path: str | os.PathLike) -> CompileSpec:
    """Read a compile spec from YAML; one-line :class:`CompileError` naming the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise CompileError(f"{path}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise CompileError(f"{path}: not YAML ({str(error).splitlines()[0]})") from None
    try:
        check_keys(data, {f.name for f in dataclasses.fields(CompileSpec)})
        return CompileSpec(**data)
    except (ValueError, CompileError) as error:
        raise CompileError(f"{path}: {error}") from None
