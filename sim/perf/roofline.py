"""The roofline view of a run: the cycles its MACs and its DRAM bytes need at the machine's
peak rates, beside the cycles the model gives.

Compute bound: non-zero MACs over the MAC array's peak, ``lanes * macs_per_lane`` int8 pairs
per cycle (twice as many int4). Memory bound: DRAM bytes over ``dram.bandwidth_bytes_per_cycle``,
per channel (reads and writes have one each, so the busier channel bounds), compressed bytes as
they are stored. The larger bound binds; ``modeled / bound`` says how far the program is from
it (1.0 is at the roof).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenpu.config import HardwareConfig
from edgenpu.sim.perf.counts import Counts

__all__ = ["Roofline", "roofline"]


@dataclass(frozen=True)
class Roofline:
    """Bounds in cycles (fractional), the binding one, and the modeled cycles over it
    (None when both bounds are 0)."""

    compute_cycles: float
    memory_cycles: float
    binding: str
    modeled_cycles: int
    ratio: float | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def roofline(counts: Counts, cycles: int, config: HardwareConfig) -> Roofline:
    """The bounds of a run's ``counts`` on ``config``, against its modeled ``cycles``."""
    int8_rate = config.mac.lanes * config.mac.macs_per_lane
    compute = counts.mac_active_int8 / int8_rate + counts.mac_active_int4 / (2 * int8_rate)
    B = config.dram.bandwidth_bytes_per_cycle
    memory = max(counts.dram_read, counts.dram_written) / B
    bound = max(compute, memory)
    binding = "compute" if compute >= memory else "memory"
    return Roofline(compute, memory, binding, cycles, cycles / bound if bound else None)
