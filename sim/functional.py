"""The functional simulator: executes a program bit-exactly, one instruction at a time.

It defines what a program *computes*; the RTL must agree with it byte for byte and the
performance model adds *when* on top of it. Instructions run in program order, which the
token rules (see :mod:`edgenpu.isa.spec`) make one legal schedule of the hardware's three
concurrent streams. Each instruction is one vectorised numpy step, so a million-MAC matmul
costs milliseconds.

Traps are precise: the trapping instruction has no effect, every earlier one has completed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edgenpu import fixedpoint, formats
from edgenpu.config import HardwareConfig
from edgenpu.errors import ProgramError
from edgenpu.isa import (
    LUT_ENTRIES,
    IllegalInstruction,
    Instruction,
    Opcode,
    OperandKind,
    Program,
    Space,
    Stream,
    Symbol,
    SymbolKind,
    TrapCause,
    decode,
    stream_of,
)
from edgenpu.isa.access import Trap, check, vector_operands
from edgenpu.isa.disasm import disassemble_word
from edgenpu.precision import pack, packed_size, unpack

__all__ = [
    "Dispatch",
    "ExecStats",
    "Machine",
    "RunResult",
    "TrapReport",
    "dispatch",
    "execute",
    "load_image",
    "resolve_entry",
    "run",
    "token_queues",
]

#: Token queues, by (producer, consumer) stream.
QUEUES = (
    (Stream.LOAD, Stream.COMPUTE),
    (Stream.COMPUTE, Stream.LOAD),
    (Stream.COMPUTE, Stream.STORE),
    (Stream.STORE, Stream.COMPUTE),
)


@dataclass
class Machine:
    """Architectural state: DRAM, the four on-chip memories and the token queue counts.

    Every memory is a flat ``uint8`` array; typed views (``int16`` activations, ``int32``
    accumulators) are taken on access, little-endian as in hardware.
    """

    dram: np.ndarray
    wgt: np.ndarray
    act: np.ndarray
    acc: np.ndarray
    lut: np.ndarray
    tokens: dict[tuple[Stream, Stream], int]

    @classmethod
    def empty(cls, config: HardwareConfig) -> Machine:
        return cls(
            dram=np.zeros(config.dram.bytes, np.uint8),
            wgt=np.zeros(config.sram.weight_bytes, np.uint8),
            act=np.zeros(config.sram.activation_bytes, np.uint8),
            acc=np.zeros(config.sram.accumulator_bytes, np.uint8),
            lut=np.zeros(config.sram.lut_bytes, np.uint8),
            tokens=dict.fromkeys(QUEUES, 0),
        )

    def space(self, space: Space) -> np.ndarray:
        return {Space.WGT: self.wgt, Space.ACT: self.act, Space.ACC: self.acc, Space.LUT: self.lut}[
            space
        ]

    def read_symbol(self, symbol: Symbol) -> np.ndarray:
        """The values of a data, output or weights symbol as they are now in DRAM."""
        raw = self.dram[symbol.addr : symbol.addr + symbol.nbytes]
        if symbol.kind is SymbolKind.WEIGHTS:
            values, _ = formats.decode(
                raw, symbol.count, symbol.format, symbol.precision, strict=False
            )
            return values.reshape(symbol.shape)
        if symbol.kind is SymbolKind.ENTRY:
            raise ValueError(f"{symbol.name} is an entry point, not data")
        return raw.view(symbol.dtype.numpy).reshape(symbol.shape).copy()


@dataclass
class ExecStats:
    """What the program did, counted as it ran (no timing: that is the performance model)."""

    executed: int = 0
    by_opcode: Counter = field(default_factory=Counter)
    macs: int = 0
    nonzero_weight_macs: int = 0
    nonzero_macs: int = 0
    vector_elements: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    weight_stream_bytes: int = 0
    dense_weight_bytes: int = 0

    def count(self, ins: Instruction) -> None:
        self.executed += 1
        self.by_opcode[ins.opcode] += 1

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "by_opcode"}
        out["by_opcode"] = {op.label: n for op, n in sorted(self.by_opcode.items())}
        return out


@dataclass(frozen=True)
class TrapReport:
    """Where and why a program stopped abnormally."""

    cause: TrapCause
    index: int
    text: str
    message: str

    def __str__(self) -> str:
        return f"trap {self.cause.label} at instruction {self.index} ({self.text}): {self.message}"


@dataclass
class RunResult:
    """The outcome of :func:`run`: final state, whether it halted or trapped, statistics."""

    machine: Machine
    halted: bool
    trap: TrapReport | None
    stats: ExecStats
    program: Program

    def outputs(self) -> dict[str, np.ndarray]:
        """Every output symbol's values, read from final DRAM."""
        return {
            s.name: self.machine.read_symbol(s) for s in self.program.symbols_of(SymbolKind.OUTPUT)
        }


def load_image(program: Program, config: HardwareConfig) -> Machine:
    """A machine with the program's DRAM image in place and everything else zero.

    Raises
    ------
    ProgramError
        If a segment or symbol lies beyond the config's DRAM.
    """
    machine = Machine.empty(config)
    if program.dram_extent > config.dram.bytes:
        raise ProgramError(
            f"DRAM image needs {program.dram_extent:#x} bytes, config {config.name} has "
            f"{config.dram.bytes:#x}"
        )
    for seg in program.segments:
        machine.dram[seg.addr : seg.end] = np.frombuffer(seg.data, np.uint8)
    return machine


@dataclass(frozen=True)
class Dispatch:
    """The outcome of dispatching a program in order: what runs, and how it ends.

    Every check is static (see :mod:`edgenpu.isa.access`), token counts included, so this
    pass alone decides whether and where the program traps; executing is then only a matter
    of applying the instructions, in program order or in any legal interleaving.
    """

    instructions: tuple[Instruction, ...]
    halted: bool
    trap: TrapReport | None
    tokens: dict[tuple[Stream, Stream], int]


def dispatch(
    program: Program,
    config: HardwareConfig,
    entry: int = 0,
    tokens: dict[tuple[Stream, Stream], int] | None = None,
) -> Dispatch:
    """Decode and check ``program`` from ``entry`` in order, up to its halt or trap."""
    tokens = dict(tokens if tokens is not None else dict.fromkeys(QUEUES, 0))
    issued: list[Instruction] = []
    for pc in range(entry, len(program.words)):
        word = program.words[pc]
        try:
            ins = decode(word)
            problem = check(ins, config) or _token_trap(ins, tokens, config)
        except IllegalInstruction as e:
            problem = Trap(TrapCause.ILLEGAL_INSTRUCTION, str(e))
        if problem is not None:
            # The trap message already says why a word is illegal; keep the text itself.
            text = disassemble_word(word).split(" ; ")[0]
            report = TrapReport(problem.cause, pc, text, problem.message)
            return Dispatch(tuple(issued), False, report, tokens)
        _move_tokens(ins, tokens)
        if ins.opcode is Opcode.HALT:
            return Dispatch(tuple(issued), True, None, tokens)
        issued.append(ins)
    trap = TrapReport(
        TrapCause.END_OF_PROGRAM,
        len(program.words),
        "(past the end)",
        f"no halt before the end of the program ({len(program.words)} instructions)",
    )
    return Dispatch(tuple(issued), False, trap, tokens)


def resolve_entry(program: Program, entry: int | str) -> int:
    """An entry point given as an instruction index or an entry symbol's name."""
    if isinstance(entry, int):
        return entry
    try:
        sym = program.symbol(entry)
    except KeyError:
        raise ProgramError(f"no entry point named {entry!r}") from None
    if sym.kind is not SymbolKind.ENTRY:
        raise ProgramError(f"{entry!r} is a {sym.kind.label} symbol, not an entry point")
    return sym.addr


def run(
    program: Program,
    config: HardwareConfig,
    *,
    entry: int | str = 0,
    machine: Machine | None = None,
) -> RunResult:
    """Execute ``program`` from ``entry`` until it halts or traps.

    Parameters
    ----------
    program : Program
    config : HardwareConfig
        Memory sizes, supported precisions/formats and token queue depth.
    entry : int or str
        Instruction index or the name of an entry symbol.
    machine : Machine, optional
        Starting state (for chaining kernels); the program's image is loaded if omitted.
    """
    state = machine if machine is not None else load_image(program, config)
    plan = dispatch(program, config, resolve_entry(program, entry), state.tokens)
    stats = ExecStats()
    for ins in plan.instructions:
        execute(ins, state, stats)
    state.tokens = dict(plan.tokens)
    if plan.halted:
        stats.count(Instruction.make(Opcode.HALT))
    return RunResult(state, plan.halted, plan.trap, stats, program)


def execute(ins: Instruction, state: Machine, stats: ExecStats) -> None:
    """Apply one checked instruction's effect on memory (tokens are the caller's)."""
    stats.count(ins)
    _EXECUTE.get(ins.opcode, _nothing)(ins, state, stats)


# -- dependency tokens ------------------------------------------------------------------


def token_queues(ins: Instruction) -> dict[str, tuple[Stream, Stream]]:
    """The (producer, consumer) queue of each token flag set on ``ins``, by flag name."""
    me = stream_of(ins)
    if me is None:
        return {}
    prev = Stream(me - 1) if me is not Stream.LOAD else None
    nxt = Stream(me + 1) if me is not Stream.STORE else None
    out = {}
    if prev is not None:
        out |= {"pop_prev": (prev, me), "push_prev": (me, prev)}
    if nxt is not None:
        out |= {"pop_next": (nxt, me), "push_next": (me, nxt)}
    return {flag: q for flag, q in out.items() if ins[flag]}


def _token_trap(
    ins: Instruction, tokens: dict[tuple[Stream, Stream], int], config: HardwareConfig
) -> Trap | None:
    for flag, (src, dst) in token_queues(ins).items():
        count = tokens[(src, dst)]
        if flag.startswith("pop") and count == 0:
            return Trap(
                TrapCause.TOKEN_UNDERFLOW,
                f"waits for a {src.label} token but the {src.label}->{dst.label} queue "
                "is empty (no earlier instruction signalled it)",
            )
        if flag.startswith("push") and count >= config.control.token_queue_depth:
            return Trap(
                TrapCause.TOKEN_OVERFLOW,
                f"signals {dst.label} but the {src.label}->{dst.label} queue is full "
                f"({config.control.token_queue_depth} tokens)",
            )
    return None


def _move_tokens(ins: Instruction, tokens: dict[tuple[Stream, Stream], int]) -> None:
    for flag, queue in token_queues(ins).items():
        tokens[queue] += -1 if flag.startswith("pop") else 1


# -- execution --------------------------------------------------------------------------


def _nothing(ins: Instruction, state: Machine, stats: ExecStats) -> None:
    pass


def _strided(memory: np.ndarray, start: int, rows: int, row_bytes: int, stride: int):
    # as_strided does no bounds checking; the dispatch checks guarantee this, and a slip
    # there must fail loudly here rather than read or write outside the memory.
    assert start + (rows - 1) * stride + row_bytes <= memory.size
    return np.lib.stride_tricks.as_strided(
        memory[start:], shape=(rows, row_bytes), strides=(stride, 1), writeable=True
    )


def _load(ins: Instruction, state: Machine, stats: ExecStats) -> None:
    rows, unit = ins["rows"], ins["space"].unit_bytes
    row_bytes = ins["len"] * unit
    if not rows or not row_bytes:
        return
    block = _strided(state.dram, ins["dram"], rows, row_bytes, ins["stride"]).reshape(-1)
    start = ins["sram"] * unit
    state.space(ins["space"])[start : start + block.size] = block
    stats.dram_read_bytes += block.size


def _store(ins: Instruction, state: Machine, stats: ExecStats) -> None:
    rows, unit, stride = ins["rows"], ins["space"].unit_bytes, ins["stride"]
    row_bytes = ins["len"] * unit
    if not rows or not row_bytes:
        return
    start = ins["sram"] * unit
    block = state.space(ins["space"])[start : start + rows * row_bytes].reshape(rows, row_bytes)
    if stride >= row_bytes:
        _strided(state.dram, ins["dram"], rows, row_bytes, stride)[:] = block
    else:
        # Rows overlap in DRAM: the DMA writes them in order, so later rows win.
        for r in range(rows):
            at = ins["dram"] + r * stride
            state.dram[at : at + row_bytes] = block[r]
    stats.dram_write_bytes += rows * row_bytes


def _load_wgt(ins: Instruction, state: Machine, stats: ExecStats) -> None:
    count, prec = ins["count"], ins["prec"]
    if not count:
        return
    values, consumed = formats.decode(
        state.dram[ins["dram"] :], count, ins["format"], prec, strict=False
    )
    dense = np.frombuffer(pack(values, prec), np.uint8)
    state.wgt[ins["wgt"] : ins["wgt"] + dense.size] = dense
    stats.dram_read_bytes += consumed
    stats.weight_stream_bytes += consumed
    stats.dense_weight_bytes += dense.size


def _matmul(ins: Instruction, state: Machine, stats: ExecStats) -> None:
    rows, cols, n, prec = ins["rows"], ins["cols"], ins["n"], ins["prec"]
    if not (rows and cols and n):
        return
    w = unpack(
        state.wgt[ins["w"] : ins["w"] + packed_size(rows * cols, prec)], rows * cols, prec
    ).reshape(rows, cols)
    x = _strided(state.act.view(np.int8), ins["x"], n, cols, ins["x_stride"])
    # float64 products and sums of int8 values are exact integers far below 2**53
    # (|sum| < 4095 * 2**14), so BLAS gives the bit-exact result at BLAS speed.
    y = (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    acc_words = state.acc.view("<i4")
    out = np.lib.stride_tricks.as_strided(
        acc_words[ins["acc"] :],
        shape=(n, rows),
        strides=(ins["acc_stride"] * 4, 4),
        writeable=True,
    )
    if ins["accumulate"]:
        y = y + out
    out[:] = fixedpoint.wrap_int32(y)
    w_nonzero = (w != 0).sum(axis=0)
    stats.macs += rows * cols * n
    stats.nonzero_weight_macs += int(w_nonzero.sum()) * n
    stats.nonzero_macs += int(((x != 0) @ w_nonzero).sum())


def _operand_view(state: Machine, kind: OperandKind, addr: int, count: int) -> np.ndarray:
    if kind is OperandKind.ACC_I32:
        return state.acc.view("<i4")[addr : addr + count]
    if kind is OperandKind.ACT_I16:
        return state.act[addr : addr + 2 * count].view("<i2")
    return state.act[addr : addr + count].view(np.int8)


_BINARY = {
    Opcode.VADD: np.add,
    Opcode.VSUB: np.subtract,
    Opcode.VMUL: np.multiply,
    Opcode.VMAX: np.maximum,
    Opcode.VMIN: np.minimum,
}


def _vector(ins: Instruction, state: Machine, stats: ExecStats) -> None:
    n = ins["len"]
    if not n:
        return
    d, a, *b = vector_operands(ins)
    # Read every source before writing: identical in-place ranges are the only overlap the
    # checks allow, and for those this equals the hardware's element-by-element order.
    x = _operand_view(state, a.kind, a.addr, a.elements).astype(np.int64)
    op = ins.opcode
    if op in _BINARY:
        (bo,) = b
        y = _operand_view(state, bo.kind, bo.addr, bo.elements).astype(np.int64)
        if bo.elements < n:
            y = np.resize(y, n)  # wraps every `period` elements
        r = fixedpoint.rounding_shift_right(_BINARY[op](x, y), ins["shift"])
    else:
        r = fixedpoint.rounding_shift_right(x, ins["shift"])
        if op is Opcode.VRELU:
            r = np.maximum(r, 0)
        elif op is Opcode.VCLAMP:
            r = np.minimum(np.maximum(r, ins["lo"]), ins["hi"])
        elif op is Opcode.VLUT:
            base = ins["table"] * LUT_ENTRIES
            table = state.lut[base : base + LUT_ENTRIES].view(np.int8).astype(np.int64)
            r = table[fixedpoint.saturate(r, 8) + 128]
    result = fixedpoint.saturate(r, d.kind.bits)
    _operand_view(state, d.kind, d.addr, n)[:] = result
    stats.vector_elements += n


_EXECUTE = {
    Opcode.LOAD: _load,
    Opcode.STORE: _store,
    Opcode.LOAD_WGT: _load_wgt,
    Opcode.MATMUL: _matmul,
    **{op: _vector for op in Opcode if op.is_vector},
}
