"""Fetch, decode, precise traps and dispatch into the three streams, with the token queues.

The control block of the NPU. The host loads the program into the instruction memory and
starts it at an entry index; the dispatcher then fetches, decodes and checks one instruction
at a time in program order and appends each to its stream's instruction queue. Every trap is
decided here, before the trapping instruction reaches a queue: the checks of
``edgenpu.isa.encoding.decode`` and ``edgenpu.isa.access.check`` (in
:class:`~edgenpu.rtl.trap_check.TrapCheck`), program-order token counts (underflow /
overflow) and the end of the program. So traps are precise: the dispatcher stops, the
streams drain, and only then is the trap reported, with the cause and instruction index
``edgenpu.sim.functional.dispatch`` gives.

Behind the queues, one :class:`~edgenpu.rtl.stream_issue.StreamIssue` per stream does the
token pops and pushes against four :class:`~edgenpu.rtl.token_queue.TokenQueue` counters
and hands instructions to the units. The cycle rules are in ``docs/microarchitecture.md``
("Dispatch and tokens"); their executable form is
``edgenpu.sim.benches.dispatcher_ref.timing``.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.isa import INSTRUCTION_BITS, SPECS, Opcode, Stream, TrapCause
from edgenpu.rtl.instruction_memory import InstructionMemory, host_layout
from edgenpu.rtl.isa_layout import INSTRUCTION_LAYOUT
from edgenpu.rtl.stream_issue import DONE, StreamIssue
from edgenpu.rtl.token_queue import TokenQueue
from edgenpu.rtl.trap_check import CAUSE_SHAPE, TrapCheck, allowed_flags, chain

__all__ = ["CYCLE_BITS", "QUEUES", "TOKEN_ORDER", "Dispatcher", "token_queue_of"]

#: Token queues, by (producer, consumer) stream, in the order of ``tokens``.
QUEUES = (
    (Stream.LOAD, Stream.COMPUTE),
    (Stream.COMPUTE, Stream.LOAD),
    (Stream.COMPUTE, Stream.STORE),
    (Stream.STORE, Stream.COMPUTE),
)
#: The order in which token flags are checked: the first failing one is the trap.
TOKEN_ORDER = ("pop_prev", "push_prev", "pop_next", "push_next")
#: Width of the cycle counter.
CYCLE_BITS = 32


def token_queue_of(stream_: Stream, flag: str) -> int:
    """Index in :data:`QUEUES` of the queue ``flag`` of an instruction in ``stream_`` uses
    (``prev`` is the stream before it in pipeline order, ``next`` the one after)."""
    other = Stream(stream_ - 1) if flag.endswith("prev") else Stream(stream_ + 1)
    pair = (other, stream_) if flag.startswith("pop") else (stream_, other)
    return QUEUES.index(pair)


class Dispatcher(wiring.Component):
    """Instruction memory, fetch/decode/check/dispatch, stream queues, issue and tokens.

    Parameters
    ----------
    config : HardwareConfig
        Sizes, precisions and formats for the checks; ``control.instruction_queue_depth``
        and ``control.token_queue_depth``.
    program_words : int
        Depth of the instruction memory, at least 1 (the config has no field for it yet).

    Members
    -------
    host : In(stream.Signature(StructLayout({"addr": index_bits, "data": 128})))
        Program loading, always ready (see :class:`InstructionMemory`).
    start : In(stream.Signature(start_layout))
        ``entry`` and ``length`` (both ``index_bits``): run from word ``entry``; fetching word
        ``length`` (or past the memory) is ``end_of_program``. Ready exactly while idle.
    load, compute, store : Out(stream.Signature(issue_layout))
        Instructions to each stream's unit, in program order, never a ``nop``: ``word``
        (128 bits; a unit reads its fields through ``data.View(INSTRUCTION_LAYOUT, word)``)
        and ``index`` (``index_bits``). The word is a plain number on the port because a
        port of the union layout names every field of every opcode in the Verilog, which
        made the design 2.5 times larger and its Verilator build as much slower.
    load_done, compute_done, store_done : In(DONE)
        One transfer per instruction when the unit has finished it.
    busy : Out(1)
        A program is running (from the cycle after ``start`` to ``halted``/``trapped``).
    halted, trapped : Out(1)
        How the last program ended; set when it has drained, cleared by the next ``start``.
    cause : Out(4)
        ``TrapCause`` value of the trap (0 unless ``trapped``).
    index : Out(index_bits)
        Index of the trapping instruction (``length`` for ``end_of_program``).
    cycles : Out(32)
        Cycles since the ``start`` transfer (cycle 0); frozen at the value of the first cycle
        in which ``halted`` or ``trapped`` is high.
    tokens : Out(ArrayLayout(range(token_queue_depth + 1), 4))
        Token counts of the queues of :data:`QUEUES`.
    """

    def __init__(self, config: HardwareConfig, program_words: int = 512) -> None:
        if not isinstance(config, HardwareConfig):
            raise TypeError(f"config must be a HardwareConfig, not {config!r}")
        if (
            isinstance(program_words, bool)
            or not isinstance(program_words, int)
            or program_words < 1
        ):
            raise ValueError(f"program_words must be a positive integer, not {program_words!r}")
        self.config = config
        self.program_words = program_words
        self.index_bits = program_words.bit_length()  # holds program_words itself
        self.queue_depth = config.control.instruction_queue_depth
        self.token_depth = config.control.token_queue_depth
        self.start_layout = data.StructLayout({"entry": self.index_bits, "length": self.index_bits})
        self.issue_layout = data.StructLayout({"word": INSTRUCTION_BITS, "index": self.index_bits})
        self.host_layout = host_layout(program_words)
        members = {
            "host": In(stream.Signature(self.host_layout)),
            "start": In(stream.Signature(self.start_layout)),
            "busy": Out(1),
            "halted": Out(1),
            "trapped": Out(1),
            "cause": Out(CAUSE_SHAPE),
            "index": Out(self.index_bits),
            "cycles": Out(CYCLE_BITS),
            "tokens": Out(data.ArrayLayout(range(self.token_depth + 1), len(QUEUES))),
        }
        for s in Stream:
            members[s.label] = Out(stream.Signature(self.issue_layout))
            members[f"{s.label}_done"] = In(DONE)
        super().__init__(members)

    @classmethod
    def from_config(cls, config: HardwareConfig, program_words: int = 512) -> Dispatcher:
        return cls(config, program_words)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.imem = imem = InstructionMemory(self.program_words)
        m.submodules.check = check = TrapCheck(self.config)
        wiring.connect(m, wiring.flipped(self.host), imem.host)
        queues = [TokenQueue(self.token_depth) for _ in QUEUES]
        for i, q in enumerate(queues):
            m.submodules[f"tokens{i}"] = q
            m.d.comb += self.tokens[i].eq(q.count)
        fifos, issues = {}, {}
        for s in Stream:
            fifos[s] = f = fifo.SyncFIFO(width=self.issue_layout.size, depth=self.queue_depth)
            issues[s] = issue = StreamIssue(s, self.issue_layout)
            m.submodules[f"{s.label}_queue"] = f
            m.submodules[f"{s.label}_issue"] = issue
            m.d.comb += [
                issue.queue.valid.eq(f.r_rdy),
                issue.queue.payload.eq(f.r_data),
                f.r_en.eq(issue.queue.ready),
            ]
            wiring.connect(m, wiring.flipped(getattr(self, s.label)), issue.out)
            wiring.connect(m, wiring.flipped(getattr(self, f"{s.label}_done")), issue.done)
            for flag in issue.flags:
                q = queues[token_queue_of(s, flag)]
                if flag.startswith("pop"):
                    m.d.comb += [
                        q.pop.eq(getattr(issue, flag)),
                        getattr(issue, f"{flag}_ok").eq(q.can_pop),
                    ]
                else:
                    m.d.comb += [
                        q.push.eq(getattr(issue, flag)),
                        getattr(issue, f"{flag}_ok").eq(q.can_push),
                    ]

        pc = Signal(self.index_bits)
        length = Signal(self.index_bits)
        counts = [
            Signal(range(self.token_depth + 1), name=f"order_tokens{i}") for i in range(len(QUEUES))
        ]
        stop_cause = Signal(CAUSE_SHAPE)
        stop_index = Signal(self.index_bits)
        cycles = Signal(CYCLE_BITS)
        m.d.comb += self.cycles.eq(cycles)

        ins = data.View(INSTRUCTION_LAYOUT, check.ins)
        opcode = ins.halt.opcode
        stream_of = Signal(2)
        for op in chain(m, opcode, Opcode):
            spec = SPECS[op]
            if op is Opcode.NOP:
                m.d.comb += stream_of.eq(ins.nop.stream)
            elif spec.stream is not None:
                m.d.comb += stream_of.eq(spec.stream.value)

        # Program-order token check: the first failing flag in TOKEN_ORDER is the trap.
        token_cause = Signal(CAUSE_SHAPE)
        moves = [Signal(range(-1, 2), name=f"move{i}") for i in range(len(QUEUES))]
        with m.If(opcode != Opcode.HALT.value):
            for s in chain(m, stream_of, Stream):
                flags = [f for f in TOKEN_ORDER if f in allowed_flags(Opcode.NOP, s)]
                for flag in reversed(flags):  # the last assignment wins
                    q = token_queue_of(s, flag)
                    wanted = getattr(ins.halt, flag)
                    if flag.startswith("pop"):
                        m.d.comb += moves[q].eq(-wanted)
                        with m.If(wanted & (counts[q] == 0)):
                            m.d.comb += token_cause.eq(TrapCause.TOKEN_UNDERFLOW.value)
                    else:
                        m.d.comb += moves[q].eq(wanted)
                        with m.If(wanted & (counts[q] == self.token_depth)):
                            m.d.comb += token_cause.eq(TrapCause.TOKEN_OVERFLOW.value)

        room = Signal()
        for s in chain(m, stream_of, Stream):
            m.d.comb += room.eq(fifos[s].w_rdy)
        entry = Signal(self.issue_layout)
        m.d.comb += [entry.word.eq(ins), entry.index.eq(pc)]
        for s in Stream:
            m.d.comb += fifos[s].w_data.eq(entry)

        drained = 1
        for s in Stream:
            drained = drained & ~fifos[s].r_rdy & issues[s].idle

        # The front end's state; an if-chain rather than m.FSM, whose partial case
        # statements Verilator's lint rejects.
        state = Signal(range(4))
        IDLE, DECODE, CHECK, DRAIN = range(4)
        # An unconditional expression: see StreamIssue on Icarus and always blocks.
        m.d.comb += self.start.ready.eq(state == IDLE)
        with m.If(state == IDLE):
            m.d.comb += imem.fetch_addr.eq(self.start.payload.entry)
            with m.If(self.start.valid):
                m.d.sync += [
                    pc.eq(self.start.payload.entry),
                    length.eq(self.start.payload.length),
                    cycles.eq(1),
                    self.busy.eq(1),
                    self.halted.eq(0),
                    self.trapped.eq(0),
                    self.cause.eq(0),
                    self.index.eq(0),
                ]
                m.d.sync += state.eq(DECODE)
        with m.Elif(state == DECODE):
            m.d.comb += [check.word.eq(imem.fetch_data), check.load.eq(1)]
            m.d.sync += cycles.eq(cycles + 1)
            m.d.sync += state.eq(CHECK)
        with m.Elif(state == CHECK):
            m.d.comb += imem.fetch_addr.eq(pc + 1)
            m.d.sync += cycles.eq(cycles + 1)
            end = (pc >= length) | (pc >= self.program_words)
            with m.If(end):
                # Reported at the program's length, as functional.dispatch does (also when
                # the entry lies past it).
                m.d.sync += [stop_cause.eq(TrapCause.END_OF_PROGRAM.value), stop_index.eq(length)]
                m.d.sync += state.eq(DRAIN)
            with m.Elif(check.cause != 0):
                m.d.sync += [stop_cause.eq(check.cause), stop_index.eq(pc)]
                m.d.sync += state.eq(DRAIN)
            with m.Elif(token_cause != 0):
                m.d.sync += [stop_cause.eq(token_cause), stop_index.eq(pc)]
                m.d.sync += state.eq(DRAIN)
            with m.Elif(opcode == Opcode.HALT.value):
                m.d.sync += stop_cause.eq(TrapCause.NONE.value)
                m.d.sync += state.eq(DRAIN)
            with m.Elif(room):
                for s in chain(m, stream_of, Stream):
                    m.d.comb += fifos[s].w_en.eq(1)
                m.d.sync += [c.eq(c + mv) for c, mv in zip(counts, moves, strict=True)]
                m.d.sync += pc.eq(pc + 1)
                m.d.sync += state.eq(DECODE)
        with m.Elif(state == DRAIN):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(drained):
                m.d.sync += [
                    self.busy.eq(0),
                    self.halted.eq(stop_cause == TrapCause.NONE.value),
                    self.trapped.eq(stop_cause != TrapCause.NONE.value),
                    self.cause.eq(stop_cause),
                    self.index.eq(stop_index),
                ]
                m.d.sync += state.eq(IDLE)

        return m
