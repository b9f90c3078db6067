"""Energy from the config's per-event table (``HardwareConfig.energy``, picojoules).

Every charge is an event count of :class:`~.counts.Counts` times its table entry: a MAC with
both operands non-zero costs ``mac_int8``/``mac_int4`` by precision, a gated one
``mac_gated``, a skipped one nothing; SRAM and DRAM bytes their per-byte costs; the
decompressor its per-byte cost on the compressed stream; every cycle ``static_per_cycle``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenpu.config import EnergyConfig
from edgenpu.sim.perf.counts import Counts

__all__ = ["Energy", "dynamic_energy", "energy"]


@dataclass(frozen=True)
class Energy:
    """Picojoules per category; :attr:`total` is their sum."""

    mac: float = 0.0
    mac_gated: float = 0.0
    vector: float = 0.0
    sram_read: float = 0.0
    sram_write: float = 0.0
    dram_read: float = 0.0
    dram_write: float = 0.0
    decompress: float = 0.0
    static: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def dynamic_energy(counts: Counts, table: EnergyConfig) -> Energy:
    """The energy of ``counts``' events (no static part)."""
    return Energy(
        mac=counts.mac_active_int8 * table.mac_int8 + counts.mac_active_int4 * table.mac_int4,
        mac_gated=counts.mac_gated * table.mac_gated,
        vector=counts.vector_elements * table.vector_op,
        sram_read=counts.sram_read * table.sram_read_byte,
        sram_write=counts.sram_written * table.sram_write_byte,
        dram_read=counts.dram_read * table.dram_read_byte,
        dram_write=counts.dram_written * table.dram_write_byte,
        decompress=counts.decompressed_bytes * table.decompress_byte,
    )


def energy(counts: Counts, cycles: int, table: EnergyConfig) -> Energy:
    """The energy of a run: its events, and ``static_per_cycle`` for each of its cycles."""
    dynamic = dynamic_energy(counts, table)
    return Energy(**{**dynamic.as_dict(), "static": cycles * table.static_per_cycle})
