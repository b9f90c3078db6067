"""The command line: its outputs, and one clear line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from edgenpu.cli import EXIT_TRAP, main
from edgenpu.config import config_to_dict, load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_error_line(result) -> str:
    """The single stderr line of a failed command."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_help_everywhere():
    for args in (
        [],
        ["asm"],
        ["disasm"],
        ["run"],
        ["config"],
        ["config", "show"],
        ["config", "check"],
        ["config", "list"],
    ):
        result = invoke(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_asm_disasm_asm_round_trip(tmp_path):
    binary = tmp_path / "gemv.bin"
    result = invoke("asm", EXAMPLES / "gemv_int8.s", "-o", binary)
    assert result.exit_code == 0 and "8 instructions" in result.output
    text = invoke("disasm", binary)
    assert text.exit_code == 0
    source = tmp_path / "again.s"
    source.write_text(text.output)
    again = tmp_path / "again.bin"
    assert invoke("asm", source, "-o", again).exit_code == 0
    assert again.read_bytes() == binary.read_bytes()


def test_run_writes_outputs_and_summary(tmp_path):
    result = invoke("run", EXAMPLES / "lstm_cell.s", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "halted after 21 instructions" in result.output
    h = np.load(tmp_path / "out" / "h.npy")
    assert h.dtype == np.int8 and h.shape == (32,)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["halted"] and summary["trap"] is None and summary["macs"] == 128 * 64
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_run_json_from_binary(tmp_path):
    binary = tmp_path / "k.bin"
    invoke("asm", EXAMPLES / "sparse_gemv_int4.s", "-o", binary)
    result = invoke("run", binary, "--config", "default", "--json")
    summary = json.loads(result.output)
    assert summary["config"] == "default" and summary["halted"]
    assert summary["weight_stream_bytes"] < summary["dense_weight_bytes"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_yaml_field_is_named(tmp_path):
    data = config_to_dict(load_config("tiny"))
    data["mac"]["lanes"] = 3
    bad = write(tmp_path, "bad.yaml", yaml.safe_dump(data))
    for args in (["config", "check", bad], ["run", EXAMPLES / "gemv_int8.s", "-c", bad]):
        line = one_error_line(invoke(*args))
        assert f"{bad}: mac.lanes: must be a power of two, not 3" in line


def test_unknown_mnemonic_names_file_and_line(tmp_path):
    src = write(tmp_path, "k.s", "; kernel\n        halt\n        matmull rows=1\n")
    line = one_error_line(invoke("asm", src))
    assert f"{src}:3:" in line and "matmull" in line


def test_not_a_program(tmp_path):
    junk = write(tmp_path, "junk.bin", "hello")
    line = one_error_line(invoke("run", junk))
    assert f"{junk}: neither an edgenpu binary nor assembly" in line


def test_truncated_binary(tmp_path):
    binary = tmp_path / "k.bin"
    invoke("asm", EXAMPLES / "gemv_int8.s", "-o", binary)
    binary.write_bytes(binary.read_bytes()[:40])
    line = one_error_line(invoke("disasm", binary))
    assert f"{binary}: truncated in instruction" in line


@pytest.mark.parametrize(
    ("source", "cause", "fragment"),
    [
        (".word 0x0000000000000000000000000000001f\n", "illegal_instruction", "unknown opcode 31"),
        (
            "load space=act, sram=0x1fff0, dram=0, rows=1, len=64\nhalt\n",
            "address_out_of_range",
            "act range 0x1fff0..0x20030 exceeds its 0x20000 bytes",
        ),
        (
            "matmul rows=1, cols=1, n=1, wait=load\nhalt\n",
            "token_underflow",
            "load->compute queue is empty",
        ),
    ],
)
def test_traps_exit_3_with_one_line_naming_instruction(tmp_path, source, cause, fragment):
    src = write(tmp_path, "k.s", source)
    result = invoke("run", src)
    assert result.exit_code == EXIT_TRAP
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"trap {cause} at instruction 0 (")
    assert fragment in line


def test_config_show_and_list():
    shown = invoke("config", "show", "tiny")
    assert shown.exit_code == 0
    assert yaml.safe_load(shown.output)["mac"]["lanes"] == 4
    assert "peak MACs/cycle: int8 16, int4 32" in shown.output
    listed = invoke("config", "list")
    assert "default" in listed.output and "tiny" in listed.output


def test_unknown_entry_point_is_named():
    line = one_error_line(invoke("run", EXAMPLES / "gemv_int8.s", "--entry", "nope"))
    assert "no entry point named 'nope'" in line


def test_race_check_names_the_first_divergent_byte(tmp_path):
    from edgenpu.cli import EXIT_RACE

    src = write(
        tmp_path,
        "race.s",
        ".data x: i8[4] = 1, 2, 3, 4\n"
        ".output y: i8[4]\n"
        "load space=act, sram=0, dram=x, rows=1, len=4\n"
        "vcopy d=act.i8[0x40], a=act.i8[0], len=4, signal=store   ; no wait=load\n"
        "store space=act, sram=0x40, dram=y, rows=1, len=4, wait=compute\n"
        "halt\n",
    )
    result = invoke("run", src, "--race-check", "20")
    assert result.exit_code == EXIT_RACE
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("race: stream order ") and "dram[0x40]" in line
    assert "agree" in invoke("run", EXAMPLES / "gemv_int8.s", "--race-check", "5").output
