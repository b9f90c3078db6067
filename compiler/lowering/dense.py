"""The joint's and the predictor's non-recurrent steps: linear layers (weights streamed in
row tiles), elementwise add, tables and ReLU, over ``n`` rows of a kernel's tensors."""

from __future__ import annotations

import numpy as np

from edgenpu.isa import Opcode, OperandKind, Space

from ..quant.qir import QAdd, QLinear, QLut, QRelu
from .context import KernelContext, kind_of

__all__ = ["lower_add", "lower_linear", "lower_lut", "lower_relu"]

I32 = OperandKind.ACC_I32


def lower_linear(ctx: KernelContext, step: QLinear, tile_rows: int) -> None:
    """``y = requant(x W^T + bias)`` in tiles of ``tile_rows`` output rows."""
    b, kernel = ctx.builder, ctx.kernel
    x, y = kernel.tensor(step.x), kernel.tensor(step.y)
    n = x.shape[0]
    outputs, inputs = step.weights.shape
    tiles = [np.arange(r, min(r + tile_rows, outputs)) for r in range(0, outputs, tile_rows)]
    placed = ctx.place_weights(step.weights, tiles)
    per_tile = 1 if step.bias is None else 2
    words = [
        np.concatenate(
            [step.requant.multipliers[r]] + ([] if step.bias is None else [step.bias[r]])
        )
        for r in tiles
    ]
    region = ctx.constants(f"{step.name}.constants", np.concatenate(words))
    acc = b.buffer(f"{step.name}.acc", Space.ACC, tile_rows * n)
    constants = [
        b.buffer(f"{step.name}.constants{i}", Space.ACC, per_tile * tile_rows) for i in range(2)
    ]
    slots = ctx.weight_slots(max(t.wgt_bytes for t in placed))
    x_buf, y_buf = ctx.act(step.x), ctx.act(step.y)
    y_bytes = y.bits // 8
    for k, (rows, tile) in enumerate(zip(tiles, placed, strict=True)):
        r0, count = int(rows[0]), len(rows)
        start = per_tile * r0
        consts = constants[k % 2].at()
        b.load(
            consts,
            region.addr + 4 * start,
            1,
            per_tile * count,
            note=f"{step.name} tile {k} constants",
        )
        w = slots.fetch(tile, note=f"{step.name} tile {k}")
        b.matmul(
            acc.at(),
            w,
            x_buf.at(),
            count,
            inputs,
            tile.precision,
            n=n,
            x_stride=inputs,
            acc_stride=count,
            note=f"{step.name} tile {k}",
        )
        if step.bias is not None:
            b.vector(
                Opcode.VADD,
                (I32, acc.at()),
                (I32, acc.at()),
                n * count,
                b=(I32, consts + count),
                period=count,
            )
        if n == 1 or len(tiles) == 1:
            b.vector(
                Opcode.VMUL,
                (kind_of(y), y_buf.at(r0 * y_bytes)),
                (I32, acc.at()),
                n * count,
                b=(I32, consts),
                period=count,
                shift=step.requant.shift,
            )
        else:  # rows of y are `outputs` apart: one requantize per row
            for j in range(n):
                b.vector(
                    Opcode.VMUL,
                    (kind_of(y), y_buf.at((j * outputs + r0) * y_bytes)),
                    (I32, acc.at(j * count)),
                    count,
                    b=(I32, consts),
                    shift=step.requant.shift,
                )


def _elementwise(ctx: KernelContext, opcode: Opcode, step, a: str, b: str | None = None, **fields):
    """One vector instruction over the whole of ``step.y`` from tensors ``a`` (and ``b``)."""
    t, act = ctx.kernel.tensor, ctx.act
    rows, width = t(step.y).shape
    operand_b = None if b is None else (kind_of(t(b)), act(b).at())
    ctx.builder.vector(
        opcode,
        (kind_of(t(step.y)), act(step.y).at()),
        (kind_of(t(a)), act(a).at()),
        rows * width,
        b=operand_b,
        note=step.name,
        **fields,
    )


def lower_add(ctx: KernelContext, step: QAdd) -> None:
    _elementwise(ctx, Opcode.VADD, step, step.a, step.b)


def lower_lut(ctx: KernelContext, step: QLut) -> None:
    _elementwise(ctx, Opcode.VLUT, step, step.x, shift=step.shift, table=ctx.table(step.function))


def lower_relu(ctx: KernelContext, step: QRelu) -> None:
    _elementwise(ctx, Opcode.VRELU, step, step.x, shift=step.shift)
