"""A kernel's instructions over symbolic SRAM buffers, resolved once the buffers are placed.

Lowering code asks for buffers (a name, a memory, a size) and emits instructions whose SRAM
addresses are :class:`Ref` s into them; DRAM addresses are concrete (the image is laid out
as it goes, :mod:`.dram`). :meth:`KernelBuilder.finish` places the buffers by liveness
(:mod:`.allocate`), resolves every address, adds the dependency tokens (:mod:`.tokens`) and
ends the kernel with ``halt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgenpu.config import HardwareConfig
from edgenpu.isa import LUT_ENTRIES, Instruction, Opcode, OperandKind, Space
from edgenpu.precision import Precision

from .allocate import place
from .tokens import add_tokens

__all__ = ["Buffer", "FinishedKernel", "KernelBuilder", "Ref"]


@dataclass(frozen=True, eq=False)
class Buffer:
    """A region of one on-chip memory, ``size`` units long (ACC: words, else bytes).

    ``pinned`` buffers live for the whole kernel (resident weights, tables); the others
    from the first to the last instruction that names them.
    """

    name: str
    space: Space
    size: int
    align: int = 1
    pinned: bool = False

    def at(self, offset: int = 0) -> Ref:
        """A reference ``offset`` units into the buffer."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} is outside buffer {self.name} ({self.size})")
        return Ref(self, offset)


@dataclass(frozen=True)
class Ref:
    """An address inside a :class:`Buffer`."""

    buffer: Buffer
    offset: int = 0

    def __add__(self, units: int) -> Ref:
        return self.buffer.at(self.offset + units)


@dataclass
class _Pending:
    opcode: Opcode
    fields: dict
    note: str = ""
    tag: str = ""


@dataclass(frozen=True)
class FinishedKernel:
    """A kernel's instructions (ending with ``halt``) with a note and the step (``tag``)
    each came from, and where its buffers were placed."""

    instructions: list[Instruction]
    notes: list[str]
    tags: list[str]
    addresses: dict


@dataclass
class KernelBuilder:
    """Collects one kernel's instructions.

    Parameters
    ----------
    name : str
        The entry point.
    config : HardwareConfig
    """

    name: str
    config: HardwareConfig
    pending: list[_Pending] = field(default_factory=list)
    buffers: list[Buffer] = field(default_factory=list)
    tag: str = ""  # the step being lowered, recorded with each instruction

    def buffer(
        self, name: str, space: Space, size: int, *, align: int = 1, pinned: bool = False
    ) -> Buffer:
        """A new buffer (its placement is decided in :meth:`finish`)."""
        buf = Buffer(f"{name}", space, max(int(size), 1), align, pinned)
        self.buffers.append(buf)
        return buf

    def _emit(self, opcode: Opcode, note: str = "", **fields) -> None:
        self.pending.append(_Pending(opcode, fields, note, self.tag))

    # -- DMA ---------------------------------------------------------------------------

    def load(self, dst: Ref, dram: int, rows: int, length: int, stride: int = 0, note: str = ""):
        """DRAM -> ``dst``: ``rows`` x ``length`` elements (ACC: words), rows ``stride``
        DRAM bytes apart (0: the same row again)."""
        self._dma(Opcode.LOAD, dst, dram, rows, length, stride, note)

    def store(self, src: Ref, dram: int, rows: int, length: int, stride: int = 0, note: str = ""):
        """``src`` -> DRAM (rows contiguous on chip)."""
        self._dma(Opcode.STORE, src, dram, rows, length, stride, note)

    def _dma(self, opcode, sram: Ref, dram, rows, length, stride, note) -> None:
        self._emit(
            opcode,
            note,
            space=sram.buffer.space,
            sram=sram,
            dram=dram,
            rows=rows,
            len=length,
            stride=stride,
        )

    def load_weights(self, dst: Ref, dram: int, count: int, fmt, precision: Precision, note=""):
        """A compressed weight stream -> ``count`` dense weights at ``dst`` in WGT."""
        self._emit(
            Opcode.LOAD_WGT, note, wgt=dst, dram=dram, count=count, format=fmt, prec=precision
        )

    # -- compute -----------------------------------------------------------------------

    def matmul(
        self,
        acc: Ref,
        w: Ref,
        x: Ref,
        rows: int,
        cols: int,
        precision: Precision,
        *,
        n: int = 1,
        x_stride: int = 0,
        acc_stride: int = 0,
        accumulate: bool = False,
        note="",
    ):
        """``acc[j][i] (+)= sum_k W[i][k] x[j][k]`` for ``n`` vectors."""
        self._emit(
            Opcode.MATMUL,
            note,
            acc=acc,
            w=w,
            x=x,
            rows=rows,
            cols=cols,
            n=n,
            x_stride=x_stride if n > 1 else 0,
            acc_stride=acc_stride if n > 1 else 0,
            prec=precision,
            accumulate=int(accumulate),
        )

    def vector(
        self,
        opcode: Opcode,
        d: tuple[OperandKind, Ref],
        a: tuple[OperandKind, Ref],
        length: int,
        *,
        b: tuple[OperandKind, Ref] | None = None,
        shift: int = 0,
        period: int = 0,
        table: Ref | None = None,
        note: str = "",
    ):
        """One vector instruction; operands are ``(kind, ref)`` pairs."""
        fields = {
            "d_kind": d[0],
            "d_addr": d[1],
            "a_kind": a[0],
            "a_addr": a[1],
            "len": length,
            "shift": shift,
        }
        if b is not None:
            fields |= {"b_kind": b[0], "b_addr": b[1], "period": period}
        if opcode is Opcode.VLUT:
            fields["table"] = table  # a Ref to the LUT buffer
        self._emit(opcode, note, **fields)

    # -- finishing ---------------------------------------------------------------------

    def finish(self) -> FinishedKernel:
        """Place the buffers, resolve the addresses and add the tokens.

        Token ``nop`` s take the tag of the instruction they release; ``halt`` has none.

        Raises
        ------
        CompileError
            If the buffers live at once do not fit a memory (naming the kernel and them).
        """
        uses: dict[Buffer, list[int]] = {}
        for index, item in enumerate(self.pending):
            for value in item.fields.values():
                if isinstance(value, Ref):
                    span = uses.setdefault(value.buffer, [index, index])
                    span[1] = index
        last = len(self.pending)
        lifetimes = {
            buf: (0, last) if buf.pinned else tuple(uses[buf])
            for buf in self.buffers
            if buf in uses or buf.pinned
        }
        addresses = place(self.name, lifetimes, self.config)
        resolved = []
        for item in self.pending:
            fields = {
                k: (addresses[v.buffer] + v.offset if isinstance(v, Ref) else v)
                for k, v in item.fields.items()
            }
            if "table" in fields:  # a LUT buffer's address names its table
                fields["table"] //= LUT_ENTRIES
            resolved.append(Instruction.make(item.opcode, **fields))
        instructions, origin = add_tokens(resolved, self.config)
        notes = [
            self.pending[o].note if ins.opcode is not Opcode.NOP else "relay"
            for ins, o in zip(instructions, origin, strict=True)
        ]
        tags = [self.pending[o].tag for o in origin]
        instructions.append(Instruction.make(Opcode.HALT))
        return FinishedKernel(instructions, notes + [""], tags + [""], addresses)
