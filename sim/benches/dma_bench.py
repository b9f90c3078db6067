"""cocotb bench of the DMA path: :class:`~edgenpu.sim.benches.dma_harness.DmaHarness`.

Run it through ``edgenpu.sim.hdl_build.run_cocotb(DmaHarness, dma_harness.params(c),
"edgenpu.sim.benches.dma_bench")`` (``c`` with a small DRAM: ``dma_ref.bench_config``). The
DRAM (through its host port) and the bench's SRAM models start with the same random contents
as a functional-simulator ``Machine``; random ``load``/``store`` instructions (every space,
unaligned rows, strides smaller than a row, empty ones) then run one at a time, and for
each one:

* every on-chip write (load) or DRAM write (store) is applied to the RTL-side memory, which
  must equal the functional simulator's (``execute`` of the same instruction) byte for
  byte, whole;
* the requested / written beat addresses and ``done.beats`` are exactly the rule M1's;
* without stalls, every DRAM request / on-chip read, every write and the ``done`` are in
  the cycles :func:`~edgenpu.sim.benches.dma_ref.timing` gives, and the next command is
  taken the cycle after ``done``; with stalls (command bubbles, ``done`` stalls, DRAM
  request and write channel stalls), the bytes must still be exact.

At the end the whole DRAM is read back through the host port and compared with the
functional simulator, so ``rtl/dram.py`` itself is checked, not only the writes sent to it.
"""

from __future__ import annotations

import time
from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from edgenpu import formats
from edgenpu.config import config_from_dict
from edgenpu.isa import Instruction, Opcode, Space
from edgenpu.isa.disasm import disassemble_instruction
from edgenpu.rtl.load_unit import LoadUnit
from edgenpu.rtl.store_unit import StoreUnit
from edgenpu.sim.benches.dma_ref import (
    WeightLoad,
    beats,
    make_instructions,
    make_weight_loads,
    reference,
    timing,
)
from edgenpu.sim.cocotb_streams import Clocked, StreamSink, StreamSource
from edgenpu.sim.functional import Machine
from edgenpu.sim.hdl_build import bench_params

#: Random instructions per run on top of one of every space and shape.
RANDOM_INSTRUCTIONS = 200
#: Random ``load_wgt`` on top of every format and precision at a few counts.
RANDOM_WEIGHT_LOADS = 30


def _value(handle: Any) -> int:
    value = handle.value
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class Taps:
    """Records the harness's DRAM taps: read requests and writes."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.requests: list[tuple[int, int]] = []
        self.dram_writes: list[tuple[int, int, int, int]] = []

    def drive(self) -> None:
        pass

    def sample(self, cycle: int) -> None:
        d = self.dut
        if _value(d.tap_req_valid):
            self.requests.append((cycle, _value(d.tap_req_addr)))
        if _value(d.tap_dw_valid):
            self.dram_writes.append(
                (cycle, _value(d.tap_dw_addr), _value(d.tap_dw_data), _value(d.tap_dw_mask))
            )


class SramModel:
    """The on-chip memories behind the units' ports, with the contract of ``rtl/ports.py``.

    Only the ports of the ``active`` space are served (the units touch no other): a write
    applies at once (a read in a later cycle sees it); a read's data is driven for exactly
    the next cycle, and garbage at other times, so a unit relying on data held longer
    fails.
    """

    def __init__(self, dut: Any, memories: dict[Space, np.ndarray], rng: np.random.Generator):
        self.dut = dut
        self.memories = memories
        self.rng = rng
        self.active: Space | None = None
        self.width = {}
        #: ``(cycle, addr, data, mask)`` of every load-unit write.
        self.writes: list[tuple[int, int, int, int]] = []
        #: ``(cycle, addr)`` of every store-unit read.
        self.reads: list[tuple[int, int]] = []
        self._pending: int | None = None
        self._garbage = False

    def activate(self, space: Space, load_width: int, store_width: int) -> None:
        self.active = space
        self.width = {"load": load_width, "store": store_width}

    def drive(self) -> None:
        if self.active is None:
            return
        data = getattr(self.dut, f"store_{self.active.label}__data")
        if self._pending is not None:
            data.value = self._pending
            self._pending = None
            self._garbage = True
        elif self._garbage:
            unit = self.active.unit_bytes
            bits = 8 * unit * self.width["store"]
            data.value = int.from_bytes(self.rng.bytes(bits // 8), "little")
            self._garbage = False

    def sample(self, cycle: int) -> None:
        if self.active is None:
            return
        space, d = self.active, self.dut
        unit, memory = space.unit_bytes, self.memories[space]
        size = memory.size // unit
        port = f"load_{space.label}"
        if _value(getattr(d, f"{port}__en")):
            addr = _value(getattr(d, f"{port}__addr"))
            word = _value(getattr(d, f"{port}__data"))
            mask = _value(getattr(d, f"{port}__mask"))
            self.writes.append((cycle, addr, word, mask))
            raw = word.to_bytes(unit * self.width["load"], "little")
            for k in range(self.width["load"]):
                if mask >> k & 1 and addr + k < size:
                    memory[(addr + k) * unit : (addr + k + 1) * unit] = np.frombuffer(
                        raw[k * unit : (k + 1) * unit], np.uint8
                    )
        port = f"store_{space.label}"
        if _value(getattr(d, f"{port}__en")):
            addr = _value(getattr(d, f"{port}__addr"))
            self.reads.append((cycle, addr))
            n = self.width["store"] * unit
            first = min(addr * unit, memory.size)
            chunk = memory[first : first + n].tobytes()
            self._pending = int.from_bytes(chunk + bytes(n - len(chunk)), "little")


class ChannelStalls:
    """Drives the harness's DRAM channel stall inputs at random (``stalls`` of the cycles)."""

    def __init__(self, dut: Any, stalls: float, rng: np.random.Generator) -> None:
        self.dut, self.stalls, self.rng = dut, stalls, rng
        dut.stall_rd_req.value = 0
        dut.stall_wr.value = 0

    def drive(self) -> None:
        if self.stalls:
            self.dut.stall_rd_req.value = int(self.rng.random() < self.stalls)
            self.dut.stall_wr.value = int(self.rng.random() < self.stalls)

    def sample(self, cycle: int) -> None:
        pass


class Bench:
    """The harness with its command sources, done sinks, taps and memory models."""

    def __init__(self, dut: Any, *, stalls: float, seed_offset: int) -> None:
        self.dut = dut
        self.config = config_from_dict(bench_params()["config"])
        self.B = self.config.dram.bandwidth_bytes_per_cycle
        self.L = self.config.dram.latency_cycles
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED + seed_offset)
        self.load_unit = LoadUnit.from_config(self.config)
        self.store_unit = StoreUnit.from_config(self.config)
        rng = self.rng
        load, store = self.load_unit, self.store_unit
        load_cmd = StreamSource(dut, "load_cmd", load.cmd_layout, bubbles=stalls, rng=rng)
        load_done = StreamSink(dut, "load_done", load.done_layout, stalls=stalls, rng=rng)
        store_cmd = StreamSource(dut, "store_cmd", store.cmd_layout, bubbles=stalls, rng=rng)
        store_done = StreamSink(dut, "store_done", store.done_layout, stalls=stalls, rng=rng)
        self.cmd = {Opcode.LOAD: load_cmd, Opcode.LOAD_WGT: load_cmd, Opcode.STORE: store_cmd}
        self.done = {Opcode.LOAD: load_done, Opcode.LOAD_WGT: load_done, Opcode.STORE: store_done}
        for name in ("en", "we", "addr", "wdata"):  # (Icarus starts inputs at X)
            getattr(dut, f"dram_host__{name}").value = 0
        self.taps = Taps(dut)
        #: The oracle: the functional simulator's state.
        self.machine = Machine.empty(self.config)
        #: The RTL's on-chip memories (served by ``self.srams``) and its DRAM as the taps
        #: say it was written.
        self.memories = {s: self.machine.space(s).copy() for s in Space}
        self.dram = self.machine.dram.copy()
        self.srams = SramModel(dut, self.memories, rng)
        self.clock = Clocked(
            dut.clk,
            [
                load_cmd,
                store_cmd,
                load_done,
                store_done,
                self.taps,
                self.srams,
                ChannelStalls(dut, stalls, rng),
            ],
        )
        self.last_done: int | None = None

    async def start(self) -> None:
        self.clock.start()
        # Reset without sampling the endpoints: before it, Icarus shows some outputs as X.
        self.dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await self.clock.step()

    async def fill(self) -> None:
        """Random contents everywhere, the same in the RTL, its models and the Machine."""
        m = self.machine
        for memory in (m.dram, m.wgt, m.act, m.acc, m.lut):
            memory[:] = self.rng.integers(0, 256, size=memory.size, dtype=np.uint8)
        for space in Space:
            self.memories[space][:] = m.space(space)
        self.dram[:] = m.dram
        d, c, B = self.dut, self.clock, self.B
        c.set(d.dram_host__en, 1)
        c.set(d.dram_host__we, 1)
        for beat in range(m.dram.size // B):
            c.set(d.dram_host__addr, beat)
            c.set(d.dram_host__wdata, int.from_bytes(m.dram[beat * B : (beat + 1) * B], "little"))
            await c.step()
        c.set(d.dram_host__en, 0)
        await c.step()

    async def read_back_dram(self) -> np.ndarray:
        """The whole DRAM through the host port."""
        d, c, B = self.dut, self.clock, self.B
        n = self.machine.dram.size // B
        c.set(d.dram_host__en, 1)
        c.set(d.dram_host__we, 0)
        chunks = []
        for k in range(n + 1):
            if k < n:
                c.set(d.dram_host__addr, k)
            else:
                c.set(d.dram_host__en, 0)
            await c.step()
            if k:
                chunks.append(_value(d.dram_host__rdata).to_bytes(B, "little"))
        return np.frombuffer(b"".join(chunks), np.uint8)

    # -- instructions -------------------------------------------------------------------

    async def run(
        self, ins: Instruction, *, check_timing: bool, weights: WeightLoad | None = None
    ) -> None:
        op = ins.opcode
        cmd, done = self.cmd[op], self.done[op]
        first_cmd, first_done = len(cmd.transfers), len(done.transfers)
        taps = self.taps
        first_req, first_lw, first_dw, first_rd = (
            len(taps.requests),
            len(self.srams.writes),
            len(taps.dram_writes),
            len(self.srams.reads),
        )
        space = ins["space"] if op is not Opcode.LOAD_WGT else Space.WGT
        self.srams.activate(
            space,
            self.load_unit.signature.members[space.label].signature.width,
            self.store_unit.signature.members[space.label].signature.width,
        )
        names = [n for n in ins.fields() if n in cmd.layout.members]
        fields = {n: int(ins[n]) for n in names}
        if "opcode" in cmd.layout.members:
            fields["opcode"] = op.value
        cmd.send([fields])
        expected_beats = beats(ins, self.B) if op is not Opcode.LOAD_WGT else []
        timeout = 200 + 3 * self.L + 8 * len(expected_beats)
        if weights is not None:
            timeout += 8 * len(weights.stream) + 4 * ins["count"]
        text = disassemble_instruction(ins)
        await self.clock.until(lambda: len(done.transfers) > first_done, timeout, f"done of {text}")
        start = cmd.transfers[first_cmd][0]
        end, payload = done.transfers[first_done]
        if op is Opcode.LOAD_WGT:
            reference(ins, self.machine)
            self.check_weights(
                weights,
                text,
                payload,
                taps.requests[first_req:],
                self.srams.writes[first_lw:],
                start,
                end,
                check_timing,
            )
        else:
            firsts = (first_req, first_lw, first_dw, first_rd)
            self.check_dma(ins, text, payload, firsts, start, end, check_timing)
        if check_timing:
            if self.last_done is not None:
                assert start == self.last_done + 1, (
                    f"{text}: command taken {start - self.last_done} cycles after the previous "
                    "done, the rules say 1"
                )
            self.last_done = end

    def check_dma(
        self,
        ins: Instruction,
        text: str,
        payload: dict,
        firsts: tuple[int, int, int, int],
        start: int,
        end: int,
        check_timing: bool,
    ) -> None:
        """A ``load`` or ``store``: the target memory whole, the beats (rule M1) and, with
        ``check_timing``, the cycles (L1-S3)."""
        op, taps = ins.opcode, self.taps
        first_req, first_lw, first_dw, first_rd = firsts
        space = ins["space"]
        expected_beats = beats(ins, self.B)
        assert payload["beats"] == len(expected_beats), (
            f"{text}: done says {payload['beats']} beats, expected {len(expected_beats)}"
        )
        reference(ins, self.machine)
        if op is Opcode.LOAD:
            requests = taps.requests[first_req:]
            writes = self.srams.writes[first_lw:]
            self.check_same(text, space.label, self.memories[space], self.machine.space(space))
            req_cycles = [c for c, _ in requests]
            write_cycles = [w[0] for w in writes]
            assert [a for _, a in requests] == [a for _, a in expected_beats], (
                f"{text}: requested beats {[a for _, a in requests]}, expected "
                f"{[a for _, a in expected_beats]}"
            )
        else:
            writes = taps.dram_writes[first_dw:]
            self.apply_dram_writes(writes)
            self.check_same(text, "DRAM", self.dram, self.machine.dram)
            req_cycles = [c for c, _ in self.srams.reads[first_rd:]]
            write_cycles = [w[0] for w in writes]
            assert [w[1] for w in writes] == [a for _, a in expected_beats], (
                f"{text}: wrote beats {[w[1] for w in writes]}, expected "
                f"{[a for _, a in expected_beats]}"
            )
        if check_timing:
            t = timing(ins, self.B, self.L)
            if req_cycles is not None:
                got = tuple(c - start for c in req_cycles)
                assert got == t.requests, f"{text}: requests in cycles {got}, rules {t.requests}"
            got = tuple(c - start for c in write_cycles)
            assert got == t.writes, f"{text}: writes in cycles {got}, rules {t.writes}"
            assert end - start == t.done, f"{text}: done in cycle {end - start}, rules {t.done}"

    async def place_stream(self, load: WeightLoad) -> None:
        """Put ``load``'s stream at its DRAM address, in the Machine and (through the host
        port, the channels being idle) in the RTL."""
        at, stream, B = load.ins["dram"], load.stream, self.B
        for memory in (self.machine.dram, self.dram):
            memory[at : at + len(stream)] = np.frombuffer(stream, np.uint8)
        d, c = self.dut, self.clock
        c.set(d.dram_host__en, 1)
        c.set(d.dram_host__we, 1)
        for beat in range(at // B, -(-(at + len(stream)) // B)):
            c.set(d.dram_host__addr, beat)
            raw = self.machine.dram[beat * B : (beat + 1) * B].tobytes()
            c.set(d.dram_host__wdata, int.from_bytes(raw, "little"))
            await c.step()
        c.set(d.dram_host__en, 0)
        await c.step()
        self.last_done = None  # the host port's cycles are not the program's

    def check_weights(
        self,
        load: WeightLoad,
        text: str,
        payload: dict,
        requests: list,
        writes: list,
        start: int,
        end: int,
        check_timing: bool,
    ) -> None:
        """A ``load_wgt``: WGT, consumed, the beats requested (consecutive, from the one
        holding ``dram``, never past the bound) and the cycles (rules W1-W4)."""
        ins, B = load.ins, self.B
        self.check_same(text, "wgt", self.memories[Space.WGT], self.machine.wgt)
        if ins["count"]:
            assert payload["consumed"] == len(load.stream), (
                f"{text}: consumed {payload['consumed']}, decode says {len(load.stream)}"
            )
        bound = formats.max_encoded_size(ins["count"], ins["format"], ins["prec"])
        first, last = ins["dram"] // B, (ins["dram"] + bound - 1) // B
        addrs = [a for _, a in requests]
        assert addrs == list(range(first, first + len(addrs))), f"{text}: requested {addrs}"
        assert not addrs or addrs[-1] <= last, f"{text}: requested beat {addrs[-1]} > {last}"
        least = -(-(ins["dram"] % B + len(load.stream)) // B) if ins["count"] else 0
        assert len(addrs) >= least, f"{text}: requested {len(addrs)} beats, stream needs {least}"
        assert payload["beats"] == len(addrs), f"{text}: done says {payload['beats']} beats"
        if check_timing:
            t = timing(
                ins,
                B,
                self.L,
                block_sizes=load.block_sizes,
                output_elements=self.config.decompressor.output_elements_per_cycle,
            )
            got = tuple(c - start for c, *_ in writes)
            assert got == t.writes, f"{text}: writes in cycles {got}, rules {t.writes}"
            assert end - start == t.done, f"{text}: done in cycle {end - start}, rules {t.done}"

    def apply_dram_writes(self, writes: list) -> None:
        B = self.B
        for _, addr, word, mask in writes:
            base = (addr * B) % self.dram.size
            raw = word.to_bytes(B, "little")
            for j in range(B):
                if mask >> j & 1:
                    self.dram[base + j] = raw[j]

    @staticmethod
    def check_same(what: Any, name: str, got: np.ndarray, want: np.ndarray) -> None:
        """``got`` equals ``want`` byte for byte, else name the first difference."""
        bad = np.flatnonzero(got != want)
        assert not bad.size, (
            f"{what}: {bad.size} {name} bytes differ from the functional simulator, first at "
            f"{bad[0]:#x}: {got[bad[0]]:#04x}, expected {want[bad[0]]:#04x}"
        )


async def _run_all(dut: Any, *, stalls: float, seed_offset: int, check_timing: bool) -> None:
    bench = Bench(dut, stalls=stalls, seed_offset=seed_offset)
    await bench.start()
    wall = time.perf_counter()
    await bench.fill()
    fill_wall = time.perf_counter() - wall
    instructions: list = make_instructions(bench.config, bench.rng, RANDOM_INSTRUCTIONS)
    instructions += make_weight_loads(bench.config, bench.rng, RANDOM_WEIGHT_LOADS)
    bench.rng.shuffle(instructions)
    began, wall = bench.clock.cycle, time.perf_counter()
    for item in instructions:
        if isinstance(item, WeightLoad):
            await bench.place_stream(item)
            await bench.run(item.ins, check_timing=check_timing, weights=item)
        else:
            await bench.run(item, check_timing=check_timing)
    cycles, wall = bench.clock.cycle - began, time.perf_counter() - wall
    # The DRAM itself holds what the writes said, which is what the functional simulator has.
    bench.check_same("read back", "DRAM", await bench.read_back_dram(), bench.machine.dram)
    dut._log.info(
        "fill %.2f s; %d instructions, %d cycles in %.2f s: %.0f cycles/s",
        fill_wall,
        len(instructions),
        cycles,
        wall,
        cycles / wall,
    )


@cocotb.test()
async def cycle_exact_without_stalls(dut: Any) -> None:
    """Every instruction back to back, ``done`` always taken: bytes and cycles exact."""
    await _run_all(dut, stalls=0.0, seed_offset=0, check_timing=True)


@cocotb.test()
async def bit_exact_with_stalls(dut: Any) -> None:
    """Command bubbles, ``done`` stalls, DRAM request and write channel stalls: bytes
    exact."""
    await _run_all(dut, stalls=0.3, seed_offset=1, check_timing=False)
