"""A bundle in memory: its stored parameters and the checks every bundle passes.

A parameter is stored as float32 ``values``, or as int8 ``codes`` with float32 per-row
``scales`` (the weight is ``codes * scales[:, None]``, :mod:`.weight_quant`'s rule), plus an
optional bool pruning ``mask``. :mod:`.bundle` (the public entry point, with the files and
:func:`~.bundle.bundle_from_weights`) states which parameters take which form.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import EdgenpuError
from .bundle_params import parameter_shapes
from .frontend import FrontEndConfig
from .model_config import ModelConfig, is_prunable, is_quantized
from .weight_quant import QUANTIZED, qmax

__all__ = [
    "PARTS",
    "SPARSITY_PATTERNS",
    "Bundle",
    "BundleError",
    "StoredParameter",
    "check_parameter",
]

#: The arrays a stored parameter can have, and their dtypes.
PARTS = {"values": np.float32, "codes": np.int8, "scales": np.float32, "mask": np.bool_}
#: Values of the ``sparsity`` metadata key.
SPARSITY_PATTERNS = ("unstructured", "2:4")


class BundleError(EdgenpuError, ValueError):
    """A bundle (in memory or on disk) that breaks the format; names the file and the key."""


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class StoredParameter:
    """One parameter as stored: float ``values``, or ``codes`` with per-row ``scales``.

    The arrays are copied and made read-only.

    Parameters
    ----------
    values : numpy.ndarray or None
        float32 weights or biases (float bundles, and biases of quantized ones).
    codes : numpy.ndarray or None
        int8 integer codes of a 2-D weight, shape ``(rows, cols)``.
    scales : numpy.ndarray or None
        float32 per-row scales, shape ``(rows,)``; given exactly when ``codes`` is.
    mask : numpy.ndarray or None
        bool, the parameter's shape; ``True`` where pruning kept the weight.
    """

    values: np.ndarray | None = None
    codes: np.ndarray | None = None
    scales: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        for part, dtype in PARTS.items():
            array = getattr(self, part)
            if array is None:
                continue
            if not isinstance(array, np.ndarray) or array.dtype != dtype:
                got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
                raise BundleError(f"{part} must be a {np.dtype(dtype)} array, not {got}")
            object.__setattr__(self, part, _frozen(array))
        if (self.values is None) == (self.codes is None):
            raise BundleError("a stored parameter has either values or codes, not both or none")
        if (self.codes is None) != (self.scales is None):
            raise BundleError("codes and scales go together")
        if self.codes is not None:
            if self.codes.ndim != 2:
                raise BundleError(f"codes must be 2-D, not of shape {self.codes.shape}")
            if self.scales.shape != self.codes.shape[:1]:
                raise BundleError(
                    f"scales must have one entry per row {self.codes.shape[:1]}, "
                    f"not shape {self.scales.shape}"
                )
        if self.mask is not None and self.mask.shape != self.shape:
            raise BundleError(f"mask shape {self.mask.shape} differs from {self.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the parameter."""
        return (self.values if self.codes is None else self.codes).shape

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays by part name (``values``/``codes``/``scales``/``mask``)."""
        return {part: getattr(self, part) for part in PARTS if getattr(self, part) is not None}

    def weight(self) -> np.ndarray:
        """The float32 weight the model computes with (dequantized; pruned weights are 0)."""
        if self.codes is None:
            return self.values
        return self.codes.astype(np.float32) * self.scales[:, None]


def check_parameter(
    name: str, param: StoredParameter, shape: tuple[int, ...], precision: str | None
) -> None:
    """Check one stored parameter against the contract; ``BundleError`` naming ``name``.

    Checks the shape, which arrays it stores for ``precision``, the code range, that scales
    are positive and values finite, and that pruned weights are zero.
    """
    where = f"parameter {name!r}"
    if param.shape != shape:
        raise BundleError(
            f"{where}: shape {list(param.shape)} differs from the model's {list(shape)}"
        )
    quantized = precision is not None and is_quantized(name)
    if quantized and param.codes is None:
        raise BundleError(f"{where}: a {precision} bundle stores it as codes and scales")
    if not quantized and param.values is None:
        what = "a float bundle" if precision is None else "a bias"
        raise BundleError(f"{where}: {what} stores float values, not codes")
    if param.mask is not None and not is_prunable(name):
        raise BundleError(f"{where}: has a mask, but pruning never touches it")
    if param.values is not None and not np.all(np.isfinite(param.values)):
        raise BundleError(f"{where}: values hold NaN or infinity")
    if param.codes is not None:
        top = qmax(precision)
        bad = np.flatnonzero(np.abs(param.codes.astype(np.int16)) > top)
        if bad.size:
            index = np.unravel_index(bad[0], param.shape)
            raise BundleError(
                f"{where}: code {int(param.codes[index])} at {tuple(map(int, index))} is out of "
                f"range for {precision} [-{top}, {top}]"
            )
        if not np.all(np.isfinite(param.scales) & (param.scales > 0)):
            row = int(np.flatnonzero(~(np.isfinite(param.scales) & (param.scales > 0)))[0])
            raise BundleError(
                f"{where}: scale {float(param.scales[row])!r} of row {row} is not > 0"
            )
    if param.mask is not None:
        stored = param.values if param.codes is None else param.codes
        bad = np.flatnonzero(~param.mask & (stored != 0))
        if bad.size:
            index = tuple(map(int, np.unravel_index(bad[0], param.shape)))
            part = "values" if param.codes is None else "codes"
            raise BundleError(
                f"{where}: mask and {part} disagree: weight {index} is pruned but stored "
                f"as {stored[index].item()!r}"
            )


def _check_nm(name: str, mask: np.ndarray, n: int = 2, m: int = 4) -> None:
    """Raise unless each aligned group of ``m`` along a row keeps at most ``n`` weights."""
    rows, cols = mask.shape
    padded = np.zeros((rows, -(-cols // m) * m), dtype=bool)
    padded[:, :cols] = mask
    kept = padded.reshape(rows, -1, m).sum(axis=2)
    bad = np.argwhere(kept > n)
    if bad.size:
        row, group = map(int, bad[0])
        raise BundleError(
            f"parameter {name!r}: metadata says sparsity {n}:{m}, but row {row} keeps "
            f"{int(kept[row, group])} weights in columns {group * m}..{group * m + m - 1}"
        )


def _plain(value: Any, where: str) -> Any:
    """A deep copy of YAML-plain data (tuples become lists); ``BundleError`` naming the key."""
    # Exact built-in types: numpy's float64 is a float, but YAML's safe dumper rejects it.
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise BundleError(f"{where}: keys must be strings, not {key!r}")
        return {key: _plain(v, f"{where}.{key}") for key, v in value.items()}
    raise BundleError(
        f"{where} is a {type(value).__name__}; metadata must be plain YAML data "
        "(str, int, float, bool, None, lists, mappings)"
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Bundle:
    """An RNN-T checkpoint: configs, precision, stored parameters and metadata.

    Everything is validated when the bundle is made (see :func:`check_parameter`); the
    parameter and metadata mappings are read-only copies.

    Parameters
    ----------
    config : ModelConfig
        The architecture; fixes the parameter names and shapes.
    frontend : FrontEndConfig
        The front end; its ``feature_dim`` (``stack * n_mels``) must be ``config.input_dim``.
    precision : str or None
        ``None`` (float), ``"int8"`` or ``"int4"``.
    parameters : Mapping of str to StoredParameter
        Exactly the parameters of :func:`~.bundle_params.parameter_shapes`.
    metadata : Mapping
        Free-form plain data (see the module docstring for the known keys).
    """

    config: ModelConfig
    frontend: FrontEndConfig
    precision: str | None
    parameters: Mapping[str, StoredParameter]
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.config, ModelConfig):
            raise BundleError(f"config must be a ModelConfig, not {type(self.config).__name__}")
        if not isinstance(self.frontend, FrontEndConfig):
            raise BundleError(
                f"frontend must be a FrontEndConfig, not {type(self.frontend).__name__}"
            )
        if self.frontend.feature_dim != self.config.input_dim:
            raise BundleError(
                f"frontend: stack * n_mels = {self.frontend.feature_dim} differs from the "
                f"model's input_dim {self.config.input_dim}"
            )
        if self.precision is not None and self.precision not in QUANTIZED:
            raise BundleError(
                f"precision must be None or one of {', '.join(QUANTIZED)}, not {self.precision!r}"
            )
        shapes = parameter_shapes(self.config)
        if not isinstance(self.parameters, Mapping):
            raise BundleError(f"parameters must be a mapping, not {type(self.parameters)}")
        for name in shapes:
            if name not in self.parameters:
                raise BundleError(f"missing parameter {name!r}")
        for name, param in self.parameters.items():
            if name not in shapes:
                raise BundleError(f"unknown parameter {name!r}")
            if not isinstance(param, StoredParameter):
                raise BundleError(f"parameter {name!r} must be a StoredParameter")
            check_parameter(name, param, shapes[name], self.precision)
        ordered = {name: self.parameters[name] for name in shapes}
        object.__setattr__(self, "parameters", types.MappingProxyType(ordered))
        metadata = _plain(self.metadata, "metadata")
        if not isinstance(metadata, dict):
            raise BundleError(f"metadata must be a mapping, not {type(self.metadata).__name__}")
        sparsity = metadata.get("sparsity")
        if sparsity is not None and sparsity not in SPARSITY_PATTERNS:
            raise BundleError(
                f"metadata.sparsity must be one of {', '.join(SPARSITY_PATTERNS)}, not {sparsity!r}"
            )
        if sparsity == "2:4":
            for name, param in ordered.items():
                if param.mask is not None:
                    _check_nm(name, param.mask)
        object.__setattr__(self, "metadata", types.MappingProxyType(metadata))

    @functools.cached_property
    def _weights(self) -> Mapping[str, np.ndarray]:
        # Dequantized once per bundle: the decoder asks for them at every step.
        weights = {}
        for name, param in self.parameters.items():
            weight = np.ascontiguousarray(param.weight(), dtype=np.float32)
            weight.setflags(write=False)
            weights[name] = weight
        return types.MappingProxyType(weights)

    def weights(self) -> dict[str, np.ndarray]:
        """Name -> read-only float32 weight the model computes with.

        Codes are dequantized (``codes * scale``); pruned weights are zero.
        """
        return dict(self._weights)

    def masks(self) -> dict[str, np.ndarray]:
        """Name -> mask of the parameters that have one."""
        return {n: p.mask for n, p in self.parameters.items() if p.mask is not None}
