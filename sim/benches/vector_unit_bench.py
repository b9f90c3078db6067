"""cocotb bench of :class:`edgenpu.rtl.vector_unit.VectorUnit`.

Run it through ``edgenpu.sim.hdl_build.run_cocotb(VectorUnit.from_config, {"config": c},
"edgenpu.sim.benches.vector_unit_bench")``. Instructions and their data come from
:mod:`edgenpu.sim.benches.vector_unit_ref`; the SRAMs are modelled here, cocotb-side, with the
ports' one-cycle read latency. After every instruction the whole ACT and ACC memories are
compared with what the functional simulator computes from the same instruction and
contents; without stalls every read, write and ``done`` is also checked against the timing
rules to the cycle.
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np

from edgenpu.config import config_from_dict
from edgenpu.isa import Opcode, OperandKind
from edgenpu.rtl.vector_unit import VectorUnit
from edgenpu.sim.benches.vector_unit_ref import (
    Case,
    Memories,
    apply_fills,
    command_payload,
    coverage_cases,
    empty_machine,
    expected_memories,
    make_case,
    random_cases,
    timing,
)
from edgenpu.sim.cocotb_streams import Clocked, StreamSink, StreamSource
from edgenpu.sim.hdl_build import bench_params

#: Random instructions per run on top of the systematic ones (see ``coverage_cases``).
RANDOM_CASES = 150


def _value(handle: Any) -> int:
    value = handle.value
    # One-bit signals read as ``Logic``, wider ones as ``LogicArray``.
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class MemoryPorts:
    """The unit's SRAM ports against :class:`Memories`, stepped by :class:`Clocked` like a
    stream endpoint: reads sampled in cycle *c* are answered in cycle *c* + 1, writes are
    applied after the reads of their cycle.

    ``lut_active`` says whether to watch the LUT ports (the bench sets it for ``vlut``):
    with ``V`` of them, looking at them every cycle would double the bench's cost.

    Read data is promised for the one cycle after ``en`` only ("Memories"), so a port's data
    turns to random bits in the cycle after that: a unit relying on held data fails.
    """

    def __init__(self, dut: Any, memories: Memories, lanes: int, rng: np.random.Generator) -> None:
        def port(name: str) -> tuple[Any, Any, Any]:
            return (
                getattr(dut, f"{name}__en"),
                getattr(dut, f"{name}__addr"),
                getattr(dut, f"{name}__data"),
            )

        self.memories = memories
        self.reads = {name: port(name) for name in ("act_a", "act_b", "acc_a", "acc_b")}
        self.luts = [port(f"lut__{j}") for j in range(lanes)]
        self.writes = {
            name: (*port(name), getattr(dut, f"{name}__mask")) for name in ("act_w", "acc_w")
        }
        self.lut_active = False
        self._rng = rng
        self._answers: list[tuple[Any, int]] = []
        self._held: list[Any] = []  # data handles answered in the previous cycle
        #: Cycles of the ``a`` reads and of the writes so far.
        self.a_reads: list[int] = []
        self.write_cycles: list[int] = []

    def drive(self) -> None:
        answered = [handle for handle, _ in self._answers]
        for handle in self._held:
            if all(handle is not h for h in answered):
                bits = len(handle)
                handle.value = int.from_bytes(self._rng.bytes(-(-bits // 8)), "little") & (
                    (1 << bits) - 1
                )
        for handle, word in self._answers:
            handle.value = word
        self._held = answered
        self._answers = []

    def sample(self, cycle: int) -> None:
        for name, (en, addr, data) in self.reads.items():
            if _value(en):
                self._answers.append((data, self.memories.read(name, _value(addr))))
                if name.endswith("_a"):
                    self.a_reads.append(cycle)
        if self.lut_active:
            for en, addr, data in self.luts:
                if _value(en):
                    self._answers.append((data, self.memories.read("lut", _value(addr))))
        for name, (en, addr, data, mask) in self.writes.items():
            if _value(en):
                self.memories.write(name, _value(addr), _value(data), _value(mask))
                self.write_cycles.append(cycle)


class Bench:
    """The DUT with its command source, ``done`` sink and memories."""

    def __init__(self, dut: Any, *, stalls: float, seed_offset: int) -> None:
        self.dut = dut
        self.config = config_from_dict(bench_params()["config"])
        self.model = VectorUnit.from_config(self.config)
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED + seed_offset)
        self.machine = empty_machine(self.config, self.rng)
        self.lanes = self.model.lanes
        self.cmd = StreamSource(dut, "cmd", self.model.cmd_layout, bubbles=stalls, rng=self.rng)
        self.done = StreamSink(dut, "done", self.model.done_layout, stalls=stalls, rng=self.rng)
        self.ports = MemoryPorts(dut, Memories(self.machine, self.lanes), self.lanes, self.rng)
        self.clock = Clocked(dut.clk, [self.cmd, self.done, self.ports])
        #: Cycle of the last ``done`` transfer when the next command follows at once.
        self.last_done: int | None = None

    async def start(self) -> None:
        self.clock.start()
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        self.last_done = None
        await self.clock.reset(self.dut.rst, cycles)

    def payload(self, case: Case) -> dict[str, int]:
        return command_payload(self.model.cmd_layout, case.ins)

    async def run(self, case: Case, *, check_timing: bool) -> int:
        """Run ``case`` to its ``done`` and check everything; returns its cycles."""
        apply_fills(case, self.machine)
        expected = expected_memories(case, self.machine)
        first_cmd, first_done = len(self.cmd.transfers), len(self.done.transfers)
        first_read, first_write = len(self.ports.a_reads), len(self.ports.write_cycles)
        self.ports.lut_active = case.ins.opcode is Opcode.VLUT
        self.cmd.send([self.payload(case)])
        n = case.ins["len"]
        await self.clock.until(
            lambda: len(self.done.transfers) > first_done,
            200 + 4 * n,
            f"done of {case.describe()}",
        )
        start = self.cmd.transfers[first_cmd][0]
        end, done = self.done.transfers[first_done]
        self.check_memories(case, expected)
        assert done["elements"] == n, f"{case.describe()}: done says {done['elements']} elements"
        writes = tuple(c - start for c in self.ports.write_cycles[first_write:])
        assert writes and max(writes) <= end - start or not n, (
            f"{case.describe()}: done in cycle {end - start}, before the write in {writes[-1:]}"
        )
        if check_timing:
            expected_t = timing(n, self.lanes)
            reads = tuple(c - start for c in self.ports.a_reads[first_read:])
            got = (reads, writes, end - start)
            want = (expected_t.reads, expected_t.writes, expected_t.done)
            assert got == want, (
                f"{case.describe()}: (a reads, writes, done) in cycles {got}, the timing rules "
                f"say {want}"
            )
            if self.last_done is not None:
                assert start == self.last_done + 1, (
                    f"{case.describe()}: command taken {start - self.last_done} cycles after the "
                    f"previous done, the timing rules say 1"
                )
        self.last_done = end
        return end - start + 1

    def check_memories(self, case: Case, expected: Any) -> None:
        """Every byte of ACT and ACC as the functional simulator has it, naming the first
        difference."""
        for name in ("act", "acc"):
            got, want = getattr(self.machine, name), getattr(expected, name)
            bad = np.flatnonzero(got != want)
            if bad.size:
                at = int(bad[0])
                raise AssertionError(
                    f"{case.describe()}: {name} byte {at:#x} is {got[at]:#04x}, the functional "
                    f"simulator says {want[at]:#04x} ({bad.size} bytes differ)"
                )


async def _run_all(dut: Any, *, stalls: float, seed_offset: int, check_timing: bool) -> None:
    bench = Bench(dut, stalls=stalls, seed_offset=seed_offset)
    await bench.start()
    cases = coverage_cases(bench.config, bench.rng) + random_cases(
        bench.config, bench.rng, RANDOM_CASES
    )
    cycles, wall = await bench.clock.timed(
        bench.run(case, check_timing=check_timing) for case in cases
    )
    elements = sum(case.ins["len"] for case in cases)
    dut._log.info(
        "%d instructions, %d elements, %d cycles in %.2f s: %.0f cycles/s",
        len(cases),
        elements,
        cycles,
        wall,
        cycles / wall,
    )


@cocotb.test()
async def cycle_exact_without_stalls(dut: Any) -> None:
    """Every systematic and random instruction back to back, ``done`` always ready: memory
    contents exact, and every ``a`` read, write and ``done`` in the cycle the rules say."""
    await _run_all(dut, stalls=0.0, seed_offset=0, check_timing=True)


@cocotb.test()
async def bit_exact_with_stalls(dut: Any) -> None:
    """Random command bubbles and ``done`` stalls: the memory contents do not change."""
    await _run_all(dut, stalls=0.3, seed_offset=1, check_timing=False)


@cocotb.test()
async def reset_mid_command(dut: Any) -> None:
    """A reset in the middle of an instruction returns the unit to idle with nothing
    pending; the next instruction runs exactly."""
    bench = Bench(dut, stalls=0.0, seed_offset=2)
    await bench.start()
    V = bench.lanes
    for stop_after in (2, 5):
        case = make_case(bench.config, bench.rng, opcode=Opcode.VADD, length=8 * V)
        apply_fills(case, bench.machine)
        bench.cmd.send([bench.payload(case)])
        await bench.clock.step(stop_after)
        await bench.reset()
        bench.cmd.flush()
        assert dut.cmd__ready.value == 1, "not idle after reset"
        assert dut.act_w__en.value == 0 and dut.acc_w__en.value == 0
        assert dut.done__valid.value == 0
        await bench.run(make_case(bench.config, bench.rng, length=3 * V), check_timing=True)


@cocotb.test()
async def throughput(dut: Any) -> None:
    """Cycles per instruction (command to next command) of ``vmul`` acc.i32 requantization
    at several lengths, checked against the rules and logged as elements per cycle."""
    bench = Bench(dut, stalls=0.0, seed_offset=3)
    await bench.start()
    V = bench.lanes
    acc, i8 = OperandKind.ACC_I32, OperandKind.ACT_I8
    rows = []
    for n in (1, V, 4 * V, 16 * V, 64 * V):
        if n > bench.config.sram.accumulator_words // 2:
            continue
        case = make_case(
            bench.config,
            bench.rng,
            opcode=Opcode.VMUL,
            kinds=(i8, acc, acc),
            length=n,
            period=0,
            shift=31,
        )
        cycles = await bench.run(case, check_timing=True)
        assert cycles == timing(n, V).next_command
        rows.append((n, cycles))
    dut._log.info(
        "vmul acc.i32 -> act.i8, V=%d: %s",
        V,
        ", ".join(f"len {n}: {c} cycles ({n / c:.2f} elements/cycle)" for n, c in rows),
    )
