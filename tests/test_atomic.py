"""Atomic outputs: the target appears whole, a failed write keeps the old file."""

from __future__ import annotations

import pytest

from edgenpu.atomic import atomic_output, write_atomically


def test_the_target_appears_only_when_complete(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_output(target) as temp:
        temp.write_bytes(b"half")
        assert not target.exists()
        temp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_failed_write_keeps_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    write_atomically(target, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_output(target) as temp:
        temp.write_bytes(b"new, half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_the_target_gets_the_mode_a_plain_write_would(tmp_path):
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    target = tmp_path / "out.bin"
    write_atomically(target, b"x")
    assert target.stat().st_mode == plain.stat().st_mode
