"""The report of a run, composed from what each instruction cost its unit: the streams'
schedule (:mod:`.streams`), every unit's cycles by cause (:mod:`.attribution`), the
per-instruction records, the per-range summaries, the totals, energy and roofline.

Shared by the exact model (:func:`edgenpu.sim.perf.run`, costs from the data) and the
statistical one (:func:`edgenpu.sim.perf.estimate`, costs from sparsity ratios).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgenpu.config import HardwareConfig
from edgenpu.isa import Program, Stream, SymbolKind
from edgenpu.sim import functional
from edgenpu.sim.perf import streams
from edgenpu.sim.perf.attribution import StallCause, segments, unit_times
from edgenpu.sim.perf.counts import Counts
from edgenpu.sim.perf.energy import dynamic_energy, energy
from edgenpu.sim.perf.report import InstructionRecord, PerfReport, RangeReport
from edgenpu.sim.perf.roofline import roofline
from edgenpu.sim.perf.units import UnitCost, unit_of

__all__ = ["compose", "default_ranges"]


def default_ranges(program: Program, entry: int) -> list[tuple[str, int, int]]:
    """``(name, start, stop)``: one range from each entry symbol at or after ``entry`` to
    the next one (the kernels of a multi-kernel program), or the whole program if none."""
    marks = sorted(
        (s.addr, s.name)
        for s in program.symbols_of(SymbolKind.ENTRY)
        if entry <= s.addr < len(program.words)
    )
    if not marks or marks[0][0] != entry:
        marks.insert(0, (entry, "program"))
    stops = [m[0] for m in marks[1:]] + [len(program.words)]
    return [(name, start, stop) for (start, name), stop in zip(marks, stops, strict=True)]


def compose(
    program: Program,
    config: HardwareConfig,
    start: int,
    plan: functional.Dispatch,
    unit_costs: Sequence[UnitCost],
    tokens: Mapping[tuple[Stream, Stream], int],
    ranges: Sequence[tuple[str, int, int]] | None,
) -> PerfReport:
    """The report of ``plan`` (dispatched from ``start`` with ``tokens``) whose instructions
    cost their units ``unit_costs``; ``ranges`` as :func:`edgenpu.sim.perf.run` takes them."""
    sched = streams.schedule(plan.instructions, config, [c.done for c in unit_costs], tokens)
    parts = segments(plan.instructions, unit_costs, sched)
    table = config.energy
    records = []
    for k, (ins, cost) in enumerate(zip(plan.instructions, unit_costs, strict=True)):
        unit = unit_of(ins)
        arrived = max(sched.free[k], min(sched.taken[k], sched.queued[k]))
        waited = {
            StallCause.DISPATCH.value: arrived - sched.free[k],
            StallCause.TOKEN.value: sched.taken[k] - arrived,
        }
        own = sched.taken[k] + cost.done if unit is not None else sched.taken[k]
        records.append(
            InstructionRecord(
                index=start + k,
                opcode=ins.opcode.label,
                unit=unit.value if unit else None,
                dispatched=sched.dispatched[k],
                issued=sched.taken[k],
                done=sched.finished[k],
                waited={c: n for c, n in waited.items() if n},
                held=sched.finished[k] - own,
                counts=cost.counts,
                energy_pj=dynamic_energy(cost.counts, table).total,
            )
        )
    total = Counts.total(c.counts for c in unit_costs)
    return PerfReport(
        config=config.name,
        clock_mhz=config.clock_mhz,
        entry=start,
        halted=plan.halted,
        trap=str(plan.trap) if plan.trap else None,
        cycles=sched.cycles,
        units=unit_times(plan.instructions, parts),
        counts=total,
        energy=energy(total, sched.cycles, table),
        roofline=roofline(total, sched.cycles, config),
        instructions=tuple(records),
        ranges=tuple(
            _range(name, lo, hi, records)
            for name, lo, hi in (ranges if ranges is not None else default_ranges(program, start))
        ),
        schedule=sched,
        segments=parts,
    )


def _range(name: str, lo: int, hi: int, records: list[InstructionRecord]) -> RangeReport:
    inside = [r for r in records if lo <= r.index < hi]
    busy: dict[str, int] = {}
    for r in inside:
        if r.unit is not None:
            busy[r.unit] = busy.get(r.unit, 0) + r.done - r.issued + 1
    return RangeReport(
        name=name,
        start=lo,
        stop=hi,
        instructions=len(inside),
        first_issue=min((r.issued for r in inside), default=None),
        last_done=max((r.done for r in inside), default=None),
        busy=busy,
        counts=Counts.total(r.counts for r in inside),
        energy_pj=sum(r.energy_pj for r in inside),
    )
