"""Where a run on the RTL first departs from the functional simulator.

Comparing final memories says *that* the RTL disagrees; an engineer needs *where*. The
functional simulator is stepped through the program in program order while a *writer map*
records, for every byte of every memory, the index of the last instruction that wrote it.
Every byte whose final value differs is then charged to its last writer, and the earliest of
those instructions is the culprit: the first instruction (in program order) whose effect
survives to the end and differs. A differing byte that no instruction writes is a *stray
write* of the RTL (a unit wrote where the program never asked it to).

An instruction's writes are its exact footprint, value-independent (a byte rewritten with the
value it held counts as written): the ``write`` ranges of :func:`edgenpu.isa.access.accesses`,
except that a strided ``store`` writes only its rows and a ``matmul`` with ``acc_stride >
rows`` only its output vectors, where ``accesses`` gives the bounding range.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode, Program, SymbolKind
from edgenpu.isa.access import accesses
from edgenpu.isa.disasm import disassemble_instruction
from edgenpu.sim import functional

__all__ = ["MEMORIES", "Divergence", "find_divergence", "written_ranges"]

#: The memories compared, in the order a report lists them.
MEMORIES = ("dram", "wgt", "act", "acc", "lut")
#: No instruction wrote the byte (it holds what the run started with).
UNWRITTEN = -1


@dataclass(frozen=True)
class Divergence:
    """The first difference between the RTL's final memories and the functional simulator's.

    Attributes
    ----------
    memory : str
        One of :data:`MEMORIES`.
    address : int
        Byte address of the first differing byte the culprit wrote (of the first stray byte
        for a stray write).
    rtl, functional : int
        The element at ``address`` as each left it, unsigned little-endian: one byte, or the
        whole 4-byte word of ``acc``.
    index : int or None
        The culprit instruction's index in the program; ``None`` for a stray write.
    instruction : str
        Its disassembled line (empty for a stray write).
    differing_bytes : int
        Bytes that differ over all memories.
    stray_bytes : int
        Of those, bytes that no instruction writes.
    """

    memory: str
    address: int
    rtl: int
    functional: int
    index: int | None
    instruction: str
    differing_bytes: int
    stray_bytes: int

    @property
    def stray(self) -> bool:
        return self.index is None

    def where(self) -> str:
        """``memory[address]``, with the word address for ``acc``."""
        word = f" (word {self.address // 4:#x})" if self.memory == "acc" else ""
        return f"{self.memory}[{self.address:#x}]{word}"

    def values(self) -> str:
        digits = 8 if self.memory == "acc" else 2
        return f"RTL {self.rtl:#0{digits + 2}x}, functional {self.functional:#0{digits + 2}x}"

    def __str__(self) -> str:
        count = f"{self.differing_bytes} bytes differ"
        if self.stray_bytes and not self.stray:
            count += f", {self.stray_bytes} of them written by no instruction"
        if self.stray:
            return (
                f"stray write: {self.where()} is written by no instruction; "
                f"{self.values()} ({count})"
            )
        return (
            f"first divergence at instruction {self.index} ({self.instruction}): "
            f"{self.where()}: {self.values()} ({count})"
        )

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "instruction": self.instruction or None,
            "memory": self.memory,
            "address": self.address,
            "rtl": self.rtl,
            "functional": self.functional,
            "differing_bytes": self.differing_bytes,
            "stray_bytes": self.stray_bytes,
        }


def written_ranges(ins: Instruction) -> list[tuple[str, int, int]]:
    """Every byte range ``[start, stop)`` that ``ins`` writes, as ``(memory, start, stop)``."""
    op = ins.opcode
    if op is Opcode.STORE:
        row_bytes = ins["len"] * ins["space"].unit_bytes
        if not (ins["rows"] and row_bytes):
            return []
        starts = (ins["dram"] + r * ins["stride"] for r in range(ins["rows"]))
        return [("dram", s, s + row_bytes) for s in starts]
    if op is Opcode.MATMUL:
        if not (ins["rows"] and ins["cols"] and ins["n"]):
            return []
        words = (ins["acc"] + j * ins["acc_stride"] for j in range(ins["n"]))
        return [("acc", 4 * w, 4 * (w + ins["rows"])) for w in words]
    return [
        (a.memory.label, a.start * a.memory.unit_bytes, a.stop * a.memory.unit_bytes)
        for a in accesses(ins)
        if a.write
    ]


def find_divergence(
    program: Program,
    config: HardwareConfig,
    machine: functional.Machine,
    rtl: Mapping[str, np.ndarray],
    *,
    entry: int | str = 0,
) -> Divergence | None:
    """Run ``program`` in the functional simulator from ``machine`` and locate the first
    difference from the RTL's final memories ``rtl``; ``None`` if they agree.

    Parameters
    ----------
    program, config
        What ran (``config`` with the simulation DRAM the RTL had).
    machine : Machine
        The state both started from; not modified.
    rtl : mapping of str to ndarray
        The RTL's final ``dram``, ``wgt``, ``act``, ``acc`` and ``lut`` as ``uint8`` arrays,
        at least as long as the functional memories (a longer read-back is cut).
    entry : int or str
        Where the program started.
    """
    state = copy.deepcopy(machine)
    start = functional.resolve_entry(program, entry)
    plan = functional.dispatch(program, config, start, state.tokens)
    writer = {name: np.full(len(getattr(state, name)), UNWRITTEN, np.int64) for name in MEMORIES}
    stats = functional.ExecStats()
    # ``dispatch`` issues every word from the entry up to the halt or trap (nops included),
    # so the k-th instruction it returns is word ``start + k``.
    for k, ins in enumerate(plan.instructions):
        functional.execute(ins, state, stats)
        for name, lo, hi in written_ranges(ins):
            writer[name][lo:hi] = start + k

    differing = {}
    for name in MEMORIES:
        want = getattr(state, name)
        have = np.asarray(rtl[name], np.uint8)[: len(want)]
        if len(have) < len(want):
            raise ValueError(f"RTL {name} has {len(have)} bytes, the functional {len(want)}")
        differing[name] = np.flatnonzero(have != want)
    total = sum(d.size for d in differing.values())
    if not total:
        return None
    stray = sum(int((writer[n][d] == UNWRITTEN).sum()) for n, d in differing.items())

    # The culprit: the earliest last-writer of any differing byte; its first such byte.
    best: tuple[int, int, str, int] | None = None  # (index, memory order, memory, address)
    for order, name in enumerate(MEMORIES):
        owners = writer[name][differing[name]]
        written = owners != UNWRITTEN
        if written.any():
            i = int(np.argmin(np.where(written, owners, np.iinfo(np.int64).max)))
            candidate = (int(owners[i]), order, name, int(differing[name][i]))
            best = min(best, candidate) if best else candidate
    if best is not None:
        index, _, name, address = best
        # DRAM addresses by symbol name, as the disassembler prints a whole program.
        names: dict[int, str] = {}
        for symbol in program.symbols:
            if symbol.kind is not SymbolKind.ENTRY:
                names.setdefault(symbol.addr, symbol.name)
        text = disassemble_instruction(plan.instructions[index - start], names)
    else:
        name = next(n for n in MEMORIES if differing[n].size)
        index, address, text = None, int(differing[name][0]), ""
    unit = 4 if name == "acc" else 1
    lo = address // unit * unit
    have = np.asarray(rtl[name], np.uint8)
    want = getattr(state, name)
    return Divergence(
        memory=name,
        address=address,
        rtl=int.from_bytes(have[lo : lo + unit].tobytes(), "little"),
        functional=int.from_bytes(want[lo : lo + unit].tobytes(), "little"),
        index=index,
        instruction=text,
        differing_bytes=total,
        stray_bytes=stray,
    )
