"""The NPU top: the dispatcher, the four execution units, the on-chip memories and the DRAM.

Everything a program touches is inside: the host loads the program words and the DRAM image
through host ports, starts the program at an entry index, waits for ``halted`` or
``trapped``, and reads the DRAM and every on-chip memory back. The units are wired as
``docs/microarchitecture.md`` ("Overview", "Memories", "Integration") draws them:

* the dispatcher's ``load`` stream drives the load unit, its ``store`` stream the store unit,
  each through a :class:`~edgenpu.rtl.command_adapter.CommandAdapter` (instruction word ->
  command struct), and its ``compute`` stream the MAC array and the vector unit through a
  :class:`~edgenpu.rtl.compute_router.ComputeRouter`; every unit's ``done`` goes back;
* one :class:`~edgenpu.rtl.sram.Sram` per space, with a port for every unit that uses it
  (the Memories table) and one host read port;
* the :class:`~edgenpu.rtl.dram.Dram`: its read channel to the load unit, its write channel
  to the store unit, its host port out.

The glue adds no register between a unit and the dispatcher or a memory, so the whole
program's cycles are those of the unit rules composed by the dispatcher's rules.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, connect, flipped

from edgenpu.config import HardwareConfig, config_from_dict
from edgenpu.isa import Opcode, Space
from edgenpu.rtl.command_adapter import CommandAdapter
from edgenpu.rtl.compute_router import ComputeRouter
from edgenpu.rtl.dispatcher import Dispatcher
from edgenpu.rtl.dram import Dram
from edgenpu.rtl.load_unit import LoadUnit
from edgenpu.rtl.ports import SramReadPort
from edgenpu.rtl.sram import Sram, addr_bits_for
from edgenpu.rtl.store_unit import StoreUnit
from edgenpu.rtl.vector_unit import VectorUnit

__all__ = ["HOST_READ_BITS", "Npu"]

#: Bits a host read port of an on-chip memory returns per cycle: 8 bytes or 2 words, so that
#: reading a memory back is quick while no signal of the port exceeds 64 bits (Verilator's
#: wide-integer code builds slowly).
HOST_READ_BITS = 64


def _join(m: Module, user, mem, *, read: bool) -> None:
    """Connect a unit's (or the host's) SRAM port to the memory's port of the same width.

    The address is widened (or kept) to the memory's: every port of an ``Sram`` has its
    one address width, and a unit may address with fewer bits (its memory's size) or more
    (the ISA's field width); elements past the end read as 0, as the contract says.
    """
    m.d.comb += [mem.en.eq(user.en), mem.addr.eq(user.addr)]
    if read:
        m.d.comb += user.data.eq(mem.data)
    else:
        m.d.comb += [mem.data.eq(user.data), mem.mask.eq(user.mask)]


class Npu(wiring.Component):
    """The whole processor of ``config``.

    Parameters
    ----------
    config : HardwareConfig or dict
        The configuration (a dict as ``config_from_dict`` takes, for the build cache).
    program_words : int
        Words of the instruction memory (the config has no field for it yet).
    dram_bytes : int, optional
        Size of the simulation DRAM, a power of two; default ``config.dram.bytes``. Every
        memory's initial contents are written into the Verilog element by element, so a
        simulation build wants a small DRAM (the bench builds 16 KiB; the 1 MiB of the configs
        makes the Verilog and the Verilator build many times larger).
    mac_array : bool
        Build the MAC array. Without it a ``matmul`` stalls the compute stream forever.

    Members
    -------
    program : In(stream.Signature(StructLayout({"addr": range(program_words), "data": 128})))
        Program loading, always ready (the dispatcher's ``host``).
    start : In(stream.Signature(StructLayout({"entry": index_bits, "length": index_bits})))
        Run from word ``entry``; word ``length`` is the end. Ready exactly while idle.
    busy, halted, trapped : Out(1)
        The dispatcher's status: running; how the last program ended.
    cause : Out(4)
        ``TrapCause`` of the trap.
    index : Out(index_bits)
        Index of the trapping instruction (``length`` for ``end_of_program``).
    cycles : Out(32)
        Cycles from the ``start`` transfer to the first cycle ``halted``/``trapped`` is high.
    tokens : Out(ArrayLayout(range(token_queue_depth + 1), 4))
        Token counts (L->C, C->L, C->S, S->C).
    dram_host : In(HostPort(beat_addr_bits, B))
        The DRAM's host port (``rtl/dram.py``), for use while no program runs.
    wgt, act, acc, lut : In(SramReadPort(addr_bits, width, element_bits))
        A host read port of each on-chip memory, :data:`HOST_READ_BITS` wide (8 bytes or
        2 words), data one cycle after ``en``; for reading results back between programs.
    """

    def __init__(
        self,
        config: HardwareConfig | dict,
        program_words: int = 256,
        dram_bytes: int | None = None,
        mac_array: bool = True,
    ) -> None:
        if isinstance(config, dict):
            config = config_from_dict(config)
        if not isinstance(config, HardwareConfig):
            raise TypeError(f"config must be a HardwareConfig or a dict, not {config!r}")
        if not isinstance(mac_array, bool):
            raise TypeError(f"mac_array must be a bool, not {mac_array!r}")
        self.config = config
        self.mac_array = mac_array
        self.dispatcher = Dispatcher.from_config(config, program_words)
        self.load = LoadUnit.from_config(config)
        self.store = StoreUnit.from_config(config)
        self.vector = VectorUnit.from_config(config)
        self.router = ComputeRouter(self.dispatcher.issue_layout, matmul=mac_array)
        if mac_array:
            from edgenpu.rtl.mac_array import MacArray

            self.mac = MacArray.from_config(config)
        else:
            self.mac = None
        dram_bytes = config.dram.bytes if dram_bytes is None else dram_bytes
        self.dram = Dram(
            size=dram_bytes,
            beat_bytes=config.dram.bandwidth_bytes_per_cycle,
            latency=config.dram.latency_cycles,
        )
        self.memories = self._memories()
        members = {
            "program": In(stream.Signature(self.dispatcher.host_layout)),
            "start": In(stream.Signature(self.dispatcher.start_layout)),
            "dram_host": self.dram.signature.members["host"],
        }
        for name in ("busy", "halted", "trapped", "cause", "index", "cycles", "tokens"):
            members[name] = self.dispatcher.signature.members[name]
        for space, (sram, _, _) in self.memories.items():
            members[space.label] = In(
                SramReadPort(sram.addr_bits, dict(sram.read_ports)["host"], sram.element_bits)
            )
        super().__init__(members)

    @classmethod
    def from_config(
        cls,
        config: HardwareConfig | dict,
        program_words: int = 256,
        dram_bytes: int | None = None,
        mac_array: bool = True,
    ) -> Npu:
        return cls(config, program_words, dram_bytes, mac_array)

    def _users(self) -> dict[Space, tuple[list, list]]:
        """Per space, its ``(name, unit port)`` read and write users (the Memories table)."""
        reads = {s: [] for s in Space}
        writes = {s: [] for s in Space}
        load, store, vec, mac = self.load, self.store, self.vector, self.mac
        for space in Space:
            writes[space].append(("load", getattr(load, space.label)))
            reads[space].append(("store", getattr(store, space.label)))
        reads[Space.ACT] += [("vec_a", vec.act_a), ("vec_b", vec.act_b)]
        reads[Space.ACC] += [("vec_a", vec.acc_a), ("vec_b", vec.acc_b)]
        writes[Space.ACT].append(("vec", vec.act_w))
        writes[Space.ACC].append(("vec", vec.acc_w))
        reads[Space.LUT] += [(f"vec{j}", port) for j, port in enumerate(vec.lut)]
        if mac is not None:
            reads[Space.WGT] += [(f"mac{j}", port) for j, port in enumerate(mac.wgt)]
            reads[Space.ACT].append(("mac", mac.act))
            reads[Space.ACC].append(("mac", mac.acc_rd))
            writes[Space.ACC].append(("mac", mac.acc_wr))
        return {s: (reads[s], writes[s]) for s in Space}

    def _memories(self) -> dict[Space, tuple[Sram, list, list]]:
        out = {}
        for space, (reads, writes) in self._users().items():
            size = self.config.sram_size(space)
            bits = 32 if space is Space.ACC else 8
            ports = [p for _, p in reads + writes]
            addr_bits = max([addr_bits_for(size)] + [p.signature.addr_bits for p in ports])
            sram = Sram(
                size=size,
                element_bits=bits,
                # Read and write port names share one namespace in an Sram.
                read_ports=[(f"r_{n}", p.signature.width) for n, p in reads]
                + [("host", HOST_READ_BITS // bits)],
                write_ports=[(f"w_{n}", p.signature.width) for n, p in writes],
                addr_bits=addr_bits,
            )
            out[space] = (sram, reads, writes)
        return out

    def elaborate(self, platform) -> Module:
        m = Module()
        disp, load, store, vec, router = (
            self.dispatcher,
            self.load,
            self.store,
            self.vector,
            self.router,
        )
        m.submodules.dispatcher = disp
        m.submodules.load = load
        m.submodules.store = store
        m.submodules.vector = vec
        m.submodules.router = router
        m.submodules.dram = dram = self.dram

        # Host side.
        connect(m, flipped(self.program), disp.host)
        connect(m, flipped(self.start), disp.start)
        connect(m, flipped(self.dram_host), dram.host)
        for name in ("busy", "halted", "trapped", "cause", "index", "cycles", "tokens"):
            m.d.comb += getattr(self, name).eq(getattr(disp, name))

        # Streams: instruction words to commands, done handshakes back.
        for name, unit, opcodes in (
            ("load", load, (Opcode.LOAD, Opcode.LOAD_WGT)),
            ("store", store, (Opcode.STORE,)),
        ):
            m.submodules[f"{name}_adapter"] = adapter = CommandAdapter(disp.issue_layout, opcodes)
            assert adapter.cmd_layout == unit.cmd_layout
            connect(m, getattr(disp, name), adapter.issue)
            connect(m, adapter.cmd, unit.cmd)
            done = getattr(disp, f"{name}_done")
            m.d.comb += [done.valid.eq(unit.done.valid), unit.done.ready.eq(done.ready)]
        connect(m, disp.compute, router.issue)
        connect(m, router.done, disp.compute_done)
        connect(m, router.vector, vec.cmd)
        m.d.comb += [
            router.vector_done.valid.eq(vec.done.valid),
            vec.done.ready.eq(router.vector_done.ready),
        ]
        if self.mac is not None:
            m.submodules.mac = mac = self.mac
            connect(m, router.mac, mac.cmd)
            m.d.comb += [
                router.mac_done.valid.eq(mac.done.valid),
                mac.done.ready.eq(router.mac_done.ready),
            ]

        # DRAM channels.
        connect(m, load.rd_req, dram.rd_req)
        connect(m, dram.rd_resp, load.rd_resp)
        connect(m, store.wr, dram.wr)

        # On-chip memories.
        for space, (sram, reads, writes) in self.memories.items():
            m.submodules[f"sram_{space.label}"] = sram
            for name, port in reads:
                _join(m, port, getattr(sram, f"r_{name}"), read=True)
            for name, port in writes:
                _join(m, port, getattr(sram, f"w_{name}"), read=False)
            _join(m, getattr(self, space.label), sram.host, read=True)
        return m
