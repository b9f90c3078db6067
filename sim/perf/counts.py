"""What one instruction moves and computes: DRAM and SRAM bytes, MAC pairs, vector elements.

Counted from the instruction and the data it meets, by the units' rules ("DMA", "MAC array",
"Vector unit", "Decompressor" in ``docs/microarchitecture.md``). Bytes are payload bytes (what
the program asks for); the DRAM beats the channels carry, partial ones included, are counted
beside them. A ``load_wgt``'s beats are those its stream spans: the beats rule W1 fetches past
the stream's end and drops are not counted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgenpu.formats import WeightFormat, bitmask, nm
from edgenpu.isa import Instruction, Opcode, Space
from edgenpu.precision import Precision, packed_size

__all__ = ["Counts", "metadata_bytes"]


@dataclass(frozen=True)
class Counts:
    """Event counts of an instruction or a sum of them (``+`` adds field by field).

    DRAM bytes by direction and kind: ``weights`` are compressed weight values (``load_wgt``)
    and raw ``load``/``store`` of WGT, ``metadata`` the formats' masks and indices,
    ``activations`` the loads and stores of ACT, ACC and LUT. ``sram_*`` are bytes per on-chip
    memory. MAC pairs (weight, activation) are ``active`` (a multiplier slot, both operands
    non-zero), ``gated`` (a slot with a zero operand: switching saved, not the cycle) or
    ``skipped`` (no slot). ``mac_windows`` is the MAC array's window cycles ``N``,
    ``mac_dense_windows`` what they would be with no skipping.
    """

    dram_read_weights: int = 0
    dram_read_metadata: int = 0
    dram_read_activations: int = 0
    dram_write_weights: int = 0
    dram_write_activations: int = 0
    dram_read_beats: int = 0
    dram_write_beats: int = 0
    sram_read_wgt: int = 0
    sram_read_act: int = 0
    sram_read_acc: int = 0
    sram_read_lut: int = 0
    sram_write_wgt: int = 0
    sram_write_act: int = 0
    sram_write_acc: int = 0
    sram_write_lut: int = 0
    mac_active_int8: int = 0
    mac_active_int4: int = 0
    mac_gated: int = 0
    mac_skipped: int = 0
    mac_windows: int = 0
    mac_dense_windows: int = 0
    vector_elements: int = 0
    decompressed_bytes: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts.total((self, other))

    @staticmethod
    def total(items) -> Counts:
        """The field-by-field sum of ``items`` (an iterable of :class:`Counts`)."""
        columns = list(zip(*(tuple(c.__dict__.values()) for c in items), strict=True))
        return Counts(*map(sum, columns)) if columns else Counts()

    @property
    def dram_read(self) -> int:
        return self.dram_read_weights + self.dram_read_metadata + self.dram_read_activations

    @property
    def dram_written(self) -> int:
        return self.dram_write_weights + self.dram_write_activations

    @property
    def sram_read(self) -> int:
        return self.sram_read_wgt + self.sram_read_act + self.sram_read_acc + self.sram_read_lut

    @property
    def sram_written(self) -> int:
        return self.sram_write_wgt + self.sram_write_act + self.sram_write_acc + self.sram_write_lut

    @property
    def mac_pairs(self) -> int:
        return self.mac_active_int8 + self.mac_active_int4 + self.mac_gated + self.mac_skipped

    def as_dict(self) -> dict[str, int]:
        out = dataclasses.asdict(self)
        out |= {
            "dram_read": self.dram_read,
            "dram_written": self.dram_written,
            "sram_read": self.sram_read,
            "sram_written": self.sram_written,
            "mac_pairs": self.mac_pairs,
        }
        return out


def metadata_bytes(fmt: WeightFormat, count: int) -> int:
    """Bytes of a ``count``-element stream that are the format's metadata, not values: a
    bitmask block's mask, a 2:4 block's indices; none for dense."""
    blocks = -(-count // bitmask.BLOCK)
    if fmt is WeightFormat.BITMASK:
        return blocks * bitmask.MASK_BYTES
    if fmt is WeightFormat.NM2_4:
        return blocks * nm.META_BYTES
    return 0


_SRAM = {Space.WGT: "wgt", Space.ACT: "act", Space.ACC: "acc", Space.LUT: "lut"}


def dma(ins: Instruction, beat_total: int) -> Counts:
    """A ``load`` or ``store`` of ``beat_total`` beats."""
    space = ins["space"]
    size = ins["rows"] * ins["len"] * space.unit_bytes
    name = _SRAM[space]
    kind = "weights" if space is Space.WGT else "activations"
    if ins.opcode is Opcode.LOAD:
        return Counts(
            **{f"dram_read_{kind}": size, f"sram_write_{name}": size}, dram_read_beats=beat_total
        )
    return Counts(
        **{f"dram_write_{kind}": size, f"sram_read_{name}": size}, dram_write_beats=beat_total
    )


def weight_load(ins: Instruction, consumed: int, beat_bytes: int) -> Counts:
    """A ``load_wgt`` whose stream is ``consumed`` bytes long."""
    count, fmt, prec = ins["count"], ins["format"], ins["prec"]
    if not count:
        return Counts()
    meta = metadata_bytes(fmt, count)
    first = ins["dram"] % beat_bytes
    return Counts(
        dram_read_weights=consumed - meta,
        dram_read_metadata=meta,
        dram_read_beats=-(-(first + consumed) // beat_bytes),
        sram_write_wgt=packed_size(count, prec),
        decompressed_bytes=consumed,
    )


def matmul(
    ins: Instruction,
    weights: np.ndarray,
    x: np.ndarray,
    lanes: int,
    windows: int,
    dense_windows: int,
    work: int,
    gated: int,
) -> Counts:
    """A ``matmul`` of ``weights`` (rows x cols) with inputs ``x`` (n x cols), given the MAC
    rules' window cycles and work: per window a read of each lane's weights and one of the
    activations (rule A6), per sweep an accumulator read (with ``accumulate``) and write."""
    rows, cols = weights.shape
    n = x.shape[0]
    prec = Precision(ins["prec"])
    active = work - gated
    groups = -(-rows // lanes)
    return Counts(
        sram_read_wgt=n * -(-rows * cols * prec.bits // 8),
        sram_read_act=groups * n * cols,
        sram_read_acc=4 * n * rows if ins["accumulate"] else 0,
        sram_write_acc=4 * n * rows,
        mac_active_int8=active if prec is Precision.INT8 else 0,
        mac_active_int4=active if prec is Precision.INT4 else 0,
        mac_gated=gated,
        mac_skipped=rows * cols * n - work,
        mac_windows=windows,
        mac_dense_windows=dense_windows,
    )


def vector(ins: Instruction, lanes: int) -> Counts:
    """A ``v*`` instruction: every element of ``a`` read and of ``d`` written; ``b`` read
    once per beat unless it wraps within a beat (then only beat 0 reads it, rule V2); a
    ``vlut``'s table read once per element."""
    n = ins["len"]
    if not n:
        return Counts()
    reads: dict[str, int] = {}

    def read(kind, elements: int) -> None:
        name = f"sram_read_{_SRAM[kind.space]}"
        reads[name] = reads.get(name, 0) + elements * kind.bits // 8

    read(ins["a_kind"], n)
    fields = ins.fields()
    if "b_kind" in fields:
        period = ins["period"]
        wraps_in_beat = 0 < period < min(n, lanes)
        read(ins["b_kind"], period if wraps_in_beat else n)
    if ins.opcode is Opcode.VLUT:
        reads["sram_read_lut"] = reads.get("sram_read_lut", 0) + n
    d = ins["d_kind"]
    return Counts(**reads, **{f"sram_write_{_SRAM[d.space]}": n * d.bits // 8}, vector_elements=n)
