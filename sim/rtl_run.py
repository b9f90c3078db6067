"""One program on the RTL of the whole processor, compared with the functional simulator.

What ``edgenpu rtl run`` and ``edgenpu rtl verilog`` do, callable from Python. A run builds
(cached, :mod:`edgenpu.sim.hdl_build`) the :class:`~edgenpu.rtl.npu.Npu` of a config with a
simulation DRAM sized for the program, runs the program once through the cocotb test
``run_program`` of :mod:`edgenpu.sim.benches.npu_bench` (which writes what the RTL did into a
result directory), and compares halt/trap, cause, index and every memory with
:func:`edgenpu.sim.functional.run` on the same DRAM size; a difference is located with
:func:`edgenpu.sim.divergence.find_divergence`. On request the run also records the dispatcher's
issue and done handshakes every cycle, so that a trace of a few cycles around the culprit
instruction's issue can be written (:mod:`edgenpu.sim.vcd`) on any simulator.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.errors import EdgenpuError
from edgenpu.isa import (
    INSTRUCTION_BITS,
    IllegalInstruction,
    Program,
    decode,
)
from edgenpu.isa.access import Memory, accesses
from edgenpu.sim import functional
from edgenpu.sim.benches.npu_ref import BENCH_DRAM_BYTES, PERIOD_NS
from edgenpu.sim.divergence import MEMORIES, Divergence, find_divergence

__all__ = [
    "RtlRun",
    "RtlRunError",
    "TrapAt",
    "rules_issue_cycle",
    "run_on_rtl",
    "simulation_dram_bytes",
    "simulation_program_words",
    "write_verilog",
]

#: The cocotb module and test that run one program.
BENCH = "edgenpu.sim.benches.npu_bench"
TESTCASE = "run_program"
#: Environment of ``run_program``: the program binary, its entry index, the directory to
#: write results into, the cycles to wait for a halt, and whether to record handshakes.
PROGRAM_ENV = "EDGENPU_RTL_PROGRAM"
ENTRY_ENV = "EDGENPU_RTL_ENTRY"
RESULT_ENV = "EDGENPU_RTL_RESULT"
TIMEOUT_ENV = "EDGENPU_RTL_TIMEOUT"
RECORD_ENV = "EDGENPU_RTL_RECORD"
#: Files ``run_program`` writes into the result directory.
RESULT_JSON = "result.json"
MEMORIES_NPZ = "memories.npz"
RECORD_JSON = "record.json"
#: Instruction-memory words built at least: the regression bench's (``npu_ref.params``), so
#: a small program shares its build.
MIN_PROGRAM_WORDS = 128
#: Smallest simulation DRAM built: the regression bench's, so a program that fits shares its
#: build (reading it back costs 16 KiB / B cycles).
MIN_DRAM_BYTES = BENCH_DRAM_BYTES
#: Cycles waited for a halt or trap, at least (more for programs whose rules say so).
MIN_TIMEOUT_CYCLES = 200_000
#: What a recording samples every cycle, as (trace name, path below the top): the top's
#: ports, which every build shows ...
TRACED_PORTS = (
    ("start_valid", "start__valid"),
    ("start_ready", "start__ready"),
    ("busy", "busy"),
    ("halted", "halted"),
    ("trapped", "trapped"),
    ("cause", "cause"),
    ("index", "index"),
    ("cycles", "cycles"),
    ("tokens", "tokens"),
)
#: ... and, where the build makes them visible (Icarus does; Verilator builds make the ports
#: public only), the dispatcher's per-stream issue stages, which hand each instruction
#: (``word`` and ``index``) to its unit and take its ``done``, and the DRAM's channels.
TRACED_INSIDE = (
    *(
        (f"{s}_{name}", f"dispatcher.{s}_issue.{port}")
        for s in ("load", "compute", "store")
        for name, port in (
            ("valid", "out__valid"),
            ("ready", "out__ready"),
            ("payload", "out__payload"),
            ("done_valid", "done__valid"),
            ("done_ready", "done__ready"),
        )
    ),
    ("dram_rd_req_valid", "dram.rd_req__valid"),
    ("dram_rd_resp_valid", "dram.rd_resp__valid"),
    ("dram_wr_valid", "dram.wr__valid"),
)


class RtlRunError(EdgenpuError):
    """A run that cannot be set up: a bad size, an unavailable trace format."""


@dataclass(frozen=True)
class TrapAt:
    """A trap's cause (its label) and the trapping instruction's index."""

    cause: str
    index: int

    def __str__(self) -> str:
        return f"{self.cause} at instruction {self.index}"


@dataclass(frozen=True)
class RtlRun:
    """The outcome of :func:`run_on_rtl`.

    Attributes
    ----------
    cycles : int
        The RTL's ``cycles`` output (start to halt/trap); the timeout if it never ended.
    rules_cycles : int
        What the timing rules (``npu_ref.timing``) predict.
    halted, trap, timed_out
        How the RTL ended (``trap`` is ``None`` unless it trapped).
    expected_halted, expected_trap
        How the functional simulator ended.
    divergence : Divergence or None
        The first memory difference, located; ``None`` if every memory agrees.
    seconds : float
        Wall time of the whole run (build or cache look-up, simulation, comparison).
    run_seconds : float
        Wall time the simulator took for the program itself (start to halt/trap).
    waves, window : Path or None
        The full trace and the window trace written, if any.
    notes : tuple of str
        Why a requested trace was not written.
    dram : numpy.ndarray or None
        The RTL's DRAM when the program ended (the simulation DRAM's ``dram_bytes``), for
        reading a kernel's outputs as a host would.
    """

    program: str
    config: str
    simulator: str
    entry: int
    program_words: int
    dram_bytes: int
    cycles: int
    rules_cycles: int
    halted: bool
    trap: TrapAt | None
    timed_out: bool
    expected_halted: bool
    expected_trap: TrapAt | None
    divergence: Divergence | None
    seconds: float
    run_seconds: float
    build_seconds: float
    waves: Path | None = None
    window: Path | None = None
    notes: tuple[str, ...] = field(default=())
    dram: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def status_agreed(self) -> bool:
        return (self.halted, self.trap) == (self.expected_halted, self.expected_trap)

    @property
    def agreed(self) -> bool:
        return self.status_agreed and self.divergence is None

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.run_seconds if self.run_seconds else 0.0

    def ending(self) -> str:
        if self.timed_out:
            return f"no halt or trap in {self.cycles} cycles"
        return "halted" if self.halted else f"trap {self.trap}"

    def expected_ending(self) -> str:
        return "halted" if self.expected_halted else f"trap {self.expected_trap}"

    def as_dict(self) -> dict:
        trap = None if self.trap is None else {"cause": self.trap.cause, "index": self.trap.index}
        expected = self.expected_trap
        return {
            "program": self.program,
            "config": self.config,
            "simulator": self.simulator,
            "entry": self.entry,
            "program_words": self.program_words,
            "dram_bytes": self.dram_bytes,
            "cycles": self.cycles,
            "rules_cycles": self.rules_cycles,
            "halted": self.halted,
            "trap": trap,
            "timed_out": self.timed_out,
            "expected": {
                "halted": self.expected_halted,
                "trap": None
                if expected is None
                else {"cause": expected.cause, "index": expected.index},
            },
            "agreed": self.agreed,
            "divergence": None if self.divergence is None else self.divergence.as_dict(),
            "seconds": round(self.seconds, 3),
            "run_seconds": round(self.run_seconds, 3),
            "build_seconds": round(self.build_seconds, 3),
            "cycles_per_second": round(self.cycles_per_second, 1),
            "waves": None if self.waves is None else str(self.waves),
            "window": None if self.window is None else str(self.window),
            "notes": list(self.notes),
        }


def _power_of_two_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def simulation_dram_bytes(program: Program, config: HardwareConfig, entry: int = 0) -> int:
    """The simulation DRAM a run of ``program`` gets: the smallest power of two holding its
    image and every DRAM byte an instruction it dispatches may touch (the trapping one too,
    so that it traps for the same cause), and at least :data:`MIN_DRAM_BYTES` where the
    config's DRAM is that large. The program then behaves as on the config's full DRAM."""
    plan = functional.dispatch(program, config, entry)
    issued = list(plan.instructions)
    if plan.trap is not None and plan.trap.index < len(program.words):
        with contextlib.suppress(IllegalInstruction):
            issued.append(decode(program.words[plan.trap.index]))
    need = max(
        [program.dram_extent, 1]
        + [
            # A range past the config's DRAM traps there and traps here too.
            min(a.stop, config.dram.bytes)
            for ins in issued
            for a in accesses(ins)
            if a.memory is Memory.DRAM
        ]
    )
    size = max(_power_of_two_at_least(need), config.dram.bandwidth_bytes_per_cycle)
    if config.dram.bytes >= MIN_DRAM_BYTES:
        size = max(size, MIN_DRAM_BYTES)
    if size > config.dram.bytes:
        raise RtlRunError(
            f"the program needs {need:#x} bytes of DRAM; config {config.name}'s "
            f"{config.dram.bytes:#x} is not a power of two the simulation DRAM can round up to"
        )
    return size


def simulation_program_words(program: Program) -> int:
    """Instruction-memory words built for ``program``: at least :data:`MIN_PROGRAM_WORDS`,
    else the next power of two (so programs of similar length share a build)."""
    return max(MIN_PROGRAM_WORDS, _power_of_two_at_least(len(program.words)))


def _npu_params(config: HardwareConfig, program_words: int, dram_bytes: int) -> dict:
    from edgenpu.sim.benches.npu_ref import bench_config, params

    return params(bench_config(config, dram_bytes), program_words=program_words)


def _check_sizes(config: HardwareConfig, program_words: int, dram_bytes: int) -> None:
    if isinstance(program_words, bool) or not isinstance(program_words, int) or program_words < 1:
        raise RtlRunError(f"program_words must be a positive integer, not {program_words!r}")
    beat = config.dram.bandwidth_bytes_per_cycle
    if (
        isinstance(dram_bytes, bool)
        or not isinstance(dram_bytes, int)
        or dram_bytes < beat
        or dram_bytes & (dram_bytes - 1)
        or dram_bytes > config.dram.bytes
    ):
        raise RtlRunError(
            f"dram_bytes must be a power of two in {beat}..{config.dram.bytes} "
            f"(config {config.name}), not {dram_bytes!r}"
        )


def _write_copy(source: Path, target: Path) -> None:
    # Copy beside the target and rename, so an interrupted run never leaves half a file.
    tmp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


def write_verilog(
    config: HardwareConfig,
    output: Path,
    *,
    program_words: int = 256,
    dram_bytes: int | None = None,
) -> Path:
    """Write the Verilog of the whole :class:`~edgenpu.rtl.npu.Npu` of ``config`` to
    ``output`` (complete or not at all); returns the cached file it was copied from.

    Parameters
    ----------
    config : HardwareConfig
    output : Path
    program_words : int
        Words of the instruction memory.
    dram_bytes : int, optional
        The simulation DRAM's size, a power of two; default the config's DRAM.
    """
    from edgenpu.rtl.npu import Npu
    from edgenpu.sim.hdl_build import verilog_for

    dram_bytes = config.dram.bytes if dram_bytes is None else dram_bytes
    _check_sizes(config, program_words, dram_bytes)
    cached = verilog_for(Npu.from_config, _npu_params(config, program_words, dram_bytes))
    _write_copy(cached, Path(output))
    return cached


def _trace_format(simulator: str) -> str:
    """The format a waveform build of ``simulator`` writes (see ``hdl_build``)."""
    if simulator == "icarus":
        return "fst"
    from edgenpu.sim.hdl_build import _can_write_fst

    return "fst" if _can_write_fst() else "vcd"


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """File descriptors 1 and 2 into ``log`` for the duration: the simulator and the build
    tools write to them directly, and the run's own report (``--json``) must stay clean."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log, "ab") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _trap_of(result: functional.RunResult) -> TrapAt | None:
    return None if result.trap is None else TrapAt(result.trap.cause.label, result.trap.index)


def run_on_rtl(
    program: Program,
    config: HardwareConfig,
    *,
    entry: int | str = 0,
    simulator: str | None = None,
    waves: Path | None = None,
    window: int | None = None,
    window_path: Path | None = None,
    name: str = "",
    progress: Callable[[str], None] | None = None,
) -> RtlRun:
    """Run ``program`` once on the RTL of ``config`` and compare with the functional simulator.

    Parameters
    ----------
    program : Program
    config : HardwareConfig
        The hardware; the run uses its DRAM cut to :func:`simulation_dram_bytes`, and the
        functional simulator the same.
    entry : int or str
        Instruction index or entry symbol.
    simulator : str, optional
        ``verilator`` or ``icarus``; default ``$EDGENPU_SIM``, else Verilator.
    waves : Path, optional
        Write the simulator's full trace here (a waveform build; the suffix must be the
        format the simulator writes: ``.fst``, or ``.vcd`` from Verilator without lz4).
    window, window_path : int and Path, optional
        If the run disagrees, write a VCD of ``window`` cycles around the culprit
        instruction's issue to ``window_path`` (recorded by the bench, any simulator).
    name : str
        How to name the program in the result (its file).
    progress : callable, optional
        Told, in one line, what is about to take long.

    Raises
    ------
    ProgramError
        The program does not fit the config or names no such entry.
    RtlRunError
        A trace cannot be written as asked, or the simulation did not produce a result.
    """
    from edgenpu.rtl.npu import Npu
    from edgenpu.sim.benches.npu_ref import bench_config, timing
    from edgenpu.sim.hdl_build import build_root, default_simulator, run_cocotb

    began = time.perf_counter()
    try:
        simulator = simulator or default_simulator()
    except ValueError as e:
        raise RtlRunError(str(e)) from None
    functional.load_image(program, config)  # the program must fit the real DRAM
    start_index = functional.resolve_entry(program, entry)
    if start_index > len(program.words):
        raise RtlRunError(
            f"entry {start_index} is past the end of the program ({len(program.words)} "
            "instructions)"
        )
    if window is not None and (window < 1 or window_path is None):
        raise RtlRunError(f"window must be a positive number of cycles with a file, not {window!r}")
    if waves is not None:
        wanted = _trace_format(simulator)
        if Path(waves).suffix != f".{wanted}":
            raise RtlRunError(
                f"{waves}: {simulator} writes {wanted.upper()} traces here; name the file .{wanted}"
            )
    dram_bytes = simulation_dram_bytes(program, config, start_index)
    program_words = simulation_program_words(program)
    sim_config = bench_config(config, dram_bytes)
    start = functional.load_image(program, sim_config)
    rules = timing(program, sim_config, start_index, start)
    want = functional.run(program, sim_config, entry=start_index, machine=copy.deepcopy(start))

    with tempfile.TemporaryDirectory(prefix="edgenpu-rtl-") as tmp:
        out = Path(tmp)
        (out / "program.bin").write_bytes(program.to_bytes())
        env = {
            PROGRAM_ENV: str(out / "program.bin"),
            ENTRY_ENV: str(start_index),
            RESULT_ENV: str(out),
            TIMEOUT_ENV: str(max(MIN_TIMEOUT_CYCLES, 4 * rules + 1000)),
            RECORD_ENV: "1" if window is not None else "",
        }
        params = _npu_params(config, program_words, dram_bytes)
        logs = build_root() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        fd, log_name = tempfile.mkstemp(prefix="rtl-run-", suffix=".log", dir=logs)
        os.close(fd)
        log = Path(log_name)
        if progress is not None:
            slow = " (a first Verilator build of a config takes minutes)"
            progress(
                f"running on {simulator}{slow if simulator == 'verilator' else ''}; log: {log}"
            )
        try:
            with _output_to(log):
                done = run_cocotb(
                    Npu.from_config,
                    params,
                    BENCH,
                    simulator,
                    testcase=TESTCASE,
                    extra_env=env,
                    waves=waves is not None,
                )
        except (AssertionError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RtlRunError(f"the RTL run failed: {first} (log: {log})") from None
        log.unlink()
        if not (out / RESULT_JSON).is_file():
            raise RtlRunError(f"{done.results}: the RTL run wrote no result")
        result = json.loads((out / RESULT_JSON).read_text())
        with np.load(out / MEMORIES_NPZ) as npz:
            memories = {name: npz[name] for name in MEMORIES}
        record = json.loads((out / RECORD_JSON).read_text()) if window is not None else None

    divergence = find_divergence(program, sim_config, start, memories, entry=start_index)
    trap = TrapAt(result["cause"], result["index"]) if result["trapped"] else None
    notes = []
    waves_written = None
    if waves is not None:
        if done.waves is None:
            raise RtlRunError(f"{done.build.directory}: the simulator wrote no trace")
        _write_copy(done.waves, Path(waves))
        waves_written = Path(waves)
    window_written = None
    if window is not None:
        if divergence is None:
            notes.append("no divergence: no window trace written")
        elif divergence.stray:
            notes.append("a stray write has no culprit instruction: no window trace written")
        else:
            # The RTL's own handshake where it was recorded, else the rules' cycle (which
            # the regression holds the RTL to, cycle for cycle).
            issue = _recorded_issue(record, divergence.index)
            by_rules = issue is None
            if by_rules:
                issue = rules_issue_cycle(program, sim_config, start_index, start, divergence.index)
            window_written, note = _write_window(
                record, issue, by_rules, divergence, window, Path(window_path)
            )
            if note:
                notes.append(note)
    return RtlRun(
        program=name,
        config=config.name,
        simulator=simulator,
        entry=start_index,
        program_words=program_words,
        dram_bytes=dram_bytes,
        cycles=result["cycles"],
        rules_cycles=rules,
        halted=bool(result["halted"]),
        trap=trap,
        timed_out=bool(result["timed_out"]),
        expected_halted=want.halted,
        expected_trap=_trap_of(want),
        divergence=divergence,
        seconds=time.perf_counter() - began,
        run_seconds=result["seconds"],
        build_seconds=done.build.convert_seconds + done.build.build_seconds,
        waves=waves_written,
        window=window_written,
        notes=tuple(notes),
        dram=memories["dram"],
    )


def rules_issue_cycle(
    program: Program, config: HardwareConfig, entry: int, machine: functional.Machine, index: int
) -> int | None:
    """The cycle (from the ``start`` transfer) in which the timing rules hand instruction
    ``index`` to its unit, by the performance model; ``None`` if it is never issued (a
    ``nop``, or not dispatched)."""
    from edgenpu.sim import perf

    report = perf.run(program, config, entry, machine, ranges=())
    for record in report.instructions:
        if record.index == index and record.unit is not None:
            return record.issued
    return None


def _recorded_issue(record: dict, index: int) -> int | None:
    """The ``cycles`` value of the recorded cycle in which instruction ``index`` is handed to
    its unit, if the dispatcher's handshakes were recorded and it was."""
    col = {name: j for j, (name, _) in enumerate(record["signals"])}
    for row in record["rows"]:
        for s in ("load", "compute", "store"):
            if f"{s}_payload" not in col:
                return None
            handshake = row[col[f"{s}_valid"]] and row[col[f"{s}_ready"]]
            if handshake and row[col[f"{s}_payload"]] >> INSTRUCTION_BITS == index:
                return row[col["cycles"]]
    return None


def _write_window(
    record: dict, issue: int | None, by_rules: bool, divergence: Divergence, cycles: int, path: Path
) -> tuple[Path | None, str]:
    """The VCD of ``cycles`` recorded cycles around cycle ``issue`` (the culprit's), or why
    there is none."""
    from edgenpu.sim.vcd import Signal, write_vcd

    if issue is None:
        return None, f"instruction {divergence.index} was never issued: no window trace written"
    names = [name for name, _ in record["signals"]]
    widths = dict(record["signals"])
    rows = record["rows"]
    col = {name: j for j, name in enumerate(names)}
    # Rows are sampled once per cycle while the program runs; ``cycles`` numbers them.
    first = rows[0][col["cycles"]]
    at = issue - first
    lo = max(0, min(at - cycles // 2, len(rows) - cycles))
    hi = min(len(rows), lo + cycles)
    mask = (1 << INSTRUCTION_BITS) - 1
    # Each issue payload splits into the instruction word and its index.
    signals, getters = [], []
    for name in names:
        j = col[name]
        if name.endswith("_payload"):
            stream = name[: -len("_payload")]
            signals += [
                Signal(f"{stream}_index", widths[name] - INSTRUCTION_BITS),
                Signal(f"{stream}_word", INSTRUCTION_BITS),
            ]
            getters += [lambda r, j=j: r[j] >> INSTRUCTION_BITS, lambda r, j=j: r[j] & mask]
        else:
            signals.append(Signal(name, widths[name]))
            getters.append(lambda r, j=j: r[j])
    source = "by the timing rules" if by_rules else "recorded"
    write_vcd(
        path,
        signals,
        [[g(r) for g in getters] for r in rows[lo:hi]],
        first_cycle=first + lo,
        period_ns=PERIOD_NS,
        scope="npu",
        comment=f"cycles {first + lo}..{first + hi - 1} around the issue of instruction "
        f"{divergence.index} in cycle {issue} ({source}): {divergence.instruction}",
    )
    return path, ""
