"""cocotb bench of :class:`edgenpu.rtl.mac_array.MacArray`.

Run it through ``edgenpu.sim.hdl_build.run_cocotb(MacArray.from_config, {"config": c},
"edgenpu.sim.benches.mac_array_bench")``. Cases come from
:mod:`edgenpu.sim.benches.mac_array_ref`; the three memories are modelled here with the ports'
one-cycle read latency. After every matmul the whole accumulator memory is compared with what
the functional simulator makes of the same instruction and memories, and the ``done``
payload with the rules' counts; without stalls the ``done`` cycle is also checked against
the timing rules to the cycle.
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np

from edgenpu.config import config_from_dict
from edgenpu.precision import Precision, pack, packed_size
from edgenpu.rtl.mac_array import MacArray
from edgenpu.sim.benches.mac_array_ref import Case, make_case, make_cases
from edgenpu.sim.cocotb_streams import Clocked, StreamSink, StreamSource
from edgenpu.sim.hdl_build import bench_params

#: Random cases per run on top of the edge cases (see ``make_cases``).
RANDOM_CASES = 120


def _value(handle: Any) -> int:
    value = handle.value
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class Memories:
    """The weight, activation and accumulator memories behind the array's ports.

    An endpoint of :class:`~edgenpu.sim.cocotb_streams.Clocked`: reads sampled in a cycle
    are answered in the next; a write lands after the same cycle's reads are sampled, so a
    read sees it from the next cycle on (the ports' contract). Reads past a memory's end
    return zeros.
    """

    def __init__(self, dut: Any, model: MacArray) -> None:
        self.model = model
        self.reads = [
            tuple(getattr(dut, f"wgt__{lane}__{s}") for s in ("en", "addr", "data"))
            for lane in range(model.lanes)
        ]
        self.act = tuple(getattr(dut, f"act__{s}") for s in ("en", "addr", "data"))
        self.acc_rd = tuple(getattr(dut, f"acc_rd__{s}") for s in ("en", "addr", "data"))
        self.acc_wr = tuple(getattr(dut, f"acc_wr__{s}") for s in ("en", "addr", "data", "mask"))
        self.pending: list[tuple[Any, int]] = []
        self.wgt = self.act_mem = self.acc = np.zeros(0, np.uint8)
        #: Cycles of the accumulator writes.
        self.write_cycles: list[int] = []

    def load(self, case: Case) -> None:
        self.wgt, self.act_mem, self.acc = case.wgt.copy(), case.act.copy(), case.acc.copy()

    @staticmethod
    def _read(mem: np.ndarray, start: int, size: int) -> int:
        return int.from_bytes(mem[start : start + size].tobytes(), "little")

    def drive(self) -> None:
        for handle, value in self.pending:
            handle.value = value
        self.pending.clear()

    def sample(self, cycle: int) -> None:
        m = self.model
        for (en, addr, data), mem, width in (
            *((r, self.wgt, m.wgt_width) for r in self.reads),
            (self.act, self.act_mem, m.act_width),
        ):
            if _value(en):
                self.pending.append((data, self._read(mem, _value(addr), width)))
        en, addr, data = self.acc_rd
        if _value(en):
            self.pending.append((data, self._read(self.acc, 4 * _value(addr), 4 * m.lanes)))
        en, addr, data, mask = self.acc_wr
        if _value(en):
            self.write_cycles.append(cycle)
            at, word, mask = _value(addr), _value(data), _value(mask)
            for lane in range(m.lanes):
                if mask >> lane & 1 and 4 * (at + lane) < self.acc.size:
                    value = (word >> (32 * lane)) & 0xFFFFFFFF
                    self.acc[4 * (at + lane) : 4 * (at + lane) + 4] = np.frombuffer(
                        value.to_bytes(4, "little"), np.uint8
                    )


class Bench:
    """The DUT with its command source, ``done`` sink and memories."""

    def __init__(self, dut: Any, *, stalls: float, seed_offset: int) -> None:
        self.dut = dut
        self.config = config_from_dict(bench_params()["config"])
        self.model = MacArray.from_config(self.config)
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED + seed_offset)
        m = self.model
        self.cmd = StreamSource(dut, "cmd", m.cmd_layout, bubbles=stalls, rng=self.rng)
        self.done = StreamSink(dut, "done", m.done_layout, stalls=stalls, rng=self.rng)
        self.mem = Memories(dut, m)
        self.clock = Clocked(dut.clk, [self.cmd, self.done, self.mem])
        self.last_done: int | None = None

    async def start(self) -> None:
        self.clock.start()
        await self.clock.reset(self.dut.rst)

    async def run(self, case: Case, *, check_timing: bool) -> int:
        """Run ``case`` to its ``done`` and check everything; returns its cycles (the
        ``done`` transfer's, counted from the command's)."""
        first_cmd, first_done = len(self.cmd.transfers), len(self.done.transfers)
        first_write = len(self.mem.write_cycles)
        self.mem.load(case)
        self.cmd.send([case.fields])
        expected = case.timing(self.config)
        await self.clock.until(
            lambda: len(self.done.transfers) > first_done,
            100 + 4 * expected.done,
            f"done of {case.describe()}",
        )
        start = self.cmd.transfers[first_cmd][0]
        end, payload = self.done.transfers[first_done]
        acc = self.mem.acc.view("<i4")
        want = case.expected_acc(self.config).view("<i4")
        bad = np.flatnonzero(acc != want)
        assert not bad.size, (
            f"{case.describe()}: {bad.size} ACC words differ, the first, word {bad[0]}, is "
            f"{acc[bad[0]]}, the functional simulator says {want[bad[0]]}"
        )
        f = case.fields
        sweeps = -(-f["rows"] // self.model.lanes) * f["n"] if f["rows"] and f["cols"] else 0
        writes = len(self.mem.write_cycles) - first_write
        assert writes == sweeps, f"{case.describe()}: {writes} ACC writes, expected {sweeps}"
        assert (payload["work"], payload["gated"]) == (expected.work, expected.gated), (
            f"{case.describe()}: done says work={payload['work']} gated={payload['gated']}, "
            f"the rules say {expected.work} and {expected.gated}"
        )
        if check_timing:
            assert end - start == expected.done, (
                f"{case.describe()}: done in cycle {end - start}, the timing rules say "
                f"{expected.done} ({expected.windows} window cycles)"
            )
            if self.last_done is not None:
                assert start == self.last_done + 1, (
                    f"{case.describe()}: command taken {start - self.last_done} cycles after "
                    "the previous done, the rules say 1"
                )
        self.last_done = end
        return end - start


async def _run_all(dut: Any, *, stalls: float, seed_offset: int, check_timing: bool) -> None:
    bench = Bench(dut, stalls=stalls, seed_offset=seed_offset)
    await bench.start()
    cases = make_cases(bench.config, bench.rng, RANDOM_CASES)
    runs = (bench.run(case, check_timing=check_timing) for case in cases)
    cycles, wall = await bench.clock.timed(runs)
    dut._log.info(
        "%d cases, %d cycles in %.2f s: %.0f cycles/s", len(cases), cycles, wall, cycles / wall
    )


@cocotb.test()
async def cycle_exact_without_stalls(dut: Any) -> None:
    """Every case back to back with ``done`` always ready: the accumulator memory, the
    counts, and the ``done`` cycle exactly as the functional simulator and the rules say."""
    await _run_all(dut, stalls=0.0, seed_offset=0, check_timing=True)


@cocotb.test()
async def bit_exact_with_stalls(dut: Any) -> None:
    """Every case with command bubbles and ``done`` stalls: results and counts exact."""
    await _run_all(dut, stalls=0.3, seed_offset=1, check_timing=False)


@cocotb.test()
async def dense_sparse_int4(dut: Any) -> None:
    """Cycles of a 64 x 256 matmul (fewer rows if the weight memory is smaller): int8 dense,
    int8 with half the weights zero, int4 dense; each checked against the rules."""
    bench = Bench(dut, stalls=0.0, seed_offset=2)
    await bench.start()
    config = bench.config
    cols = 256
    rows = min(64, config.sram.weight_bytes // cols)
    rows_text = []
    for label, prec, density in (
        ("int8 dense", Precision.INT8, 1.0),
        ("int8 50% weights zero", Precision.INT8, 0.5),
        ("int8 2:4 weights", Precision.INT8, None),
        ("int8 75% weights zero", Precision.INT8, 0.25),
        ("int4 dense", Precision.INT4, 1.0),
    ):
        if prec not in config.mac.precisions:
            continue
        case = make_case(
            config,
            bench.rng,
            prec=prec,
            rows=rows,
            cols=cols,
            n=1,
            w_density=1.0 if density is None else density,
            x_density=1.0,
            accumulate=False,
            x_stride=cols,
            label=label,
        )
        # "Dense" means no zero at all (a random value can be 0).
        case = _without_zero_draws(case, dense=density is None or density == 1.0)
        if density is None:
            # Balanced 50 %: two zeros in every group of four (K is a multiple of four).
            w, _ = case.operands()
            groups = w.reshape(rows, -1, 4)
            drop = np.argsort(bench.rng.random(groups.shape), axis=2)[..., :2]
            np.put_along_axis(groups, drop, 0, axis=2)
            case = _with_weights(case, groups.reshape(rows, cols))
        cycles = await bench.run(case, check_timing=True)
        rows_text.append(f"{label}: {cycles}")
    dut._log.info("%d x %d matmul, cycles to done: %s", rows, cols, "; ".join(rows_text))


def _with_weights(case: Case, w: np.ndarray) -> Case:
    """``case`` with its weight tile replaced by ``w`` (same shape)."""
    f = case.fields
    wgt = case.wgt.copy()
    size = packed_size(f["rows"] * f["cols"], case.prec)
    wgt[f["w"] : f["w"] + size] = np.frombuffer(pack(w, case.prec), np.uint8)
    return Case(case.fields, wgt, case.act, case.acc, case.label)


def _without_zero_draws(case: Case, *, dense: bool) -> Case:
    """``case`` with activations (and, if ``dense``, weights) that drew 0 made 1."""
    w, _ = case.operands()
    f = case.fields
    act = case.act.copy()
    for j in range(f["n"]):
        window = act[f["x"] + j * f["x_stride"] :][: f["cols"]]
        window[window == 0] = 1
    case = Case(case.fields, case.wgt, act, case.acc, case.label)
    return _with_weights(case, np.where(w == 0, 1, w)) if dense else case
