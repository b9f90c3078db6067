"""The host's side of a compiled model, on the functional simulator, from the manifest
alone: write a kernel's inputs into DRAM, run its entry point, read its outputs; the
encoder chunk by chunk with its state kept in DRAM between calls, greedy search over the
predictor and joint kernels, as a runtime on a device would drive them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml

from edgenpu.config import HardwareConfig, load_config
from edgenpu.isa import DType, Program, Segment
from edgenpu.sim import functional

from ..asr_workloads.frontend import FrontEndConfig, features
from ..asr_workloads.numpy_model import DEFAULT_MAX_SYMBOLS, greedy_search
from ..asr_workloads.text import decode as ids_to_text
from ..errors import CompileError
from .compile import CompiledModel
from .manifest import FORMAT, VERSION, manifest
from .quant import branch_calls
from .quant.formats import quantize_activation
from .quant.reference import encode_chunks, predictor_stepper

__all__ = ["SimulatedModel", "with_inputs"]


@dataclasses.dataclass(frozen=True)
class _Slot:
    """Where a kernel's tensor lives in DRAM and how to read it, from the manifest."""

    addr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float

    @classmethod
    def of(cls, entry: Mapping) -> _Slot:
        dtype = DType[entry["dtype"].replace("int", "I")].numpy  # int8 -> DType.I8
        return cls(int(entry["addr"]), tuple(entry["shape"]), dtype, float(entry["scale"]))


class SimulatedModel:
    """A compiled model on the functional simulator, driven by its manifest alone: what a
    host runtime on a device does (load the image once; per call write the inputs, run the
    entry point, read the outputs).

    Parameters
    ----------
    program : Program
        ``program.bin``.
    manifest : Mapping
        ``manifest.yaml`` (:func:`edgenpu.compiler.manifest.manifest`).
    config : HardwareConfig
    """

    def __init__(self, program: Program, manifest: Mapping, config: HardwareConfig):
        self.program, self.manifest, self.config = program, manifest, config
        self.slots = {
            kernel: {
                role: {name: _Slot.of(entry) for name, entry in spec[role].items()}
                for role in ("inputs", "outputs", "state")
            }
            for kernel, spec in manifest["kernels"].items()
        }
        self.machine = functional.load_image(program, config)
        self.stats: list[functional.ExecStats] = []

    @classmethod
    def from_compiled(cls, compiled: CompiledModel) -> SimulatedModel:
        return cls(compiled.program, manifest(compiled, compiled.qmodel.source), compiled.config)

    @classmethod
    def load(cls, outdir: str | Path, config: HardwareConfig | None = None) -> SimulatedModel:
        """What ``edgenpu compile`` wrote to ``outdir`` (on the manifest's config unless
        ``config`` is given)."""
        outdir = Path(outdir)
        try:
            doc = yaml.safe_load((outdir / "manifest.yaml").read_text())
            data = (outdir / doc["program"]["file"]).read_bytes()
        except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
            raise CompileError(f"{outdir}: not a compiled model ({error})") from None
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise CompileError(
                f"{outdir}/manifest.yaml: format {doc.get('format')!r} version "
                f"{doc.get('version')!r}; this runtime reads {FORMAT} version {VERSION}"
            )
        program = Program.from_bytes(data, str(outdir / doc["program"]["file"]))
        return cls(program, doc, config or load_config(doc["config"]))

    def _view(self, kernel: str, name: str) -> np.ndarray:
        slots = self.slots[kernel]
        slot = next(group[name] for group in slots.values() if name in group)
        nbytes = int(np.prod(slot.shape)) * slot.dtype.itemsize
        return (
            self.machine.dram[slot.addr : slot.addr + nbytes].view(slot.dtype).reshape(slot.shape)
        )

    def reset(self) -> None:
        """Zero every kernel's persistent state (the start of an utterance)."""
        for kernel, slots in self.slots.items():
            for name in slots["state"]:
                self._view(kernel, name)[:] = 0

    def write(self, kernel: str, codes: Mapping[str, np.ndarray]) -> None:
        """Write integer ``codes`` into ``kernel``'s input or state tensors, as the host
        does before a call."""
        if kernel not in self.slots:
            raise CompileError(f"no kernel named {kernel!r} (kernels: {', '.join(self.slots)})")
        for name, values in codes.items():
            view = self._view(kernel, name)
            view[:] = np.asarray(values).reshape(view.shape)

    def call(self, kernel: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run entry ``kernel`` on integer ``inputs``; its outputs as int64 codes."""
        if kernel not in self.slots:
            raise CompileError(f"no kernel named {kernel!r} (kernels: {', '.join(self.slots)})")
        slots = self.slots[kernel]
        missing = [name for name in slots["inputs"] if name not in inputs]
        if missing:
            raise CompileError(f"kernel {kernel}: missing input {missing[0]!r}")
        self.write(kernel, {name: inputs[name] for name in slots["inputs"]})
        result = functional.run(self.program, self.config, entry=kernel, machine=self.machine)
        if not result.halted:
            raise CompileError(f"kernel {kernel}: {result.trap}")
        self.stats.append(result.stats)
        return {name: self._view(kernel, name).astype(np.int64) for name in slots["outputs"]}

    def encode(self, features: np.ndarray) -> np.ndarray:
        """The encoder over an utterance from zero state, as
        :func:`edgenpu.compiler.quant.reference.encode` runs it (:func:`encode_chunks`),
        a branching encoder's chosen frames from the ``encoder_expensive_<n>`` kernels."""
        ((name, slot),) = self.slots["encoder_chunk"]["inputs"].items()
        outputs = list(self.slots["encoder_chunk"]["outputs"])
        self.reset()

        def run_chunk(codes: np.ndarray) -> dict[str, np.ndarray]:
            return self.call("encoder_chunk", {name: codes})

        def run_group(size: int, stem_rows: np.ndarray) -> np.ndarray:
            kernel = branch_calls.kernel_name(size)
            slots = self.slots[kernel]
            result = self.call(kernel, {next(iter(slots["inputs"])): stem_rows})
            return result[next(iter(slots["outputs"]))]

        codes = quantize_activation(features, slot.scale)
        frames = self.slots["encoder_chunk"]["outputs"][outputs[0]].shape
        return encode_chunks(codes, slot.shape, frames, outputs, run_chunk, run_group)

    def greedy_decode(
        self, features: np.ndarray, max_symbols_per_frame: int = DEFAULT_MAX_SYMBOLS
    ) -> list[int]:
        """Token ids by greedy RNN-T search through the compiled kernels, the search of
        :func:`edgenpu.compiler.quant.reference.greedy_decode`. The predictor's inputs are
        ``token_onehot`` and its state, which comes back as outputs named ``<state>_out``;
        the joint's inputs are the encoder frame and the prediction, in that order."""
        predictor, joint = self.slots["predictor_step"], self.slots["joint"]
        inputs = list(predictor["inputs"])
        state = {n: np.zeros(predictor["inputs"][n].shape, np.int64) for n in inputs[1:]}
        vocabulary = predictor["inputs"][inputs[0]].shape[1]
        step = predictor_stepper(
            inputs,
            list(predictor["outputs"]),
            vocabulary,
            state,
            lambda codes: self.call("predictor_step", codes),
        )
        frame_input, prediction_input = joint["inputs"]
        logits_name = next(iter(joint["outputs"]))

        def logits(frame: np.ndarray, prediction: np.ndarray) -> np.ndarray:
            codes = {frame_input: frame[None], prediction_input: prediction}
            return self.call("joint", codes)[logits_name][0]

        return greedy_search(self.encode(features), step, logits, max_symbols_per_frame)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """The transcript of mono ``audio``: the manifest's front end, then greedy search."""
        if self.manifest.get("frontend") is None:
            raise CompileError(
                "the compiled model has no front end (an ONNX export): give features"
            )
        frontend = FrontEndConfig.from_dict(self.manifest["frontend"])
        return ids_to_text(self.greedy_decode(features(audio, sample_rate, frontend)))


def with_inputs(compiled: CompiledModel, kernel: str, inputs: Mapping[str, np.ndarray]) -> Program:
    """The compiled program with ``kernel``'s input codes in its DRAM image.

    For a run that starts from the program's image alone (the RTL's): the input regions are
    zero-filled reservations, not segments, so the codes become new segments there.

    Parameters
    ----------
    compiled : CompiledModel
    kernel : str
        An entry point of ``compiled``.
    inputs : mapping of str to ndarray
        Integer codes for every input of ``kernel``, in the tensor's shape and range.
    """
    if kernel not in compiled.qmodel.kernels:
        raise CompileError(f"no kernel named {kernel!r}")
    q = compiled.qmodel.kernels[kernel]
    segments = list(compiled.program.segments)
    for name in q.inputs:
        if name not in inputs:
            raise CompileError(f"kernel {kernel}: missing input {name!r}")
        tensor = q.tensor(name)
        codes = np.asarray(inputs[name])
        if codes.shape != tuple(tensor.shape):
            raise CompileError(
                f"kernel {kernel}: input {name!r} must be {list(tensor.shape)}, "
                f"not {list(codes.shape)}"
            )
        lo, hi = -(1 << (tensor.bits - 1)), (1 << (tensor.bits - 1)) - 1
        if codes.size and not (lo <= codes.min() and codes.max() <= hi):
            raise CompileError(
                f"kernel {kernel}: input {name!r} holds codes outside {lo}..{hi} (int{tensor.bits})"
            )
        data = codes.astype(tensor.dtype.numpy).tobytes()
        region = compiled.region(kernel, name)
        if len(data) != region.nbytes:
            raise CompileError(
                f"kernel {kernel}: input {name!r} is {len(data)} bytes, its region {region.nbytes}"
            )
        segments.append(Segment(region.addr, data))
    program = dataclasses.replace(
        compiled.program, segments=tuple(sorted(segments, key=lambda s: s.addr))
    )
    # An input region that already holds image bytes would be a compiler bug: say so.
    program.validate(f"{kernel} with inputs")
    return program
