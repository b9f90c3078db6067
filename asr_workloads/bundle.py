"""The bundled checkpoint: an RNN-T's weights and everything needed to run it, without torch.

A bundle is what the compiler reads and what the host runtime runs. It holds the
architecture (:class:`ModelConfig`), the front end (:class:`FrontEndConfig`, stacking and
subsampling included), the weight precision, every parameter named and shaped as
:mod:`.model_config` specifies, and free-form metadata.

Storage rules:

* Float bundles (``precision=None``) store every parameter as float32 ``values``.
* Quantized bundles (``"int8"``, ``"int4"``) store each parameter that
  :func:`~.model_config.is_quantized` names as integer ``codes`` (int8 arrays; int4 codes
  unpacked, one per byte) with float32 per-row ``scales``, following :mod:`.weight_quant`:
  the weight is ``codes * scales[:, None]``. Biases stay float32 ``values``.
* A prunable parameter (:func:`~.model_config.is_prunable`) may carry a bool ``mask``: what
  pruning decided (``True`` = kept). It is kept explicit rather than implied by
  ``codes == 0``, because a kept weight can also quantize to zero, and the hardware's
  formats and the sparsity statistics must tell the two apart. A pruned weight is stored as
  exactly zero, so the stored weight is already masked; a non-zero pruned weight is an error.
* Metadata is plain YAML data. Known keys (all optional): ``recipe`` (str), ``steps``
  (int), ``sparsity`` (one of :data:`SPARSITY_PATTERNS`; ``"2:4"`` is checked against the
  masks: at most 2 kept weights in each aligned group of 4 along a row), ``wer`` (a table).

On disk a bundle is a pair ``<name>.npz`` (the arrays, as ``<parameter>.<part>``) and
``<name>.yaml`` (format version, configs, precision, metadata and, per parameter, its
shape and each array's dtype and SHA-256). The YAML is written last and holds the arrays'
checksums, so a pair from two different saves is rejected, never silently mixed.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..atomic import atomic_output
from .bundle_data import (
    PARTS,
    SPARSITY_PATTERNS,
    Bundle,
    BundleError,
    StoredParameter,
    check_parameter,
)
from .bundle_params import parameter_shapes
from .frontend import FrontEndConfig
from .model_config import ModelConfig, is_prunable, is_quantized
from .weight_quant import QUANTIZED, channel_scales, codes

__all__ = [
    "FORMAT",
    "SPARSITY_PATTERNS",
    "VERSION",
    "Bundle",
    "BundleError",
    "StoredParameter",
    "bundle_files",
    "bundle_from_weights",
    "load_bundle",
    "save_bundle",
]

#: The ``format`` and ``version`` fields of a bundle's YAML file.
FORMAT = "edgenpu-bundle"
VERSION = 1


def bundle_from_weights(
    config: ModelConfig,
    frontend: FrontEndConfig,
    weights: Mapping[str, np.ndarray],
    precision: str | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Bundle:
    """Make a bundle from float weights, pruning with ``masks`` and quantizing to ``precision``.

    Weights are converted to float32 first (the precision training computes in), pruned
    weights set to zero, and then quantized with :mod:`.weight_quant`, so the bundle's
    :meth:`Bundle.weights` equal ``weight_quant.dequantize(w * mask)`` exactly.

    Parameters
    ----------
    config, frontend : ModelConfig, FrontEndConfig
        The architecture and the front end.
    weights : Mapping of str to array_like
        Every parameter of ``config`` (``ctc.*`` entries, training only, are ignored).
    precision : str or None
        ``None``, ``"int8"`` or ``"int4"``.
    masks : Mapping of str to array_like of bool, optional
        Pruning masks of prunable parameters (``True`` = kept).
    metadata : Mapping, optional
        Free-form plain data.

    Returns
    -------
    Bundle
    """
    if precision is not None and precision not in QUANTIZED:
        raise BundleError(
            f"precision must be None or one of {', '.join(QUANTIZED)}, not {precision!r}"
        )
    masks = {} if masks is None else dict(masks)
    shapes = parameter_shapes(config)
    for name in masks:
        if name not in shapes:
            raise BundleError(f"mask of unknown parameter {name!r}")
    for name in weights:
        if name not in shapes and not name.startswith("ctc."):
            raise BundleError(f"unknown parameter {name!r}")
    stored = {}
    for name, shape in shapes.items():
        if name not in weights:
            raise BundleError(f"missing parameter {name!r}")
        w = np.asarray(weights[name], dtype=np.float32)
        if w.shape != shape:
            raise BundleError(
                f"parameter {name!r}: shape {list(w.shape)} differs from the model's {list(shape)}"
            )
        if not np.all(np.isfinite(w)):
            raise BundleError(f"parameter {name!r}: weights hold NaN or infinity")
        mask = None
        if name in masks:
            mask = np.asarray(masks[name])
            if mask.dtype != np.bool_ or mask.shape != shape:
                raise BundleError(
                    f"mask of {name!r} must be bool of shape {list(shape)}, "
                    f"not {mask.dtype} of shape {list(mask.shape)}"
                )
            w = np.where(mask, w, np.float32(0))
        if precision is not None and is_quantized(name):
            scale = channel_scales(w, precision, np)
            grid = codes(w, scale, precision, np).astype(np.int8)
            stored[name] = StoredParameter(codes=grid, scales=scale[:, 0], mask=mask)
        else:
            stored[name] = StoredParameter(values=w, mask=mask)
    return Bundle(config, frontend, precision, stored, {} if metadata is None else metadata)


# --- files ------------------------------------------------------------------------------------


def bundle_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """The ``(<name>.yaml, <name>.npz)`` pair of a bundle path.

    ``path`` is the name without suffix; a ``.yaml`` or ``.npz`` suffix is accepted too
    (other suffixes are part of the name, as in ``tiny.int8``).
    """
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".yaml", ".npz") else path
    return Path(f"{base}.yaml"), Path(f"{base}.npz")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _document(bundle: Bundle) -> dict[str, Any]:
    parameters = {}
    for name, param in bundle.parameters.items():
        parameters[name] = {
            "shape": list(param.shape),
            "arrays": {
                part: {"dtype": str(array.dtype), "sha256": _digest(array)}
                for part, array in param.arrays().items()
            },
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": bundle.config.to_dict(),
        "frontend": bundle.frontend.to_dict(),
        "precision": bundle.precision,
        "metadata": dict(bundle.metadata),
        "parameters": parameters,
    }


def save_bundle(bundle: Bundle, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``bundle`` as ``<path>.npz`` and ``<path>.yaml``, replacing any previous pair.

    Both files are written in full under temporary names first, then renamed into place,
    arrays first and the YAML (which holds the arrays' checksums) last: a failure leaves
    either the old pair or temporary files that are removed, and a crash between the two
    renames leaves a pair :func:`load_bundle` rejects by checksum, never a mixed bundle.

    Returns
    -------
    tuple of Path
        The YAML and NPZ files written.
    """
    if not isinstance(bundle, Bundle):
        raise TypeError(f"save_bundle needs a Bundle, not {type(bundle).__name__}")
    yaml_path, npz_path = bundle_files(path)
    arrays = {
        f"{name}.{part}": array
        for name, param in bundle.parameters.items()
        for part, array in param.arrays().items()
    }
    text = yaml.safe_dump(_document(bundle), sort_keys=False, width=100).encode()
    # The YAML's rename comes last: the inner context (the arrays) renames on leaving first.
    with atomic_output(yaml_path) as yaml_temp, atomic_output(npz_path) as npz_temp:
        # Compressed: pruning masks and low-bit codes shrink to a fraction (bundles are committed).
        with open(npz_temp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        yaml_temp.write_bytes(text)
    return yaml_path, npz_path


def _keys(data: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> None:
    if not isinstance(data, dict):
        raise BundleError(f"{where} must be a mapping, not {type(data).__name__}")
    for key in data:
        if key not in required | optional:
            known = ", ".join(sorted(required | optional))
            raise BundleError(f"unknown key {where}.{key} (known: {known})")
    for key in sorted(required):
        if key not in data:
            raise BundleError(f"missing key {where}.{key}")


def _expected_parts(name: str, precision: str | None) -> tuple[set[str], set[str]]:
    """Required and optional array parts of parameter ``name`` in a ``precision`` bundle."""
    required = {"codes", "scales"} if precision and is_quantized(name) else {"values"}
    return required, {"mask"} if is_prunable(name) else set()


def _read_document(yaml_path: Path) -> tuple[ModelConfig, FrontEndConfig, dict[str, Any]]:
    """Parse and check the YAML file (everything but the arrays)."""
    try:
        doc = yaml.safe_load(yaml_path.read_text())
    except yaml.YAMLError as error:
        raise BundleError(f"not valid YAML: {' '.join(str(error).split())}") from None
    _keys(
        doc,
        "bundle",
        {"format", "version", "model", "frontend", "precision", "parameters"},
        {"metadata"},
    )
    if doc["format"] != FORMAT or doc["version"] != VERSION:
        raise BundleError(
            f"format {doc['format']!r} version {doc['version']!r} is not "
            f"{FORMAT!r} version {VERSION}"
        )
    try:
        config = ModelConfig.from_dict(doc["model"])
    except (TypeError, ValueError) as error:
        raise BundleError(f"model: {error}") from None
    try:
        frontend = FrontEndConfig.from_dict(doc["frontend"])
    except (TypeError, ValueError) as error:
        raise BundleError(f"frontend: {error}") from None
    precision = doc["precision"]
    if precision is not None and precision not in QUANTIZED:
        raise BundleError(
            f"precision must be null or one of {', '.join(QUANTIZED)}, not {precision!r}"
        )
    entries = doc["parameters"]
    if not isinstance(entries, dict):
        raise BundleError(f"parameters must be a mapping, not {type(entries).__name__}")
    shapes = parameter_shapes(config)
    for name in shapes:
        if name not in entries:
            raise BundleError(f"missing parameter {name!r}")
    for name, entry in entries.items():
        if name not in shapes:
            raise BundleError(f"unknown parameter {name!r}")
        where = f"parameters.{name}"
        _keys(entry, where, {"shape", "arrays"})
        if entry["shape"] != list(shapes[name]):
            raise BundleError(
                f"{where}.shape is {entry['shape']!r}, but the model's is {list(shapes[name])}"
            )
        required, optional = _expected_parts(name, precision)
        _keys(entry["arrays"], f"{where}.arrays", required, optional)
        for part, info in entry["arrays"].items():
            _keys(info, f"{where}.arrays.{part}", {"dtype", "sha256"})
            if info["dtype"] != str(np.dtype(PARTS[part])):
                raise BundleError(
                    f"{where}.arrays.{part}.dtype is {info['dtype']!r}, "
                    f"not {str(np.dtype(PARTS[part]))!r}"
                )
    return config, frontend, doc


def _read_arrays(npz_path: Path, doc: dict[str, Any]) -> dict[str, StoredParameter]:
    """Read and check the arrays the YAML document lists; return the stored parameters."""
    listed = {
        f"{name}.{part}": (name, part, info)
        for name, entry in doc["parameters"].items()
        for part, info in entry["arrays"].items()
    }
    parts: dict[str, dict[str, np.ndarray]] = {name: {} for name in doc["parameters"]}
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            for key in archive.files:
                if key not in listed:
                    raise BundleError(f"unknown array {key!r}")
            for key, (name, part, info) in listed.items():
                if key not in archive.files:
                    raise BundleError(f"missing array {key!r}")
                array = archive[key]
                rows = doc["parameters"][name]["shape"][:1]
                shape = tuple(rows if part == "scales" else doc["parameters"][name]["shape"])
                if array.dtype != PARTS[part] or array.shape != shape:
                    raise BundleError(
                        f"array {key!r} is {array.dtype} {list(array.shape)}, "
                        f"not {np.dtype(PARTS[part])} {list(shape)}"
                    )
                if _digest(array) != info["sha256"]:
                    raise BundleError(
                        f"array {key!r} does not match its checksum in the YAML file "
                        "(files from different saves, or corrupt)"
                    )
                parts[name][part] = array
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, BundleError):
            raise
        raise BundleError(f"not a readable npz archive ({error})") from None
    precision = doc["precision"]
    stored = {}
    for name, arrays in parts.items():
        stored[name] = StoredParameter(**arrays)
        check_parameter(name, stored[name], tuple(doc["parameters"][name]["shape"]), precision)
    return stored


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Read and validate a bundle written by :func:`save_bundle`.

    Parameters
    ----------
    path : str or os.PathLike
        The bundle's name, with or without ``.yaml``/``.npz``.

    Raises
    ------
    BundleError
        One line naming the file and the key, parameter or array at fault: a missing file,
        invalid YAML, an unknown or missing key, a config error, a missing or unknown
        parameter or array, a wrong shape or dtype, a checksum mismatch, codes out of range
        for the precision, a mask that disagrees with the codes, bad metadata.
    """
    yaml_path, npz_path = bundle_files(path)
    for file in (yaml_path, npz_path):
        if not file.is_file():
            raise BundleError(f"{file}: no such bundle file")
    try:
        config, frontend, doc = _read_document(yaml_path)
    except BundleError as error:
        raise BundleError(f"{yaml_path}: {error}") from None
    try:
        stored = _read_arrays(npz_path, doc)
    except BundleError as error:
        raise BundleError(f"{npz_path}: {error}") from None
    try:
        return Bundle(config, frontend, doc["precision"], stored, doc.get("metadata") or {})
    except BundleError as error:
        raise BundleError(f"{yaml_path}: {error}") from None
