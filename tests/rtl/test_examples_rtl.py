"""The example kernels (``examples/*.s``) on the whole processor, against the functional
simulator: bit-exact in every memory and cycle-exact against ``npu_ref.timing``, on the
simulator ``EDGENPU_SIM`` selects (Verilator unless it says ``icarus``).

The npu bench's ``kernels_agree`` test runs them on the default configuration with a 32 KiB
simulation DRAM: their images need less than 16 KiB, but a ``load_wgt`` must find room in
DRAM for its stream as if it were incompressible (``sparse_gemv_int4`` traps with 16 KiB).
Building the default processor, with its 16x16 MAC array, takes Verilator several minutes, so
that run is ``soak``; the regular suite runs the same examples on the default configuration
with a 4x4 MAC array. The examples' results do not depend on the array's shape: ``matmul`` is
an exact integer sum wrapped to 32 bits once (``edgenpu.sim.functional``), and the only MAC
field the instruction checks read is the supported precisions, which stay. The cycles do
depend on it, and are checked against the rules of the configuration built.
"""

import csv
import shutil
from pathlib import Path

import pytest

from edgenpu.config import HardwareConfig, load_config, override
from edgenpu.isa import SymbolKind
from edgenpu.rtl.npu import Npu
from edgenpu.sim import functional
from edgenpu.sim.benches.npu_ref import CYCLES_CSV, KERNELS_ENV, bench_config, kernels, params
from edgenpu.sim.hdl_build import default_simulator, run_cocotb

BENCH = "edgenpu.sim.benches.npu_bench"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The smallest power-of-two DRAM on which every example halts (checked below).
DRAM_BYTES = 1 << 15
DEFAULT = bench_config(load_config("default"), DRAM_BYTES)
#: The default configuration with the MAC array of the tiny one: minutes less to build.
DEFAULT_MAC4X4 = override(
    DEFAULT, {"name": "default-mac4x4", "mac.lanes": 4, "mac.macs_per_lane": 4}
)


def _examples() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.s"))


def test_every_example_fits_and_halts(monkeypatch):
    # The bench silently skips a kernel whose image does not fit the DRAM and starts each at
    # ``main`` (else 0): every example must be run, from its own entry, and halt there (not
    # trap), on this DRAM and not on half of it, or the RTL runs prove less than they say.
    monkeypatch.setenv(KERNELS_ENV, str(EXAMPLES))
    found = kernels(DEFAULT)
    assert sorted(name for name, _, _ in found) == _examples() and found
    halves = []
    for name, program, entry in found:
        entries = program.symbols_of(SymbolKind.ENTRY)
        assert [s.addr for s in entries][:1] == [entry], name
        result = functional.run(program, DEFAULT, entry=entry)
        assert result.halted, f"{name}: {result.trap}"
        half = bench_config(DEFAULT, DRAM_BYTES // 2)
        halves.append(functional.run(program, half, entry=entry).halted)
    assert not all(halves), "every example halts with half the DRAM: DRAM_BYTES can shrink"


def _run_examples(config: HardwareConfig) -> None:
    simulator = default_simulator()  # EDGENPU_SIM, Verilator unless it says icarus
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (Debian: apt-get install iverilog)")
    run = run_cocotb(
        Npu.from_config,
        params(config),
        BENCH,
        simulator,
        testcase="kernels_agree",
        extra_env={KERNELS_ENV: str(EXAMPLES)},
    )
    assert run.tests == 1
    # The bench fails on any difference; this checks that every example was among the runs.
    with open(run.results.parent / CYCLES_CSV) as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["program"] for r in rows) == _examples()
    assert all(r["end"] == "halt" and r["measured"] == r["rules"] for r in rows), rows


def test_examples_on_default_with_small_mac_array():
    _run_examples(DEFAULT_MAC4X4)


@pytest.mark.soak
def test_examples_on_default():
    _run_examples(DEFAULT)
