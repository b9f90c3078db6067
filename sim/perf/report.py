"""The performance report: what :func:`edgenpu.sim.perf.run` returns, as JSON and as a table."""

from __future__ import annotations

from dataclasses import dataclass

from edgenpu.sim.perf.attribution import StallCause, UnitTime
from edgenpu.sim.perf.counts import Counts
from edgenpu.sim.perf.energy import Energy
from edgenpu.sim.perf.roofline import Roofline
from edgenpu.sim.perf.streams import Schedule

__all__ = [
    "InstructionRecord",
    "PerfReport",
    "RangeReport",
    "format_report",
    "report_to_dict",
]


@dataclass(frozen=True)
class InstructionRecord:
    """One dispatched instruction: program index, what and where it ran, and when.

    ``dispatched`` is the cycle it entered its queue, ``issued`` the cycle its unit took it
    (a ``nop``: completed), ``done`` its ``done`` transfer. ``waited`` are the cycles between
    its stream's previous instruction and ``issued``, by cause (``dispatch``, ``token``), and
    ``held`` the cycles its ``done`` waited for token-queue room.
    """

    index: int
    opcode: str
    unit: str | None
    dispatched: int
    issued: int
    done: int
    waited: dict[str, int]
    held: int
    counts: Counts
    energy_pj: float


@dataclass(frozen=True)
class RangeReport:
    """A range of program indices ``[start, stop)``: its instructions' span in time (first
    issue to last ``done``), busy cycles per unit, counts and dynamic energy."""

    name: str
    start: int
    stop: int
    instructions: int
    first_issue: int | None
    last_done: int | None
    busy: dict[str, int]
    counts: Counts
    energy_pj: float

    @property
    def span(self) -> int:
        return 0 if self.first_issue is None else self.last_done - self.first_issue + 1


@dataclass(frozen=True)
class PerfReport:
    """The model's account of one run; every number is exact for the modeled processor.

    ``cycles`` is the NPU's ``cycles`` output (start to ``halted``/``trapped``); ``units``
    each unit's busy and stall cycles (busy plus stalls is ``cycles``); ``counts`` the run's
    events, ``energy`` their picojoules with the static part; ``segments`` every stream's
    timeline (key None: the dispatcher), which the trace draws.
    """

    config: str
    clock_mhz: float
    entry: int
    halted: bool
    trap: str | None
    cycles: int
    units: tuple[UnitTime, ...]
    counts: Counts
    energy: Energy
    roofline: Roofline
    instructions: tuple[InstructionRecord, ...]
    ranges: tuple[RangeReport, ...]
    schedule: Schedule
    segments: dict

    @property
    def microseconds(self) -> float:
        return self.cycles / self.clock_mhz


def _unit_dict(u: UnitTime, cycles: int) -> dict:
    return {
        "busy": u.busy,
        "stalls": {c.value: n for c, n in u.stalls.items()},
        "utilisation": u.busy / cycles if cycles else 0.0,
        "instructions": u.instructions,
    }


def report_to_dict(report: PerfReport, *, instructions: bool = True) -> dict:
    """The report as JSON-ready data; ``cycles`` at the top level, as ``edgenpu rtl run
    --json`` names it. ``instructions`` False leaves out the per-instruction records."""
    c = report.counts
    out = {
        "cycles": report.cycles,
        "config": report.config,
        "entry": report.entry,
        "halted": report.halted,
        "trap": report.trap,
        "microseconds": report.microseconds,
        "units": {u.unit.value: _unit_dict(u, report.cycles) for u in report.units},
        "dram": {
            "read": {
                "weights": c.dram_read_weights,
                "metadata": c.dram_read_metadata,
                "activations": c.dram_read_activations,
                "total": c.dram_read,
                "beats": c.dram_read_beats,
            },
            "written": {
                "weights": c.dram_write_weights,
                "activations": c.dram_write_activations,
                "total": c.dram_written,
                "beats": c.dram_write_beats,
            },
        },
        "sram": {
            "read": {m: getattr(c, f"sram_read_{m}") for m in ("wgt", "act", "acc", "lut")},
            "written": {m: getattr(c, f"sram_write_{m}") for m in ("wgt", "act", "acc", "lut")},
        },
        "mac": {
            "pairs": c.mac_pairs,
            "active_int8": c.mac_active_int8,
            "active_int4": c.mac_active_int4,
            "gated": c.mac_gated,
            "skipped": c.mac_skipped,
            "window_cycles": c.mac_windows,
            "dense_window_cycles": c.mac_dense_windows,
            "cycles_saved_by_skipping": c.mac_dense_windows - c.mac_windows,
        },
        "vector_elements": c.vector_elements,
        "decompressed_bytes": c.decompressed_bytes,
        "energy_pj": {**report.energy.as_dict(), "total": report.energy.total},
        "roofline": report.roofline.as_dict(),
        "ranges": [
            {
                "name": r.name,
                "start": r.start,
                "stop": r.stop,
                "instructions": r.instructions,
                "first_issue": r.first_issue,
                "last_done": r.last_done,
                "span": r.span,
                "busy": r.busy,
                "dram_read": r.counts.dram_read,
                "dram_written": r.counts.dram_written,
                "mac_active": r.counts.mac_active_int8 + r.counts.mac_active_int4,
                "energy_pj": r.energy_pj,
            }
            for r in report.ranges
        ],
    }
    if instructions:
        out["instructions"] = [
            {
                "index": i.index,
                "opcode": i.opcode,
                "unit": i.unit,
                "dispatched": i.dispatched,
                "issued": i.issued,
                "done": i.done,
                "waited": i.waited,
                "held": i.held,
                "energy_pj": i.energy_pj,
            }
            for i in report.instructions
        ]
    return out


def _row(cells: list[str], widths: list[int]) -> str:
    first, *rest = cells
    return "  ".join(
        [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
    )


def format_report(report: PerfReport) -> str:
    """A readable summary: cycles, per-unit time, traffic, MACs, energy, roofline, ranges."""
    c, cycles = report.counts, report.cycles
    ending = "halt" if report.halted else report.trap
    lines = [
        f"{cycles:,} cycles ({report.microseconds:,.2f} us at {report.clock_mhz:g} MHz) on "
        f"{report.config}, {len(report.instructions)} instructions dispatched, {ending}",
        "",
    ]
    causes = [s for s in StallCause if any(u.stalls.get(s) for u in report.units)]
    widths = [12, 10, 7] + [max(9, len(s.value)) for s in causes]
    lines.append(_row(["unit", "busy", "util"] + [s.value for s in causes], widths))
    for u in report.units:
        util = f"{100 * u.busy / cycles:.1f}%" if cycles else "-"
        cells = [u.unit.value, f"{u.busy:,}", util] + [f"{u.stalls.get(s, 0):,}" for s in causes]
        lines.append(_row(cells, widths))
    lines += [
        "",
        f"DRAM read  {c.dram_read:>12,} B  (weights {c.dram_read_weights:,}, metadata "
        f"{c.dram_read_metadata:,}, activations {c.dram_read_activations:,}; "
        f"{c.dram_read_beats:,} beats)",
        f"DRAM write {c.dram_written:>12,} B  (weights {c.dram_write_weights:,}, activations "
        f"{c.dram_write_activations:,}; {c.dram_write_beats:,} beats)",
        f"SRAM read  {c.sram_read:>12,} B  (wgt {c.sram_read_wgt:,}, act {c.sram_read_act:,}, "
        f"acc {c.sram_read_acc:,}, lut {c.sram_read_lut:,})",
        f"SRAM write {c.sram_written:>12,} B  (wgt {c.sram_write_wgt:,}, act "
        f"{c.sram_write_act:,}, acc {c.sram_write_acc:,}, lut {c.sram_write_lut:,})",
        f"MAC pairs  {c.mac_pairs:>12,}    (active int8 {c.mac_active_int8:,}, int4 "
        f"{c.mac_active_int4:,}; zero operand: gated {c.mac_gated:,}, skipped "
        f"{c.mac_skipped:,}; skipping saved {c.mac_dense_windows - c.mac_windows:,} cycles)",
        f"vector     {c.vector_elements:>12,} elements",
        "",
    ]
    e = report.energy
    parts = ", ".join(f"{k} {v:,.0f}" for k, v in e.as_dict().items() if v)
    lines.append(f"energy     {e.total:>12,.0f} pJ ({parts})")
    r = report.roofline
    ratio = f"{r.ratio:.2f}x the bound" if r.ratio is not None else "no bound"
    lines += [
        f"roofline   compute {r.compute_cycles:,.1f} cycles, memory {r.memory_cycles:,.1f} "
        f"cycles: {r.binding} bound; modeled {r.modeled_cycles:,} = {ratio}",
    ]
    if report.ranges:
        lines += ["", _row(["range", "instr", "span", "DRAM B", "energy pJ"], [20, 7, 10, 12, 12])]
        for rg in report.ranges:
            cells = [
                f"{rg.name} [{rg.start}, {rg.stop})",
                str(rg.instructions),
                f"{rg.span:,}",
                f"{rg.counts.dram_read + rg.counts.dram_written:,}",
                f"{rg.energy_pj:,.0f}",
            ]
            lines.append(_row(cells, [20, 7, 10, 12, 12]))
    return "\n".join(lines)
