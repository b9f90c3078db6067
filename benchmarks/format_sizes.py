"""Compressed size and decode speed of each weight format on a random 1024x1024 matrix.

Run ``python benchmarks/format_sizes.py``. For unstructured sparsity (50 %, 75 %) and 2:4
structured sparsity (50 %, the only sparsity nm2_4 takes), at int8 and int4, it prints each
format's compressed bytes against the ideal (non-zeros only, no metadata) and against dense,
and its decode throughput in this run, for the hardware semantics the simulator uses
(``strict=False``) and for the checking decoder the tools use (``strict=True``).
"""

from __future__ import annotations

import time

import numpy as np

from edgenpu.formats import FormatError, WeightFormat, decode, encode, encoded_size, ideal_size
from edgenpu.precision import Precision

SHAPE = (1024, 1024)
SEED = 0
REPEATS = 5


def random_weights(
    rng: np.random.Generator, precision: Precision, sparsity: float, structured: bool
) -> np.ndarray:
    """Non-zero values uniform over the precision, with exactly ``sparsity`` zeros.

    ``structured`` keeps 2 random positions of every aligned group of 4 (so sparsity is 0.5).
    """
    size = SHAPE[0] * SHAPE[1]
    magnitude = rng.integers(1, precision.max + 1, size)
    values = magnitude * rng.choice([-1, 1], size)
    if structured:
        rank = np.argsort(np.argsort(rng.random((size // 4, 4)), axis=1), axis=1)
        present = (rank < 2).reshape(-1)
    else:
        present = np.zeros(size, dtype=bool)
        present[rng.permutation(size)[: round(size * (1 - sparsity))]] = True
    return (values * present).astype(np.int8).reshape(SHAPE)


def decode_rate(data: bytes, count: int, fmt: WeightFormat, precision: Precision, strict: bool):
    """Best-of-``REPEATS`` decode throughput in millions of values per second."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        decode(data, count, fmt, precision, strict=strict)
        best = min(best, time.perf_counter() - start)
    return count / best / 1e6


def main() -> None:
    rng = np.random.default_rng(SEED)
    header = (
        f"{'format':<8} {'prec':<5} {'sparsity':<9} {'bytes':>9} {'ideal':>9} "
        f"{'/ideal':>7} {'/dense':>7} {'hw Mval/s':>10} {'strict Mval/s':>14}"
    )
    print(f"{SHAPE[0]}x{SHAPE[1]} random weights, seed {SEED}, decode best of {REPEATS}")
    print(header)
    print("-" * len(header))
    for precision in Precision:
        for sparsity, structured in [(0.5, False), (0.75, False), (0.5, True)]:
            values = random_weights(rng, precision, sparsity, structured)
            label = f"{sparsity:.0%} {'2:4' if structured else 'rand'}"
            ideal = ideal_size(values, precision)
            dense = encoded_size(values, WeightFormat.DENSE, precision)
            for fmt in WeightFormat:
                try:
                    data = encode(values, fmt, precision)
                except FormatError:
                    continue  # unstructured sparsity is not 2:4
                assert len(data) == encoded_size(values, fmt, precision)
                rates = [decode_rate(data, values.size, fmt, precision, s) for s in (False, True)]
                print(
                    f"{fmt.label:<8} {precision.label:<5} {label:<9} {len(data):>9} "
                    f"{ideal:>9.0f} {len(data) / ideal:>7.3f} {len(data) / dense:>7.3f} "
                    f"{rates[0]:>10.0f} {rates[1]:>14.0f}"
                )
        print()


if __name__ == "__main__":
    main()
