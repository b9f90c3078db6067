"""Decode and static trap checks of one instruction word, in two pipeline stages.

It reproduces ``edgenpu.isa.encoding.decode`` (what makes a word an illegal instruction) and
``edgenpu.isa.access.check`` (unsupported, misaligned, address out of range, operand
overlap) for one hardware configuration, cause for cause and in the same priority order.
Token traps and the end of the program are the dispatcher's (it owns the counts and the
program counter).

Every legal value set, field offset, memory size and worst-case stream length is derived
here, at elaboration, from :mod:`edgenpu.isa.spec`, :mod:`edgenpu.formats` and the config;
no width or value is typed by hand.

Stage 1 (the cycle ``load`` is high) decodes the word, computes every range's end (this is
where the multipliers are: DMA ``(rows - 1) * stride``, on-chip ``rows * len``, matmul
``rows * cols``, ``(n - 1) * x_stride``, ``(n - 1) * acc_stride``, ``load_wgt`` blocks times
the format's worst block) and the vector overlap comparisons, and registers them. Stage 2
(combinational from those registers, valid from the next cycle) compares the ends with the
memory sizes and encodes the cause. Splitting there keeps a multiplier and a wide comparator
out of one cycle.
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.formats import BLOCK, WeightFormat, max_encoded_size
from edgenpu.isa import (
    HEADER,
    INSTRUCTION_BITS,
    LUT_ENTRIES,
    SPECS,
    IllegalInstruction,
    Instruction,
    Opcode,
    OperandKind,
    Space,
    Stream,
    TrapCause,
)
from edgenpu.precision import Precision, packed_size
from edgenpu.rtl.isa_layout import INSTRUCTION_LAYOUT

__all__ = ["CAUSE_SHAPE", "FLAGS", "TrapCheck", "allowed_flags", "chain", "worst_stream_model"]

#: The dependency-token flags of the header, in layout order.
FLAGS = tuple(f.name for f in HEADER[1:])
#: Wide enough for every ``TrapCause`` value.
CAUSE_SHAPE = unsigned(max(TrapCause).bit_length())
#: Range ends are computed this wide: a DRAM address (32 bits) plus a 12 x 24 bit product
#: plus a row of words is below 2**38.
_END_BITS = 40


def allowed_flags(opcode: Opcode, stream: Stream | None = None) -> tuple[str, ...]:
    """The token flags ``opcode`` may set (for ``nop``, in ``stream``), asked of the
    encoder itself so that the decoder cannot disagree with it."""
    extra = {"stream": stream} if opcode is Opcode.NOP else {}
    out = []
    for flag in FLAGS:
        try:
            Instruction.make(opcode, **extra, **{flag: 1})
        except IllegalInstruction:
            continue
        out.append(flag)
    return tuple(out)


def worst_stream_model(fmt: WeightFormat, prec: Precision) -> tuple[str, int]:
    """How ``max_encoded_size(count, fmt, prec)`` is computed in hardware.

    ``("packed", 0)``: it is ``packed_size(count, prec)``; ``("blocks", k)``: it is
    ``ceil(count / BLOCK) * k``. The model is checked against the Python function over a
    range of counts; a format that fits neither is an error here, not a silent mismatch.
    """
    counts = [*range(0, 3 * BLOCK + 2), 1000, 65535, (1 << 21) - 1]
    if all(max_encoded_size(c, fmt, prec) == packed_size(c, prec) for c in counts):
        return ("packed", 0)
    k = max_encoded_size(BLOCK, fmt, prec)
    if all(max_encoded_size(c, fmt, prec) == -(-c // BLOCK) * k for c in counts):
        return ("blocks", k)
    raise NotImplementedError(f"no hardware model of the worst-case size of {fmt.label} {prec}")


def _packed(count, prec_bits: int):
    """``packed_size`` for a precision of ``prec_bits`` (8 or 4)."""
    return count if prec_bits == 8 else (count + 1) >> 1


class TrapCheck(wiring.Component):
    """Illegal-instruction detection and the static checks of ``edgenpu.isa.access``.

    Parameters
    ----------
    config : HardwareConfig
        Memory sizes, supported precisions and weight formats.

    Members
    -------
    word : In(128)
        The instruction word (viewed through ``INSTRUCTION_LAYOUT``), sampled in a cycle
        with ``load`` high.
    load : In(1)
        Register ``word``'s decode (stage 1) this cycle.
    ins : Out(128)
        The word last loaded.
    cause : Out(CAUSE_SHAPE)
        From the cycle after ``load``: the ``TrapCause`` value of the first failing check of
        ``ins`` in the order ``illegal_instruction``, ``unsupported``, ``misaligned``,
        ``address_out_of_range``, ``operand_overlap``; ``0`` (``none``) if all pass.
    """

    def __init__(self, config: HardwareConfig) -> None:
        if not isinstance(config, HardwareConfig):
            raise TypeError(f"config must be a HardwareConfig, not {config!r}")
        self.config = config
        self.sizes = {space: config.sram_size(space) for space in Space}
        self.dram_bytes = config.dram.bytes
        self.worst = {
            (f, p): worst_stream_model(f, p) for f in WeightFormat for p in config.mac.precisions
        }
        super().__init__(
            {
                "word": In(INSTRUCTION_BITS),
                "load": In(1),
                "ins": Out(INSTRUCTION_BITS),
                "cause": Out(CAUSE_SHAPE),
            }
        )

    @classmethod
    def from_config(cls, config: HardwareConfig) -> TrapCheck:
        return cls(config)

    def elaborate(self, platform) -> Module:
        m = Module()
        w = data.View(INSTRUCTION_LAYOUT, self.word)
        opcode = w.halt.opcode

        illegal = Signal()
        unsupported = Signal()
        misaligned = Signal()
        overlap = Signal()
        # Up to four ranges per instruction: (end, limit, enabled), registered.
        ends = [Signal(_END_BITS, name=f"end{i}") for i in range(4)]
        limits = [Signal(_END_BITS, name=f"limit{i}") for i in range(4)]
        checks = [Signal(name=f"check{i}") for i in range(4)]

        def enum_illegal(view, spec) -> list:
            bad = []
            for f in spec.all_fields[1:]:
                if f.enum is not None and len(f.enum) < (1 << f.width):
                    legal = [e.value for e in f.enum]
                    value = getattr(view, f.name)
                    bad.append(~value.matches(*legal))
            return bad

        def flag_illegal(view, allowed) -> object:
            bad = [getattr(view, f) for f in FLAGS if f not in allowed]
            return _any(bad)

        def set_range(i: int, end, limit: int, enable) -> None:
            m.d.comb += [ends[i].eq(end), limits[i].eq(limit), checks[i].eq(enable)]

        for op in chain(m, opcode, Opcode):
            spec = SPECS[op]
            view = getattr(w, op.label)
            bad = [*enum_illegal(view, spec), view.reserved != 0]
            if op is Opcode.NOP:
                for s in chain(m, view.stream, Stream):
                    m.d.comb += illegal.eq(_any([*bad, flag_illegal(view, allowed_flags(op, s))]))
                with m.Else():
                    m.d.comb += illegal.eq(1)
            else:
                m.d.comb += illegal.eq(_any([*bad, flag_illegal(view, allowed_flags(op))]))
            if op in (Opcode.LOAD, Opcode.STORE):
                self._dma(m, view, set_range)
            elif op is Opcode.LOAD_WGT:
                self._load_wgt(m, view, unsupported, set_range)
            elif op is Opcode.MATMUL:
                self._matmul(m, view, unsupported, overlap, set_range)
            elif op.is_vector:
                self._vector(m, op, view, misaligned, overlap, set_range)
        with m.Else():
            m.d.comb += illegal.eq(1)

        r_illegal, r_unsupported, r_misaligned, r_overlap = (
            Signal(name=f"r_{n}") for n in ("illegal", "unsupported", "misaligned", "overlap")
        )
        r_ends = [Signal(_END_BITS, name=f"r_end{i}") for i in range(4)]
        r_limits = [Signal(_END_BITS, name=f"r_limit{i}") for i in range(4)]
        r_checks = [Signal(name=f"r_check{i}") for i in range(4)]
        with m.If(self.load):
            m.d.sync += [
                self.ins.eq(self.word),
                r_illegal.eq(illegal),
                r_unsupported.eq(unsupported),
                r_misaligned.eq(misaligned),
                r_overlap.eq(overlap),
            ]
            for i in range(4):
                m.d.sync += [
                    r_ends[i].eq(ends[i]),
                    r_limits[i].eq(limits[i]),
                    r_checks[i].eq(checks[i]),
                ]

        out_of_range = _any([r_checks[i] & (r_ends[i] > r_limits[i]) for i in range(4)])
        with m.If(r_illegal):
            m.d.comb += self.cause.eq(TrapCause.ILLEGAL_INSTRUCTION.value)
        with m.Elif(r_unsupported):
            m.d.comb += self.cause.eq(TrapCause.UNSUPPORTED.value)
        with m.Elif(r_misaligned):
            m.d.comb += self.cause.eq(TrapCause.MISALIGNED.value)
        with m.Elif(out_of_range):
            m.d.comb += self.cause.eq(TrapCause.ADDRESS_OUT_OF_RANGE.value)
        with m.Elif(r_overlap):
            m.d.comb += self.cause.eq(TrapCause.OPERAND_OVERLAP.value)
        return m

    # -- per-instruction checks (stage 1) -------------------------------------------------

    def _dma(self, m: Module, v, set_range) -> None:
        nonempty = (v.rows != 0) & (v.len != 0)
        for space in chain(m, v.space, Space):
            span = (v.rows - 1) * v.stride + v.len * space.unit_bytes
            set_range(0, v.dram + span, self.dram_bytes, nonempty)
            set_range(1, v.sram + v.rows * v.len, self.sizes[space], nonempty)

    def _unsupported_prec(self, m: Module, v, unsupported) -> None:
        supported = [p.value for p in self.config.mac.precisions]
        m.d.comb += unsupported.eq(~v.prec.matches(*supported))

    def _load_wgt(self, m: Module, v, unsupported, set_range) -> None:
        self._unsupported_prec(m, v, unsupported)
        formats = [f.value for f in self.config.decompressor.formats]
        with m.If(~v.format.matches(*formats)):
            m.d.comb += unsupported.eq(1)
        nonempty = v.count != 0
        blocks = (v.count + (BLOCK - 1)) >> (BLOCK.bit_length() - 1)
        assert 1 << (BLOCK.bit_length() - 1) == BLOCK
        for prec in chain(m, v.prec, self.config.mac.precisions):
            set_range(1, v.wgt + _packed(v.count, prec.bits), self.sizes[Space.WGT], nonempty)
            for fmt in chain(m, v.format, WeightFormat):
                kind, k = self.worst[(fmt, prec)]
                worst = _packed(v.count, prec.bits) if kind == "packed" else blocks * k
                set_range(0, v.dram + worst, self.dram_bytes, nonempty)

    def _matmul(self, m: Module, v, unsupported, overlap, set_range) -> None:
        self._unsupported_prec(m, v, unsupported)
        nonempty = (v.rows != 0) & (v.cols != 0) & (v.n != 0)
        for prec in chain(m, v.prec, self.config.mac.precisions):
            w_bytes = _packed(v.rows * v.cols, prec.bits)
            set_range(0, v.w + w_bytes, self.sizes[Space.WGT], nonempty)
        x_end = v.x + (v.n - 1) * v.x_stride + v.cols
        set_range(1, x_end, self.sizes[Space.ACT], nonempty)
        acc_end = v.acc + (v.n - 1) * v.acc_stride + v.rows
        set_range(2, acc_end, self.sizes[Space.ACC], nonempty)
        m.d.comb += overlap.eq((v.n > 1) & (v.acc_stride < v.rows))

    def _vector(self, m: Module, op: Opcode, v, misaligned, overlap, set_range) -> None:
        names = ["d", "a"] + (["b"] if hasattr(v, "b_kind") else [])
        operands = {}
        for i, name in enumerate(names):
            kind, addr = getattr(v, f"{name}_kind"), getattr(v, f"{name}_addr")
            if name == "b":
                elements = Signal.like(v.len, name="b_elements")
                with m.If((v.period != 0) & (v.period < v.len)):
                    m.d.comb += elements.eq(v.period)
                with m.Else():
                    m.d.comb += elements.eq(v.len)
            else:
                elements = v.len
            end = Signal(_END_BITS, name=f"{name}_end")
            space = Signal(2, name=f"{name}_space")
            for k in chain(m, kind, OperandKind):
                m.d.comb += [
                    end.eq(addr + elements * k.element_units),
                    space.eq(k.space.value),
                ]
                set_range(i, end, self.sizes[k.space], v.len != 0)
            operands[name] = (kind, addr, end, space)
            with m.If((kind == OperandKind.ACT_I16.value) & addr[0]):
                m.d.comb += misaligned.eq(1)
        if op is Opcode.VLUT:
            table = v.table * LUT_ENTRIES
            set_range(3, table + LUT_ENTRIES, self.sizes[Space.LUT], v.len != 0)
        d_kind, d_addr, d_end, d_space = operands["d"]
        hits = []
        for name in names[1:]:
            kind, addr, end, space = operands[name]
            same = (addr == d_addr) & (end == d_end) & (kind == d_kind)
            hits.append((space == d_space) & (addr < d_end) & (d_addr < end) & ~same)
        m.d.comb += overlap.eq((v.len != 0) & _any(hits))


def chain(m: Module, subject, values):
    """Yield each of ``values`` inside ``m.If`` / ``m.Elif(subject == value)``.

    Used instead of ``m.Switch``: Yosys writes a switch whose cases do not cover every
    value as an incomplete ``case``, which Verilator's lint rejects; an if-chain is clean.
    """
    for i, value in enumerate(values):
        with (m.If if i == 0 else m.Elif)(subject == int(value)):
            yield value


def _any(terms: list):
    out = 0
    for t in terms:
        out = out | t
    return out
