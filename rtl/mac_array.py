"""The MAC array: executes ``matmul`` with int8/int4 weights and zero-skipping.

``acc[j][i] (+)= sum_k W[i][k] * x[j][k]``, wrapping modulo 2**32, exactly as
``edgenpu.sim.functional`` computes it. The timing rules are in ``docs/microarchitecture.md``
(section "MAC array"); ``edgenpu.sim.benches.mac_array_ref.timing`` is their executable form.

Schedule. Rows go in *row groups* of ``lanes`` (lane ``l`` takes row ``r0 + l``); for each
group the ``n`` input vectors in order (a *sweep* per (group, vector)); for each sweep the
columns in *windows* of ``K = lookahead * M'`` pairs, ``M'`` being ``macs_per_lane`` for int8
and twice that for int4. Four stages, all overlapped from one window to the next:

* **read**: one read per lane of the window's weights, one broadcast read of its activations
  and, for the first window of a sweep with ``accumulate``, one read of the old outputs;
* **arrive** (the read data's cycle): each lane marks its *work* pairs (those the config's
  zero-skip switches do not skip), counts them, and compacts them to the front of the window
  with a log-depth compress network (each pair moves down by the number of non-work pairs
  before it, one power of two per stage); the window's cycles ``max(1, max_l ceil(work_l /
  M'))`` are known here and loaded into a countdown;
* **execute**: each cycle every lane multiplies the next ``M'`` compacted pairs on
  ``macs_per_lane`` int8 multipliers (each one split into two 4x8 halves for int4, so two
  int4 weights share a slot) and shifts its window down by ``M'`` pairs; lanes run in
  lockstep until the countdown ends;
* **accumulate/write**: the cycle's lane sums are added to the lane accumulators; the sweep's
  last sum goes straight to the accumulator-memory write of the group's ``lanes`` outputs.

The next window's read is timed so that its data arrive in the last execute cycle of the
current window (a countdown of 2, or, for a one-cycle window, the arrive cycle itself):
windows follow each other with no bubble, and the whole instruction costs a fixed pipeline
depth plus the sum of its window cycles.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgenpu.config import HardwareConfig
from edgenpu.isa import Opcode, spec_for
from edgenpu.precision import Precision
from edgenpu.rtl.isa_layout import command_layout
from edgenpu.rtl.ports import SramReadPort, SramWritePort

__all__ = ["PIPELINE_DEPTH", "MacArray"]

#: Cycles a ``matmul`` occupies the array beyond the sum of its window cycles: the command
#: transfer, the first read, its data's arrival, the last accumulate/write and ``done``.
PIPELINE_DEPTH = 5

_MATMUL = {f.name: f for f in spec_for(Opcode.MATMUL).fields}


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def _addr_bits(size: int) -> int:
    return max(1, (size - 1).bit_length())


def _sum(terms: list[Value]) -> Value:
    """A balanced adder tree."""
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = [a + b for a, b in zip(terms[0::2], terms[1::2], strict=False)] + (
            [terms[-1]] if len(terms) % 2 else []
        )
    return terms[0]


class MacArray(wiring.Component):
    """The multiply-accumulate array.

    Parameters
    ----------
    lanes : int
        Weight rows in parallel (``L``), a power of two.
    macs_per_lane : int
        int8 multipliers per lane (``M``), a power of two; int4 uses each as two.
    lookahead : int
        ``zero_skip.lookahead`` (``S``), a power of two: a window holds ``S`` dense cycles of
        pairs, so skipping can speed a window up at most ``S`` times.
    precisions : iterable of Precision
        Weight precisions to build; a command with another one (trapped upstream) runs as
        the first one built.
    skip_weights, skip_activations : bool
        ``zero_skip.weights`` / ``zero_skip.activations``: skip pairs with a zero weight /
        activation (they cost no cycle) rather than only gating them.
    wgt_bits, act_bits, acc_bits : int
        Address widths of the weight and activation memories (bytes) and the accumulator
        memory (words), 1..20. Addresses wrap.

    Members
    -------
    cmd : ``In(stream.Signature(command_layout(Opcode.MATMUL)))``
        The ``matmul``'s fields, the ISA's widths. Accepted only while idle (``ready`` is
        low from the transfer to the ``done`` transfer).
    done : ``Out(stream.Signature(done_layout))``
        One transfer per command, the cycle after its last accumulator write: ``work``,
        pairs that took a multiplier slot, and ``gated``, those of them with a zero operand
        (both 32 bits; ``work - gated`` full MACs at the weight precision's energy).
    wgt : ``Out(SramReadPort(wgt_bits, wgt_width)).array(lanes)``
        Per lane, its row's window: ``wgt_width`` is ``S * M`` bytes, plus one byte when int4
        is built, since an int4 window of ``2 * S * M`` nibbles can start at an odd nibble.
    act : ``Out(SramReadPort(act_bits, act_width))``
        The window's activations, broadcast to every lane: ``act_width`` is ``S * M`` bytes,
        or ``2 * S * M`` when int4 is built (one activation per int4 weight).
    acc_rd : ``Out(SramReadPort(acc_bits, lanes, element_bits=32))``
        With ``accumulate``, the old outputs of a sweep: words ``acc + j * acc_stride + r0``
        onwards, read with the sweep's first window.
    acc_wr : ``Out(SramWritePort(acc_bits, lanes, element_bits=32))``
        A sweep's ``lanes`` outputs, masked for a partial row group.
    """

    def __init__(
        self,
        *,
        lanes: int,
        macs_per_lane: int,
        lookahead: int,
        precisions,
        skip_weights: bool,
        skip_activations: bool,
        wgt_bits: int,
        act_bits: int,
        acc_bits: int,
    ) -> None:
        for name, value in (
            ("lanes", lanes),
            ("macs_per_lane", macs_per_lane),
            ("lookahead", lookahead),
        ):
            if not (_is_power_of_two(value) and value <= 64):
                raise ValueError(f"{name} must be a power of two in 1..64, not {value!r}")
        precisions = tuple(precisions)
        if not precisions or not all(isinstance(p, Precision) for p in precisions):
            raise TypeError(f"precisions must be a non-empty list of Precision, not {precisions!r}")
        for name, value in (("skip_weights", skip_weights), ("skip_activations", skip_activations)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, not {value!r}")
        for name, value in (("wgt_bits", wgt_bits), ("act_bits", act_bits), ("acc_bits", acc_bits)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
                raise ValueError(f"{name} must be an integer in 1..20, not {value!r}")
        self.lanes, self.macs_per_lane, self.lookahead = lanes, macs_per_lane, lookahead
        self.precisions = tuple(p for p in Precision if p in precisions)
        self.skip_weights, self.skip_activations = skip_weights, skip_activations
        self.wgt_bits, self.act_bits, self.acc_bits = wgt_bits, act_bits, acc_bits

        int4 = Precision.INT4 in self.precisions
        #: Multiplier-half positions of a window: one per int4 pair, two per int8 pair.
        self.positions = 2 * lookahead * macs_per_lane
        self.wgt_width = lookahead * macs_per_lane + (1 if int4 else 0)
        self.act_width = lookahead * macs_per_lane * (2 if int4 else 1)
        counts = _MATMUL["rows"].max * _MATMUL["cols"].max * _MATMUL["n"].max
        self.cmd_layout = command_layout(Opcode.MATMUL)
        self.done_layout = data.StructLayout(
            {"work": counts.bit_length(), "gated": counts.bit_length()}
        )
        super().__init__(
            {
                "cmd": In(stream.Signature(self.cmd_layout)),
                "done": Out(stream.Signature(self.done_layout)),
                "wgt": Out(SramReadPort(wgt_bits, self.wgt_width)).array(lanes),
                "act": Out(SramReadPort(act_bits, self.act_width)),
                "acc_rd": Out(SramReadPort(acc_bits, lanes, element_bits=32)),
                "acc_wr": Out(SramWritePort(acc_bits, lanes, element_bits=32)),
            }
        )

    @classmethod
    def from_config(cls, config: HardwareConfig) -> MacArray:
        """The MAC array of ``config``: ``mac``, ``zero_skip`` and the memories' sizes."""
        return cls(
            lanes=config.mac.lanes,
            macs_per_lane=config.mac.macs_per_lane,
            lookahead=config.zero_skip.lookahead,
            precisions=config.mac.precisions,
            skip_weights=config.zero_skip.weights,
            skip_activations=config.zero_skip.activations,
            wgt_bits=_addr_bits(config.sram.weight_bytes),
            act_bits=_addr_bits(config.sram.activation_bytes),
            acc_bits=_addr_bits(config.sram.accumulator_words),
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        L, M, S = self.lanes, self.macs_per_lane, self.lookahead
        KMAX = self.positions
        has8 = Precision.INT8 in self.precisions
        has4 = Precision.INT4 in self.precisions
        cmd, done = self.cmd, self.done

        # -- command registers ------------------------------------------------------------
        busy = Signal()
        c = Signal(self.cmd_layout)
        # With one precision built the other is trapped upstream: a constant prunes it.
        is4 = (c.prec == Precision.INT4.value) if has8 and has4 else Const(int(has4), 1)
        K = Mux(is4, 2 * S * M, S * M)  # pairs per window

        # -- read stage -------------------------------------------------------------------
        issuing = Signal()  # windows left to read
        kick = Signal()  # the command's first read is due
        k0 = Signal(range(_MATMUL["cols"].max + KMAX + 1))
        j = Signal.like(c.n)
        r0 = Signal(range(_MATMUL["rows"].max + L + 1))
        row_elems = Signal(range(_MATMUL["rows"].max * _MATMUL["cols"].max + L * 4096 + 1))
        vec_addr = Signal(self.act_bits)
        acc_row = Signal(self.acc_bits)
        acc_addr = Signal(self.acc_bits)

        # Execute-stage countdown, declared early: the read is timed from it.
        left = Signal(range(S + 1))
        arrive = Signal()  # read data on the ports this cycle
        arrive_one = Signal()  # ... and that window takes one cycle
        issue = Signal()
        m.d.comb += issue.eq(issuing & (kick | arrive_one | (left == 2)))

        last_window = k0 + K >= c.cols
        last_vector = j == c.n - 1
        last_group = r0 + L >= c.rows
        active = [r0 + lane < c.rows for lane in range(L)]
        for lane, port in enumerate(self.wgt):
            elem = row_elems + lane * c.cols + k0
            m.d.comb += [
                port.en.eq(issue & active[lane]),
                port.addr.eq(c.w + Mux(is4, elem >> 1, elem)),
            ]
        m.d.comb += [
            self.act.en.eq(issue),
            self.act.addr.eq(vec_addr + k0),
            self.acc_rd.en.eq(issue & c.accumulate & (k0 == 0)),
            self.acc_rd.addr.eq(acc_addr),
        ]

        # What the read in flight is, for its data's cycle.
        f_count = Signal(range(KMAX + 1))  # pairs in the window (fewer at the row's end)
        f_active = Signal(L)
        f_odd = Signal(L)  # int4: the window starts at an odd nibble
        f_first, f_last, f_final = Signal(), Signal(), Signal()
        f_acc = Signal(self.acc_bits)
        m.d.sync += arrive.eq(issue)
        with m.If(issue):
            cols_left = c.cols - k0
            m.d.sync += [
                f_count.eq(Mux(last_window, cols_left, K)),
                f_active.eq(Cat(*active)),
                f_odd.eq(Cat(*((row_elems + lane * c.cols + k0)[0] for lane in range(L)))),
                f_first.eq(k0 == 0),
                f_last.eq(last_window),
                f_final.eq(last_window & last_vector & last_group),
                f_acc.eq(acc_addr),
            ]
            with m.If(~last_window):
                m.d.sync += k0.eq(k0 + K)
            with m.Elif(~last_vector):
                m.d.sync += [
                    k0.eq(0),
                    j.eq(j + 1),
                    vec_addr.eq(vec_addr + c.x_stride),
                    acc_addr.eq(acc_addr + c.acc_stride),
                ]
            with m.Else():
                m.d.sync += [
                    k0.eq(0),
                    j.eq(0),
                    r0.eq(r0 + L),
                    row_elems.eq(row_elems + c.cols * L),
                    vec_addr.eq(c.x),
                    acc_row.eq(acc_row + L),
                    acc_addr.eq(acc_row + L),
                ]
                with m.If(last_group):
                    m.d.sync += issuing.eq(0)
        m.d.sync += kick.eq(0)

        # -- arrive stage: per lane, mark, count and compact the window's work ------------------
        # A window is handled as 2 * S * M *positions*, one per multiplier half: an int4 pair
        # is one position (its weight nibble, its activation), an int8 pair two adjacent ones
        # (low nibble, high nibble, the same activation). Both nibbles of an int8 pair share
        # their work bit, so they move together and stay on an even position.
        # Per position, what all lanes share: the activation, whether it is zero, whether the
        # position is a pair of the window at all.
        acts = [self.act.data[8 * p : 8 * p + 8] for p in range(self.act_width)]
        pos_act, pos_a_nz, pos_exists = [], [], []
        for q in range(KMAX):
            pair = q >> 1  # int8: the pair this position is half of
            if has4 and has8:
                act = Mux(is4, acts[q], acts[pair])
                exists = Mux(is4, q < f_count, pair < f_count)
            elif has4:
                act, exists = acts[q], q < f_count
            else:
                act, exists = acts[pair], pair < f_count
            act_sig = Signal(8, name=f"act{q}")
            a_nz, exists_sig = Signal(name=f"act_nonzero{q}"), Signal(name=f"pair{q}")
            m.d.comb += [act_sig.eq(act), a_nz.eq(act_sig.any()), exists_sig.eq(exists)]
            pos_act.append(act_sig)
            pos_a_nz.append(a_nz)
            pos_exists.append(exists_sig)

        # With both switches on no work pair has a zero operand: nothing to count.
        gating = not (self.skip_weights and self.skip_activations)
        lane_work, lane_gated, lane_packed, lane_positions = [], [], [], []
        for lane in range(L):
            nibbles = self.wgt[lane].data
            if has4:
                # An int4 window at an odd nibble: one shift of the whole read.
                aligned = Signal(len(nibbles), name=f"aligned{lane}")
                m.d.comb += aligned.eq(Mux(f_odd[lane] & is4, nibbles >> 4, nibbles))
                nibbles = aligned
            nib = [nibbles[4 * q : 4 * q + 4] for q in range(KMAX)]
            work, gated, elems = [], [], []
            for q in range(KMAX):
                pair = q >> 1
                w_nz = nib[q].any()
                if has8:
                    # int8: the whole weight byte, both nibbles.
                    byte_nz = Cat(nib[2 * pair], nib[2 * pair + 1]).any()
                    w_nz = Mux(is4, w_nz, byte_nz) if has4 else byte_nz
                is_work = pos_exists[q] & f_active[lane]
                if self.skip_weights:
                    is_work = is_work & w_nz
                if self.skip_activations:
                    is_work = is_work & pos_a_nz[q]
                work_sig = Signal(name=f"work{lane}_{q}")
                m.d.comb += work_sig.eq(is_work)
                work.append(work_sig)
                if gating:
                    gated.append(work_sig & ~(w_nz & pos_a_nz[q]))
                elems.append(Cat(nib[q], pos_act[q]))
            packed_elems, skipped = self._compress(m, lane, elems, work)
            lane_packed.append(packed_elems)
            positions = Signal(range(KMAX + 1), name=f"positions{lane}")
            m.d.comb += positions.eq(KMAX - skipped)
            lane_positions.append(positions)
            # Pairs: every position for int4, every other one for int8 (whose two positions
            # are always both work or both not).
            lane_work.append(Mux(is4, positions, positions >> 1) if has4 else positions >> 1)
            if gating:
                even_gated = _sum(gated[0::2])
                lane_gated.append(
                    Mux(is4, even_gated + _sum(gated[1::2]), even_gated) if has4 else even_gated
                )

        # Window cycles: max(1, max over lanes ceil(positions / 2M)), as 1 + the number of
        # thresholds c * 2M (c = 1 .. S - 1) some lane's work positions exceed.
        cycles = Const(1, range(S + 1))
        for k in range(1, S):
            cycles = cycles + Cat(*(p > 2 * M * k for p in lane_positions)).any()
        n_arr = Signal(range(S + 1))
        m.d.comb += [n_arr.eq(cycles), arrive_one.eq(arrive & (n_arr == 1))]

        work_total = Signal.like(done.payload.work)
        gated_total = Signal.like(done.payload.gated)
        with m.If(arrive):
            m.d.sync += [
                work_total.eq(work_total + _sum(lane_work)),
                gated_total.eq(gated_total + _sum(lane_gated) if gating else 0),
            ]

        # -- execute stage ------------------------------------------------------------------
        packed = [Signal(12 * KMAX, name=f"packed{lane}") for lane in range(L)]
        x_init = [Signal(32, name=f"init{lane}") for lane in range(L)]
        x_first, x_last, x_final, x_fresh = Signal(), Signal(), Signal(), Signal()
        x_active = Signal(L)
        x_acc = Signal(self.acc_bits)

        sums = []
        for lane in range(L):
            entry = [packed[lane][12 * q : 12 * q + 12] for q in range(KMAX)]
            products = []
            for s in range(M):
                # One int8 multiplier as two 5x8 halves: int8 w * a = lo(w) * a + (hi(w) * a
                # << 4), lo unsigned; int4 two weights, each with its own activation.
                e0, e1 = entry[2 * s], entry[2 * s + 1]
                lo_w = Cat(e0[:4], Mux(is4, e0[3], 0))
                hi_w = Cat(e1[:4], e1[3])
                lo = lo_w.as_signed() * e0[4:].as_signed()
                hi = hi_w.as_signed() * e1[4:].as_signed()
                products.append(lo + Mux(is4, hi, hi << 4))
            init = Mux(x_fresh & x_first, x_init[lane], 0).as_signed()
            total = Signal(32, name=f"lane_sum{lane}")
            m.d.comb += total.eq(_sum(products) + init)
            sums.append(total)

        y_valid, y_start, y_end, y_final = Signal(), Signal(), Signal(), Signal()
        y_sum = [Signal(32, name=f"y_sum{lane}") for lane in range(L)]
        y_active = Signal(L)
        y_acc = Signal(self.acc_bits)
        m.d.sync += y_valid.eq(left != 0)
        with m.If(left != 0):
            m.d.sync += [
                left.eq(left - 1),
                x_fresh.eq(0),
                y_start.eq(x_fresh & x_first),
                y_end.eq((left == 1) & x_last),
                y_final.eq(x_final),
                y_active.eq(x_active),
                y_acc.eq(x_acc),
                *(y_sum[lane].eq(sums[lane]) for lane in range(L)),
            ]
            for lane in range(L):
                m.d.sync += packed[lane].eq(packed[lane] >> (12 * 2 * M))
        with m.If(arrive):
            m.d.sync += [
                left.eq(n_arr),
                x_fresh.eq(1),
                x_first.eq(f_first),
                x_last.eq(f_last),
                x_final.eq(f_final),
                x_active.eq(f_active),
                x_acc.eq(f_acc),
            ]
            for lane in range(L):
                old = self.acc_rd.data[32 * lane : 32 * lane + 32]
                m.d.sync += [
                    packed[lane].eq(lane_packed[lane]),
                    x_init[lane].eq(Mux(c.accumulate, old, 0)),
                ]

        # -- accumulate/write stage -----------------------------------------------------------
        acc = [Signal(32, name=f"acc{lane}") for lane in range(L)]
        acc_next = [Signal(32, name=f"acc_next{lane}") for lane in range(L)]
        for lane in range(L):
            m.d.comb += acc_next[lane].eq(Mux(y_start, 0, acc[lane]) + y_sum[lane])
            with m.If(y_valid):
                m.d.sync += acc[lane].eq(acc_next[lane])
        m.d.comb += [
            self.acc_wr.en.eq(y_valid & y_end),
            self.acc_wr.addr.eq(y_acc),
            self.acc_wr.data.eq(Cat(*acc_next)),
            self.acc_wr.mask.eq(y_active),
        ]

        # -- command and completion -------------------------------------------------------------
        done_valid = Signal()
        with m.If(y_valid & y_end & y_final):
            m.d.sync += done_valid.eq(1)
        m.d.comb += [
            cmd.ready.eq(~busy),
            done.valid.eq(done_valid),
            done.payload.work.eq(work_total),
            done.payload.gated.eq(gated_total),
        ]
        with m.If(done.valid & done.ready):
            m.d.sync += [done_valid.eq(0), busy.eq(0)]
        with m.If(cmd.valid & cmd.ready):
            p = cmd.payload
            empty = (p.rows == 0) | (p.cols == 0) | (p.n == 0)
            m.d.sync += [
                busy.eq(1),
                c.eq(p),
                issuing.eq(~empty),
                kick.eq(~empty),
                # An empty matmul writes nothing: it completes at once.
                done_valid.eq(empty),
                k0.eq(0),
                j.eq(0),
                r0.eq(0),
                row_elems.eq(0),
                vec_addr.eq(p.x),
                acc_row.eq(p.acc),
                acc_addr.eq(p.acc),
                work_total.eq(0),
                gated_total.eq(0),
            ]
        return m

    @staticmethod
    def _compress(
        m: Module, lane: int, elems: list[Value], work: list[Value]
    ) -> tuple[Value, Value]:
        """``elems`` with the work ones moved to the front in order, zeros behind them, and
        the number of non-work elements.

        Element ``q`` moves down by ``d_q``, the non-work elements before it, one bit of
        ``d_q`` per stage from the least significant: ``d`` never decreases along the window
        and grows by at most the gap between two work elements, so no two ever land on the
        same place, and the network is ``log2(positions)`` levels of 2:1 multiplexers. Each
        stage carries only the bits of ``d`` still to be used.
        """
        K = len(elems)
        bits = max(1, (K - 1).bit_length())

        def node(name: str, value: Value, width: int) -> Signal:
            # A signal per node: each is read twice, and expressions would be duplicated.
            sig = Signal(width, name=f"{name}{lane}")
            m.d.comb += sig.eq(value)
            return sig

        cur = []
        skipped = Const(0, bits)
        for q in range(K):
            cur.append((work[q], skipped[:bits], elems[q]))
            skipped = node(f"skip{q}_", skipped + ~work[q], bits + 1)
        for i in range(bits):
            nxt = []
            for q in range(K):
                v, d, e = cur[q]
                if q + (1 << i) < K:
                    vf, df, ef = cur[q + (1 << i)]
                    come = node(f"c{i}_{q}_come", vf & df[0], 1)
                    v, d, e = (v & ~d[0]) | come, Mux(come, df[1:], d[1:]), Mux(come, ef, e)
                else:
                    v, d = v & ~d[0], d[1:]
                tag = f"c{i}_{q}_"
                # The last stage has no distance bits left to carry.
                d = node(tag + "d", d, len(d)) if len(d) else d
                nxt.append((node(tag + "v", v, 1), d, node(tag + "e", e, len(e))))
            cur = nxt
        return Cat(*(Mux(v, e, 0) for v, _, e in cur)), skipped
