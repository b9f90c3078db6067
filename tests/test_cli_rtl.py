"""``edgenpu rtl``: Verilog export, one program on the RTL, and the divergence report.

Every run uses the tiny config with small programs, so it gets the 128-word, 16 KiB
simulation build that the regression bench (``tests/rtl/test_npu.py``) builds as well: one
Verilator build serves both. The disagreement is real, not injected: a program that forgets a
dependency token races on the hardware (its ``vcopy`` reads the activations before the load
has written them), while the functional simulator runs it in program order.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgenpu.cli import EXIT_DISAGREE, EXIT_TRAP, main

#: Loads 16 bytes, copies them, stores the copy; the copy does not wait for the load.
RACE = """
        load      space=act, sram=0, dram=x, rows=1, len=16
        vcopy     d=act.i8[0x40], a=act.i8[0], len=16, signal=store
        store     space=act, sram=0x40, dram=y, rows=1, len=16, wait=compute
        halt

.output y: i8[16]
.data x: i8[16] = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
"""
#: The same with the token: the copy waits for the load.
FIXED = RACE.replace("len=16\n", "len=16, signal=compute\n", 1).replace(
    "len=16, signal=store", "len=16, wait=load, signal=store"
)
#: The second copy waits for a token the load never sent: token_underflow at instruction 2.
TRAP = """
        load      space=act, sram=0, dram=x, rows=1, len=8, signal=compute
        vcopy     d=act.i8[0x40], a=act.i8[0], len=8, wait=load
        vcopy     d=act.i8[0x50], a=act.i8[0], len=8, wait=load
        halt

.data x: i8[8] = 1, 2, 3, 4, 5, 6, 7, 8
"""
#: The divergence the race leaves: the copy wrote zeros where the loaded bytes belong.
RACE_REPORT = (
    "first divergence at instruction 1 (vcopy signal=store, d=act.i8[0x40], a=act.i8[0x0], "
    "len=16): act[0x40]: RTL 0x00, functional 0x01 (32 bytes differ)"
)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def source(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_help_everywhere():
    for args in (["rtl"], ["rtl", "verilog"], ["rtl", "run"]):
        result = invoke(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_verilog_writes_the_whole_processor(tmp_path):
    out = tmp_path / "npu.v"
    result = invoke(
        "rtl", "verilog", "-c", "tiny", "--program-words", 128, "--dram-bytes", 16384, "-o", out
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: npu for tiny (128 program words, 16,384 B DRAM)")
    text = out.read_text()
    assert re.search(r"^module npu\(", text, re.MULTILINE)
    assert text.rstrip().endswith("endmodule")
    assert [p.name for p in tmp_path.iterdir()] == ["npu.v"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--dram-bytes", 1000],
            "error: dram_bytes must be a power of two in 4..1048576 (config tiny), not 1000",
        ),
        (
            ["--dram-bytes", 1 << 21],
            "error: dram_bytes must be a power of two in 4..1048576 (config tiny), not 2097152",
        ),
        (["--program-words", 0], "error: program_words must be a positive integer, not 0"),
    ],
)
def test_verilog_rejects(tmp_path, args, message):
    result = invoke("rtl", "verilog", "-c", "tiny", *args, "-o", tmp_path / "npu.v")
    assert one_error_line(result) == message
    assert not list(tmp_path.iterdir())


def test_run_rejects_before_simulating(tmp_path):
    race = source(tmp_path, "race.s", RACE)
    # Icarus writes FST whatever the suffix asks for; caught before any build.
    result = invoke("rtl", "run", race, "-c", "tiny", "--sim", "icarus", "--waves", "t.vcd")
    assert (
        one_error_line(result) == "error: t.vcd: icarus writes FST traces here; name the file .fst"
    )
    result = invoke("rtl", "run", race, "-c", "tiny", "-e", "nope")
    assert one_error_line(result) == "error: no entry point named 'nope'"
    result = invoke("rtl", "run", race, "-c", "tiny", "-e", 5)
    assert (
        one_error_line(result) == "error: entry 5 is past the end of the program (4 instructions)"
    )
    assert invoke("rtl", "run", race).exit_code == 2  # --config is required


def test_run_agrees_and_halts(tmp_path):
    result = invoke("rtl", "run", source(tmp_path, "fixed.s", FIXED), "-c", "tiny", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["halted"] and summary["trap"] is None and summary["agreed"]
    assert summary["divergence"] is None and summary["simulator"] == "verilator"
    assert summary["cycles"] == summary["rules_cycles"] > 0
    assert (summary["dram_bytes"], summary["program_words"]) == (16384, 128)
    assert summary["seconds"] > 0


def test_run_agrees_on_a_trap(tmp_path):
    result = invoke("rtl", "run", source(tmp_path, "trap.s", TRAP), "-c", "tiny")
    assert result.exit_code == EXIT_TRAP, result.output
    assert "trap token_underflow at instruction 2" in result.stdout
    assert "agreed: yes" in result.stdout


def read_vcd_changes(text: str) -> tuple[list[str], dict[str, list[tuple[int, int]]]]:
    """Signal names, and each one's (time, value) changes, of a VCD from ``sim/vcd.py``."""
    header, _, body = text.partition("$enddefinitions $end")
    codes = dict(
        (code, name) for code, name in re.findall(r"\$var wire \d+ (\S+) (\w+) \$end", header)
    )
    changes = {name: [] for name in codes.values()}
    t = 0
    for line in body.splitlines():
        if line.startswith("#"):
            t = int(line[1:])
        elif line.startswith("b"):
            value, code = line[1:].split()
            changes[codes[code]].append((t, int(value, 2)))
        elif line and not line.startswith("$"):
            changes[codes[line[1:]]].append((t, int(line[0])))
    return list(codes.values()), changes


def value_at(changes: list[tuple[int, int]], t: int) -> int:
    return [v for when, v in changes if when <= t][-1]


def window_of(path: Path, cycles: int) -> tuple[dict, int, str]:
    """A window trace's signal changes, the culprit's issue cycle it names, and how that was
    found; checks that it holds ``cycles`` cycles numbered as the run's ``cycles`` output."""
    text = path.read_text()
    names, changes = read_vcd_changes(text)
    assert {"clk", "busy", "cycles", "tokens"} <= set(names)
    rising = [t for t, v in changes["clk"] if v == 1]
    assert len(rising) == cycles
    assert all(value_at(changes["cycles"], t) == t // 10 for t in rising)
    found = re.search(
        r"the issue of instruction 1 in cycle (\d+) \((recorded|by the timing rules)\)", text
    )
    assert found, text.splitlines()[0]
    issue = int(found[1])
    assert issue * 10 in rising
    return changes, issue, found[2]


def test_a_race_is_reported_where_it_starts(tmp_path):
    window = tmp_path / "race-window.vcd"
    race = source(tmp_path, "race.s", RACE)
    result = invoke("rtl", "run", race, "-c", "tiny", "--waves-window", 8, "--window-file", window)
    assert result.exit_code == EXIT_DISAGREE, result.output
    assert "agreed: no" in result.stdout
    assert f"\n  {RACE_REPORT}\n" in result.stdout
    window_of(window, 8)


def test_the_bench_reports_the_first_divergence(tmp_path):
    # The regression bench's comparison (``Bench.run``) names the culprit too.
    from edgenpu.config import load_config
    from edgenpu.rtl.npu import Npu
    from edgenpu.sim.benches.npu_ref import KERNELS_ENV, bench_config, params
    from edgenpu.sim.hdl_build import run_cocotb

    source(tmp_path, "race.s", RACE)
    with pytest.raises(AssertionError) as info:
        run_cocotb(
            Npu.from_config,
            params(bench_config(load_config("tiny"))),
            "edgenpu.sim.benches.npu_bench",
            "verilator",
            testcase="kernels_agree",
            extra_env={KERNELS_ENV: str(tmp_path)},
        )
    assert f"kernels_agree: race: {RACE_REPORT}" in str(info.value)


def test_icarus_records_the_issue_and_writes_the_whole_trace(tmp_path):
    # Icarus shows the dispatcher's handshakes, so the window holds the RTL's own issue of the
    # culprit, which must be the cycle the timing rules give (the fallback where a build
    # shows the ports only).
    from edgenpu.config import load_config
    from edgenpu.isa.asm import assemble
    from edgenpu.sim import functional
    from edgenpu.sim.benches.npu_ref import bench_config
    from edgenpu.sim.rtl_run import rules_issue_cycle

    if shutil.which("iverilog") is None:
        pytest.skip("iverilog is not installed (the Icarus run needs it on PATH)")
    waves, window = tmp_path / "race.fst", tmp_path / "race.vcd"
    race = source(tmp_path, "race.s", RACE)
    result = invoke(
        "rtl", "run", race, "-c", "tiny", "--sim", "icarus", "--waves", waves,
        "--waves-window", 6, "--window-file", window, "--json",
    )  # fmt: skip
    assert result.exit_code == EXIT_DISAGREE, result.output
    summary = json.loads(result.stdout)
    assert (summary["simulator"], summary["waves"], summary["window"]) == (
        "icarus",
        str(waves),
        str(window),
    )
    assert summary["divergence"]["index"] == 1 and summary["divergence"]["memory"] == "act"
    assert b"Icarus Verilog" in waves.read_bytes()[:512]  # the FST header names its writer
    changes, issue, how = window_of(window, 6)
    assert how == "recorded"
    t = issue * 10
    assert value_at(changes["compute_valid"], t) and value_at(changes["compute_ready"], t)
    assert value_at(changes["compute_index"], t) == 1
    program = assemble(RACE, "race.s")
    config = bench_config(load_config("tiny"))
    assert issue == rules_issue_cycle(program, config, 0, functional.load_image(program, config), 1)
