"""cocotb bench of :class:`edgenpu.rtl.dispatcher.Dispatcher`.

Run it through ``edgenpu.sim.hdl_build.run_cocotb(Dispatcher.from_config, {"config": c},
"edgenpu.sim.benches.dispatcher_bench")``. Three bench-side units take instructions from the
``load``/``compute``/``store`` streams, hold each for a (random or fixed) number of cycles and
signal ``done``; the token pops and pushes are the DUT's. Programs are random valid ones from
``edgenpu.sim.random_programs`` (clean, and with every injectable trap) and the hand-written
cases of ``dispatcher_ref.hand_cases``. Checked against ``edgenpu.sim.functional.dispatch``:
halt or trap, cause and index, the instructions each unit receives (in order, with their
indices), the final token counts; every cycle, that no token count leaves ``0..depth``; and
with fixed latencies, every hand-over to a unit and the final cycle count against
``dispatcher_ref.timing``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cocotb
import numpy as np

from edgenpu.config import config_from_dict
from edgenpu.isa import Instruction, Opcode, Program, Stream, TrapCause
from edgenpu.rtl.dispatcher import QUEUES, Dispatcher
from edgenpu.sim.benches.dispatcher_ref import Expected, expected, hand_cases, timing, word_of
from edgenpu.sim.cocotb_streams import Clocked, StreamSource
from edgenpu.sim.hdl_build import bench_params
from edgenpu.sim.random_programs import injectable_causes, random_program

#: Random programs per injected cause (and clean ones) per latency mode.
PROGRAMS_PER_CAUSE = 12


def _value(handle: Any) -> int:
    value = handle.value  # a LogicArray, or a Logic for one bit
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class Unit:
    """A bench-side execution unit on one stream: takes an instruction when idle (unless
    ``stall()`` says to wait a cycle), signals ``done`` ``latency()`` cycles after taking it,
    and records what it got."""

    def __init__(
        self, dut: Any, stream: Stream, latency: Callable[[], int], stall: Callable[[], bool]
    ) -> None:
        self.stream = stream
        self.latency = latency
        self.stall = stall
        self._valid = getattr(dut, f"{stream.label}__valid")
        self._ready = getattr(dut, f"{stream.label}__ready")
        self._payload = getattr(dut, f"{stream.label}__payload")
        self._done_valid = getattr(dut, f"{stream.label}_done__valid")
        self._done_ready = getattr(dut, f"{stream.label}_done__ready")
        self.index_bits = 0
        self.cycle = 0
        self.due: int | None = None
        self._ready_now = self._done_now = -1
        #: ``(cycle, index, word)`` of every instruction taken.
        self.taken: list[tuple[int, int, int]] = []

    def _set(self, handle: Any, value: int, attr: str) -> None:
        if getattr(self, attr) != value:
            handle.value = value
            setattr(self, attr, value)

    def drive(self) -> None:
        self.cycle += 1
        self._set(self._ready, int(self.due is None and not self.stall()), "_ready_now")
        self._set(
            self._done_valid, int(self.due is not None and self.cycle >= self.due), "_done_now"
        )

    def sample(self, cycle: int) -> None:
        if self._done_now and _value(self._done_ready):
            self.due = None
        elif self._ready_now and _value(self._valid):
            word = _value(self._payload)
            self.taken.append((cycle, word >> 128, word & ((1 << 128) - 1)))
            self.due = cycle + self.latency()

    def reset(self) -> None:
        self.due = None


class TokenMonitor:
    """Checks in every cycle that each token count lies in ``0..depth``."""

    def __init__(self, dut: Any, depth: int) -> None:
        self._tokens = dut.tokens
        self.depth = depth
        self.bits = depth.bit_length()

    def counts(self) -> tuple[int, ...]:
        word = _value(self._tokens)
        mask = (1 << self.bits) - 1
        return tuple((word >> (self.bits * i)) & mask for i in range(len(QUEUES)))

    def drive(self) -> None:
        pass

    def sample(self, cycle: int) -> None:
        counts = self.counts()
        assert max(counts) <= self.depth, (
            f"cycle {cycle}: token counts {counts} (depth {self.depth})"
        )


class Bench:
    def __init__(self, dut: Any, seed_offset: int) -> None:
        self.dut = dut
        self.config = config_from_dict(bench_params()["config"])
        self.model = Dispatcher.from_config(self.config)
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED + seed_offset)
        self.latencies = {s: 1 for s in Stream}
        self.random_latency = False
        self.host = StreamSource(dut, "host", self.model.host_layout)
        self.start_ = StreamSource(dut, "start", self.model.start_layout)
        self.units = {s: Unit(dut, s, self._latency(s), self._stall) for s in Stream}
        self.tokens = TokenMonitor(dut, self.config.control.token_queue_depth)
        self.clock = Clocked(dut.clk, [self.host, self.start_, *self.units.values(), self.tokens])

    def _latency(self, s: Stream) -> Callable[[], int]:
        def latency() -> int:
            if self.random_latency:
                return int(self.rng.integers(1, 9))
            return self.latencies[s]

        return latency

    def _stall(self) -> bool:
        # Only with random latencies: the timing rules assume a unit takes what it is offered.
        return self.random_latency and self.rng.random() < 0.25

    async def start(self) -> None:
        self.clock.start()
        await self.reset()

    async def reset(self) -> None:
        for u in self.units.values():
            u.reset()
        await self.clock.reset(self.dut.rst)

    async def run(
        self,
        program: Program,
        what: str,
        *,
        entry: int = 0,
        tokens: dict | None = None,
        check_timing: bool,
    ) -> Expected:
        """Load and run ``program``; check it against the functional dispatch."""
        dut = self.dut
        want = expected(program, self.config, entry, tokens)
        words = program.words
        assert len(words) <= self.model.program_words, what
        n = len(self.host.transfers)
        self.host.send({"addr": i, "data": w} for i, w in enumerate(words))
        await self.clock.until(lambda: len(self.host.transfers) == n + len(words), 10**5, "load")
        taken = {s: len(u.taken) for s, u in self.units.items()}
        k = len(self.start_.transfers)
        self.start_.send([{"entry": entry, "length": len(words)}])
        await self.clock.until(lambda: len(self.start_.transfers) > k, 10, "start")
        started = self.start_.transfers[k][0]
        await self.clock.until(
            lambda: _value(dut.halted) or _value(dut.trapped), 20_000 + 100 * len(words), what
        )
        end = self.clock.cycle - started
        halted, trapped = _value(dut.halted), _value(dut.trapped)
        cause, index = TrapCause(_value(dut.cause)), _value(dut.index)
        assert (halted, trapped) == (int(want.plan.halted), int(not want.plan.halted)), (
            f"{what}: halted {halted} trapped {trapped}, expected {want.plan.trap or 'halt'}"
        )
        if trapped:
            assert (cause, index) == (want.cause, want.index), (
                f"{what}: trap {cause.label} at {index}, expected {want.plan.trap}"
            )
        for s, u in self.units.items():
            got = tuple((i, w) for _, i, w in u.taken[taken[s] :])
            assert got == want.delivered[s], (
                f"{what}: the {s.label} unit got {len(got)} instructions "
                f"(indices {[i for i, _ in got]}), expected {len(want.delivered[s])} "
                f"(indices {[i for i, _ in want.delivered[s]]})"
            )
        counts = self.tokens.counts()
        assert counts == tuple(want.plan.tokens[q] for q in QUEUES), (
            f"{what}: final token counts {counts}, expected {want.plan.tokens}"
        )
        assert _value(dut.cycles) == end, f"{what}: cycles output {_value(dut.cycles)}, saw {end}"
        if check_timing:
            rule = timing(want.plan, self.config, self.latencies, tokens)
            assert end == rule.cycles, f"{what}: ended in cycle {end}, the rules say {rule.cycles}"
            for s, u in self.units.items():
                got = tuple(c - started for c, _, _ in u.taken[taken[s] :])
                assert got == rule.issues[s], (
                    f"{what}: {s.label} issues in cycles {got}, the rules say {rule.issues[s]}"
                )
        return want


async def _random_programs(dut: Any, *, random_latency: bool, seed_offset: int) -> None:
    bench = Bench(dut, seed_offset)
    await bench.start()
    bench.random_latency = random_latency
    began, wall, runs = bench.clock.cycle, time.perf_counter(), 0
    for cause in (None, *injectable_causes(bench.config)):
        for i in range(PROGRAMS_PER_CAUSE):
            if not random_latency:
                bench.latencies = {s: int(bench.rng.integers(1, 7)) for s in Stream}
            length = int(bench.rng.integers(8, 40))
            gen = random_program(bench.rng, bench.config, length, trap=cause)
            what = f"random program {i} ({cause.label if cause else 'clean'}, {length} long)"
            want = await bench.run(gen.program, what, check_timing=not random_latency)
            assert want.cause == (cause or TrapCause.NONE) and want.index == gen.trap_index
            await bench.reset()
            runs += 1
    cycles, wall = bench.clock.cycle - began, time.perf_counter() - wall
    dut._log.info(
        "%d programs, %d cycles in %.2f s: %.0f cycles/s", runs, cycles, wall, cycles / wall
    )


@cocotb.test()
async def random_programs_random_latency(dut: Any) -> None:
    """Random programs, every unit holding each instruction 1-8 cycles at random."""
    await _random_programs(dut, random_latency=True, seed_offset=0)


@cocotb.test()
async def random_programs_cycle_exact(dut: Any) -> None:
    """Random programs with a fixed latency per unit: also every hand-over and the final
    cycle exactly as the timing rules say."""
    await _random_programs(dut, random_latency=False, seed_offset=1)


@cocotb.test()
async def hand_written_cases(dut: Any) -> None:
    """Every illegal-instruction kind, trap cause and no-trap boundary of ``hand_cases``,
    cycle-exact, back to back without reset (the token counts carry over)."""
    bench = Bench(dut, 2)
    await bench.start()
    tokens = None
    for case in hand_cases(bench.config):
        bench.latencies = {s: int(bench.rng.integers(1, 4)) for s in Stream}
        want = await bench.run(
            case.program(), case.name, entry=case.entry, tokens=tokens, check_timing=True
        )
        tokens = dict(want.plan.tokens)


@cocotb.test()
async def queue_full_stalls_dispatch(dut: Any) -> None:
    """A slow unit fills its instruction queue: dispatch waits (rule D3), timing exact."""
    bench = Bench(dut, 3)
    await bench.start()
    depth = bench.config.control.instruction_queue_depth
    body = [word_of(Instruction.make(Opcode.VCOPY, len=4, a_addr=8))] * (depth + 5)
    body += [word_of(Instruction.make(Opcode.LOAD)), word_of(Instruction.make(Opcode.HALT))]
    bench.latencies = {Stream.LOAD: 1, Stream.COMPUTE: 7, Stream.STORE: 1}
    await bench.run(Program(tuple(body), (), ()), "slow compute", check_timing=True)
