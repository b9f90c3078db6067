"""The recurrent half of an LSTM layer, with a hand-written backward pass through time.

The input projection of all frames is one matrix multiply outside the loop (see
:mod:`.lstm`); what remains is, per step, ``gates = projected[t] + h W_hh^T`` and the cell
update. Left to autograd, each step records about ten graph nodes whose backward launches
are dominated by bookkeeping at our sizes (B*H ~ 10^4). Here the forward loop runs without
a graph, keeps the activations, and the backward loop applies the LSTM's derivative
directly; the recurrent weight's gradient is one matrix multiply over all steps at the end.

The state update may be blended per step (``update``, see :func:`lstm_recurrence`), which
serves both per-utterance lengths (0/1) and a branching encoder's gate (hard or soft; the
gradient reaches ``update`` too).
"""

from __future__ import annotations

import torch

__all__ = ["lstm_recurrence"]


def _step(gates: torch.Tensor, c: torch.Tensor, hidden: int):
    # One sigmoid over all four gates, then tanh over the g quarter: fewer kernel launches
    # than three sigmoids, and the stored activations stay one contiguous (B, 4H) block.
    act = gates.sigmoid()
    act[:, 2 * hidden : 3 * hidden] = gates[:, 2 * hidden : 3 * hidden].tanh()
    i, f, g, o = act.split(hidden, dim=1)
    c_new = torch.addcmul(f * c, i, g)
    tanh_c = c_new.tanh()
    return act, c_new, tanh_c, o * tanh_c


def _blend_flags(update: torch.Tensor | None, frames: int, every: bool) -> list[bool]:
    """Per step: whether to blend; computed once, on the host.

    A step where every sequence has ``update == 1`` needs no blending (lerp would return
    the new state exactly), which keeps the common unpadded step as cheap as a plain LSTM
    step, except when ``update`` needs a gradient: it is nonzero at 1 too.
    """
    if update is None:
        return [False] * frames
    if every:
        return [True] * frames
    return (update != 1).any(dim=0).tolist()


def _run(projected, w_hh, h, c, update, keep: bool, blend_every: bool = False):
    """The forward loop; with ``keep`` also the activations the backward pass needs."""
    batch, frames, width = projected.shape
    hidden = width // 4
    w_hh_t = w_hh.t()
    blend = _blend_flags(update, frames, blend_every)
    outputs = projected.new_empty(batch, frames, hidden)
    saved = None
    if keep:
        saved = {
            "act": projected.new_empty(frames, batch, width),
            "tanh_c": projected.new_empty(frames, batch, hidden),
            "h_prev": projected.new_empty(frames, batch, hidden),
            "c_prev": projected.new_empty(frames, batch, hidden),
        }
    for t in range(frames):
        if keep:
            saved["h_prev"][t] = h
            saved["c_prev"][t] = c
        act, c_new, tanh_c, h_new = _step(torch.addmm(projected[:, t], h, w_hh_t), c, hidden)
        if keep:
            saved["act"][t] = act
            saved["tanh_c"][t] = tanh_c
        if blend[t]:
            weight = update[:, t, None]
            # lerp is exact at both ends: the held state at 0, the new one at 1.
            h = torch.lerp(h, h_new, weight)
            c = torch.lerp(c, c_new, weight)
            outputs[:, t] = h_new * (weight > 0)
        else:
            h, c = h_new, c_new
            outputs[:, t] = h_new
    return outputs, h, c, saved, blend


class _Recurrence(torch.autograd.Function):
    # Under bfloat16 autocast the recurrence still runs in float32: its hand-written backward
    # multiplies saved activations by the float32 weights, and the cell state accumulates
    # over every frame.
    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
    def forward(ctx, projected, w_hh, h0, c0, update, blend_every):
        outputs, h, c, saved, blend = _run(
            projected, w_hh, h0, c0, update, keep=True, blend_every=blend_every
        )
        ctx.blend = blend
        ctx.save_for_backward(
            w_hh, saved["act"], saved["tanh_c"], saved["h_prev"], saved["c_prev"], update
        )
        return outputs, h, c

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, d_outputs, d_h, d_c):
        w_hh, act, tanh_c, h_prev, c_prev, update = ctx.saved_tensors
        frames, batch, width = act.shape
        hidden = width // 4
        dh = torch.zeros_like(h_prev[0]) if d_h is None else d_h.clone()
        dc = torch.zeros_like(h_prev[0]) if d_c is None else d_c.clone()
        if d_outputs is None:
            d_outputs = act.new_zeros(batch, frames, hidden)
        # Derivatives of the activations at their outputs: s (1 - s) for the sigmoids,
        # 1 - g^2 for the tanh; computed for all steps at once.
        slope = act * (1 - act)
        g_all = act[:, :, 2 * hidden : 3 * hidden]
        slope[:, :, 2 * hidden : 3 * hidden] = 1 - g_all * g_all
        d_tanh = 1 - tanh_c * tanh_c
        d_gates = act.new_empty(frames, batch, width)
        d_update = None
        if update is not None and ctx.needs_input_grad[4]:
            d_update = torch.zeros_like(update)
        for t in range(frames - 1, -1, -1):
            i, f, g, o = act[t].split(hidden, dim=1)
            if ctx.blend[t]:
                weight = update[:, t, None]
                h_new = o * tanh_c[t]
                if d_update is not None:
                    c_new = torch.addcmul(f * c_prev[t], i, g)
                    d_update[:, t] = ((h_new - h_prev[t]) * dh + (c_new - c_prev[t]) * dc).sum(1)
                dh_new = torch.addcmul(d_outputs[:, t] * (weight > 0), dh, weight)
                dc_new = dc * weight
                dh_held = dh * (1 - weight)
                dc_held = dc * (1 - weight)
            else:
                dh_new = dh + d_outputs[:, t]
                dc_new = dc
                dh_held = dc_held = None
            dc_total = torch.addcmul(dc_new, dh_new * o, d_tanh[t])
            step = d_gates[t]
            torch.mul(dc_total, g, out=step[:, :hidden])
            torch.mul(dc_total, c_prev[t], out=step[:, hidden : 2 * hidden])
            torch.mul(dc_total, i, out=step[:, 2 * hidden : 3 * hidden])
            torch.mul(dh_new, tanh_c[t], out=step[:, 3 * hidden :])
            step.mul_(slope[t])
            dc = dc_total * f
            dh = step @ w_hh
            if dh_held is not None:
                dh = dh + dh_held
                dc = dc + dc_held
        # The recurrent weight's gradient over all steps in one GEMM: sum_t dG_t^T h_{t-1}.
        d_w_hh = d_gates.reshape(-1, width).t() @ h_prev.reshape(-1, hidden)
        return d_gates.transpose(0, 1), d_w_hh, dh, dc, d_update, None


def lstm_recurrence(
    projected: torch.Tensor,
    w_hh: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    update: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the recurrence over projected inputs.

    Parameters
    ----------
    projected : torch.Tensor
        ``(B, T, 4H)``: ``x_t W_ih^T + bias`` for every frame, gates in the order i, f, g, o.
    w_hh : torch.Tensor
        ``(4H, H)`` recurrent weight.
    h0, c0 : torch.Tensor
        ``(B, H)`` initial state.
    update : torch.Tensor, optional
        ``(B, T)`` weight in ``[0, 1]`` of each step's new state against the held one:
        the state becomes ``lerp(old, new, update)`` and the step's output is the fresh
        ``h`` where ``update > 0``, zero elsewhere. None: every step updates.

    Returns
    -------
    tuple of torch.Tensor
        Outputs ``(B, T, H)``, final ``h`` and final ``c``.
    """
    inputs = (projected, w_hh, h0, c0, update)
    if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in inputs):
        return _Recurrence.apply(*inputs, update is not None and update.requires_grad)
    outputs, h, c, _, _ = _run(projected, w_hh, h0, c0, update, keep=False)
    return outputs, h, c
