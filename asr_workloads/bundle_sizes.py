"""How many bytes a bundle's weight matrices take at each precision, dense and compressed.

Counts the quantized matrices (every 2-D parameter: LSTM, joint, embedding and gate
weights); biases and per-row scales stay float32 and are counted apart. Sizes at a
precision are computed from the codes at that precision: the bundle's own codes when it is
stored at it, otherwise :mod:`.weight_quant`'s codes of the bundle's float weights.
"Compressed" is what the hardware's weight formats (:mod:`edgenpu.formats`) make of them:
per matrix the smallest of dense, bitmask and (where the codes allow it) 2:4.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..formats import FormatError, WeightFormat, encoded_size
from ..precision import packed_size
from .bundle import Bundle
from .model_config import is_quantized
from .weight_quant import channel_scales, codes, weight_precision

__all__ = ["WeightSizes", "weight_sizes"]


@dataclasses.dataclass(frozen=True)
class WeightSizes:
    """Weight storage of a bundle.

    Parameters
    ----------
    weights : int
        Elements of the quantized matrices.
    kept : int
        Of those, the ones pruning kept (all of them when there are no masks).
    float32, int8, int4 : int
        Bytes of the matrices dense at each precision (int4 packed two per byte).
    int8_compressed, int4_compressed : int
        Bytes in the hardware's weight formats, the best format chosen per matrix.
    biases : int
        Bytes of the float32 biases.
    scales : int
        Bytes of the float32 per-row scales (one per matrix row, at int8 and int4).
    """

    weights: int
    kept: int
    float32: int
    int8: int
    int4: int
    int8_compressed: int
    int4_compressed: int
    biases: int
    scales: int

    @property
    def sparsity(self) -> float:
        """Fraction of the matrices' weights that pruning removed."""
        return 1 - self.kept / self.weights

    def table(self) -> str:
        """A small human-readable summary, one size per line."""
        mib = 1 << 20
        lines = [
            f"weights      {self.weights:>12,d}  (sparsity {self.sparsity:.1%})",
            f"float32      {self.float32:>12,d} B  {self.float32 / mib:8.3f} MiB",
            f"int8         {self.int8:>12,d} B  {self.int8 / mib:8.3f} MiB",
            f"int4         {self.int4:>12,d} B  {self.int4 / mib:8.3f} MiB",
            f"int8 sparse  {self.int8_compressed:>12,d} B  {self.int8_compressed / mib:8.3f} MiB",
            f"int4 sparse  {self.int4_compressed:>12,d} B  {self.int4_compressed / mib:8.3f} MiB",
            f"biases       {self.biases:>12,d} B",
            f"scales       {self.scales:>12,d} B",
        ]
        return "\n".join(lines)


def _codes_at(bundle: Bundle, name: str, precision: str) -> np.ndarray:
    param = bundle.parameters[name]
    if bundle.precision == precision:
        return param.codes
    weight = param.weight()
    return codes(weight, channel_scales(weight, precision, np), precision, np).astype(np.int8)


def _compressed(values: np.ndarray, precision: str) -> int:
    target = weight_precision(precision)
    sizes = []
    for fmt in WeightFormat:
        try:
            sizes.append(encoded_size(values, fmt, target))
        except FormatError:
            continue  # 2:4 cannot hold a matrix with three non-zeros in a group
    return min(sizes)


def weight_sizes(bundle: Bundle) -> WeightSizes:
    """The :class:`WeightSizes` of ``bundle``."""
    total = kept = rows = biases = 0
    dense = {"int8": 0, "int4": 0}
    compressed = {"int8": 0, "int4": 0}
    for name, param in bundle.parameters.items():
        if not is_quantized(name):
            biases += 4 * int(np.prod(param.shape))
            continue
        count = int(np.prod(param.shape))
        total += count
        kept += count if param.mask is None else int(np.count_nonzero(param.mask))
        rows += param.shape[0]
        for precision in dense:
            dense[precision] += packed_size(count, weight_precision(precision))
            compressed[precision] += _compressed(_codes_at(bundle, name, precision), precision)
    return WeightSizes(
        weights=total,
        kept=kept,
        float32=4 * total,
        int8=dense["int8"],
        int4=dense["int4"],
        int8_compressed=compressed["int8"],
        int4_compressed=compressed["int4"],
        biases=biases,
        scales=4 * rows,
    )
