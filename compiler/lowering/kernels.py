"""One kernel's schedule: which step runs when, where its tensors live, and its I/O.

The encoder runs its LSTM layers over a chunk of frames either *layer-major* (each layer
over the whole chunk before the next: its input projection hoisted, its recurrent weights
fetched once per chunk when they fit) or *frame-major* (every layer steps once per frame).
Time reduction costs nothing: a reduced tensor is the same bytes read with a longer row.
Other kernels run their steps in order. Inputs are loaded at the start and outputs stored
at the end, except an LSTM's state, which its layer loads and stores itself.
"""

from __future__ import annotations

from edgenpu.config import HardwareConfig
from edgenpu.formats import WeightFormat

from ..quant.qir import QAdd, QKernel, QLinear, QLstm, QLut, QRelu, QTimeReduce
from .builder import KernelBuilder
from .context import KernelContext
from .dense import lower_add, lower_linear, lower_lut, lower_relu
from .dram import DramImage, Region
from .lstm import LstmLowering
from .plan import KernelPlan

__all__ = ["lower_kernel", "recurrent_prefix"]


def lower_kernel(
    kernel: QKernel,
    plan: KernelPlan,
    frame_major: bool,
    image: DramImage,
    regions: dict[str, Region],
    config: HardwareConfig,
    formats: tuple[WeightFormat, ...],
    encodings: dict | None = None,
) -> KernelContext:
    """Emit ``kernel``'s instructions into a fresh builder; weights go into ``image``;
    ``regions`` holds its inputs', outputs' and state's DRAM regions by tensor name."""
    ctx = KernelContext(kernel, KernelBuilder(kernel.name, config), image, config, formats, regions)
    ctx.slot_bytes = plan.slot_bytes
    ctx.encodings = encodings if encodings is not None else {}
    b = ctx.builder
    # A time-reduced tensor shares its source's buffer.
    for step in kernel.steps:
        if isinstance(step, QTimeReduce):
            ctx.tensors[step.y] = ctx.act(step.x)
    lstm_state = {
        n for s in kernel.steps if isinstance(s, QLstm) for n in (s.h_in, s.c_in, s.h_out, s.c_out)
    }
    for name in kernel.inputs:
        if name not in lstm_state:
            t = kernel.tensor(name)
            b.load(ctx.act(name).at(), regions[name].addr, 1, t.nbytes, note=f"input {name}")
    layers = {
        s.name: LstmLowering(ctx, s, kernel.tensor(s.x).shape[0], plan.lstm[s.name])
        for s in kernel.steps
        if isinstance(s, QLstm)
    }
    rest = kernel.steps
    if frame_major:
        recurrent = recurrent_prefix(kernel)
        _frame_major(ctx, [s for s in recurrent if isinstance(s, QLstm)], layers)
        rest = kernel.steps[len(recurrent) :]
    for step in rest:
        b.tag = step.name
        if isinstance(step, QLstm):
            _layer_major(ctx, step, layers[step.name])
        elif isinstance(step, QLinear):
            lower_linear(ctx, step, plan.linear_rows[step.name])
        elif isinstance(step, QAdd):
            lower_add(ctx, step)
        elif isinstance(step, QLut):
            lower_lut(ctx, step)
        elif isinstance(step, QRelu):
            lower_relu(ctx, step)
    b.tag = ""
    for name in kernel.outputs:
        if name not in lstm_state:
            b.store(
                ctx.act(name).at(),
                regions[name].addr,
                1,
                kernel.tensor(name).nbytes,
                note=f"output {name}",
            )
    return ctx


def recurrent_prefix(kernel: QKernel) -> tuple:
    """The kernel's leading LSTM and time-reduction steps: what a frame-major schedule
    interleaves frame by frame (the steps after them run once the chunk is done). Empty
    unless the prefix holds an LSTM of more than one row."""
    prefix = []
    for step in kernel.steps:
        if not isinstance(step, QLstm | QTimeReduce):
            break
        prefix.append(step)
    chunked = any(isinstance(s, QLstm) and kernel.tensor(s.x).shape[0] > 1 for s in prefix)
    return tuple(prefix) if chunked else ()


def _row(ctx: KernelContext, name: str, row: int):
    width = ctx.kernel.tensor(name).shape[1]
    return ctx.act(name).at(row * width)


def _layer_major(ctx: KernelContext, step: QLstm, layer: LstmLowering) -> None:
    rows = ctx.kernel.tensor(step.x).shape[0]
    layer.begin(ctx.regions[step.h_in], ctx.regions[step.c_in])
    if layer.plan.hoisted:
        layer.project(ctx.act(step.x).at(), ctx.kernel.tensor(step.x).shape[1])
    for t in range(rows):
        _step(ctx, step, layer, t)
    layer.end(_row(ctx, step.y, rows - 1), ctx.regions[step.h_out], ctx.regions[step.c_out])


def _step(ctx: KernelContext, step: QLstm, layer: LstmLowering, t: int) -> None:
    h_prev = layer.h.at() if t == 0 else _row(ctx, step.y, t - 1)
    x_row = None if layer.plan.hoisted else _row(ctx, step.x, t)
    layer.run_step(t, x_row, h_prev, _row(ctx, step.y, t))


def _frame_major(ctx: KernelContext, steps: list[QLstm], layers: dict) -> None:
    chunk = ctx.kernel.tensor(steps[0].x).shape[0]
    for frame in range(chunk):
        for step in steps:
            rows = ctx.kernel.tensor(step.x).shape[0]
            per_row = chunk // rows
            if (frame + 1) % per_row:
                continue  # this layer's next input row is not complete yet
            t = (frame + 1) // per_row - 1
            layer = layers[step.name]
            ctx.builder.tag = step.name
            if t == 0:
                layer.begin(ctx.regions[step.h_in], ctx.regions[step.c_in])
            _step(ctx, step, layer, t)
            if t == rows - 1:
                layer.end(
                    _row(ctx, step.y, rows - 1), ctx.regions[step.h_out], ctx.regions[step.c_out]
                )
