"""RTL simulation speed of the whole processor: Verilator build time, and simulated cycles per
second on Verilator and Icarus running real kernels.

Run ``python benchmarks/rtl_sim_speed.py`` (``--help`` for options). For the default
configuration, then the tiny one for comparison (both with a 32 KiB simulation DRAM, the
smallest on which every example runs to its ``halt``), it converts the processor to Verilog
and builds it for each simulator into a fresh temporary build directory, so that the times
are what a clean checkout pays (``--warm`` uses the usual build cache instead), then runs the
npu bench (``edgenpu.sim.benches.npu_bench``) on it: its ``kernels_agree`` test on
``examples/*.s`` and its ``random_programs_agree`` test, each checked bit-exactly and
cycle-exactly as in the test suite.

Printed per run: the program cycles (start to halt, summed from the bench's
``npu_cycles.csv``) and, where that file has a ``seconds`` column, program cycles per second
of wall time; the clock cycles the bench simulated in all (programs plus loading and reading
back every memory through the host ports, from cocotb's ``results.xml``), the wall time of the
cocotb test, and clock cycles per second of it. That wall time includes the bench's Python
side (the functional simulator's reference, and the host-port traffic, driven from Python a
cycle at a time), as a user sees it. One run on a shared machine: a measurement, not a
target. Progress goes to stderr, the table to stdout, and with ``--json FILE`` every row to
FILE as it is measured. A run whose bench fails is reported and not measured; the exit status
is then 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from edgenpu.config import load_config
from edgenpu.errors import ConfigError
from edgenpu.rtl.npu import Npu
from edgenpu.sim.benches.npu_ref import CYCLES_CSV, KERNELS_ENV, PERIOD_NS, bench_config, params
from edgenpu.sim.hdl_build import build, run_cocotb

BENCH = "edgenpu.sim.benches.npu_bench"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIGS = ("default", "tiny")
#: The simulation DRAM (as in ``tests/rtl/test_examples_rtl.py``): every example halts in it.
DRAM_BYTES = 1 << 15


@dataclass(frozen=True)
class BuildTime:
    """Seconds to convert and to build one configuration for one simulator."""

    config: str
    simulator: str
    convert_seconds: float
    build_seconds: float


@dataclass(frozen=True)
class Speed:
    """One cocotb test of the npu bench on one build."""

    config: str
    simulator: str
    workload: str
    programs: int
    program_cycles: int
    #: Wall seconds from start to halt, summed; ``None`` if the bench does not record them.
    program_seconds: float | None
    clock_cycles: int
    seconds: float

    @property
    def cycles_per_second(self) -> float:
        return self.clock_cycles / self.seconds if self.seconds else 0.0

    @property
    def program_cycles_per_second(self) -> float | None:
        if not self.program_seconds:
            return None
        return self.program_cycles / self.program_seconds


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _build_dir(cold: bool) -> Iterator[None]:
    """With ``cold``, ``EDGENPU_BUILD_DIR`` set to a fresh temporary directory (removed after)."""
    if not cold:
        yield
        return
    saved = os.environ.get("EDGENPU_BUILD_DIR")
    directory = tempfile.mkdtemp(prefix="edgenpu-rtl-speed-")
    os.environ["EDGENPU_BUILD_DIR"] = directory
    try:
        yield
    finally:
        if saved is None:
            del os.environ["EDGENPU_BUILD_DIR"]
        else:
            os.environ["EDGENPU_BUILD_DIR"] = saved
        shutil.rmtree(directory, ignore_errors=True)


def _measure(config_name: str, simulator: str, workload: str, programs: int) -> Speed:
    """Run one bench test (``kernels_agree`` on the examples, or ``random_programs_agree``)."""
    testcase = {"examples": "kernels_agree", "random": "random_programs_agree"}[workload]
    config = bench_config(load_config(config_name), DRAM_BYTES)
    run = run_cocotb(
        Npu.from_config,
        params(config),
        BENCH,
        simulator,
        testcase=testcase,
        extra_env={KERNELS_ENV: str(EXAMPLES), "EDGENPU_NPU_PROGRAMS": str(programs)},
    )
    with open(run.results.parent / CYCLES_CSV) as f:
        rows = list(csv.DictReader(f))
    case = next(ElementTree.parse(run.results).getroot().iter("testcase"))
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    return Speed(
        config=config_name,
        simulator=simulator,
        workload=workload,
        programs=len(rows),
        program_cycles=sum(int(r["measured"]) for r in rows),
        program_seconds=sum(float(r["seconds"]) for r in rows) if "seconds" in rows[0] else None,
        clock_cycles=round(float(properties["sim_time_duration"]) / PERIOD_NS),
        seconds=float(case.get("time")),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-icarus", action="store_true", help="measure Verilator only")
    parser.add_argument(
        "--warm", action="store_true", help="use the build cache instead of a cold build"
    )
    parser.add_argument(
        "--programs",
        type=int,
        default=4,
        help="clean random programs per run (and one per trap cause at 4 or fewer; default 4)",
    )
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help="bundled configs, comma-separated"
    )
    parser.add_argument("--json", type=Path, help="also write every row to this JSON file")
    args = parser.parse_args(argv)
    simulators = ["verilator"] + ([] if args.no_icarus else ["icarus"])
    if "icarus" in simulators and shutil.which("iverilog") is None:
        parser.error("iverilog not found on PATH (install it, or pass --no-icarus)")
    configs = [c for c in args.configs.split(",") if c]
    if not configs:
        parser.error("--configs names no configuration")
    for name in configs:
        try:
            load_config(name)  # an unknown name fails here, before any build
        except ConfigError as error:
            parser.error(f"--configs: {error}")
    if args.programs < 1:
        parser.error(f"--programs must be at least 1, not {args.programs}")

    builds: list[BuildTime] = []
    failures: list[str] = []
    speeds: list[Speed] = []

    def save() -> None:
        if args.json:
            data = {
                "builds": [asdict(b) for b in builds],
                "failures": failures,
                "speeds": [
                    asdict(s)
                    | {
                        "cycles_per_second": s.cycles_per_second,
                        "program_cycles_per_second": s.program_cycles_per_second,
                    }
                    for s in speeds
                ],
            }
            args.json.write_text(json.dumps(data, indent=2) + "\n")

    with _build_dir(cold=not args.warm):
        for name in configs:
            config = bench_config(load_config(name), DRAM_BYTES)
            for simulator in simulators:
                _progress(f"{name}: building for {simulator}...")
                start = time.perf_counter()
                built = build(Npu.from_config, params(config), simulator, waves=False)
                builds.append(
                    BuildTime(name, simulator, built.convert_seconds, built.build_seconds)
                )
                _progress(
                    f"{name}: {simulator} ready in {time.perf_counter() - start:.0f} s "
                    f"(convert {built.convert_seconds:.0f} s, build {built.build_seconds:.0f} s)"
                )
                save()
                for workload in ("examples", "random"):
                    _progress(f"{name}: {workload} on {simulator}...")
                    try:
                        speed = _measure(name, simulator, workload, args.programs)
                    except AssertionError as error:  # a disagreement: report it, measure on
                        first = str(error).splitlines()[0]
                        failures.append(f"{name} {workload} on {simulator}: {first}")
                        _progress(f"{name}: {workload} on {simulator} FAILED: {first}")
                        continue
                    speeds.append(speed)
                    rate = f"{speed.cycles_per_second:,.0f} cycles/s"
                    _progress(f"{name}: {workload} on {simulator}: {rate}")
                    save()

    cold = "warm cache" if args.warm else "cold"
    print(f"Builds ({cold}; convert includes the Verilog rewrite):")
    print(f"  {'config':<8} {'simulator':<10} {'convert s':>10} {'build s':>8}")
    for b in builds:
        print(
            f"  {b.config:<8} {b.simulator:<10} {b.convert_seconds:>10.1f} {b.build_seconds:>8.1f}"
        )
    print("Simulation (clock cycles include loading and reading back memories):")
    print(
        f"  {'config':<8} {'simulator':<10} {'workload':<9} {'programs':>8} "
        f"{'prog cycles':>11} {'prog cyc/s':>10} {'clk cycles':>10} {'wall s':>7} {'clk cyc/s':>9}"
    )
    for s in speeds:
        rate = s.program_cycles_per_second
        print(
            f"  {s.config:<8} {s.simulator:<10} {s.workload:<9} {s.programs:>8} "
            f"{s.program_cycles:>11} {'-' if rate is None else f'{rate:,.0f}':>10} "
            f"{s.clock_cycles:>10} {s.seconds:>7.1f} {s.cycles_per_second:>9,.0f}"
        )
    for failure in failures:
        print(f"FAILED (not measured): {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
