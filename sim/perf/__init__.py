"""The performance model: cycles exactly as the RTL counts them, and where they go.

Execution-driven: :func:`run` executes a program with the functional simulator and times each
instruction by the rules of ``docs/microarchitecture.md`` on the data it meets. The rules are
defined once, here, in one module per unit (:mod:`.dispatch_rules`, :mod:`.dma_rules`,
:mod:`.decompressor_rules`, :mod:`.mac_rules`, :mod:`.vector_rules`); the cocotb benches check
the RTL against the same functions. :mod:`.streams` computes the dispatcher's and the streams'
cycles event by event (tested against the stepped :mod:`.dispatch_rules`).

The report (:class:`PerfReport`) has the cycles, each unit's busy and stall cycles by cause,
DRAM and SRAM traffic, MAC pairs active, gated and skipped, energy from the config's table,
a roofline, per-instruction records and per-range summaries; :func:`report_to_dict` is its
JSON form and :func:`format_report` a table. :func:`trace_events` draws it as a Chrome /
Perfetto trace. :func:`estimate` is the statistical mode: the same report from sparsity ratios
instead of data.
"""

from edgenpu.sim.perf.attribution import StallCause
from edgenpu.sim.perf.counts import Counts
from edgenpu.sim.perf.energy import Energy
from edgenpu.sim.perf.report import (
    InstructionRecord,
    PerfReport,
    RangeReport,
    format_report,
    report_to_dict,
)
from edgenpu.sim.perf.roofline import Roofline
from edgenpu.sim.perf.run import default_ranges, run
from edgenpu.sim.perf.statistical import estimate
from edgenpu.sim.perf.streams import Schedule, schedule
from edgenpu.sim.perf.trace import trace_events, write_trace
from edgenpu.sim.perf.units import Unit

__all__ = [
    "Counts",
    "Energy",
    "InstructionRecord",
    "PerfReport",
    "RangeReport",
    "Roofline",
    "Schedule",
    "StallCause",
    "Unit",
    "default_ranges",
    "estimate",
    "format_report",
    "report_to_dict",
    "run",
    "schedule",
    "trace_events",
    "write_trace",
]
