"""The whole processor's cycle rules, and what its bench (``npu_bench.py``) runs and builds.

The data oracle is ``edgenpu.sim.functional.run`` itself. :func:`timing` is the executable
form of ``docs/microarchitecture.md``, "Integration" (rule N2): the dispatcher's rules with
each instruction's unit latency taken from that unit's own rules and data. The rest picks
the build parameters (a small simulation DRAM: every memory's initial contents are written
into the Verilog element by element), the kernels, and how a build without the MAC array
runs random programs.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from edgenpu.config import HardwareConfig
from edgenpu.errors import ProgramError
from edgenpu.isa import (
    IllegalInstruction,
    Instruction,
    Opcode,
    Program,
    Stream,
    decode,
    encode,
)
from edgenpu.isa.asm import assemble_file
from edgenpu.sim import functional, perf
from edgenpu.sim.perf.units import unit_cost, unit_of

__all__ = [
    "BENCH_DRAM_BYTES",
    "CYCLES_CSV",
    "KERNELS_ENV",
    "PERIOD_NS",
    "bench_config",
    "executes_matmul",
    "kernels",
    "params",
    "timing",
    "unit_done",
    "without_matmul",
]

#: The simulation DRAM of the bench: room for the random programs' data, weight streams and
#: store scratch (``edgenpu.sim.random_programs``) and the tiny kernels, and small enough that
#: reading it all back after every program costs ``BENCH_DRAM_BYTES / B`` cycles only.
BENCH_DRAM_BYTES = 1 << 14
#: The bench's clock period: simulated time / PERIOD_NS = clock cycles.
PERIOD_NS = 10
#: The file in the cocotb run directory to which the bench appends every program's cycles
#: (program, end, measured, rules), row by row.
CYCLES_CSV = "npu_cycles.csv"
#: Environment variable naming the directory of the ``*.s`` kernels the bench runs.
KERNELS_ENV = "EDGENPU_NPU_KERNELS"


def bench_config(config: HardwareConfig, dram_bytes: int = BENCH_DRAM_BYTES) -> HardwareConfig:
    """``config`` with a ``dram_bytes`` DRAM (the functional simulator gets the same, so
    addresses past it trap alike)."""
    return dataclasses.replace(config, dram=dataclasses.replace(config.dram, bytes=dram_bytes))


def params(config: HardwareConfig, *, mac_array: bool = True, program_words: int = 128) -> dict:
    """Build parameters of :meth:`edgenpu.rtl.npu.Npu.from_config` for the bench."""
    return {"config": config, "program_words": program_words, "mac_array": mac_array}


def kernels(config: HardwareConfig) -> list[tuple[str, Program, int]]:
    """``(name, program, entry)`` of every kernel in ``$EDGENPU_NPU_KERNELS`` whose image
    fits ``config``'s DRAM, in name order (entry: the ``main`` symbol, else 0)."""
    directory = os.environ.get(KERNELS_ENV)
    if not directory:
        return []
    out = []
    for path in sorted(Path(directory).glob("*.s")):
        program = assemble_file(path)
        if program.dram_extent > config.dram.bytes:
            continue
        try:
            entry = functional.resolve_entry(program, "main")
        except ProgramError:
            entry = 0
        out.append((path.stem, program, entry))
    return out


def executes_matmul(program: Program, config: HardwareConfig, entry: int = 0) -> bool:
    """Whether running ``program`` from ``entry`` dispatches a ``matmul``."""
    plan = functional.dispatch(program, config, entry)
    return any(ins.opcode is Opcode.MATMUL for ins in plan.instructions)


def unit_done(ins: Instruction, state: functional.Machine, config: HardwareConfig) -> int:
    """The cycle, counted from the unit's command transfer, in which the unit executing
    ``ins`` on ``state`` signals ``done`` (its ``D``, by the unit's own rules, which the
    performance model defines: :func:`edgenpu.sim.perf.units.unit_cost`)."""
    if unit_of(ins) is None:
        raise ValueError(f"no unit executes {ins.opcode.label}")
    return unit_cost(ins, state, config).done


def timing(
    program: Program, config: HardwareConfig, entry: int, machine: functional.Machine
) -> int:
    """The whole program's cycles (the ``cycles`` output: from ``start`` to the first cycle
    ``halted``/``trapped`` is high), from reset token counts and ``machine``'s memories.

    This is the performance model's count (:func:`edgenpu.sim.perf.run`): the dispatcher's
    rules with each instruction's unit latency ``L_s`` set to that unit's ``done`` cycle
    ``D`` for the data it finds, which the top's glue keeps exact: it adds no register
    between a unit and the dispatcher.
    """
    reset = dataclasses.replace(machine, tokens=dict.fromkeys(functional.QUEUES, 0))
    return perf.run(program, config, entry, reset, ranges=()).cycles


def without_matmul(program: Program) -> Program:
    """``program`` with every ``matmul`` replaced by a compute-stream ``nop`` with the same
    token flags: the same synchronisation, no access, so a race-free program stays race-free
    (for a build without the MAC array). Words that do not decode are kept."""
    words = []
    for word in program.words:
        try:
            ins = decode(word)
        except IllegalInstruction:
            words.append(word)
            continue
        if ins.opcode is Opcode.MATMUL:
            flags = {f: ins[f] for f in ("pop_prev", "pop_next", "push_prev", "push_next")}
            nop = Instruction.make(Opcode.NOP, stream=Stream.COMPUTE, **flags)
            word = int.from_bytes(encode(nop), "little")
        words.append(word)
    return dataclasses.replace(program, words=tuple(words))
