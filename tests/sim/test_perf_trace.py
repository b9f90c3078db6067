"""The performance model's Chrome / Perfetto trace: valid Trace Event Format (JSON object
form, complete and metadata events with the keys and types the format requires), and the
overlap of weight loading and matmuls on a double-buffered kernel."""

from __future__ import annotations

import json

import numpy as np

from edgenpu import formats
from edgenpu.config import load_config
from edgenpu.formats import WeightFormat
from edgenpu.isa import Instruction, Opcode, Program, Segment, Space, encode
from edgenpu.precision import Precision
from edgenpu.sim import perf
from edgenpu.sim.benches.npu_ref import bench_config

CONFIG = bench_config(load_config("default"), 1 << 16)
ROWS, COLS, TILES = 16, 128, 4


def double_buffered() -> Program:
    """``TILES`` weight tiles through two WGT buffers: tile ``i + 2`` is loaded while tile
    ``i + 1`` waits and tile ``i`` is multiplied; the compute stream frees a buffer with a
    token after each matmul."""
    rng = np.random.default_rng(5)
    make = Instruction.make
    segments, code, at = [], [], 0
    x = rng.integers(-128, 128, COLS, dtype=np.int8).tobytes()
    segments.append(Segment(at, x))
    code.append(make(Opcode.LOAD, space=Space.ACT, sram=0, dram=at, rows=1, len=COLS))
    at += 256
    streams = []
    for _ in range(TILES):
        w = rng.integers(-128, 128, (ROWS, COLS))
        w[rng.random(w.shape) < 0.5] = 0
        stream = formats.encode(w, WeightFormat.BITMASK, Precision.INT8)
        segments.append(Segment(at, stream))
        streams.append(at)
        at += -(-len(stream) // 64) * 64

    def load(i: int, wait: bool) -> Instruction:
        return make(
            Opcode.LOAD_WGT,
            wgt=(i % 2) * ROWS * COLS,
            dram=streams[i],
            count=ROWS * COLS,
            format=WeightFormat.BITMASK,
            prec=Precision.INT8,
            push_next=1,
            pop_next=int(wait),
        )

    def matmul(i: int) -> Instruction:
        return make(
            Opcode.MATMUL,
            acc=i * ROWS,
            w=(i % 2) * ROWS * COLS,
            x=0,
            rows=ROWS,
            cols=COLS,
            n=1,
            prec=Precision.INT8,
            pop_prev=1,
            push_prev=1,
        )

    code += [load(0, False), load(1, False)]
    for i in range(TILES):
        code.append(matmul(i))
        if i + 2 < TILES:
            code.append(load(i + 2, True))
    code.append(make(Opcode.HALT))
    words = tuple(int.from_bytes(encode(i), "little") for i in code)
    return Program(words, tuple(segments))


def _check_event(event: dict) -> None:
    """The Trace Event Format's requirements for the two phases the trace uses."""
    assert isinstance(event.get("name"), str) and event["name"], event
    assert event.get("ph") in ("X", "M"), event
    assert isinstance(event.get("pid"), int) and isinstance(event.get("tid"), int), event
    assert isinstance(event.get("args", {}), dict), event
    if event["ph"] == "X":
        assert isinstance(event.get("ts"), (int, float)) and event["ts"] >= 0, event
        assert isinstance(event.get("dur"), (int, float)) and event["dur"] > 0, event
        assert isinstance(event.get("cat", ""), str), event
    else:
        assert event["name"] in ("process_name", "thread_name", "thread_sort_index"), event
        key = "sort_index" if event["name"] == "thread_sort_index" else "name"
        assert key in event["args"], event


def test_trace_is_valid_trace_event_format(tmp_path):
    report = perf.run(double_buffered(), CONFIG)
    assert report.halted
    path = tmp_path / "run.trace.json"
    perf.write_trace(report, path)
    trace = json.loads(path.read_text())
    assert isinstance(trace, dict) and isinstance(trace["traceEvents"], list)
    assert trace["displayTimeUnit"] in ("ms", "ns")
    for event in trace["traceEvents"]:
        _check_event(event)
    named = {e["tid"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert {e["tid"] for e in trace["traceEvents"] if e["ph"] == "X"} <= named
    # A unit runs one instruction at a time: its track's events never overlap, and end by
    # the program's last cycle.
    for tid in perf.trace.TRACKS.values():
        spans = sorted(
            (e["ts"], e["ts"] + e["dur"])
            for e in trace["traceEvents"]
            if e["ph"] == "X" and e["tid"] == tid
        )
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), tid
        assert all(end <= report.cycles for _, end in spans)


def test_double_buffering_overlaps_weight_loads_and_matmuls():
    report = perf.run(double_buffered(), CONFIG)
    events = perf.trace_events(report)["traceEvents"]
    loads = [
        (e["ts"], e["ts"] + e["dur"]) for e in events if e["ph"] == "X" and e["name"] == "load_wgt"
    ]
    matmuls = [
        (e["ts"], e["ts"] + e["dur"]) for e in events if e["ph"] == "X" and e["name"] == "matmul"
    ]
    assert len(loads) == TILES and len(matmuls) == TILES
    overlap = sum(max(0, min(a1, b1) - max(a0, b0)) for a0, a1 in loads for b0, b1 in matmuls)
    assert overlap > 0
    # A trace of the same kernel without the second buffer's lead would be strictly serial:
    # here some matmul starts before the last weight load has finished.
    assert min(m[0] for m in matmuls[1:]) < max(end for _, end in loads)
