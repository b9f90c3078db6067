"""The MAC array's timing rules (``docs/microarchitecture.md``, "MAC array", A1-A4).

The one executable definition: the unit's bench checks the RTL against :func:`timing`, and
the performance model charges every ``matmul`` the same cycles, from the real weights and
activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.precision import Precision

__all__ = ["PIPELINE_DEPTH", "Timing", "timing"]

#: ``P`` of the rules: a matmul occupies the array ``P + N`` cycles, ``N`` its window cycles.
#: (The RTL states the same number as ``edgenpu.rtl.mac_array.PIPELINE_DEPTH``.)
PIPELINE_DEPTH = 5


@dataclass(frozen=True)
class Timing:
    """A matmul's cycles and multiplier-slot counts.

    ``windows`` is ``N``, the sum of the window cycles; ``done`` the cycle of the ``done``
    transfer counted from the command's (cycle 0), ``P + N - 1`` (1 for an empty matmul);
    ``work`` the pairs that took a multiplier slot and ``gated`` those of them with a zero
    operand. ``dense_windows`` is what ``N`` would be with both skip switches off (every
    pair work), so ``dense_windows - windows`` are the cycles zero-skipping saved.
    """

    windows: int
    done: int
    work: int
    gated: int
    dense_windows: int = 0


def timing(weights: np.ndarray, x: np.ndarray, prec: Precision, config: HardwareConfig) -> Timing:
    """The MAC array's timing rules for ``weights`` (rows x cols) and inputs ``x`` (n x cols).

    Row groups of ``L`` rows, each (group, vector) swept in windows of ``K = S * M'`` columns;
    a lane's work in a window is its pairs that are not skipped; the window takes
    ``max(1, max over lanes ceil(work / M'))`` cycles; ``done`` transfers in cycle
    ``P + N - 1`` (``P`` = :data:`PIPELINE_DEPTH`).
    """
    rows, cols = weights.shape
    n = x.shape[0]
    if not (rows and cols and n):
        return Timing(0, 1, 0, 0, 0)
    L, M, S = config.mac.lanes, config.mac.macs_per_lane, config.zero_skip.lookahead
    mp = M * (8 // prec.bits)
    K = S * mp
    wn, xn = weights != 0, x != 0
    wmask = wn if config.zero_skip.weights else np.ones_like(wn)
    xmask = xn if config.zero_skip.activations else np.ones_like(xn)
    windows = -(-cols // K)
    groups = -(-rows // L)
    # Pad to whole windows and groups with non-pairs (they are never work).
    wpad = np.zeros((groups * L, windows * K), dtype=np.int64)
    wpad[:rows, :cols] = wmask
    xpad = np.zeros((n, windows * K), dtype=np.int64)
    xpad[:, :cols] = xmask
    # work[r, j, w]: row r's work pairs with vector j in window w.
    work = np.einsum("rwk,jwk->rjw", wpad.reshape(-1, windows, K), xpad.reshape(n, windows, K))
    lane_cycles = -(-work // mp)
    window_cycles = np.maximum(1, lane_cycles.reshape(groups, L, n, windows).max(axis=1))
    total_work = int(work.sum())
    full = int((wn.astype(np.int64) @ xn.astype(np.int64).T).sum())
    n_cycles = int(window_cycles.sum())
    # Without skipping every window's lanes have all its columns as work (a group always
    # has its first lane's row): the last window holds ``cols - (windows - 1) K`` of them.
    last = cols - (windows - 1) * K
    dense = groups * n * ((windows - 1) * S + max(1, -(-last // mp)))
    return Timing(n_cycles, PIPELINE_DEPTH + n_cycles - 1, total_work, total_work - full, dense)
