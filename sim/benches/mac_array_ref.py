"""What the MAC array must do: random ``matmul`` cases, their expected memory, their cycles.

The expected accumulator memory comes from the functional simulator
(:func:`edgenpu.sim.functional.execute` on a machine holding the case's memories), and
:func:`timing` is the rules of ``docs/microarchitecture.md`` ("MAC array") in executable
form. No cocotb imports, so the Amaranth-level tests use it as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode
from edgenpu.isa.access import check
from edgenpu.precision import Precision, pack, packed_size, unpack
from edgenpu.sim import functional
from edgenpu.sim.perf.mac_rules import PIPELINE_DEPTH, Timing, timing

__all__ = [
    "PIPELINE_DEPTH",
    "Case",
    "Timing",
    "make_case",
    "make_cases",
    "timing",
]


@dataclass(frozen=True)
class Case:
    """One ``matmul`` and the memories it runs on.

    ``fields`` are the instruction's fields; ``wgt``, ``act`` and ``acc`` the whole weight,
    activation and accumulator memories (bytes, random outside the operands so that a read
    past an operand that is not masked shows).
    """

    fields: dict
    wgt: np.ndarray
    act: np.ndarray
    acc: np.ndarray
    label: str

    @property
    def prec(self) -> Precision:
        return Precision(self.fields["prec"])

    def instruction(self) -> Instruction:
        return Instruction.make(Opcode.MATMUL, **self.fields)

    def describe(self) -> str:
        f = self.fields
        return (
            f"{self.label}: matmul {self.prec.label} rows={f['rows']} cols={f['cols']} "
            f"n={f['n']} w={f['w']:#x} x={f['x']:#x} x_stride={f['x_stride']} "
            f"acc={f['acc']:#x} acc_stride={f['acc_stride']} accumulate={f['accumulate']}"
        )

    def operands(self) -> tuple[np.ndarray, np.ndarray]:
        """The weight tile (rows x cols) and the input vectors (n x cols), as int8."""
        f = self.fields
        rows, cols, n = f["rows"], f["cols"], f["n"]
        size = packed_size(rows * cols, self.prec)
        w = unpack(self.wgt[f["w"] : f["w"] + size], rows * cols, self.prec).reshape(rows, cols)
        x = np.array(
            [self.act[f["x"] + j * f["x_stride"] :][:cols].view(np.int8) for j in range(n)]
        ).reshape(n, cols)
        return w, x

    def timing(self, config: HardwareConfig) -> Timing:
        w, x = self.operands()
        return timing(w, x, self.prec, config)

    def expected_acc(self, config: HardwareConfig) -> np.ndarray:
        """The accumulator memory after the matmul, by the functional simulator."""
        machine = functional.Machine.empty(config)
        machine.wgt[:] = self.wgt
        machine.act[:] = self.act
        machine.acc[:] = self.acc
        functional.execute(self.instruction(), machine, functional.ExecStats())
        return machine.acc.copy()


def _values(rng: np.random.Generator, shape, lo: int, hi: int, density: float) -> np.ndarray:
    v = rng.integers(lo, hi + 1, size=shape)
    v[rng.random(shape) >= density] = 0
    return v


def make_case(
    config: HardwareConfig,
    rng: np.random.Generator,
    *,
    prec: Precision,
    rows: int,
    cols: int,
    n: int,
    w_density: float = 0.5,
    x_density: float = 0.5,
    zero_rows: float = 0.0,
    zero_windows: float = 0.0,
    accumulate: bool | None = None,
    x_stride: int | None = None,
    label: str = "case",
) -> Case:
    """A random matmul that the dispatcher accepts, placed at random in random memories.

    ``zero_rows`` / ``zero_windows`` are the probabilities that a weight row / a weight
    window of ``K`` columns (and an input vector's window) is all zero, so that whole lanes
    and whole windows skip.
    """
    K = config.zero_skip.lookahead * config.mac.macs_per_lane * (8 // prec.bits)
    weights = _values(rng, (rows, cols), prec.min, prec.max, w_density)
    x = _values(rng, (n, cols), -128, 127, x_density)
    weights[rng.random(rows) < zero_rows] = 0
    for k in range(0, cols, K):
        weights[rng.random(rows) < zero_windows, k : k + K] = 0
        x[rng.random(n) < zero_windows, k : k + K] = 0
    if x_stride is None:
        # Mostly apart, sometimes overlapping (reads only), sometimes the same vector.
        x_stride = int(rng.choice([cols, cols + int(rng.integers(1, 9)), max(0, cols - 3), 0]))
    acc_stride = rows + int(rng.integers(0, 4)) if n > 1 else int(rng.integers(0, 8))
    if accumulate is None:
        accumulate = bool(rng.integers(2))

    wgt = rng.integers(0, 256, config.sram.weight_bytes, dtype=np.uint8)
    act = rng.integers(0, 256, config.sram.activation_bytes, dtype=np.uint8)
    acc = rng.integers(0, 256, config.sram.accumulator_bytes, dtype=np.uint8)
    tile = np.frombuffer(pack(weights, prec), np.uint8)
    w = int(rng.integers(0, config.sram.weight_bytes - tile.size + 1))
    wgt[w : w + tile.size] = tile
    if prec is Precision.INT4 and (rows * cols) % 2:
        # pack() leaves the last byte's high nibble zero; put garbage there, past the tile.
        wgt[w + tile.size - 1] |= np.uint8(rng.integers(1, 16) << 4)
    x_span = (n - 1) * x_stride + cols
    xa = int(rng.integers(0, config.sram.activation_bytes - x_span + 1))
    for j in range(n):
        act[xa + j * x_stride : xa + j * x_stride + cols] = x[j].astype(np.int8).view(np.uint8)
    acc_span = (n - 1) * acc_stride + rows
    acc_addr = int(rng.integers(0, config.sram.accumulator_words - acc_span + 1))
    fields = dict(
        acc=acc_addr,
        w=w,
        x=xa,
        rows=rows,
        cols=cols,
        n=n,
        x_stride=x_stride,
        acc_stride=acc_stride,
        prec=prec.value,
        accumulate=int(accumulate),
    )
    case = Case(fields, wgt, act, acc, label)
    trap = check(case.instruction(), config)
    if trap is not None:
        raise ValueError(f"{case.describe()} would trap: {trap}")
    return case


def make_cases(
    config: HardwareConfig,
    rng: np.random.Generator,
    n_random: int,
    *,
    max_groups: int = 3,
    max_windows: int = 3,
) -> list[Case]:
    """Edge cases for every precision the config supports, then ``n_random`` random ones.

    Shapes stay within ``max_groups`` row groups and ``max_windows`` windows of the widest
    precision, so that the default config's runs stay short.
    """
    L = config.mac.lanes
    cases = []
    for prec in config.mac.precisions:
        K = config.zero_skip.lookahead * config.mac.macs_per_lane * (8 // prec.bits)
        edges = [
            dict(rows=1, cols=1, n=1),
            dict(rows=L, cols=K, n=1, w_density=1.0, x_density=1.0),
            dict(rows=L + 1, cols=K + 1, n=2, w_density=1.0, x_density=1.0),
            dict(rows=L - 1 or 1, cols=2 * K - 1, n=3, w_density=0.0),
            dict(rows=2 * L + 3, cols=K + 3, n=2, x_density=0.0),
            dict(rows=3, cols=3 * K, n=4, zero_rows=0.5, zero_windows=0.5),
            dict(rows=L + 3, cols=2 * K + 5, n=1, w_density=0.2, x_density=0.9),
        ]
        for kwargs in edges:
            for accumulate in (False, True):
                cases.append(
                    make_case(config, rng, prec=prec, accumulate=accumulate, label="edge", **kwargs)
                )
    for _ in range(n_random):
        prec = config.mac.precisions[int(rng.integers(len(config.mac.precisions)))]
        K = config.zero_skip.lookahead * config.mac.macs_per_lane * (8 // prec.bits)
        cases.append(
            make_case(
                config,
                rng,
                prec=prec,
                rows=int(rng.integers(1, max_groups * L + 1)),
                cols=int(rng.integers(1, max_windows * K + 1)),
                n=int(rng.integers(1, 5)),
                w_density=float(rng.choice([0.0, 0.1, 0.5, 0.9, 1.0])),
                x_density=float(rng.choice([0.0, 0.3, 0.6, 1.0])),
                zero_rows=float(rng.choice([0.0, 0.3])),
                zero_windows=float(rng.choice([0.0, 0.3])),
                label="random",
            )
        )
    return cases
