"""What a compiled model costs, layer by layer: MACs, weight bytes and modeled cycles.

Each kernel is run once through the performance model (:func:`edgenpu.sim.perf.run`) and
the functional simulator on :func:`plausible_inputs` (random codes from a fixed seed:
all-zero inputs would let zero-skip discard most of the work and flatter the cycles). A
layer's cycles are the span from the first issue to the last completion of the
instructions the lowering tagged with its step; layers overlap where the streams run
ahead, so the spans need not add up to the kernel's cycles.

The encoder's DRAM weight traffic is also given per second of audio: one ``encoder_chunk``
call's weight stream bytes over the audio it covers (``chunk_frames`` encoder input rows,
each ``hop_ms * subsample`` of the front end). A model without a front end (ONNX) gets it
per encoder input row instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from edgenpu.sim import functional, perf

from .compile import CompiledModel
from .host import SimulatedModel
from .quant.formats import quantize_activation
from .quant.qir import QKernel, QLinear, QLstm

__all__ = [
    "LAYER_COLUMNS",
    "CompileReport",
    "KernelCost",
    "LayerCost",
    "WeightRate",
    "compile_report",
    "format_report",
    "plausible_inputs",
    "report_to_dict",
    "weight_rate",
]

#: Seed of the inputs every report runs on, so two reports of one model agree.
SEED = 20261125
#: The per-layer table's columns.
LAYER_COLUMNS = ("kernel", "layer", "weights", "MACs/call", "non-zero", "prec", "format", "bytes",
                 "/int8", "cycles")  # fmt: skip
#: Label of the instructions no step owns: the kernel's input loads and output stores.
IO_TAG = "(I/O)"


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One weight matrix: its work per call, its stored form and its layer's cycles."""

    kernel: str
    layer: str
    weight: str
    macs: int
    nonzero_macs: int
    precision: str
    format: str
    stream_bytes: int
    dense_int8_bytes: int
    cycles: int | None

    @property
    def byte_ratio(self) -> float:
        return self.stream_bytes / self.dense_int8_bytes


@dataclasses.dataclass(frozen=True)
class KernelCost:
    """One entry point, run once: totals and every tagged step's cycle span."""

    name: str
    instructions: int
    cycles: int
    microseconds: float
    dram_read_bytes: int
    weight_stream_bytes: int
    step_cycles: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class WeightRate:
    """DRAM weight bytes per unit of input: per second of audio, or per encoder input row
    when the model has no front end."""

    bytes_per_call: int
    per: str  # "second of audio" or "encoder input frame"
    units_per_call: float

    @property
    def rate(self) -> float:
        return self.bytes_per_call / self.units_per_call


@dataclasses.dataclass(frozen=True)
class CompileReport:
    """Everything ``edgenpu compile`` prints and writes to ``report.json``."""

    model: str
    config: str
    clock_mhz: float
    schedule: str
    chunk_frames: int
    kernels: tuple[KernelCost, ...]
    layers: tuple[LayerCost, ...]
    encoder: WeightRate


def plausible_inputs(kernel: QKernel, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Integer codes for each input and state tensor of ``kernel``.

    Features are normalized, so the encoder's features are standard normal values brought
    to their scale; a one-hot token has one 1 at a random index; other int8 tensors (h,
    frames) take codes over their whole range and int16 ones (cell states) within +-2.
    """
    out = {}
    for name in (*kernel.inputs, *kernel.state):
        t = kernel.tensor(name)
        if name.endswith("_onehot"):
            codes = np.zeros(t.shape, np.int64)
            codes[0, rng.integers(t.shape[1])] = 1
        elif kernel.name == "encoder_chunk" and name in kernel.inputs:
            codes = quantize_activation(rng.standard_normal(t.shape), t.scale, t.bits)
        elif t.bits == 8:
            codes = rng.integers(-127, 128, size=t.shape)
        else:
            codes = quantize_activation(rng.uniform(-2, 2, size=t.shape), t.scale, t.bits)
        out[name] = codes.astype(np.int64)
    return out


def _machine(compiled: CompiledModel, kernel: str, codes: Mapping[str, np.ndarray]):
    host = SimulatedModel.from_compiled(compiled)
    host.write(kernel, codes)
    return host.machine


def _stats(compiled: CompiledModel, kernel: str, machine) -> functional.ExecStats:
    result = functional.run(compiled.program, compiled.config, entry=kernel, machine=machine)
    if not result.halted:  # compile_model checked every entry halts: this is a bug
        raise RuntimeError(f"kernel {kernel}: {result.trap}")
    return result.stats


def _rate(compiled: CompiledModel, weight_bytes: int) -> WeightRate:
    chunk = compiled.qmodel.chunk_frames
    fe = compiled.qmodel.frontend
    if fe is None:
        return WeightRate(weight_bytes, "encoder input frame", float(chunk))
    return WeightRate(weight_bytes, "second of audio", chunk * fe.hop_ms * fe.subsample / 1000)


def weight_rate(compiled: CompiledModel, seed: int = SEED) -> WeightRate:
    """DRAM weight bytes of one ``encoder_chunk`` call per second of audio (functional
    simulator only: cheaper than :func:`compile_report`)."""
    q = compiled.qmodel.kernels["encoder_chunk"]
    machine = _machine(compiled, q.name, plausible_inputs(q, np.random.default_rng(seed)))
    return _rate(compiled, _stats(compiled, q.name, machine).weight_stream_bytes)


def _kernel_cost(compiled: CompiledModel, name: str, rng) -> KernelCost:
    kernel = compiled.kernels[name]
    machine = _machine(compiled, name, plausible_inputs(compiled.qmodel.kernels[name], rng))
    timed = perf.run(compiled.program, compiled.config, entry=name, machine=machine)
    stats = _stats(compiled, name, machine)
    spans: dict[str, list[int]] = {}
    for record in timed.instructions:
        tag = kernel.tags[record.index - kernel.entry] or IO_TAG
        span = spans.setdefault(tag, [record.issued, record.done])
        span[0], span[1] = min(span[0], record.issued), max(span[1], record.done)
    return KernelCost(
        name=name,
        instructions=kernel.length,
        cycles=timed.cycles,
        microseconds=timed.microseconds,
        dram_read_bytes=timed.counts.dram_read,
        weight_stream_bytes=stats.weight_stream_bytes,
        step_cycles={tag: done - issued for tag, (issued, done) in spans.items()},
    )


def _choices(compiled: CompiledModel) -> dict[tuple[str, str], object]:
    """Each weight matrix's :class:`FormatChoice` by (kernel, weight name): names repeat
    across the kernels of an ONNX export (both LSTMs are ``/layers.0/LSTM``)."""
    return {(c.kernel, c.name): c for c in compiled.choices}


def _layers(compiled: CompiledModel, costs: dict[str, KernelCost]) -> list[LayerCost]:
    choices = _choices(compiled)
    rows = []
    for kernel in compiled.qmodel.kernels.values():
        for step in kernel.steps:
            if isinstance(step, QLstm):
                weights = [step.w_ih, step.w_hh]
            elif isinstance(step, QLinear):
                weights = [step.weights]
            else:
                continue
            calls = kernel.tensor(step.x).shape[0]  # input rows per kernel call
            for w in weights:
                c = choices[kernel.name, w.name]
                rows.append(
                    LayerCost(
                        kernel=kernel.name,
                        layer=step.name,
                        weight=w.name,
                        macs=w.shape[0] * w.shape[1] * calls,
                        nonzero_macs=c.nonzero * calls,
                        precision=c.precision,
                        format=c.format,
                        stream_bytes=c.stream_bytes,
                        dense_int8_bytes=c.dense_int8_bytes,
                        cycles=costs[kernel.name].step_cycles.get(step.name),
                    )
                )
    return rows


def compile_report(compiled: CompiledModel, source: str = "", seed: int = SEED) -> CompileReport:
    """Run every kernel of ``compiled`` once on :func:`plausible_inputs` and account for it."""
    rng = np.random.default_rng(seed)
    costs = {name: _kernel_cost(compiled, name, rng) for name in compiled.kernels}
    return CompileReport(
        model=source or compiled.qmodel.source,
        config=compiled.config.name,
        clock_mhz=compiled.config.clock_mhz,
        schedule=compiled.spec.schedule,
        chunk_frames=compiled.qmodel.chunk_frames,
        kernels=tuple(costs.values()),
        layers=tuple(_layers(compiled, costs)),
        encoder=_rate(compiled, costs["encoder_chunk"].weight_stream_bytes),
    )


def report_to_dict(report: CompileReport) -> dict:
    """The report as JSON-ready data (``report.json``)."""
    return {
        "model": report.model,
        "config": report.config,
        "clock_mhz": report.clock_mhz,
        "schedule": report.schedule,
        "chunk_frames": report.chunk_frames,
        "inputs": f"random codes, seed {SEED} (see edgenpu.compiler.report.plausible_inputs)",
        "kernels": [
            {**dataclasses.asdict(k), "step_cycles": dict(k.step_cycles)} for k in report.kernels
        ],
        "layers": [
            {**dataclasses.asdict(row), "byte_ratio_to_int8": round(row.byte_ratio, 4)}
            for row in report.layers
        ],
        "encoder_weight_bytes": {
            "per_call": report.encoder.bytes_per_call,
            "per": report.encoder.per,
            "units_per_call": report.encoder.units_per_call,
            "rate": report.encoder.rate,
        },
    }


def _table(header: list[str], rows: list[list[str]], names: int) -> list[str]:
    """Aligned text columns: the first ``names`` left-aligned, the numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = [str.ljust if i < names else str.rjust for i in range(len(header))]
    cells = ([f(c, w) for f, c, w in zip(fmt, r, widths, strict=True)] for r in [header, *rows])
    return ["  ".join(r).rstrip() for r in cells]


def format_report(report: CompileReport) -> str:
    """The per-layer table, the kernel totals and the encoder's weight rate, as text."""
    rows = []
    shown = set()
    for r in report.layers:
        first = (r.kernel, r.layer) not in shown  # a layer's cycles once, on its first matrix
        rows.append(
            [
                "" if any(k == r.kernel for k, _ in shown) else r.kernel,
                r.layer if first else "",
                r.weight,
                f"{r.macs:,}",
                f"{r.nonzero_macs:,}",
                r.precision,
                r.format,
                f"{r.stream_bytes:,}",
                f"{r.byte_ratio:.3f}",
                f"{r.cycles:,}" if first and r.cycles is not None else "",
            ]
        )
        shown.add((r.kernel, r.layer))
    lines = _table(list(LAYER_COLUMNS), rows, names=3)
    lines.append("")
    totals = [
        [
            k.name,
            f"{k.instructions:,}",
            f"{k.cycles:,}",
            f"{k.microseconds:,.1f}",
            f"{k.dram_read_bytes:,}",
            f"{k.weight_stream_bytes:,}",
        ]
        for k in report.kernels
    ]
    lines += _table(
        [
            "kernel",
            "instructions",
            "cycles",
            f"us@{report.clock_mhz:g}MHz",
            "DRAM read B",
            "weight stream B",
        ],
        totals,
        names=1,
    )
    e = report.encoder
    lines.append("")
    lines.append(
        f"encoder ({report.schedule}, {report.chunk_frames} frames a call): "
        f"{e.rate:,.0f} DRAM weight bytes per {e.per} ({e.bytes_per_call:,} B a call)"
    )
    return "\n".join(lines)
