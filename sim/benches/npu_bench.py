"""cocotb bench of the whole processor, :class:`edgenpu.rtl.npu.Npu`, against the functional
simulator.

Run it through ``edgenpu.sim.hdl_build.run_cocotb(Npu.from_config, params,
"edgenpu.sim.benches.npu_bench")`` with ``params`` as :func:`npu_ref.params` makes them.
For every program: reset (token counts back to 0; memories keep their contents), load the
instruction words, bring the DRAM to the program's image (only the beats that differ from
what the DRAM holds are written), start at the entry, wait for ``halted`` or ``trapped``,
read the DRAM and all four on-chip memories back, and compare with
``edgenpu.sim.functional.run`` started from the same state (the program's DRAM image, the
on-chip memories as the previous program left them): halted or trap, cause and index, and
every byte of every memory; a difference names the memory, the first address and both
values. Programs: the kernels of ``npu_ref.kernels`` and random programs of
``edgenpu.sim.random_programs`` (clean and with every injectable trap); without the MAC
array, only those that execute no ``matmul``. Each program's cycles (``cycles`` output) and
the simulation speed are printed to the log, and the cycles appended to ``npu_cycles.csv``
in the cocotb run directory. A memory difference is reported where it starts: the first
instruction whose effect differs (``edgenpu.sim.divergence``).

With ``EDGENPU_RTL_PROGRAM`` set (by ``edgenpu.sim.rtl_run``) the module has one more test,
``run_program``, which runs that one program (a binary) from ``EDGENPU_RTL_ENTRY`` on the
fresh DUT without comparing, and writes what the RTL did into ``EDGENPU_RTL_RESULT``: the
ending, cycles and wall time (``result.json``), every memory (``memories.npz``) and, with
``EDGENPU_RTL_RECORD=1``, the signals of ``rtl_run.TRACED_PORTS`` (and of
``TRACED_INSIDE`` where the build shows them) sampled every cycle
(``record.json``). ``rtl_run`` compares; a disagreement is its finding, not a test failure.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer

from edgenpu.config import config_from_dict
from edgenpu.isa import Opcode, Program, TrapCause
from edgenpu.rtl.npu import HOST_READ_BITS
from edgenpu.sim import functional, rtl_run
from edgenpu.sim.benches.npu_ref import (
    CYCLES_CSV,
    PERIOD_NS,
    executes_matmul,
    kernels,
    timing,
    without_matmul,
)
from edgenpu.sim.divergence import MEMORIES, find_divergence
from edgenpu.sim.hdl_build import bench_params
from edgenpu.sim.random_programs import injectable_causes, random_program

#: Clean random programs per run (and this many per injected cause, divided by 4).
RANDOM_PROGRAMS = int(os.environ.get("EDGENPU_NPU_PROGRAMS", "60"))
#: Instructions per random program (before the ``halt``).
RANDOM_LENGTH = 30
#: Cycles a program may take before the bench gives up.
TIMEOUT_CYCLES = 200_000
with open(CYCLES_CSV, "w") as _f:  # one file per cocotb run (the module is imported once)
    _f.write("program,end,measured,rules\n")


def _int(handle: Any) -> int:
    value = handle.value
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


@dataclass(frozen=True)
class RtlOutcome:
    """What the DUT did with one program: how it ended and every memory read back."""

    halted: bool
    trapped: bool
    cause: TrapCause | None
    index: int
    cycles: int
    timed_out: bool
    seconds: float
    memories: dict[str, np.ndarray]


class Recorder:
    """Samples signals at every falling clock edge (settled after the rising one) while it
    runs: ``signals``, and those of ``optional`` the build makes visible; each is a
    ``(name, path below the top)`` as in ``rtl_run.TRACED_PORTS``."""

    def __init__(
        self,
        dut: Any,
        signals: Sequence[tuple[str, str]],
        optional: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.dut = dut
        self.names, self.handles = [], []
        for name, path in signals:
            self.names.append(name)
            self.handles.append(functools.reduce(getattr, path.split("."), dut))
        for name, path in optional:
            try:
                handle = functools.reduce(getattr, path.split("."), dut)
            except AttributeError:  # not public in this build
                continue
            self.names.append(name)
            self.handles.append(handle)
        self.rows: list[list[int]] = []
        self._task = None

    def start(self) -> None:
        self._task = cocotb.start_soon(self._sample())

    def stop(self) -> None:
        self._task.cancel()

    async def _sample(self) -> None:
        while True:
            await FallingEdge(self.dut.clk)
            self.rows.append([_int(h) for h in self.handles])

    def as_dict(self) -> dict:
        widths = [len(h) for h in self.handles]
        signals = [list(p) for p in zip(self.names, widths, strict=True)]
        return {"signals": signals, "rows": self.rows}


class Bench:
    def __init__(self, dut: Any) -> None:
        self.dut = dut
        params = bench_params()
        self.config = config_from_dict(params["config"])
        self.mac_array = params["mac_array"]
        self.program_words = params["program_words"]
        self.index_bits = self.program_words.bit_length()
        self.addr_bits = (self.program_words - 1).bit_length()
        self.beat = self.config.dram.bandwidth_bytes_per_cycle
        self.dram_bytes = self.config.dram.bytes
        # What the DUT's memories hold (they start at zero; reset keeps them).
        self.state = functional.Machine.empty(self.config)
        self.cycles: list[tuple[str, int]] = []
        self.sim_cycles = 0
        self.sim_seconds = 0.0
        #: ``(program, measured, rules)`` of every program whose cycles the rules missed.
        self.timing_misses: list[tuple[str, int, int]] = []

    async def start(self, *, fresh: bool = False) -> None:
        """Start the clock and reset. Memories keep their contents from an earlier test of
        the same run, so they are read back, unless the simulator has just started
        (``fresh``): then they hold their zero initial contents."""
        cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
        dut = self.dut
        for name in ("program__valid", "start__valid", "dram_host__en"):
            getattr(dut, name).value = 0
        for space in ("wgt", "act", "acc", "lut"):
            getattr(dut, f"{space}__en").value = 0
        await self.reset()
        if fresh:
            return
        for name, values in (await self.read_back()).items():
            setattr(self.state, name, values[: len(getattr(self.state, name))].copy())

    async def reset(self) -> None:
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 1
        await FallingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    # -- host transfers (inputs written at a falling edge, taken at the next rising one) ----
    async def load_words(self, words: tuple[int, ...]) -> None:
        dut = self.dut
        for i, w in enumerate(words):
            await FallingEdge(dut.clk)
            dut.program__payload.value = i | (w << self.addr_bits)
            dut.program__valid.value = 1
        await FallingEdge(dut.clk)
        dut.program__valid.value = 0

    async def write_dram(self, image: np.ndarray) -> None:
        """Write the beats where ``image`` differs from what the DRAM holds."""
        dut = self.dut
        B = self.beat
        now = self.state.dram.reshape(-1, B)
        new = image.reshape(-1, B)
        beats = np.flatnonzero((now != new).any(axis=1))
        dut.dram_host__we.value = 1
        for b in beats:
            await FallingEdge(dut.clk)
            dut.dram_host__en.value = 1
            dut.dram_host__addr.value = int(b)
            dut.dram_host__wdata.value = int.from_bytes(new[b].tobytes(), "little")
        await FallingEdge(dut.clk)
        dut.dram_host__en.value = 0
        dut.dram_host__we.value = 0

    async def read_back(self) -> dict[str, np.ndarray]:
        """The DRAM and the four memories, read through the host ports all at once."""
        dut = self.dut
        B = self.beat
        jobs = {"dram": (self.dram_bytes // B, B)}
        for space in ("wgt", "act", "acc", "lut"):
            size = len(getattr(self.state, space))
            per = HOST_READ_BITS // 8
            jobs[space] = (-(-size // per), per)
        out = {name: bytearray() for name in jobs}
        longest = max(n for n, _ in jobs.values())
        dut.dram_host__we.value = 0
        for k in range(longest + 1):
            await FallingEdge(dut.clk)
            for name, (n, per) in jobs.items():
                prefix = "dram_host" if name == "dram" else name
                if 0 < k <= n:
                    data = _int(
                        getattr(dut, f"{prefix}__rdata" if name == "dram" else f"{name}__data")
                    )
                    out[name] += data.to_bytes(per, "little")
                en = getattr(dut, f"{prefix}__en")
                if k < n:
                    en.value = 1
                    # ACC ports address words; the others bytes; the DRAM beats.
                    step = 1 if name == "dram" else (per // 4 if name == "acc" else per)
                    getattr(dut, f"{prefix}__addr").value = k * step
                elif k == n:
                    en.value = 0
        return {name: np.frombuffer(bytes(b), np.uint8) for name, b in out.items()}

    async def execute(
        self,
        program: Program,
        *,
        entry: int = 0,
        timeout: int = TIMEOUT_CYCLES,
        recorder: Recorder | None = None,
    ) -> RtlOutcome:
        """Run ``program`` on the DUT from its image and read every memory back."""
        dut = self.dut
        await self.reset()
        await self.load_words(program.words)
        await self.write_dram(functional.load_image(program, self.config).dram)
        await FallingEdge(dut.clk)
        dut.start__payload.value = entry | (len(program.words) << self.index_bits)
        dut.start__valid.value = 1
        if recorder is not None:
            recorder.start()
        await FallingEdge(dut.clk)
        dut.start__valid.value = 0
        t0 = time.perf_counter()
        timed_out = False
        if not (_int(dut.halted) or _int(dut.trapped)):
            ended = await First(
                RisingEdge(dut.halted),
                RisingEdge(dut.trapped),
                Timer(timeout * PERIOD_NS, unit="ns"),
            )
            timed_out = isinstance(ended, Timer)
        await FallingEdge(dut.clk)
        seconds = time.perf_counter() - t0
        if recorder is not None:
            recorder.stop()
        halted, trapped = bool(_int(dut.halted)), bool(_int(dut.trapped))
        return RtlOutcome(
            halted=halted,
            trapped=trapped,
            cause=TrapCause(_int(dut.cause)) if trapped else None,
            index=_int(dut.index),
            cycles=timeout if timed_out else _int(dut.cycles),
            timed_out=timed_out,
            seconds=seconds,
            memories=await self.read_back(),
        )

    async def run(self, program: Program, what: str, *, entry: int = 0) -> functional.RunResult:
        cfg = self.config
        assert len(program.words) <= self.program_words, f"{what}: too long"
        before = functional.load_image(program, cfg)
        for space in ("wgt", "act", "acc", "lut"):
            setattr(before, space, getattr(self.state, space).copy())
        start = copy.deepcopy(before)
        rule = timing(program, cfg, entry, before)
        want = functional.run(program, cfg, entry=entry, machine=before)

        got = await self.execute(program, entry=entry)
        assert not got.timed_out, f"{what}: no halt or trap in {TIMEOUT_CYCLES}"
        halted, trapped, cycles = int(got.halted), int(got.trapped), got.cycles
        self.sim_cycles += cycles
        self.sim_seconds += got.seconds
        self.cycles.append((what, cycles))
        self.dut._log.info(
            "%s: %d cycles (%s; rules %d)", what, cycles, "halt" if halted else "trap", rule
        )
        if cycles != rule:
            self.timing_misses.append((what, cycles, rule))
        with open(CYCLES_CSV, "a") as f:  # in the cocotb run directory, row by row
            f.write(f"{what},{'halt' if halted else 'trap'},{cycles},{rule}\n")

        assert (halted, trapped) == (int(want.halted), int(not want.halted)), (
            f"{what}: halted {halted} trapped {trapped}, expected {want.trap or 'halt'}"
        )
        if trapped:
            assert (got.cause, got.index) == (want.trap.cause, want.trap.index), (
                f"{what}: trap {got.cause.label} at {got.index}, expected {want.trap}"
            )
        if not all(
            np.array_equal(
                got.memories[n][: len(getattr(want.machine, n))], getattr(want.machine, n)
            )
            for n in MEMORIES
        ):
            # Locating the difference reruns the program instruction by instruction: only
            # worth it when there is one.
            divergence = find_divergence(program, cfg, start, got.memories, entry=entry)
            raise AssertionError(f"{what}: {divergence}")
        for name in MEMORIES:
            expect = getattr(want.machine, name)
            setattr(self.state, name, got.memories[name][: len(expect)].copy())
        return want

    def runnable(self, program: Program, entry: int = 0) -> bool:
        return self.mac_array or not executes_matmul(program, self.config, entry)

    def program_of(self, generated: Program) -> Program:
        """A random program as this build can run it: without the MAC array, its
        ``matmul``s become ``nop``s with the same tokens."""
        return generated if self.mac_array else without_matmul(generated)

    def report(self) -> None:
        rate = self.sim_cycles / self.sim_seconds if self.sim_seconds else 0.0
        self.dut._log.info(
            "simulated %d program cycles in %.2f s of wall time: %.0f cycles/s",
            self.sim_cycles,
            self.sim_seconds,
            rate,
        )
        assert not self.timing_misses, (
            f"{len(self.timing_misses)} programs missed the timing rules; first "
            f"(program, measured, rules): {self.timing_misses[:3]}"
        )


@cocotb.test()
async def kernels_agree(dut):
    """The hand-written tiny kernels, bit-exact and with their cycles logged."""
    bench = Bench(dut)
    await bench.start()
    ran = 0
    for name, program, entry in kernels(bench.config):
        if not bench.runnable(program, entry):
            dut._log.info("%s: skipped (executes matmul, no MAC array built)", name)
            continue
        await bench.run(program, name, entry=entry)
        ran += 1
    assert ran, "no kernel ran"
    bench.report()


@cocotb.test()
async def random_programs_agree(dut):
    """Random clean programs and programs with each injectable trap."""
    bench = Bench(dut)
    await bench.start()
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    causes = injectable_causes(bench.config)
    cases = [(None, RANDOM_PROGRAMS)] + [(c, max(1, RANDOM_PROGRAMS // 4)) for c in causes]
    counts = {}
    for cause, wanted in cases:
        ran = 0
        while ran < wanted:
            generated = random_program(rng, bench.config, length=RANDOM_LENGTH, trap=cause)
            program = bench.program_of(generated.program)
            assert bench.runnable(program)
            label = cause.label if cause else "clean"
            want = await bench.run(program, f"random {label} #{ran}")
            if cause is not None:
                assert want.trap is not None and want.trap.cause is cause
            ran += 1
        counts[cause.label if cause else "clean"] = ran
    dut._log.info("random programs agreed: %s", counts)
    bench.report()


@cocotb.test()
async def opcodes_covered(dut):
    """Every opcode the build can run appears in the random programs that ran (a cheap
    guard that filtering has not removed an instruction class)."""
    bench = Bench(dut)
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    seen = set()
    for _ in range(RANDOM_PROGRAMS):
        p = bench.program_of(random_program(rng, bench.config, length=RANDOM_LENGTH).program)
        if bench.runnable(p):
            seen |= {ins.opcode for ins in functional.dispatch(p, bench.config).instructions}
    want = {op for op in Opcode if op not in (Opcode.HALT, Opcode.NOP)}
    if not bench.mac_array:
        want.discard(Opcode.MATMUL)
    missing = sorted(op.label for op in want - seen)
    assert not missing, f"never executed: {missing}"


if os.environ.get(rtl_run.PROGRAM_ENV):

    @cocotb.test()
    async def run_program(dut):
        """The one program of ``edgenpu.sim.rtl_run``: run it, write what the RTL did."""
        bench = Bench(dut)
        await bench.start(fresh=True)
        program = Program.from_bytes(Path(os.environ[rtl_run.PROGRAM_ENV]).read_bytes())
        assert len(program.words) <= bench.program_words, "program longer than the build"
        recorder = None
        if os.environ.get(rtl_run.RECORD_ENV):
            recorder = Recorder(dut, rtl_run.TRACED_PORTS, rtl_run.TRACED_INSIDE)
        got = await bench.execute(
            program,
            entry=int(os.environ[rtl_run.ENTRY_ENV]),
            timeout=int(os.environ[rtl_run.TIMEOUT_ENV]),
            recorder=recorder,
        )
        out = Path(os.environ[rtl_run.RESULT_ENV])
        np.savez(out / rtl_run.MEMORIES_NPZ, **got.memories)
        if recorder is not None:
            (out / rtl_run.RECORD_JSON).write_text(json.dumps(recorder.as_dict()))
        result = {
            "halted": got.halted,
            "trapped": got.trapped,
            "cause": got.cause.label if got.cause is not None else None,
            "index": got.index,
            "cycles": got.cycles,
            "timed_out": got.timed_out,
            "seconds": got.seconds,
        }
        # Written last: its presence says the others are complete.
        (out / rtl_run.RESULT_JSON).write_text(json.dumps(result))
        dut._log.info("program: %d cycles in %.3f s", got.cycles, got.seconds)
