"""The host's side of a compiled model, on the functional simulator: write a kernel's inputs
into DRAM, run its entry point, read its outputs; the encoder chunk by chunk, its state
kept in DRAM between calls, as a runtime on a real device would drive it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from edgenpu.isa import Program, Segment
from edgenpu.sim import functional

from ..errors import CompileError
from .compile import CompiledModel
from .quant.formats import quantize_activation

__all__ = ["SimulatedModel", "with_inputs"]


class SimulatedModel:
    """A compiled model loaded into a functional-simulator machine.

    Parameters
    ----------
    compiled : CompiledModel
    """

    def __init__(self, compiled: CompiledModel):
        self.compiled = compiled
        self.machine = functional.load_image(compiled.program, compiled.config)
        self.stats: list[functional.ExecStats] = []

    def _view(self, kernel: str, name: str) -> np.ndarray:
        tensor = self.compiled.qmodel.kernels[kernel].tensor(name)
        region = self.compiled.region(kernel, name)
        dtype = np.dtype("<i1") if tensor.bits == 8 else np.dtype("<i2")
        raw = self.machine.dram[region.addr : region.addr + region.nbytes]
        return raw.view(dtype).reshape(tensor.shape)

    def reset(self) -> None:
        """Zero every kernel's persistent state (the start of an utterance)."""
        for name, kernel in self.compiled.qmodel.kernels.items():
            for tensor in kernel.state:
                self._view(name, tensor)[:] = 0

    def call(self, kernel: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run entry ``kernel`` on integer ``inputs``; its outputs as int64 codes."""
        q = self.compiled.qmodel.kernels[kernel]
        for name in q.inputs:
            if name not in inputs:
                raise CompileError(f"kernel {kernel}: missing input {name!r}")
            self._view(kernel, name)[:] = np.asarray(inputs[name]).reshape(q.tensor(name).shape)
        result = functional.run(
            self.compiled.program, self.compiled.config, entry=kernel, machine=self.machine
        )
        if not result.halted:
            raise CompileError(f"kernel {kernel}: {result.trap}")
        self.stats.append(result.stats)
        return {name: self._view(kernel, name).astype(np.int64) for name in q.outputs}

    def encode(self, features: np.ndarray) -> np.ndarray:
        """The encoder over an utterance from zero state (as
        :func:`edgenpu.compiler.quant.reference.encode`, on the simulator)."""
        kernel = self.compiled.qmodel.kernels["encoder_chunk"]
        (name,) = kernel.inputs
        x = kernel.tensor(name)
        out = kernel.outputs[0]
        factor = x.shape[0] // kernel.tensor(out).shape[0]
        codes = quantize_activation(features, x.scale)
        self.reset()
        frames = []
        for start in range(0, len(codes), x.shape[0]):
            chunk = np.zeros(x.shape, np.int64)
            part = codes[start : start + x.shape[0]]
            chunk[: len(part)] = part
            frames.append(self.call("encoder_chunk", {name: chunk})[out])
        valid = -(-len(codes) // factor)
        return np.concatenate(frames)[:valid]


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
        dtype = np.dtype("<i1") if tensor.bits == 8 else np.dtype("<i2")
        data = codes.astype(dtype).tobytes()
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
