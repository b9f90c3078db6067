"""The compiler's pipeline: a float RNN-T model -> quantized kernels -> one program.

``compile_model`` quantizes the model (:mod:`.quant`), plans each kernel's tiles for the
config (:mod:`.lowering.plan`), lowers the kernels into one DRAM image and one program with
an entry point each (``encoder_chunk``, ``predictor_step``, ``joint``), and checks every
entry dispatches without a trap. When a plan does not fit the SRAMs it retries with less
ambition (smaller chunks, then no hoisting, then no resident weights); what could not fit
is named in the final error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from edgenpu.asr_workloads.weight_quant import weight_precision
from edgenpu.config import HardwareConfig
from edgenpu.formats import ideal_size
from edgenpu.isa import Program, Symbol, SymbolKind
from edgenpu.sim import functional

from ..errors import CompileError
from .ir import Model
from .joint_split import hoist_joint_projections
from .lowering.allocate import SramOverflow
from .lowering.builder import FinishedKernel
from .lowering.dram import DramImage, Region
from .lowering.kernels import lower_kernel, recurrent_prefix
from .lowering.plan import Ambition, plan_kernel
from .lowering.weights import FormatChoice
from .quant import branch_calls
from .quant.calibrate import observe_ranges
from .quant.qir import QModel
from .quant.quantize import quantize_model
from .spec import CompileSpec

__all__ = [
    "CompiledKernel",
    "CompiledModel",
    "compile_model",
    "encoder_reduction",
    "symbol_name",
]

#: Plans tried in order until one fits.
AMBITIONS = (
    Ambition(hoist=True, resident=True, slot_divisor=8),
    Ambition(hoist=True, resident=True, slot_divisor=4),
    Ambition(hoist=False, resident=True, slot_divisor=4),
    Ambition(hoist=False, resident=False, slot_divisor=2),
)


@dataclass(frozen=True)
class CompiledKernel:
    """One entry point: where it starts, its instructions' notes and steps, its regions."""

    name: str
    entry: int
    length: int  # instructions, halt included
    notes: tuple[str, ...]
    tags: tuple[str, ...]
    regions: Mapping[str, Region]  # by tensor name

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions", MappingProxyType(dict(self.regions)))


@dataclass(frozen=True)
class CompiledModel:
    """Everything ``edgenpu compile`` writes, in memory."""

    program: Program
    qmodel: QModel
    config: HardwareConfig
    spec: CompileSpec
    kernels: dict
    choices: tuple[FormatChoice, ...]
    regions: tuple[Region, ...]
    dram_bytes: int
    ambition: Ambition

    def region(self, kernel: str, tensor: str) -> Region:
        return self.kernels[kernel].regions[tensor]


def encoder_reduction(model: Model) -> int:
    """Input frames per encoder output frame (the product of the time reductions)."""
    factor = 1
    for node in model["encoder"].nodes:
        if node.op == "time_reduce":
            factor *= node.attrs["factor"]
    return factor


def _chunk_candidates(spec: CompileSpec, reduction: int) -> list[int]:
    if spec.chunk_frames is not None:
        if spec.chunk_frames % reduction:
            raise CompileError(
                f"chunk_frames {spec.chunk_frames} must be a multiple of the encoder's time "
                f"reduction ({reduction})"
            )
        return [spec.chunk_frames]
    top = max(reduction, spec.max_auto_chunk // reduction * reduction)
    out = []
    while top >= reduction:
        out.append(top)
        top = top // 2 // reduction * reduction
    return out


def _regions(qmodel: QModel, image: DramImage) -> dict[str, dict[str, Region]]:
    out = {}
    shared_state: dict[str, Region] = {}  # the expensive branch's, one for all its kernels
    for kernel in qmodel.kernels.values():
        regions = {}
        for kind, names in (
            ("input", kernel.inputs),
            ("state", kernel.state),
            ("output", kernel.outputs),
        ):
            for name in names:
                shared = kind == "state" and branch_calls.is_expensive(kernel.name)
                if shared and name in shared_state:
                    regions[name] = shared_state[name]
                elif name not in regions:
                    regions[name] = image.reserve(
                        f"{kernel.name}.{name}", kind, kernel.tensor(name).nbytes
                    )
                    if shared:
                        shared_state[name] = regions[name]
        out[kernel.name] = regions
    return out


def symbol_name(region: str) -> str:
    """The program symbol of a region (``encoder_chunk.encoder.0.h`` ->
    ``encoder_chunk__encoder_0_h``): assembly names are identifiers."""
    kernel, _, tensor = region.partition(".")
    return kernel + "__" + re.sub(r"\W", "_", tensor)


def _symbols(qmodel: QModel, regions: dict, entries: dict[str, int]) -> list[Symbol]:
    symbols = []
    kinds = {"input": SymbolKind.DATA, "state": SymbolKind.DATA, "output": SymbolKind.OUTPUT}
    named: set[str] = set()
    for kernel in qmodel.kernels.values():
        symbols.append(Symbol(kernel.name, SymbolKind.ENTRY, entries[kernel.name]))
        for name, region in regions[kernel.name].items():
            if region.name in named:  # a region shared with an earlier kernel
                continue
            named.add(region.name)
            t = kernel.tensor(name)
            symbols.append(
                Symbol(
                    symbol_name(region.name),
                    kinds[region.kind],
                    region.addr,
                    region.nbytes,
                    t.shape,
                    t.dtype,
                )
            )
    return symbols


def _lower(
    qmodel: QModel, config: HardwareConfig, spec: CompileSpec, formats, ambition, encodings
) -> CompiledModel:
    image = DramImage(config)
    regions = _regions(qmodel, image)
    finished: dict[str, FinishedKernel] = {}
    choices: list[FormatChoice] = []
    frame_major = spec.schedule == "frame_major"
    for kernel in qmodel.kernels.values():
        interleaved = frame_major and bool(recurrent_prefix(kernel))
        plan = plan_kernel(kernel, config, ambition, interleaved)
        if plan is None:
            raise SramOverflow(f"kernel {kernel.name}: no tiling fits config {config.name}")
        ctx = lower_kernel(
            kernel,
            plan,
            interleaved,
            image,
            regions[kernel.name],
            config,
            formats,
            encodings,
        )
        finished[kernel.name] = ctx.builder.finish()
        choices += ctx.choices
    image.check_fits(qmodel.source or "model")
    words, entries, kernels = [], {}, {}
    for name, done in finished.items():
        entries[name] = len(words)
        words += done.instructions
        kernels[name] = CompiledKernel(
            name,
            entries[name],
            len(done.instructions),
            tuple(done.notes),
            tuple(done.tags),
            regions[name],
        )
    program = Program.from_instructions(
        words, image.segments(), tuple(_symbols(qmodel, regions, entries))
    )
    for name in kernels:
        plan = functional.dispatch(program, config, entries[name])
        if not plan.halted:
            raise CompileError(f"kernel {name}: the compiled program does not run: {plan.trap}")
    return CompiledModel(
        program,
        qmodel,
        config,
        spec,
        kernels,
        tuple(choices),
        tuple(image.regions),
        image.size,
        ambition,
    )


def _check_weights_fit(qmodel: QModel, config: HardwareConfig) -> None:
    """Fail at once when the weights' non-zero values alone exceed the DRAM (no format
    stores less), before any plan is tried."""
    floor = sum(
        ideal_size(w.codes, weight_precision(w.precision))
        for kernel in qmodel.kernels.values()
        for w in kernel.weights()
    )
    if floor > config.dram.bytes:
        raise CompileError(
            f"{qmodel.source or 'model'}: the weights need at least {int(floor)} bytes of DRAM "
            f"(their non-zero values alone) but config {config.name} has {config.dram.bytes}"
        )


def compile_model(
    model: Model,
    config: HardwareConfig,
    spec: CompileSpec | None = None,
    calibration: Sequence[np.ndarray] = (),
) -> CompiledModel:
    """Compile ``model`` for ``config``; ``calibration``: sample encoder inputs ``(T, F)``
    whose observed ranges tighten the activation formats (:mod:`.quant.calibrate`).

    Raises
    ------
    CompileError
        One line: an op or shape the compiler does not take, a model too large for the
        config's DRAM, or buffers that fit the SRAMs under no plan (naming the kernel and
        what was live).
    """
    spec = spec or CompileSpec()
    formats = tuple(
        f for f in (spec.formats or config.decompressor.formats) if f in config.decompressor.formats
    )
    if not formats:
        raise CompileError(
            f"none of the spec's formats ({', '.join(f.label for f in spec.formats)}) is "
            f"supported by config {config.name}"
        )
    if spec.hoist_joint:
        model = hoist_joint_projections(model)
    ranges = observe_ranges(model, calibration) if len(calibration) else {}
    failure = None
    encodings: dict = {}
    for chunk in _chunk_candidates(spec, encoder_reduction(model)):
        qmodel = quantize_model(model, spec, chunk, ranges)
        _check_weights_fit(qmodel, config)
        for ambition in AMBITIONS:
            try:
                return _lower(qmodel, config, spec, formats, ambition, encodings)
            except SramOverflow as error:
                failure = error
    raise CompileError(f"{model.source or 'model'}: does not fit config {config.name}: {failure}")
