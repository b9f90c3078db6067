"""Where a training step may compute in bfloat16 (recipe key ``train.bfloat16``).

The networks' matrix products (the fused LSTM kernels of the encoder and the prediction
network, the joint, the CTC head) run under PyTorch's CPU autocast; their outputs are cast
back to float32 before any loss, so the losses, the parameters and Adam's state stay
float32. The hand-written recurrence (:mod:`..rnnt.recurrence`), which inference and
stateful layers run, forces float32 itself.
"""

from __future__ import annotations

import torch

__all__ = ["network_autocast"]


def network_autocast(bfloat16: bool) -> torch.autocast:
    """The context the networks run in: bfloat16 autocast if ``bfloat16``, else a no-op."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16)
