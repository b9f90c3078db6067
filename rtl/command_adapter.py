"""Turns the dispatcher's instruction words into a unit's command struct.

The dispatcher hands each stream's unit a plain 128-bit word (see
:class:`~edgenpu.rtl.dispatcher.Dispatcher`); a unit takes a :func:`command_layout` struct.
The adapter views the word through :data:`INSTRUCTION_LAYOUT` and copies every field of the
command by name, from the view of the opcode that has it, so no width or offset is typed
here. A field several opcodes share at different offsets (``dram`` of ``load`` and
``load_wgt``) is chosen by the opcode; fields at the same offset need no multiplexer.
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.isa import INSTRUCTION_BITS, SPECS, Opcode
from edgenpu.rtl.isa_layout import INSTRUCTION_LAYOUT, command_layout, instruction_layout

__all__ = ["CommandAdapter", "command_fields"]


def command_fields(word: Value, opcodes: tuple[Opcode, ...]) -> dict[str, Value]:
    """Every member of ``command_layout(*opcodes)`` as an expression of the 128-bit ``word``.

    Parameters
    ----------
    word : Value
        An instruction word (128 bits).
    opcodes : tuple of Opcode
        The opcodes of the command, as given to :func:`command_layout`.
    """
    view = data.View(INSTRUCTION_LAYOUT, word)
    opcode = view.halt.opcode  # the header is common to every opcode
    out: dict[str, Value] = {}
    for name in command_layout(*opcodes).members:
        if name == "opcode":
            out[name] = opcode
            continue
        have = [op for op in opcodes if any(f.name == name for f in SPECS[op].fields)]
        value = getattr(getattr(view, have[0].label), name)
        first = dict(instruction_layout(have[0]))[name].offset
        for op in have[1:]:
            if dict(instruction_layout(op))[name].offset != first:
                value = Mux(opcode == op.value, getattr(getattr(view, op.label), name), value)
        out[name] = value
    return out


class CommandAdapter(wiring.Component):
    """A stream of instruction words in, a stream of ``command_layout(*opcodes)`` out.

    Purely combinational: ``valid``, ``ready`` and the fields pass straight through.

    Parameters
    ----------
    issue_layout : data.StructLayout
        The dispatcher's stream payload; it must have a ``word`` member (128 bits).
    opcodes : tuple of Opcode
        The opcodes the unit behind executes (at least one).

    Members
    -------
    issue : In(stream.Signature(issue_layout))
        From the dispatcher's stream.
    cmd : Out(stream.Signature(command_layout(*opcodes)))
        To the unit's ``cmd``.
    """

    def __init__(self, issue_layout: data.StructLayout, opcodes: tuple[Opcode, ...]) -> None:
        if not isinstance(issue_layout, data.StructLayout) or "word" not in issue_layout.members:
            raise TypeError(
                f"issue_layout must be a StructLayout with a word, not {issue_layout!r}"
            )
        if Shape.cast(issue_layout.members["word"]).width != INSTRUCTION_BITS:
            raise TypeError(f"issue_layout's word must be {INSTRUCTION_BITS} bits wide")
        opcodes = tuple(opcodes)
        if not opcodes or not all(isinstance(op, Opcode) for op in opcodes):
            raise TypeError(f"opcodes must be a non-empty list of Opcode, not {opcodes!r}")
        self.issue_layout = issue_layout
        self.opcodes = opcodes
        self.cmd_layout = command_layout(*opcodes)
        super().__init__(
            {
                "issue": In(stream.Signature(issue_layout)),
                "cmd": Out(stream.Signature(self.cmd_layout)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        fields = command_fields(self.issue.payload.word, self.opcodes)
        m.d.comb += [
            self.cmd.valid.eq(self.issue.valid),
            self.issue.ready.eq(self.cmd.ready),
        ]
        m.d.comb += [getattr(self.cmd.payload, n).eq(v) for n, v in fields.items()]
        return m
