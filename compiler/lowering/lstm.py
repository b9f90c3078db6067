"""An LSTM layer as instructions: gate GEMVs per hidden tile, then the cell in vector ops.

The hidden units are cut into tiles of ``hidden_tile`` units; a tile's weight rows are its
units' rows of the four gates, ordered i, f, o, g so that one ``vlut`` and one ``vadd``
make three gates. Per step and tile (``R = 4 m`` rows, ``m`` units)::

    matmul  T  = W_hh[tile] h_prev                      int32
    vmul    G  = T * mult_hh >> s_hh                    int16, GATE_FRAC
    vadd    G  = G + GX[t]                              the input projection (below)
    vlut    S[0:3m] = sigmoid_m1(G[0:3m]),  S[3m:4m] = tanh(G[3m:4m])  int8, LUT_OUT_FRAC
    vadd    G[0:3m] = S[0:3m] + LUT_ONE                 i, f, o: int16, LUT_OUT_FRAC, 0 .. 1
    vmul    FC = f * c >> FC_SHIFT,  IG = i * g >> IG_SHIFT            int16, CELL_FRAC
    vadd    c  = FC + IG
    vlut    TC = tanh(c)
    vmul    y[t][tile] = o * TC >> OH_SHIFT                             int8, STATE_FRAC

The gates overwrite their pre-activations (dead once tabulated), in int16 because 1, a
saturated gate, is not an int8 code (:func:`edgenpu.compiler.quant.arith.gate`).

The input projection ``GX = requant16(W_ih x + bias)`` is *hoisted* when the schedule runs
the layer over a whole chunk: one matrix-matrix op per tile for every frame, before the
recurrence. Otherwise it is computed per step beside the recurrent one. Both compute
:func:`edgenpu.compiler.quant.arith.lstm` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu.isa import Opcode, OperandKind, Space

from ..quant.formats import (
    CELL_FRAC,
    FC_SHIFT,
    GATE_FRAC,
    IG_SHIFT,
    LUT_ONE,
    OH_SHIFT,
    SIGMOID_M1,
    TANH,
)
from ..quant.qir import QLstm
from .builder import Ref
from .context import KernelContext
from .dram import Region

__all__ = ["LstmLowering", "LstmPlan", "gate_tiles"]

I8, I16, I32 = OperandKind.ACT_I8, OperandKind.ACT_I16, OperandKind.ACC_I32


@dataclass(frozen=True)
class LstmPlan:
    """How one layer is tiled and scheduled.

    Parameters
    ----------
    hidden_tile : int
        Hidden units per tile.
    hoisted : bool
        Compute the input projection for the whole chunk before the recurrence.
    resident_tiles : int
        Keep the step weights of the layer's first this many tiles in WGT across steps
        (loaded once per chunk); the others stream through the weight slots every step.
    resident_constants : bool
        Keep the layer's multipliers and biases in ACC (else loaded per tile and step).
    """

    hidden_tile: int
    hoisted: bool
    resident_tiles: int
    resident_constants: bool


def gate_tiles(hidden: int, hidden_tile: int) -> list[np.ndarray]:
    """Each tile's gate rows (contract order i, f, g, o in the weights) in the order
    i, f, o, g."""
    tiles = []
    for start in range(0, hidden, hidden_tile):
        units = np.arange(start, min(start + hidden_tile, hidden))
        tiles.append(
            np.concatenate([units, hidden + units, 3 * hidden + units, 2 * hidden + units])
        )
    return tiles


class LstmLowering:
    """Emits one :class:`QLstm` layer's instructions into a kernel, phase by phase."""

    def __init__(self, ctx: KernelContext, step: QLstm, rows: int, plan: LstmPlan):
        self.ctx, self.step, self.rows, self.plan = ctx, step, rows, plan
        b = ctx.builder
        self.hidden = hidden = step.hidden
        self.inputs = step.w_ih.shape[1]
        self.tiles = gate_tiles(hidden, plan.hidden_tile)
        self.row0 = np.concatenate([[0], np.cumsum([len(t) for t in self.tiles])]).tolist()
        self.w_ih = ctx.place_weights(step.w_ih, self.tiles)
        self.w_hh = ctx.place_weights(step.w_hh, self.tiles)
        words = [
            np.concatenate(
                [step.requant_hh.multipliers[r], step.requant_ih.multipliers[r], step.bias[r]]
            )
            for r in self.tiles
        ]
        self.constants_region = ctx.constants(f"{step.name}.constants", np.concatenate(words))
        r_max = 4 * plan.hidden_tile
        name = step.name
        self.gates = b.buffer(f"{name}.gates", Space.ACT, 2 * r_max, align=2)
        self.squashed = b.buffer(f"{name}.squashed", Space.ACT, r_max)
        self.fc = b.buffer(f"{name}.fc", Space.ACT, r_max // 2, align=2)
        self.ig = b.buffer(f"{name}.ig", Space.ACT, r_max // 2, align=2)
        self.tanh_c = b.buffer(f"{name}.tanh_c", Space.ACT, r_max // 4)
        self.acc = b.buffer(f"{name}.acc", Space.ACC, r_max)
        if plan.hoisted:
            self.gx = b.buffer(f"{name}.gx", Space.ACT, 2 * rows * 4 * hidden, align=2)
            self.acc_projection = b.buffer(f"{name}.acc_projection", Space.ACC, r_max * rows)
        else:
            self.gx_step = b.buffer(f"{name}.gx_step", Space.ACT, 2 * r_max, align=2)
            self.acc_input = b.buffer(f"{name}.acc_input", Space.ACC, r_max)
        self.h = b.buffer(f"{name}.h", Space.ACT, hidden)
        self.c = b.buffer(f"{name}.c", Space.ACT, 2 * hidden, align=2)
        if plan.resident_constants:
            self.constant_buffers = [b.buffer(f"{name}.constants", Space.ACC, 12 * hidden)]
        else:
            self.constant_buffers = [
                b.buffer(f"{name}.constants{i}", Space.ACC, 3 * r_max) for i in range(2)
            ]
        self._next_constants = 0
        self._resident: dict[tuple[str, int], Ref] = {}
        self._prefetched: dict[tuple[str, int], Ref] = {}
        slot = max(t.wgt_bytes for t in self.w_ih + self.w_hh)
        streams = plan.hoisted or plan.resident_tiles < len(self.tiles)
        self.slots = ctx.weight_slots(slot) if streams else None

    # -- operands ----------------------------------------------------------------------

    def _tile(self, which: str, k: int):
        return (self.w_ih if which == "ih" else self.w_hh)[k]

    def _weights(self, which: str, k: int) -> Ref:
        key = (which, k)
        if key in self._prefetched:
            return self._prefetched.pop(key)
        resident = k < self.plan.resident_tiles and (which == "hh" or not self.plan.hoisted)
        if resident:
            if key not in self._resident:
                tile = self._tile(which, k)
                buf = self.ctx.builder.buffer(
                    f"{self.step.name}.w_{which}{k}", Space.WGT, tile.wgt_bytes
                )
                self.ctx.builder.load_weights(
                    buf.at(),
                    tile.dram,
                    tile.count,
                    tile.format,
                    tile.precision,
                    note=f"{self.step.name}.w_{which} tile {k} (resident)",
                )
                self._resident[key] = buf.at()
            return self._resident[key]
        return self.slots.fetch(self._tile(which, k), note=f"{self.step.name}.w_{which} tile {k}")

    def _prefetch(self, needs: list[tuple[str, int]], position: int) -> None:
        """Load the weights of the need after ``position`` now, so they arrive early."""
        if position + 1 < len(needs):
            key = needs[position + 1]
            if key not in self._prefetched and key not in self._resident:
                self._prefetched[key] = self._weights(*key)

    def _constants(self, k: int) -> Ref:
        """ACC words of tile ``k``: multipliers (recurrent, input), then the bias."""
        start = 3 * self.row0[k]
        if self.plan.resident_constants:
            return self.constant_buffers[0].at(start)
        buf = self.constant_buffers[self._next_constants]
        self._next_constants = (self._next_constants + 1) % len(self.constant_buffers)
        rows = len(self.tiles[k])
        self.ctx.builder.load(
            buf.at(),
            self.constants_region.addr + 4 * start,
            1,
            3 * rows,
            note=f"{self.step.name} tile {k} constants",
        )
        return buf.at()

    # -- phases ------------------------------------------------------------------------

    def begin(self, h_in: Region, c_in: Region) -> None:
        """Load the state (and resident constants) before the layer's first step."""
        b = self.ctx.builder
        b.load(self.h.at(), h_in.addr, 1, self.hidden, note=f"{self.step.name} h")
        b.load(self.c.at(), c_in.addr, 1, 2 * self.hidden, note=f"{self.step.name} c")
        if self.plan.resident_constants:
            words = 12 * self.hidden
            b.load(
                self.constant_buffers[0].at(),
                self.constants_region.addr,
                1,
                words,
                note=f"{self.step.name} constants",
            )

    def project(self, x: Ref, x_stride: int) -> None:
        """The hoisted input projection of every row of the chunk."""
        b, step, n = self.ctx.builder, self.step, self.rows
        needs = [("ih", k) for k in range(len(self.tiles))]
        for k, tile_rows in enumerate(self.tiles):
            rows = len(tile_rows)
            constants = self._constants(k)
            w = self._weights("ih", k)
            acc = self.acc_projection.at()
            b.matmul(
                acc,
                w,
                x,
                rows,
                self.inputs,
                self._tile("ih", k).precision,
                n=n,
                x_stride=x_stride,
                acc_stride=rows,
                note=f"{step.name} input projection tile {k}",
            )
            self._prefetch(needs, k)
            b.vector(
                Opcode.VADD,
                (I32, acc),
                (I32, acc),
                n * rows,
                b=(I32, constants + 2 * rows),
                period=rows,
            )
            b.vector(
                Opcode.VMUL,
                (I16, self.gx.at(2 * n * self.row0[k])),
                (I32, acc),
                n * rows,
                b=(I32, constants + rows),
                period=rows,
                shift=step.requant_ih.shift,
            )

    def run_step(self, t: int, x_row: Ref | None, h_prev: Ref, y: Ref) -> None:
        """Step ``t`` of the chunk: ``x_row`` (unhoisted only) and ``h_prev`` in, ``y`` out."""
        b, step, ctx = self.ctx.builder, self.step, self.ctx
        sigmoid_m1, tanh = ctx.table(SIGMOID_M1), ctx.table(TANH)
        one = ctx.splat16(LUT_ONE)
        needs = []
        for k in range(len(self.tiles)):
            needs += ([] if self.plan.hoisted else [("ih", k)]) + [("hh", k)]
        position = 0
        for k, tile_rows in enumerate(self.tiles):
            rows, m, unit0 = len(tile_rows), len(tile_rows) // 4, int(tile_rows[0])
            constants = self._constants(k)
            if self.plan.hoisted:
                gx = self.gx.at(2 * (self.rows * self.row0[k] + t * rows))
            else:
                w = self._weights("ih", k)
                acc = self.acc_input.at()
                b.matmul(
                    acc,
                    w,
                    x_row,
                    rows,
                    self.inputs,
                    self._tile("ih", k).precision,
                    note=f"{step.name} step {t} input tile {k}",
                )
                self._prefetch(needs, position)
                position += 1
                b.vector(Opcode.VADD, (I32, acc), (I32, acc), rows, b=(I32, constants + 2 * rows))
                gx = self.gx_step.at()
                b.vector(
                    Opcode.VMUL,
                    (I16, gx),
                    (I32, self.acc_input.at()),
                    rows,
                    b=(I32, constants + rows),
                    shift=step.requant_ih.shift,
                )
            w = self._weights("hh", k)
            b.matmul(
                self.acc.at(),
                w,
                h_prev,
                rows,
                self.hidden,
                self._tile("hh", k).precision,
                note=f"{step.name} step {t} recurrent tile {k}",
            )
            self._prefetch(needs, position)
            position += 1
            g = self.gates.at()
            b.vector(
                Opcode.VMUL,
                (I16, g),
                (I32, self.acc.at()),
                rows,
                b=(I32, constants),
                shift=step.requant_hh.shift,
            )
            b.vector(Opcode.VADD, (I16, g), (I16, g), rows, b=(I16, gx))
            s = self.squashed.at()
            b.vector(
                Opcode.VLUT,
                (I8, s),
                (I16, g),
                3 * m,
                shift=SIGMOID_M1.shift_from(GATE_FRAC),
                table=sigmoid_m1,
            )
            b.vector(
                Opcode.VLUT,
                (I8, s + 3 * m),
                (I16, g + 6 * m),
                m,
                shift=TANH.shift_from(GATE_FRAC),
                table=tanh,
            )
            # i, f, o in int16 over their own pre-activations: bytes 0, 2m, 4m of G.
            b.vector(Opcode.VADD, (I16, g), (I8, s), 3 * m, b=(I16, one), period=1)
            c = self.c.at(2 * unit0)
            b.vector(
                Opcode.VMUL, (I16, self.fc.at()), (I16, g + 2 * m), m, b=(I16, c), shift=FC_SHIFT
            )
            b.vector(
                Opcode.VMUL, (I16, self.ig.at()), (I16, g), m, b=(I8, s + 3 * m), shift=IG_SHIFT
            )
            b.vector(Opcode.VADD, (I16, c), (I16, self.fc.at()), m, b=(I16, self.ig.at()))
            b.vector(
                Opcode.VLUT,
                (I8, self.tanh_c.at()),
                (I16, c),
                m,
                shift=TANH.shift_from(CELL_FRAC),
                table=tanh,
            )
            b.vector(
                Opcode.VMUL,
                (I8, y + unit0),
                (I16, g + 4 * m),
                m,
                b=(I8, self.tanh_c.at()),
                shift=OH_SHIFT,
            )

    def end(self, h_last: Ref, h_out: Region, c_out: Region) -> None:
        """Store the state after the layer's last step."""
        b = self.ctx.builder
        b.store(h_last, h_out.addr, 1, self.hidden, note=f"{self.step.name} h out")
        b.store(self.c.at(), c_out.addr, 1, 2 * self.hidden, note=f"{self.step.name} c out")
