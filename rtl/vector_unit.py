"""The vector unit: every ``v*`` instruction, ``V`` elements per cycle.

It reproduces ``edgenpu.sim.functional``'s ``_vector`` byte for byte: operands by
``OperandKind`` (``act.i8``, ``act.i16`` at byte addresses, ``acc.i32`` at word addresses),
``b`` wrapping every ``period`` elements, the operation on a 64-bit intermediate, the
round-half-up shift, ``vrelu``/``vclamp``/``vlut``, and saturation to the destination. Its
timing is in ``docs/microarchitecture.md`` ("Vector unit"); the performance model follows it.

One *beat* is ``V`` consecutive elements. A beat flows through four cycles, one beat entering
every cycle with no stall (SRAM ports never wait, see ``rtl/ports.py``):

* **issue**: read ``a`` and ``b`` (ACT or ACC port, by kind).
* **operate**: unpack the elements, pick ``b``'s lanes through the period wrap, and apply
  ``vadd``/``vsub``/``vmul``/``vmax``/``vmin`` (or pass ``a``) into 64 bits.
* **round**: the rounding shift, ``vrelu``/``vclamp``, saturation to the destination, and
  the ``vlut`` lookups (one LUT read port per lane).
* **write**: the destination beat, or the looked-up entries, with a mask for the last beat.

Element ``i`` is read three cycles before it is written and each beat writes only its own
elements, so an in-place operation over an identical range (the only overlap the ISA
allows) reads every element before overwriting it.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.isa import ACC_ADDR_BITS, LUT_ENTRIES, SRAM_ADDR_BITS, Opcode, OperandKind, spec_for
from edgenpu.rtl.isa_layout import command_layout
from edgenpu.rtl.ports import SramReadPort, SramWritePort
from edgenpu.rtl.rounding import rounding_shift_right, saturate

__all__ = ["VECTOR_OPCODES", "VectorUnit"]

#: The opcodes this unit executes, in encoding order.
VECTOR_OPCODES = tuple(op for op in Opcode if op.is_vector)
_BINARY = (Opcode.VADD, Opcode.VSUB, Opcode.VMUL, Opcode.VMAX, Opcode.VMIN)
_LEN = next(f for f in spec_for(Opcode.VADD).fields if f.name == "len")
#: Largest supported ``lanes``: the small-period tables and each lane's ``head`` selector grow
#: as ``lanes**2``, and 64 lanes are already past any edge configuration.
MAX_LANES = 64
# A table is addressed by the 8-bit entry with the table number above it.
assert LUT_ENTRIES == 256


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def _elements(kind: Value, act: Value, acc: Value, lanes: int) -> list[Value]:
    """The ``lanes`` elements of a read beat, sign-extended to 32 bits: bytes or halfwords
    of the ACT port's data, or words of the ACC port's."""
    out = []
    for j in range(lanes):
        i8 = act.word_select(j, 8).as_signed()
        i16 = act.word_select(j, 16).as_signed()
        i32 = acc.word_select(j, 32).as_signed()
        out.append(
            Mux(
                kind == OperandKind.ACT_I8.value,
                i8,
                Mux(kind == OperandKind.ACT_I16.value, i16, i32),
            )
        )
    return out


class VectorUnit(wiring.Component):
    """The vector unit.

    Executes one vector instruction per command, ``lanes`` elements per cycle; see the module
    docstring for the pipeline and ``docs/microarchitecture.md`` for the exact timing.

    Parameters
    ----------
    lanes : int
        Elements per cycle (``V``), a power of two in 1..64.

    Members
    -------
    cmd : ``In(stream.Signature(command_layout(*VECTOR_OPCODES)))``
        One vector instruction's fields (``opcode`` and every field of the vector opcodes,
        ISA widths). Accepted only while idle: ``ready`` is low from acceptance to the cycle
        after the ``done`` transfer. The instruction must pass ``edgenpu.isa.access.check``
        (dispatch traps it otherwise); addresses wrap at the ports' widths.
    act_a, act_b : ``Out(SramReadPort(SRAM_ADDR_BITS, 2 * lanes))``
        ACT reads of ``a`` and ``b``: ``lanes`` int8 elements in the low bytes, or ``lanes``
        int16 elements in all ``2 * lanes`` bytes.
    acc_a, acc_b : ``Out(SramReadPort(ACC_ADDR_BITS, lanes, element_bits=32))``
        ACC reads of ``a`` and ``b``, ``lanes`` words.
    act_w : ``Out(SramWritePort(SRAM_ADDR_BITS, 2 * lanes))``
        ACT writes of ``d``, one mask bit per byte (int8 results use the low ``lanes`` bytes).
    acc_w : ``Out(SramWritePort(ACC_ADDR_BITS, lanes, element_bits=32))``
        ACC writes of ``d``, one mask bit per word.
    lut : ``Out(SramReadPort(SRAM_ADDR_BITS, 1)).array(lanes)``
        One single-byte LUT read port per lane (``vlut`` only): each lane looks up its own
        entry, and the LUT memory is small enough (``sram.lut_tables`` x 256 bytes) for
        per-lane ports to cost less than a crossbar.
    done : ``Out(stream.Signature(done_layout))``
        One transfer per command, in the cycle of its last write (or the cycle after the
        command if ``len`` is 0): ``elements``, the command's ``len`` (the count the
        statistics charge; a payload also keeps the port from being zero-width).
    """

    def __init__(self, *, lanes: int) -> None:
        if not (_is_power_of_two(lanes) and lanes <= MAX_LANES):
            raise ValueError(f"lanes must be a power of two in 1..{MAX_LANES}, not {lanes!r}")
        self.lanes = lanes
        self.cmd_layout = command_layout(*VECTOR_OPCODES)
        self.done_layout = data.StructLayout({"elements": _LEN.width})
        super().__init__(
            {
                "cmd": In(stream.Signature(self.cmd_layout)),
                "act_a": Out(SramReadPort(SRAM_ADDR_BITS, 2 * lanes)),
                "act_b": Out(SramReadPort(SRAM_ADDR_BITS, 2 * lanes)),
                "acc_a": Out(SramReadPort(ACC_ADDR_BITS, lanes, element_bits=32)),
                "acc_b": Out(SramReadPort(ACC_ADDR_BITS, lanes, element_bits=32)),
                "act_w": Out(SramWritePort(SRAM_ADDR_BITS, 2 * lanes)),
                "acc_w": Out(SramWritePort(ACC_ADDR_BITS, lanes, element_bits=32)),
                "lut": Out(SramReadPort(SRAM_ADDR_BITS, 1)).array(lanes),
                "done": Out(stream.Signature(self.done_layout)),
            }
        )

    @classmethod
    def from_config(cls, config: HardwareConfig) -> VectorUnit:
        """The vector unit of ``config``: ``vector.lanes`` lanes."""
        return cls(lanes=config.vector.lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        V = self.lanes
        cmd, done = self.cmd, self.done
        ACC = OperandKind.ACC_I32.value
        I16 = OperandKind.ACT_I16.value

        # -- command registers -----------------------------------------------------------------
        busy = Signal()
        ins = Signal(self.cmd_layout)
        binary = Signal()
        # Period wrap: lane j of beat k takes b[idx_j], idx_j = (kV + j) mod period, kept per
        # lane and advanced by ``advance`` = V mod period each beat. Both are below the
        # modulus, so one conditional subtraction keeps idx_j in range. Without a wrap
        # (``period`` 0 or >= ``len``) the modulus is out of idx_j's reach: idx_j = kV + j.
        idx_bits = _LEN.width + 1
        no_wrap = (1 << idx_bits) - 1
        modulus = Signal(idx_bits)
        advance = Signal(range(V + 1))
        small = Signal()  # period < V: every element of b comes from ``head``
        idx = [Signal(idx_bits, name=f"idx{j}") for j in range(V)]

        # -- issue stage -----------------------------------------------------------------------
        i_left = Signal(_LEN.width)  # elements not yet read
        a_ptr = Signal(SRAM_ADDR_BITS)
        first = Signal()  # the next beat is the command's first

        issuing = Signal()
        m.d.comb += issuing.eq(i_left != 0)

        def step(kind: Value) -> Value:
            # Address units per beat: V bytes, V halfwords (2V bytes) or V words.
            return Mux(kind == I16, 2 * V, V)

        # Lane 0's b element starts the read; lanes past a wrap come from ``head``.
        b_addr = ins.b_addr + Mux(ins.b_kind == I16, idx[0] << 1, idx[0])
        a_is_acc, b_is_acc, d_is_acc = ins.a_kind == ACC, ins.b_kind == ACC, ins.d_kind == ACC
        # b is re-read from memory unless all of it is in ``head``.
        b_read = issuing & binary & (~small | first)
        m.d.comb += [
            self.act_a.en.eq(issuing & ~a_is_acc),
            self.acc_a.en.eq(issuing & a_is_acc),
            self.act_a.addr.eq(a_ptr),
            self.acc_a.addr.eq(a_ptr),
            self.act_b.en.eq(b_read & ~b_is_acc),
            self.acc_b.en.eq(b_read & b_is_acc),
            self.act_b.addr.eq(b_addr),
            self.acc_b.addr.eq(b_addr),
        ]
        head_bits = (V - 1).bit_length()
        s1_valid, s1_first = Signal(), Signal()
        # Per lane: take b from ``head`` (a small period, or past the wrap: then idx_j < j,
        # since without a wrap idx_j = idx_0 + j), and at which element.
        s1_from_head = [Signal(name=f"from_head{j}") for j in range(V)]
        s1_head_idx = [Signal(head_bits, name=f"head_idx{j}") for j in range(V)]
        m.d.sync += [s1_valid.eq(issuing), s1_first.eq(first)]
        for j in range(V):
            m.d.sync += [
                # Lane 0 never wraps (idx_0 < 0 would be a constant compare, which lints).
                s1_from_head[j].eq(small | (idx[j] < j) if j else small),
                s1_head_idx[j].eq(idx[j][:head_bits]),
            ]
        with m.If(issuing):
            m.d.sync += [
                i_left.eq(Mux(i_left > V, i_left - V, 0)),
                a_ptr.eq(a_ptr + step(ins.a_kind)),
                first.eq(0),
            ]
            for j in range(V):
                stepped = idx[j] + advance
                m.d.sync += idx[j].eq(Mux(stepped >= modulus, stepped - modulus, stepped))

        # -- operate stage ---------------------------------------------------------------------
        a = _elements(ins.a_kind, self.act_a.data, self.acc_a.data, V)
        b_mem = _elements(ins.b_kind, self.act_b.data, self.acc_b.data, V)
        # ``head`` holds b[0 .. V-1], captured from the first beat's read (which is at b's
        # start): every wrapped lane's element is among them. The first beat uses the read
        # itself.
        head_reg = [Signal(signed(32), name=f"head{j}") for j in range(V)]
        with m.If(s1_valid & s1_first):
            m.d.sync += [h.eq(v) for h, v in zip(head_reg, b_mem, strict=True)]
        head = []
        for j, (h, v) in enumerate(zip(head_reg, b_mem, strict=True)):
            head_j = Signal(signed(32), name=f"head_now{j}")
            m.d.comb += head_j.eq(Mux(s1_first, v, h))
            head.append(head_j)
        # A lane picks its head element with a word select (a continuous assignment in the
        # Verilog), not an ``Array``: Yosys writes that as an ``always @*`` process, which an
        # event-driven simulator runs only when an input changes (under IEEE 1800 Yosys's
        # time-0 trigger makes no event), so while the index and ``head`` kept their initial
        # values Icarus held the pick at X. The hardware is the same multiplexer.
        head_words = Cat(*head)

        op = ins.opcode
        s2_valid = Signal()
        s2_x = [Signal(signed(64), name=f"x{j}") for j in range(V)]
        m.d.sync += s2_valid.eq(s1_valid)
        # Named signals at each step: Verilator would otherwise copy a shared expression (the
        # lane's b selection, the rounded value) into each of its uses.
        for j in range(V):
            from_head = head_words.word_select(s1_head_idx[j], 32).as_signed() if V > 1 else head[0]
            a_j = Signal(signed(32), name=f"a{j}")
            b_j = Signal(signed(32), name=f"b{j}")
            m.d.comb += [
                a_j.eq(a[j]),
                b_j.eq(Mux(s1_from_head[j], from_head, b_mem[j])),
            ]
            x = Mux(
                op == Opcode.VADD.value,
                a_j + b_j,
                Mux(
                    op == Opcode.VSUB.value,
                    a_j - b_j,
                    Mux(
                        op == Opcode.VMUL.value,
                        a_j * b_j,
                        Mux(
                            op == Opcode.VMAX.value,
                            Mux(a_j > b_j, a_j, b_j),
                            Mux(op == Opcode.VMIN.value, Mux(a_j < b_j, a_j, b_j), a_j),
                        ),
                    ),
                ),
            )
            m.d.sync += s2_x[j].eq(x)

        # -- round stage -----------------------------------------------------------------------
        is_lut = op == Opcode.VLUT.value
        s3_valid = Signal()
        s3_y = [Signal(signed(32), name=f"y{j}") for j in range(V)]
        m.d.sync += s3_valid.eq(s2_valid)
        for j in range(V):
            r = Signal(signed(64), name=f"r{j}")
            m.d.comb += r.eq(rounding_shift_right(s2_x[j], ins.shift))
            raised = Mux(r < ins.lo, ins.lo, r)
            post = Signal(signed(64), name=f"post{j}")
            m.d.comb += post.eq(
                Mux(
                    op == Opcode.VRELU.value,
                    Mux(r < 0, 0, r),
                    Mux(
                        op == Opcode.VCLAMP.value,
                        # min(max(r, lo), hi), in that order: with lo > hi the result is hi.
                        Mux(raised > ins.hi, ins.hi, raised),
                        r,
                    ),
                )
            )
            # Saturating to 32 bits first keeps the narrower clamps in one machine word.
            sat32 = Signal(signed(32), name=f"sat{j}")
            m.d.comb += sat32.eq(saturate(post, 32))
            y = Mux(
                ins.d_kind == OperandKind.ACT_I8.value,
                saturate(sat32, 8),
                Mux(ins.d_kind == I16, saturate(sat32, 16), sat32),
            )
            m.d.sync += s3_y[j].eq(y)
            # LUT entry saturate8(r) + 128: flipping the sign bit adds 128 to an int8.
            entry = saturate(r, 8).as_unsigned() ^ 0x80
            m.d.comb += [
                self.lut[j].en.eq(s2_valid & is_lut),
                self.lut[j].addr.eq(Cat(entry, ins.table)),
            ]

        # -- write stage -----------------------------------------------------------------------
        w_left = Signal(_LEN.width)  # elements not yet written
        d_ptr = Signal(SRAM_ADDR_BITS)
        # An int8 entry fits every destination, so it is written as is.
        values = [Mux(is_lut, self.lut[j].data.as_signed(), s3_y[j]) for j in range(V)]
        live = [w_left > j for j in range(V)]
        act_i8 = Cat(*(v[:8] for v in values), Const(0, 8 * V))
        act_i16 = Cat(*(v[:16] for v in values))
        d_is_i16 = ins.d_kind == I16
        m.d.comb += [
            self.act_w.en.eq(s3_valid & ~d_is_acc),
            self.act_w.addr.eq(d_ptr),
            self.act_w.data.eq(Mux(d_is_i16, act_i16, act_i8)),
            self.act_w.mask.eq(
                Mux(d_is_i16, Cat(*(Cat(x, x) for x in live)), Cat(*live, Const(0, V)))
            ),
            self.acc_w.en.eq(s3_valid & d_is_acc),
            self.acc_w.addr.eq(d_ptr),
            self.acc_w.data.eq(Cat(*values)),
            self.acc_w.mask.eq(Cat(*live)),
        ]
        last = s3_valid & (w_left <= V)
        with m.If(s3_valid):
            m.d.sync += [
                w_left.eq(Mux(w_left > V, w_left - V, 0)),
                d_ptr.eq(d_ptr + step(ins.d_kind)),
            ]

        # -- command and completion ------------------------------------------------------------
        done_pending = Signal()  # the last write is done, ``done`` not yet taken
        m.d.comb += [
            cmd.ready.eq(~busy),
            done.valid.eq(done_pending | last),
            done.payload.elements.eq(ins.len),
        ]
        with m.If(last):
            m.d.sync += done_pending.eq(1)
        with m.If(done.valid & done.ready):
            m.d.sync += [done_pending.eq(0), busy.eq(0)]
        with m.If(cmd.valid & cmd.ready):
            c = cmd.payload
            wraps = (c.period != 0) & (c.period < c.len)
            c_small = wraps & (c.period < V)
            # V mod period and j mod period for the small periods, as constant tables.
            v_mod = Const(V, range(V + 1))
            for period in range(1, V):
                v_mod = Mux(c.period == period, V % period, v_mod)
            for j in range(V):
                j_mod = Const(j, idx_bits)
                for period in range(1, j + 1):
                    j_mod = Mux(c.period == period, j % period, j_mod)
                m.d.sync += idx[j].eq(Mux(c_small, j_mod, j))
            m.d.sync += [
                busy.eq(1),
                ins.eq(c),
                binary.eq(Cat(*(c.opcode == o.value for o in _BINARY)).any()),
                modulus.eq(Mux(wraps, c.period, no_wrap)),
                advance.eq(Mux(c_small, v_mod, V)),
                small.eq(c_small),
                i_left.eq(c.len),
                w_left.eq(c.len),
                a_ptr.eq(c.a_addr),
                d_ptr.eq(c.d_addr),
                first.eq(1),
                # An empty instruction has nothing to read or write: done at once.
                done_pending.eq(c.len == 0),
            ]
        return m
