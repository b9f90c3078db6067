import re
from pathlib import Path

import pytest

from edgenpu.isa import HEADER, SPECS, Opcode
from edgenpu.isa.reference import ENUMS, GENERATED_MARK, main, render_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "isa.md"


def test_committed_reference_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == render_reference(), (
        "docs/isa.md is stale; regenerate it with: python -m edgenpu.isa.reference"
    )


def test_first_line_marks_the_file_generated():
    assert render_reference().splitlines()[0] == GENERATED_MARK


def _section(text: str, title: str) -> str:
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##|\Z)", text, re.S | re.M)
    assert match, title
    return match[1]


@pytest.mark.parametrize("opcode", list(Opcode), ids=lambda op: op.label)
def test_each_opcode_has_a_row_and_a_field_table_covering_128_bits(opcode):
    text = render_reference()
    assert re.search(rf"^\| {opcode.value} \| \[`{opcode.label}`\]", text, re.M)
    section = _section(text, opcode.label)
    assert SPECS[opcode].doc in section
    rows = re.findall(r"^\| (\d+):(\d+) \| `?(\w+)`? \| (\d+) \|", section, re.M)
    names = [name for _, _, name, _ in rows]
    assert names == ["header", *(f.name for f in SPECS[opcode].fields)] + (
        ["reserved"] if SPECS[opcode].used_bits < 128 else []
    )
    at = 0
    for hi, lo, _, width in rows:
        assert (int(lo), int(hi)) == (at, at + int(width) - 1)
        at += int(width)
    assert at == 128


def test_header_and_enums_are_listed():
    text = render_reference()
    for f in HEADER:
        assert f"`{f.name}`" in text
    for enum in ENUMS:
        section = _section(text, enum.__name__)
        for member in enum:
            assert f"| {member.value} | `{member.label}` |" in section


def test_main_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "isa.md"
    assert main(["--check", "--output", str(out)]) == 1
    assert "regenerate it with python -m edgenpu.isa.reference" in capsys.readouterr().err
    assert main(["--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_reference()
    assert main(["--check", "--output", str(out)]) == 0
    out.write_text(render_reference() + "edited\n", encoding="utf-8")
    assert main(["--check", "--output", str(out)]) == 1
