"""Weight tiles in DRAM: each matrix cut into the row tiles the lowering asked for, encoded
in every format the config's decompressor supports, and the cheapest kept.

"Cheapest" is in modeled cycles: the performance model's decompressor rules
(:func:`edgenpu.sim.perf.decompressor_rules.schedule` on the stream's block sizes, plus the
DMA's start-up, rule W2) summed over the matrix's tiles; ties go to fewer bytes. The MAC
array sees the same dense weights whatever the format, so the load is all that differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu import formats
from edgenpu.asr_workloads.weight_quant import weight_precision
from edgenpu.config import HardwareConfig
from edgenpu.formats import FormatError, WeightFormat
from edgenpu.isa import Instruction, Opcode
from edgenpu.precision import Precision, packed_size
from edgenpu.sim.perf import decompressor_rules, dma_rules

from ..quant.qir import QWeights
from .dram import DramImage

__all__ = ["FormatChoice", "WeightTile", "load_cycles", "place_weights"]


@dataclass(frozen=True)
class WeightTile:
    """One ``load_wgt``'s worth: ``rows x cols`` weights at ``dram`` in ``format``."""

    dram: int
    rows: int
    cols: int
    format: WeightFormat
    precision: Precision

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def wgt_bytes(self) -> int:
        """Bytes the dense tile takes in WGT."""
        return packed_size(self.count, self.precision)


@dataclass(frozen=True)
class FormatChoice:
    """What the compiler chose for one weight matrix, and what it compared."""

    name: str
    shape: tuple[int, int]
    precision: str
    format: str
    stream_bytes: int
    ideal_bytes: float
    nonzero: int
    cycles: dict  # format label -> modeled load cycles of the whole matrix
    stream_bytes_by_format: dict
    kernel: str = ""  # the kernel whose weights these are (names repeat across ONNX graphs)

    @property
    def dense_int8_bytes(self) -> int:
        return self.shape[0] * self.shape[1]


def load_cycles(
    stream: bytes, count: int, fmt: WeightFormat, prec: Precision, config: HardwareConfig
) -> int:
    """Modeled cycles of one ``load_wgt`` of ``stream`` (beat-aligned), by the perf rules."""
    beat = config.dram.bandwidth_bytes_per_cycle
    sizes = formats.block_sizes(stream, count, fmt, prec)
    plan = decompressor_rules.schedule(
        sizes, count, beat, config.decompressor.output_elements_per_cycle
    )
    command = Instruction.make(Opcode.LOAD_WGT, dram=0, count=count, format=fmt, prec=prec)
    return dma_rules.weight_start(command, beat, config.dram.latency_cycles) + plan.done


def _encodings(tiles, allowed, prec, config) -> tuple[dict, dict]:
    """Every allowed format's streams of ``tiles`` and their modeled load cycles."""
    candidates: dict[WeightFormat, list[bytes]] = {}
    cycles: dict[WeightFormat, int] = {}
    for fmt in allowed:
        try:
            streams = [formats.encode(t, fmt, prec) for t in tiles]
        except FormatError:
            continue  # e.g. nm2_4 of weights that are not 2:4 sparse
        candidates[fmt] = streams
        cycles[fmt] = sum(
            load_cycles(s, t.size, fmt, prec, config) for s, t in zip(streams, tiles, strict=True)
        )
    return candidates, cycles


def place_weights(
    image: DramImage,
    weights: QWeights,
    row_tiles: list[np.ndarray],
    allowed: tuple[WeightFormat, ...],
    config: HardwareConfig,
    cache: dict | None = None,
) -> tuple[list[WeightTile], FormatChoice]:
    """Encode ``weights`` as ``row_tiles`` (row index arrays, in load order) and place the
    cheapest format's streams in ``image``. ``cache`` keeps encodings between attempts of
    one compile (the same matrix and tiling encode the same)."""
    prec = weight_precision(weights.precision)
    tiles = [weights.codes[rows] for rows in row_tiles]
    key = (
        weights.name,
        weights.precision,
        tuple(int(r[0]) for r in row_tiles),
        tuple(map(len, row_tiles)),
        allowed,
    )
    if cache is not None and key in cache:
        candidates, cycles = cache[key]
    else:
        candidates, cycles = _encodings(tiles, allowed, prec, config)
        if cache is not None:
            cache[key] = (candidates, cycles)
    best = min(candidates, key=lambda f: (cycles[f], sum(map(len, candidates[f]))))
    placed = []
    for index, (stream, tile) in enumerate(zip(candidates[best], tiles, strict=True)):
        worst = formats.max_encoded_size(tile.size, best, prec)
        region = image.place_once(f"{weights.name}[{index}]", "weights", stream, worst)
        placed.append(WeightTile(region.addr, tile.shape[0], tile.shape[1], best, prec))
    choice = FormatChoice(
        name=weights.name,
        shape=weights.shape,
        precision=weights.precision,
        format=best.label,
        stream_bytes=sum(map(len, candidates[best])),
        ideal_bytes=float(formats.ideal_size(weights.codes, prec)),
        nonzero=int(np.count_nonzero(weights.codes)),
        cycles={f.label: c for f, c in cycles.items()},
        stream_bytes_by_format={f.label: sum(map(len, s)) for f, s in candidates.items()},
    )
    return placed, choice
