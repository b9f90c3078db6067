"""The on-chip memory against a Python model of the port contract of ``rtl/ports.py``.

Random interleaved reads and writes on every port at once, at any address (unaligned, and
running past the end), in Amaranth's simulator; plus constructor checks and a Verilator
lint of the memories the bundled configurations need.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgenpu.config import load_config
from edgenpu.isa import Space
from edgenpu.rtl.sram import Sram
from edgenpu.sim.hdl_build import lint, verilog_for

# Components built only to test their constructor are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _args(**overrides):
    return {
        "size": 64,
        "element_bits": 8,
        "read_ports": [("r", 4)],
        "write_ports": [("w", 4)],
        **overrides,
    }


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"size": 0}, TypeError, "size must be a positive integer, not 0"),
        ({"element_bits": 16}, TypeError, "element_bits must be 8 or 32, not 16"),
        (
            {"read_ports": [("r", 0)]},
            TypeError,
            "read_ports: width of port 'r' must be a positive integer, not 0",
        ),
        (
            {"write_ports": [("9w", 2)]},
            TypeError,
            "write_ports: port name must be an identifier, not '9w'",
        ),
        (
            {"write_ports": [("r", 2)]},
            TypeError,
            "port names must be unique, not ['r', 'r']",
        ),
        ({"read_ports": 3}, TypeError, "read_ports must be a list of (name, width) pairs, not 3"),
        ({"read_ports": [], "write_ports": []}, TypeError, "an Sram needs at least one port"),
        ({"addr_bits": 5}, ValueError, "addr_bits 5 cannot address 64 elements"),
    ],
)
def test_constructor_rejects(overrides, error, message):
    with pytest.raises(error) as info:
        Sram(**_args(**overrides))
    assert str(info.value) == message


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_banks_and_ports():
    dut = Sram(**_args(read_ports=[("a", 3), ("b", 9)], write_ports=[("w", 1)]))
    assert dut.banks == 16 and dut.addr_bits == 6
    assert dut.b.data.shape().width == 9 * 8 and dut.w.mask.shape().width == 1
    acc = Sram.for_space(
        load_config("tiny"), Space.ACC, read_ports=[("r", 2)], write_ports=[("w", 1)]
    )
    assert (acc.size, acc.element_bits, acc.addr_bits, acc.banks) == (512, 32, 9, 2)
    assert acc.r.data.shape().width == 64


def _simulate(dut: Sram, cycles: int, seed: int) -> None:
    """Drive random accesses on every port for ``cycles`` cycles; check every read against
    a model that applies each cycle's writes after that cycle's reads."""
    rng = np.random.default_rng(seed)
    E, size = dut.element_bits, dut.size
    model = np.zeros(size, dtype=np.uint64)
    emask = (1 << E) - 1

    def address(width: int) -> int:
        # Mostly inside, some straddling the end, some far past it.
        pick = rng.random()
        if pick < 0.8:
            return int(rng.integers(0, size))
        if pick < 0.95:
            return int(rng.integers(max(0, size - width), size + 1) % (1 << dut.addr_bits))
        return int(rng.integers(0, 1 << dut.addr_bits))

    async def bench(ctx):
        expected: dict[str, int | None] = {name: None for name, _ in dut.read_ports}
        for _ in range(cycles):
            reads = {}
            for name, width in dut.read_ports:
                port = getattr(dut, name)
                en = rng.random() < 0.7
                addr = address(width)
                ctx.set(port.en, en)
                ctx.set(port.addr, addr)
                if en:
                    word = 0
                    for k in range(width):
                        if addr + k < size:
                            word |= int(model[addr + k]) << (k * E)
                    reads[name] = word
            taken = np.zeros(size, dtype=bool)
            writes = []
            for name, width in dut.write_ports:
                port = getattr(dut, name)
                en = rng.random() < 0.7
                addr = address(width)
                mask = int(rng.integers(0, 1 << width))
                values = [int(v) for v in rng.integers(0, 1 << E, size=width, dtype=np.uint64)]
                # Two ports on one element in one cycle is unspecified: keep them apart.
                cells = [addr + k for k in range(width) if mask >> k & 1 and addr + k < size]
                if any(taken[c] for c in cells):
                    en = False
                ctx.set(port.en, en)
                ctx.set(port.addr, addr)
                ctx.set(port.mask, mask)
                ctx.set(port.data, sum(v << (k * E) for k, v in enumerate(values)))
                if en:
                    taken[cells] = True
                    writes += [(addr + k, values[k]) for k in range(width) if addr + k in cells]
            await ctx.tick()
            for name, _ in dut.read_ports:
                got = ctx.get(getattr(dut, name).data)
                if expected[name] is not None or name in reads:
                    want = reads.get(name, expected[name])
                    assert got == want, f"port {name}: read {got:#x}, model {want:#x}"
                expected[name] = reads.get(name, expected[name])
            for at, value in writes:
                model[at] = value & emask

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize(
    "args",
    [
        _args(),
        _args(size=50, read_ports=[("a", 5), ("b", 1)], write_ports=[("w", 3), ("x", 8)]),
        _args(size=37, element_bits=32, read_ports=[("a", 3)], write_ports=[("w", 2)]),
        _args(size=1, read_ports=[("a", 2)], write_ports=[("w", 1)]),
        _args(size=256, read_ports=[("a", 16), ("b", 5), ("c", 9)], write_ports=[("w", 16)]),
    ],
    ids=["64x8-r4w4", "50x8-r5r1-w3w8", "37x32-r3w2", "1x8", "256x8-r16r5r9-w16"],
)
def test_random_accesses(args):
    _simulate(Sram(**args), cycles=400, seed=len(str(args)))


@pytest.mark.parametrize(("config", "space"), [("tiny", Space.WGT), ("default", Space.LUT)])
def test_verilog_lints_clean(config, space):
    """A memory of each configuration with ports as wide as the units'. (The default's
    small LUT: Verilator lints the big ones' initial contents for many seconds.)"""
    cfg = load_config(config)
    B = cfg.dram.bandwidth_bytes_per_cycle
    lint(
        verilog_for(
            Sram.for_space,
            {
                "config": cfg,
                "space": space,
                "read_ports": [("store", B), ("mac", cfg.mac.macs_per_lane * 2)],
                "write_ports": [("load", B), ("vector", cfg.vector.lanes)],
            },
        )
    )
