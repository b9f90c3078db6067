"""cocotb bench of :class:`edgenpu.rtl.decompressor.Decompressor`.

Run it through ``edgenpu.sim.hdl_build.run_cocotb(Decompressor.from_config, {"config": c},
"edgenpu.sim.benches.decompressor_bench")``. Streams come from
:mod:`edgenpu.sim.benches.decompressor_ref` (compiler-made and arbitrary ones); every written
byte, the byte enables, the addresses and the consumed count are compared with
``decode(strict=False)``; without stalls every write and the ``done`` are also checked
against the timing rules to the cycle.
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np

from edgenpu import formats
from edgenpu.config import config_from_dict
from edgenpu.formats import BLOCK, WeightFormat
from edgenpu.rtl.decompressor import Decompressor
from edgenpu.sim.benches.decompressor_ref import (
    Beat,
    Case,
    case_from_stream,
    make_case,
    make_cases,
    timing,
)
from edgenpu.sim.cocotb_streams import Clocked, StreamSink, StreamSource
from edgenpu.sim.hdl_build import bench_params

#: Random cases per run on top of the edge cases (see ``make_cases``).
RANDOM_CASES = 60


class Bench:
    """The DUT with a driver or monitor on each of its four streams."""

    def __init__(self, dut: Any, *, stalls: float, seed_offset: int) -> None:
        self.dut = dut
        self.config = config_from_dict(bench_params()["config"])
        self.model = Decompressor.from_config(self.config)
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED + seed_offset)
        m = self.model
        self.cmd = StreamSource(dut, "cmd", m.cmd_layout, bubbles=stalls, rng=self.rng)
        self.src = StreamSource(dut, "src", bubbles=stalls, rng=self.rng)
        self.wr = StreamSink(dut, "wr", m.wr_layout, stalls=stalls, rng=self.rng)
        self.done = StreamSink(dut, "done", m.done_layout, stalls=stalls, rng=self.rng)
        self.clock = Clocked(dut.clk, [self.cmd, self.src, self.wr, self.done])
        #: Cycle of the last ``done`` transfer when the next command follows at once.
        self.last_done: int | None = None

    async def start(self) -> None:
        self.clock.start()
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        self.last_done = None
        await self.clock.reset(self.dut.rst, cycles)

    def issue(self, case: Case) -> None:
        """Queue ``case``'s command and its input beats."""
        self.cmd.send(
            [
                {
                    "format": case.fmt.value,
                    "precision": case.prec.value,
                    "count": case.count,
                    "addr": case.addr,
                }
            ]
        )
        n = self.model.input_bytes
        self.src.send(
            int.from_bytes(case.supply[i : i + n], "little") for i in range(0, len(case.supply), n)
        )

    async def run(self, case: Case, *, check_timing: bool) -> int:
        """Run ``case`` to its ``done`` and check everything; returns its cycles."""
        first_cmd, first_src, first_wr, first_done = (
            len(self.cmd.transfers),
            len(self.src.transfers),
            len(self.wr.transfers),
            len(self.done.transfers),
        )
        self.issue(case)
        timeout = 200 + 40 * len(case.supply)
        await self.clock.until(
            lambda: len(self.done.transfers) > first_done, timeout, f"done of {case.describe()}"
        )
        # Whatever the unit did not take lies past the stream's end: a DMA engine drops it.
        self.src.flush()
        start = self.cmd.transfers[first_cmd][0]
        writes = self.wr.transfers[first_wr:]
        end, done = self.done.transfers[first_done]
        self.check_writes(case, [w for _, w in writes])
        assert done["consumed"] == case.consumed, (
            f"{case.describe()}: consumed {done['consumed']}, decode says {case.consumed}"
        )
        # Rule D7: the whole stream, and at most two beats holding bytes past its end.
        beats = len(self.src.transfers) - first_src
        least = -(-case.consumed // self.model.input_bytes)
        assert least <= beats <= least + 2, (
            f"{case.describe()}: took {beats} input beats for a {least}-beat stream"
        )
        if check_timing:
            expected = timing(
                case.block_sizes, case.count, self.model.input_bytes, self.model.output_elements
            )
            got = tuple(c - start for c, _ in writes)
            if got != expected.writes:
                k = next(
                    (
                        k
                        for k, (g, e) in enumerate(zip(got, expected.writes, strict=False))
                        if g != e
                    ),
                    min(len(got), len(expected.writes)),
                )
                raise AssertionError(
                    f"{case.describe()}, block sizes {case.block_sizes}: write {k} in cycle "
                    f"{got[k] if k < len(got) else None}, the timing rules say "
                    f"{expected.writes[k] if k < len(expected.writes) else None}"
                )
            assert end - start == expected.done, (
                f"{case.describe()}, block sizes {case.block_sizes}: done in cycle "
                f"{end - start}, the timing rules say {expected.done}"
            )
        if check_timing and self.last_done is not None:
            # Rule D5: idle again, and ready for this command, the cycle after the last done.
            assert start == self.last_done + 1, (
                f"{case.describe()}: command taken {start - self.last_done} cycles after the "
                f"previous done, the timing rules say 1"
            )
        self.last_done = end
        return end - start

    def check_writes(self, case: Case, writes: list[dict[str, Any]]) -> None:
        """Compare the write beats with the expected ones, naming the first difference."""
        got = []
        for w in writes:
            en = w["en"]
            word = w["data"]
            data = bytes(
                (word >> (8 * lane)) & 0xFF
                for lane in range(self.model.output_elements)
                if en >> lane & 1
            )
            got.append(Beat(w["addr"], en, data))
        expected = list(case.beats)
        for k, (g, e) in enumerate(zip(got, expected, strict=False)):
            assert g == e, f"{case.describe()}: write beat {k} is {g}, expected {e}"
        assert len(got) == len(expected), (
            f"{case.describe()}: {len(got)} write beats, expected {len(expected)}"
        )


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
async def bit_exact_with_stalls(dut: Any) -> None:
    """Every case with random input bubbles and output stalls: bytes and consumed exact."""
    await _run_all(dut, stalls=0.3, seed_offset=0, check_timing=False)


@cocotb.test()
async def cycle_exact_without_stalls(dut: Any) -> None:
    """Every case with the input always valid and the outputs always ready: bytes, consumed
    and the cycle of every write and of ``done`` exactly as the timing rules say."""
    await _run_all(dut, stalls=0.0, seed_offset=1, check_timing=True)


@cocotb.test()
async def reset_mid_command(dut: Any) -> None:
    """A reset in the middle of a command returns the unit to idle with nothing pending."""
    bench = Bench(dut, stalls=0.0, seed_offset=2)
    await bench.start()
    config = bench.config
    fmt = config.decompressor.formats[-1]
    prec = config.mac.precisions[-1]
    for stop_after in (3, 9):
        bench.issue(make_case(config, fmt, prec, 5 * BLOCK, bench.rng))
        await bench.clock.step(stop_after)
        await bench.reset()
        bench.src.flush()
        bench.cmd.flush()
        assert bench.dut.cmd__ready.value == 1, "not idle after reset"
        assert bench.dut.wr__valid.value == 0 and bench.dut.done__valid.value == 0
        await bench.run(make_case(config, fmt, prec, 3 * BLOCK, bench.rng), check_timing=True)


@cocotb.test()
async def rate_at_half_sparsity(dut: Any) -> None:
    """Steady-state cycles per 32-element block of every format and precision, with exactly
    half of each block's elements zero, measured against the timing rules."""
    bench = Bench(dut, stalls=0.0, seed_offset=3)
    await bench.start()
    config = bench.config
    blocks = 24
    rows = []
    for fmt in config.decompressor.formats:
        for prec in config.mac.precisions:
            values = np.zeros((blocks, BLOCK), dtype=np.int64)
            for row in values:
                where = bench.rng.permutation(BLOCK)[: BLOCK // 2]
                if fmt is WeightFormat.NM2_4:  # two per group of four: still half
                    where = np.concatenate(
                        [4 * g + bench.rng.permutation(4)[:2] for g in range(BLOCK // 4)]
                    )
                row[where] = bench.rng.choice([prec.min, -1, 1, prec.max], size=where.size)
            stream = formats.encode(values.reshape(-1), fmt, prec)
            case = case_from_stream(config, fmt, prec, values.size, stream, bench.rng)
            first = len(bench.wr.transfers)
            await bench.run(case, check_timing=True)
            # The first write of each block; the blocks are full, so every one has as many.
            beats = BLOCK // bench.model.output_elements
            firsts = [c for c, _ in bench.wr.transfers[first::beats]]
            measured = (firsts[-1] - firsts[0]) / (blocks - 1)
            rows.append((fmt.label, prec.label, case.block_sizes[0], measured))
    dut._log.info(
        "cycles per block at 50%% sparsity (IN=%d, OUT=%d): %s",
        bench.model.input_bytes,
        bench.model.output_elements,
        ", ".join(f"{f} {p} ({b} B/block): {c:g}" for f, p, b, c in rows),
    )
