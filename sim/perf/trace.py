"""A Chrome / Perfetto trace of a modeled run: what each unit did, cycle by cycle, and why it
waited.

The file is the Trace Event Format's JSON object form: ``traceEvents``, an array of complete
events (``"ph": "X"``, ``ts`` start and ``dur`` length) plus metadata events naming the tracks.
Time unit: **1 us of the trace is 1 cycle** (``ts`` and ``dur`` are microseconds in the format;
here they count cycles from the ``start`` transfer); ``displayTimeUnit`` is ``ns``, so the
viewer labels a cycle 1,000 ns. One track (``tid``) per unit holds its instructions, from the
cycle it takes one to its ``done`` transfer; one stall track per stream (and the dispatcher)
holds its stalls, named by cause (``idle`` is left out). Open it in ui.perfetto.dev or
chrome://tracing.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgenpu.isa import Stream
from edgenpu.sim.perf.attribution import StallCause
from edgenpu.sim.perf.report import PerfReport
from edgenpu.sim.perf.units import Unit

__all__ = ["PID", "TRACKS", "trace_events", "write_trace"]

#: The one process of the trace: the NPU.
PID = 1
#: Track ids: one per unit, then one stall track per stream and the dispatcher.
TRACKS = {
    Unit.DISPATCHER: 1,
    Unit.LOAD: 2,
    Unit.MAC_ARRAY: 3,
    Unit.VECTOR_UNIT: 4,
    Unit.STORE: 5,
}
_STALL_TRACKS = {None: 11, Stream.LOAD: 12, Stream.COMPUTE: 13, Stream.STORE: 14}
_STALL_NAMES = {
    None: "dispatcher stalls",
    Stream.LOAD: "load stream stalls",
    Stream.COMPUTE: "compute stream stalls",
    Stream.STORE: "store stream stalls",
}


def _meta(name: str, tid: int, value: str | int, key: str = "name") -> dict:
    return {"name": name, "ph": "M", "pid": PID, "tid": tid, "args": {key: value}}


def trace_events(report: PerfReport) -> dict:
    """The trace of ``report`` as a JSON-ready object (see the module's description)."""
    events = [_meta("process_name", 0, f"edgenpu NPU ({report.config}), 1 us = 1 cycle")]
    for order, (unit, tid) in enumerate(TRACKS.items()):
        events.append(_meta("thread_name", tid, unit.value))
        events.append(_meta("thread_sort_index", tid, order, "sort_index"))
    for order, (stream, tid) in enumerate(_STALL_TRACKS.items()):
        events.append(_meta("thread_name", tid, _STALL_NAMES[stream]))
        events.append(_meta("thread_sort_index", tid, 10 + order, "sort_index"))
    sched = report.schedule
    for k, rec in enumerate(report.instructions):
        events.append(
            {
                "name": f"dispatch {rec.opcode}",
                "cat": "dispatch",
                "ph": "X",
                "pid": PID,
                "tid": TRACKS[Unit.DISPATCHER],
                "ts": sched.decoded[k],
                "dur": sched.dispatched[k] - sched.decoded[k] + 1,
                "args": {"index": rec.index},
            }
        )
        if rec.unit is None:
            continue
        events.append(
            {
                "name": rec.opcode,
                "cat": rec.unit,
                "ph": "X",
                "pid": PID,
                "tid": TRACKS[Unit(rec.unit)],
                "ts": rec.issued,
                "dur": rec.done - rec.issued + 1,
                "args": {"index": rec.index, "dispatched": rec.dispatched, "done": rec.done},
            }
        )
    for stream, parts in report.segments.items():
        for seg in parts:
            if seg.cause is None or seg.cause is StallCause.IDLE:
                continue
            args = {"index": report.instructions[seg.slot].index} if seg.slot >= 0 else {}
            events.append(
                {
                    "name": seg.cause.value,
                    "cat": "stall",
                    "ph": "X",
                    "pid": PID,
                    "tid": _STALL_TRACKS[stream],
                    "ts": seg.start,
                    "dur": seg.stop - seg.start,
                    "args": args,
                }
            )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {"config": report.config, "cycles": report.cycles, "time": "1 us = 1 cycle"},
    }


def write_trace(report: PerfReport, path: Path | str) -> None:
    """Write :func:`trace_events` of ``report`` to ``path`` (whole, or not at all)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(trace_events(report)))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
