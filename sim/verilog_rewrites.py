"""Rewrites of the Verilog Amaranth (Yosys) writes, applied once after conversion.

Neither changes what the design computes; both change how simulators take it:

* :func:`compact_zero_inits`: a memory whose initial contents are all zero is initialised by
  a loop instead of one assignment per element (the default processor: 525k of its 746k
  lines), which Verilator and Icarus parse and compile many times faster;
* :func:`wake_processes`: Yosys starts every ``always @*`` process at time zero by declaring
  a trigger ``reg`` initialised to 0, which is an event under Verilog-2005 but not under
  IEEE 1800, the language cocotb runs Icarus in (``-g2012``); a process whose inputs keep
  their initial values then holds X until one of them changes (Verilator evaluates every
  process at start-up, and is two-state, so it never shows). The trigger is toggled at
  ``#0``, outside Verilator.

:data:`REWRITES_KEY` is what the Verilog cache depends on besides the design.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["REWRITES_KEY", "compact_zero_inits", "rewrite", "wake_processes"]

#: An ``initial`` block of element assignments, each to zero, as Yosys writes a memory's
#: initial contents (one line per element: 525k of the default processor's 746k lines).
_ZERO_INIT_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)initial begin\n"
    r"(?P<body>(?:[ \t]+(?:\\\S+ |[A-Za-z_][\w$]*)\[\d+\] = \d+'[bdh]0+;\n)+)"
    r"(?P=indent)end\n",
    re.MULTILINE,
)
_ZERO_INIT_ELEMENT = re.compile(r"[ \t]+(\\\S+ |[A-Za-z_][\w$]*)\[(\d+)\] = (\d+)'[bdh]0+;")
#: The loop that replaces such a block; a named block, so that each has its own index.
_ZERO_INIT_LOOP = (
    "{indent}initial begin : {label}\n"
    "{indent}  integer i;\n"
    "{indent}  for (i = 0; i < {count}; i = i + 1) {memory}[i] = {width}'h0;\n"
    "{indent}end\n"
)
#: Yosys's time-zero trigger of ``always @*`` processes, as it declares it.
_TRIGGER = re.compile(
    r"^(?P<indent>[ \t]*)reg (?P<name>\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$",
    re.MULTILINE,
)
_WAKE = "\\g<0>\n`ifndef VERILATOR\n\\g<indent>initial #0 \\g<name>= 1;\n`endif"


def compact_zero_inits(verilog: str) -> str:
    """``verilog`` with every all-zero memory initialiser written as a loop.

    Yosys spells a memory's initial contents one assignment per element, even when all are
    zero (the default processor: 525k such lines in 746k), which costs Verilator and Icarus
    time to parse and Verilator a huge constructor to compile. The zeros must stay: Icarus
    starts a ``reg`` array as X. A block is rewritten only if it assigns zero to elements
    ``0, 1, ..., N-1`` of one memory, in that order, with one width; any other (a non-zero
    value, a gap) is left as written.
    """
    prefix = "zero_init_"
    while prefix in verilog:  # block labels must not clash with any name in the design
        prefix = "_" + prefix
    blocks = 0

    def loop(block: re.Match[str]) -> str:
        nonlocal blocks
        elements = _ZERO_INIT_ELEMENT.findall(block["body"])
        memories = {memory for memory, _, _ in elements}
        widths = {width for _, _, width in elements}
        in_order = all(int(index) == i for i, (_, index, _) in enumerate(elements))
        if len(memories) != 1 or len(widths) != 1 or not in_order:
            return block[0]
        blocks += 1
        return _ZERO_INIT_LOOP.format(
            indent=block["indent"],
            label=f"{prefix}{blocks}",
            count=len(elements),
            memory=memories.pop(),
            width=widths.pop(),
        )

    return _ZERO_INIT_BLOCK.sub(loop, verilog)


def wake_processes(verilog: str) -> str:
    """``verilog`` with Yosys's time-zero process trigger toggled at ``#0`` (except under
    Verilator), so that an event-driven simulator in IEEE 1800 mode evaluates every
    ``always @*`` process once at start-up, as Verilog-2005 would."""
    return _TRIGGER.sub(_WAKE, verilog)


def rewrite(verilog: str) -> str:
    """Every rewrite of this module, as the build applies them."""
    return wake_processes(compact_zero_inits(verilog))


#: The cached Verilog depends on these rewrites: the text of this module.
REWRITES_KEY = Path(__file__).read_text()
