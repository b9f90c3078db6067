"""What the decompressor must do: random stimulus, expected writes and expected cycles.

Everything here is derived from the reference codec (:mod:`edgenpu.formats`) and the timing
rules of ``docs/microarchitecture.md`` ("Decompressor"); :func:`timing` is those rules in
executable form, defined once in :mod:`edgenpu.sim.perf.decompressor_rules`. No cocotb
imports, so the Amaranth-level tests use it as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu import formats
from edgenpu.config import HardwareConfig
from edgenpu.formats import BLOCK, WeightFormat, bitmask, nm
from edgenpu.precision import Precision, pack, packed_size
from edgenpu.sim.perf.decompressor_rules import Timing, timing

__all__ = [
    "Beat",
    "Case",
    "Timing",
    "case_from_stream",
    "expected_beats",
    "make_case",
    "make_cases",
    "timing",
]


@dataclass(frozen=True)
class Beat:
    """One weight-SRAM write: byte address of lane 0, byte-enable mask, and the enabled
    bytes (lane order)."""

    addr: int
    en: int
    data: bytes


@dataclass(frozen=True)
class Case:
    """One ``LOAD_WGT`` command with its input and the results it must produce.

    ``supply`` is what the DMA offers: the stream, then garbage up to a whole beat and
    ``extra_beats`` more beats of garbage, which the decompressor must ignore.
    """

    fmt: WeightFormat
    prec: Precision
    count: int
    addr: int
    supply: bytes
    consumed: int
    block_sizes: tuple[int, ...]
    beats: tuple[Beat, ...]
    label: str

    def describe(self) -> str:
        return (
            f"{self.label}: {self.fmt.label} {self.prec.label} count={self.count} "
            f"addr={self.addr:#x} consumed={self.consumed}"
        )


def expected_beats(dense: bytes, addr: int, beat_bytes: int, addr_bits: int) -> tuple[Beat, ...]:
    """The writes of the packed dense bytes ``dense`` from ``addr``: whole beats of
    ``beat_bytes`` bytes, the last one partial, addresses wrapping at ``2**addr_bits``."""
    out = []
    for at in range(0, len(dense), beat_bytes):
        chunk = dense[at : at + beat_bytes]
        out.append(Beat((addr + at) % (1 << addr_bits), (1 << len(chunk)) - 1, chunk))
    return tuple(out)


def _nm_sparse(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` with all but ``N`` random positions of every group of ``M`` zeroed."""
    padded = np.zeros(-(-values.size // nm.M) * nm.M, dtype=np.int64)
    padded[: values.size] = values
    groups = padded.reshape(-1, nm.M)
    drop = np.argsort(rng.random(groups.shape), axis=1)[:, : nm.M - nm.N]
    np.put_along_axis(groups, drop, 0, axis=1)
    return groups.reshape(-1)[: values.size]


def _canonical_stream(
    fmt: WeightFormat, prec: Precision, count: int, density: float, rng: np.random.Generator
) -> bytes:
    """What the compiler emits: :func:`formats.encode` of random values."""
    values = rng.integers(prec.min, prec.max + 1, size=count)
    values[rng.random(count) >= density] = 0
    if fmt is WeightFormat.NM2_4:
        values = _nm_sparse(values, rng)
    return formats.encode(values, fmt, prec)


def _raw_stream(
    fmt: WeightFormat, prec: Precision, count: int, density: float, rng: np.random.Generator
) -> bytes:
    """Arbitrary bytes the hardware must decode all the same: bitmask bits past the count,
    listed zeros, non-zero padding nibbles, unordered and repeated 2:4 indices."""
    if fmt is not WeightFormat.BITMASK:
        size = formats.max_encoded_size(count, fmt, prec)
        return rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
    out = bytearray()
    for _ in range(-(-count // BLOCK)):
        # Past the count too: those bits still consume values (bitmask hardware semantics).
        mask_bits = rng.random(BLOCK) < density
        mask = int(np.packbits(mask_bits, bitorder="little").view("<u4")[0])
        out += mask.to_bytes(bitmask.MASK_BYTES, "little")
        n_values = packed_size(int(mask_bits.sum()), prec)
        out += rng.integers(0, 256, size=n_values, dtype=np.uint8).tobytes()
    return bytes(out)


def case_from_stream(
    config: HardwareConfig,
    fmt: WeightFormat,
    prec: Precision,
    count: int,
    stream: bytes,
    rng: np.random.Generator,
    *,
    addr: int | None = None,
    extra_beats: int = 0,
    label: str = "case",
) -> Case:
    """The case of decoding ``stream`` (exactly one stream of ``count`` elements) to a random
    in-range address, or ``addr``, with ``extra_beats`` beats of garbage after it."""
    values, consumed = formats.decode(stream, count, fmt, prec, strict=False)
    if consumed != len(stream):
        raise ValueError(f"stream holds {len(stream)} bytes, but decodes from {consumed}")
    sizes = formats.block_sizes(stream, count, fmt, prec)

    weight_bytes = config.sram.weight_bytes
    addr_bits = max(1, (weight_bytes - 1).bit_length())
    dense = pack(values, prec)
    if addr is None:
        addr = int(rng.integers(0, max(1, weight_bytes - len(dense) + 1)))
    out = config.decompressor.output_elements_per_cycle
    beats = expected_beats(dense, addr, out * prec.bits // 8, addr_bits)

    in_bytes = config.decompressor.input_bytes_per_cycle
    garbage = (-len(stream)) % in_bytes + extra_beats * in_bytes
    supply = stream + rng.integers(0, 256, size=garbage, dtype=np.uint8).tobytes()
    return Case(
        fmt, prec, count, addr, supply, consumed, tuple(int(s) for s in sizes), beats, label
    )


def make_case(
    config: HardwareConfig,
    fmt: WeightFormat,
    prec: Precision,
    count: int,
    rng: np.random.Generator,
    *,
    density: float = 0.5,
    canonical: bool = True,
    extra_beats: int = 0,
    label: str = "case",
) -> Case:
    """A case with a random stream of ``count`` elements at non-zero ``density``: made by
    the encoder (``canonical``) or arbitrary bytes with the hardware's semantics."""
    make = _canonical_stream if canonical else _raw_stream
    stream = make(fmt, prec, count, density, rng)
    return case_from_stream(
        config, fmt, prec, count, stream, rng, extra_beats=extra_beats, label=label
    )


#: Element counts every run covers: empty, single elements, odd int4 counts, around the
#: block and beat boundaries, and a few blocks.
EDGE_COUNTS = (0, 1, 2, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 95, 97)


def make_cases(
    config: HardwareConfig, rng: np.random.Generator, n_random: int, max_count: int = 200
) -> list[Case]:
    """Every supported (format, precision) at the edge counts, at densities 0, 0.5 and 1,
    canonical and raw, then ``n_random`` random cases."""
    combos = [(f, p) for f in config.decompressor.formats for p in config.mac.precisions]
    cases = []
    for f, p in combos:
        for count in EDGE_COUNTS:
            for density in (0.0, 0.5, 1.0):
                for canonical in (True, False):
                    cases.append(
                        make_case(
                            config,
                            f,
                            p,
                            count,
                            rng,
                            density=density,
                            canonical=canonical,
                            extra_beats=int(rng.integers(0, 3)),
                            label="edge",
                        )
                    )
    for _ in range(n_random):
        f, p = combos[int(rng.integers(len(combos)))]
        cases.append(
            make_case(
                config,
                f,
                p,
                int(rng.integers(0, max_count + 1)),
                rng,
                density=float(rng.random()),
                canonical=bool(rng.integers(2)),
                extra_beats=int(rng.integers(0, 3)),
                label="random",
            )
        )
    return cases
