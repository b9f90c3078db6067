"""What every step's lowering shares within one kernel: the builder, the DRAM image, the
tensors' buffers and regions, the lookup tables, constant operands and the weight streaming
slots."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.formats import WeightFormat
from edgenpu.isa import LUT_ENTRIES, OperandKind, Space

from ..quant.formats import LutFunction
from ..quant.qir import QKernel, QTensor
from .builder import Buffer, KernelBuilder, Ref
from .dram import DramImage, Region
from .weights import FormatChoice, WeightTile, place_weights

__all__ = ["KernelContext", "WeightSlots", "kind_of"]


def kind_of(tensor: QTensor) -> OperandKind:
    """The vector operand kind of an ACT tensor."""
    return {8: OperandKind.ACT_I8, 16: OperandKind.ACT_I16}[tensor.bits]


class WeightSlots:
    """Rotating WGT buffers that weight tiles stream through (double buffering).

    A tile is loaded into the slot after the last one used; the token pass makes the load
    wait for the matmul that read the slot's previous tile, so with two slots the next
    tile loads while the current one computes.
    """

    def __init__(self, builder: KernelBuilder, slot_bytes: int, count: int = 2):
        self.builder = builder
        self.slots = [builder.buffer(f"wgt.slot{i}", Space.WGT, slot_bytes) for i in range(count)]
        self.next = 0

    def fetch(self, tile: WeightTile, note: str = "") -> Ref:
        """Emit the tile's ``load_wgt`` into the next slot; return where it lands."""
        slot = self.slots[self.next]
        self.next = (self.next + 1) % len(self.slots)
        if tile.wgt_bytes > slot.size:
            raise ValueError(f"tile of {tile.wgt_bytes} bytes in a {slot.size}-byte slot")
        self.builder.load_weights(
            slot.at(), tile.dram, tile.count, tile.format, tile.precision, note
        )
        return slot.at()


@dataclass
class KernelContext:
    """Lowering state of one kernel."""

    kernel: QKernel
    builder: KernelBuilder
    image: DramImage
    config: HardwareConfig
    formats: tuple[WeightFormat, ...]
    regions: dict[str, Region]
    choices: list[FormatChoice] = field(default_factory=list)
    tensors: dict[str, Buffer] = field(default_factory=dict)
    _pinned_buffers: dict[str, Buffer] = field(default_factory=dict)
    slot_bytes: int = 0
    encodings: dict = field(default_factory=dict)  # place_weights' cache
    slots: WeightSlots | None = None

    def act(self, name: str) -> Buffer:
        """The ACT buffer of tensor ``name`` (made on first use)."""
        if name not in self.tensors:
            t = self.kernel.tensor(name)
            self.tensors[name] = self.builder.buffer(name, Space.ACT, t.nbytes, align=t.bits // 8)
        return self.tensors[name]

    def table(self, function: LutFunction) -> Ref:
        """A ``vlut`` table operand: the LUT buffer holding ``function``, loaded once."""
        name = f"lut.{function.name}"
        return self._pinned(name, Space.LUT, "lut", function.table().tobytes(), LUT_ENTRIES)

    def splat16(self, value: int) -> Ref:
        """An int16 ACT word holding ``value``, loaded once: as operand ``b`` of a binary
        vector op with ``period=1`` it reads as ``value`` in every element (the ISA has no
        immediate operands)."""
        data = np.asarray([value], "<i2").tobytes()
        return self._pinned(f"const.{value}", Space.ACT, "constants", data, 2)

    def _pinned(self, name: str, space: Space, kind: str, data: bytes, align: int) -> Ref:
        """A buffer of ``data`` kept for the whole kernel: placed once in the DRAM image
        (shared by the program's kernels) and loaded once, at its first use."""
        if name not in self._pinned_buffers:
            region = self.image.place_once(name, kind, data)
            buf = self.builder.buffer(name, space, len(data), align=align, pinned=True)
            self.builder.load(buf.at(), region.addr, 1, len(data), note=name)
            self._pinned_buffers[name] = buf
        return self._pinned_buffers[name].at()

    def place_weights(self, weights, row_tiles) -> list[WeightTile]:
        """Encode and place ``weights`` as ``row_tiles`` (:func:`.weights.place_weights`),
        recording the format chosen for this kernel's report."""
        tiles, choice = place_weights(
            self.image, weights, row_tiles, self.formats, self.config, self.encodings
        )
        self.choices.append(dataclasses.replace(choice, kernel=self.kernel.name))
        return tiles

    def constants(self, name: str, words: np.ndarray) -> Region:
        """Place int32 ``words`` (biases, multipliers) in DRAM."""
        return self.image.place(name, "constants", np.asarray(words, "<i4").tobytes())

    def weight_slots(self, tile_bytes: int) -> WeightSlots:
        """The kernel's streaming slots (``slot_bytes`` each, planned for the kernel)."""
        if self.slots is None:
            self.slots = WeightSlots(self.builder, self.slot_bytes)
        if tile_bytes > self.slot_bytes:
            raise ValueError(
                f"a {tile_bytes}-byte tile does not fit the planned {self.slot_bytes}-byte slots"
            )
        return self.slots
