"""The execution-driven performance model: run a program beside the functional simulator and
time every instruction by the microarchitecture's rules.

The functional simulator (:mod:`edgenpu.sim.functional`) executes the program in order, which
the token rules make one legal schedule of the three streams, so each instruction meets the
data it meets on the hardware (rule N2); before executing it, its unit's cost is taken from
that data (:mod:`.units`). The dispatcher and the streams are then timed event by event
(:mod:`.streams`), and every cycle of every unit is attributed (:mod:`.attribution`), in
:mod:`.compose`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.isa import Opcode, Program
from edgenpu.sim import functional
from edgenpu.sim.perf.compose import compose, default_ranges
from edgenpu.sim.perf.report import PerfReport
from edgenpu.sim.perf.units import NOP_COST, UnitCost, unit_cost, unit_of

__all__ = ["costs", "default_ranges", "run"]


def costs(
    plan: functional.Dispatch,
    config: HardwareConfig,
    machine: functional.Machine,
    *,
    keep_dram: bool = False,
) -> tuple[UnitCost, ...]:
    """Each dispatched instruction's unit cost, executing the plan on ``machine`` (which is
    left as the program leaves it; with ``keep_dram``, its DRAM as it was: the bytes each
    ``store`` overwrites are saved and put back, which costs far less than copying a large
    DRAM)."""
    out = []
    stats = functional.ExecStats()
    saved: list[tuple[int, np.ndarray]] = []
    try:
        for ins in plan.instructions:
            out.append(NOP_COST if unit_of(ins) is None else unit_cost(ins, machine, config))
            if keep_dram and ins.opcode is Opcode.STORE and ins["rows"] and ins["len"]:
                at = ins["dram"]
                span = (ins["rows"] - 1) * ins["stride"] + ins["len"] * ins["space"].unit_bytes
                saved.append((at, machine.dram[at : at + span].copy()))
            functional.execute(ins, machine, stats)
    finally:
        for at, old in reversed(saved):
            machine.dram[at : at + old.size] = old
    return tuple(out)


def _private(machine: functional.Machine) -> functional.Machine:
    """A machine the run may modify without touching ``machine``'s on-chip memories or
    tokens; the DRAM is shared (:func:`costs` puts back what stores change)."""
    return functional.Machine(
        dram=machine.dram,
        wgt=machine.wgt.copy(),
        act=machine.act.copy(),
        acc=machine.acc.copy(),
        lut=machine.lut.copy(),
        tokens=dict(machine.tokens),
    )


def run(
    program: Program,
    config: HardwareConfig,
    entry: int | str = 0,
    machine: functional.Machine | None = None,
    *,
    ranges: Sequence[tuple[str, int, int]] | None = None,
) -> PerfReport:
    """Model ``program`` from ``entry`` on ``config``.

    Parameters
    ----------
    program : Program
    config : HardwareConfig
    entry : int or str
        Instruction index or entry symbol.
    machine : Machine, optional
        Starting state: memories and token counts (the program's DRAM image on an empty
        machine if omitted). It is not modified.
    ranges : sequence of (name, start, stop), optional
        Program index ranges to break the report down by; :func:`default_ranges` if omitted.

    Raises
    ------
    ProgramError
        The program's image does not fit the config's DRAM, or ``entry`` names no entry.
    """
    start = functional.resolve_entry(program, entry)
    state = functional.load_image(program, config) if machine is None else machine
    tokens = dict(state.tokens)
    plan = functional.dispatch(program, config, start, tokens)
    if machine is not None:
        state = _private(machine)
    unit_costs = costs(plan, config, state, keep_dram=machine is not None)
    return compose(program, config, start, plan, unit_costs, tokens, ranges)
