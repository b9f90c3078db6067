"""The DRAM image: one bump-allocated address space shared by every kernel of a model.

Regions are placed in the order lowering asks for them, each aligned to the DRAM beat (a
weight stream that starts mid-beat costs the decompressor a cycle, rule W2). The host's
buffers (inputs, outputs, persistent state) are placed before the weights: a weight load's
DRAM range is its format's worst case, which would otherwise reach into them and order
unrelated stores after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgenpu.config import HardwareConfig
from edgenpu.isa import Segment

from ...errors import CompileError

__all__ = ["DramImage", "Region"]

#: Region kinds, as the manifest names them.
KINDS = ("input", "output", "state", "weights", "constants", "lut")


@dataclass(frozen=True)
class Region:
    """A named DRAM range and what it holds."""

    name: str
    kind: str
    addr: int
    nbytes: int

    @property
    def end(self) -> int:
        return self.addr + self.nbytes


@dataclass
class DramImage:
    """Regions and their initial contents."""

    config: HardwareConfig
    regions: list[Region] = field(default_factory=list)
    contents: dict[int, bytes] = field(default_factory=dict)
    cursor: int = 0
    reach: int = 0  # one past the furthest byte a weight load may read
    shared: dict[tuple[str, bytes], Region] = field(default_factory=dict)

    def _align(self) -> int:
        beat = self.config.dram.bandwidth_bytes_per_cycle
        self.cursor = -(-self.cursor // beat) * beat
        return self.cursor

    def reserve(self, name: str, kind: str, nbytes: int) -> Region:
        """``nbytes`` of zeros (I/O and state buffers)."""
        if kind not in KINDS:
            raise ValueError(f"unknown region kind {kind!r}")
        region = Region(name, kind, self._align(), nbytes)
        self.cursor = region.end
        self.regions.append(region)
        return region

    def place(self, name: str, kind: str, data: bytes, worst_case: int = 0) -> Region:
        """``data`` as a region; ``worst_case``: the bytes a load of it may read."""
        region = self.reserve(name, kind, len(data))
        if data:
            self.contents[region.addr] = bytes(data)
        self.reach = max(self.reach, region.addr + max(worst_case, len(data)))
        return region

    def place_once(self, name: str, kind: str, data: bytes, worst_case: int = 0) -> Region:
        """``data`` as a region shared by every kernel that asks for ``name`` with the same
        ``data`` (a table; the weights of kernels that differ only in frames a call)."""
        key = (name, bytes(data))
        if key not in self.shared:
            self.shared[key] = self.place(name, kind, data, worst_case)
        return self.shared[key]

    @property
    def size(self) -> int:
        return max(self.cursor, self.reach)

    def check_fits(self, source: str) -> None:
        """Raise if the image is larger than the config's DRAM."""
        if self.size > self.config.dram.bytes:
            by_kind: dict[str, int] = {}
            for region in self.regions:
                by_kind[region.kind] = by_kind.get(region.kind, 0) + region.nbytes
            parts = ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))
            raise CompileError(
                f"{source}: the compiled model needs {self.size} bytes of DRAM but config "
                f"{self.config.name} has {self.config.dram.bytes} ({parts})"
            )

    def segments(self) -> tuple[Segment, ...]:
        return tuple(Segment(addr, data) for addr, data in sorted(self.contents.items()))
