"""A small Value Change Dump (IEEE 1364 VCD) writer for signals sampled once per cycle.

The benches record chosen signals themselves (at each falling clock edge, when everything has
settled after the rising one), so a trace of a few cycles around an event can be written
after the fact and on any simulator, without a waveform build. Every viewer (GTKWave,
Surfer) opens the result; a ``clk`` is added so cycles show as edges.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Signal", "write_vcd"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Signal:
    """A traced signal: its name in the trace and its width in bits."""

    name: str
    width: int

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name == "clk":
            raise ValueError(f"signal name must be an identifier other than clk, not {self.name!r}")
        if not isinstance(self.width, int) or isinstance(self.width, bool) or self.width < 1:
            raise ValueError(f"{self.name}: width must be a positive integer, not {self.width!r}")


def _code(n: int) -> str:
    """The n-th short identifier code, from the printable ASCII characters ``!`` to ``~``."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 94)
        out = chr(33 + r) + out
    return out


def _value(signal: Signal, value: int, code: str) -> str:
    value &= (1 << signal.width) - 1
    if signal.width == 1:
        return f"{value}{code}"
    return f"b{value:b} {code}"


def write_vcd(
    path: Path,
    signals: Sequence[Signal],
    samples: Sequence[Sequence[int]],
    *,
    first_cycle: int = 0,
    period_ns: int = 10,
    scope: str = "top",
    comment: str = "",
) -> None:
    """Write ``samples`` (one row per cycle, one unsigned value per signal) as a VCD.

    Cycle ``first_cycle + k`` starts at ``(first_cycle + k) * period_ns`` ns with ``clk``
    rising and the values of row ``k``; ``clk`` falls half a period later. Only changes are
    written after the first row. The file is written beside ``path`` and renamed into place.

    Parameters
    ----------
    path : Path
    signals : sequence of Signal
    samples : sequence of sequence of int
        ``samples[k][j]`` is signal ``j`` in cycle ``first_cycle + k``.
    first_cycle : int
        Number of the first row's cycle (so times match the run's cycle count).
    period_ns : int
        Clock period; must be even so that the falling edge is on a whole nanosecond.
    scope : str
        Name of the module scope holding the signals.
    comment : str
        Written into the header (what the trace shows).
    """
    if period_ns < 2 or period_ns % 2:
        raise ValueError(f"period_ns must be an even number of at least 2, not {period_ns!r}")
    if not _NAME.fullmatch(scope):
        raise ValueError(f"scope must be an identifier, not {scope!r}")
    names = [s.name for s in signals]
    if len(set(names)) != len(names):
        raise ValueError(f"signal names must be unique: {names}")
    for k, row in enumerate(samples):
        if len(row) != len(signals):
            raise ValueError(f"sample {k} has {len(row)} values for {len(signals)} signals")
    clk = _code(0)
    codes = [_code(j + 1) for j in range(len(signals))]
    lines = []
    if comment:
        lines.append(f"$comment {comment} $end")
    lines += ["$timescale 1ns $end", f"$scope module {scope} $end", f"$var wire 1 {clk} clk $end"]
    lines += [f"$var wire {s.width} {c} {s.name} $end" for s, c in zip(signals, codes, strict=True)]
    lines += ["$upscope $end", "$enddefinitions $end"]
    previous: Sequence[int] | None = None
    for k, row in enumerate(samples):
        t = (first_cycle + k) * period_ns
        lines.append(f"#{t}")
        changes = [
            _value(s, v, c)
            for s, v, c, j in zip(signals, row, codes, range(len(row)), strict=True)
            if previous is None or previous[j] != v
        ]
        if previous is None:
            lines += ["$dumpvars", f"1{clk}", *changes, "$end"]
        else:
            lines += [f"1{clk}", *changes]
        lines += [f"#{t + period_ns // 2}", f"0{clk}"]
        previous = row
    if samples:
        lines.append(f"#{(first_cycle + len(samples)) * period_ns}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
