"""Bench-only top: the load and store units wired to a simulation DRAM.

It is the DMA path as the processor top will wire it (``Dram`` read channel -> load unit;
store unit -> ``Dram`` write channel), plus what only a bench needs: the DRAM's host port
(to load random contents and read them all back), the units' SRAM ports brought out to the
bench's memory models, and *taps*, copies of the DRAM channels' transfers, so that the bench
sees every DRAM request and DRAM write in the cycle it happens.

The SRAMs are modelled by the bench rather than built from ``rtl/sram.py``: an SRAM's
initial contents are written out element by element in the Verilog, which makes the default
configuration's memories (hundreds of KiB) take minutes to compile; ``rtl/sram.py`` has its
own bench (``tests/rtl/test_sram.py``).
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from edgenpu.config import HardwareConfig, config_from_dict
from edgenpu.isa import Space
from edgenpu.rtl.dram import Dram
from edgenpu.rtl.load_unit import LoadUnit
from edgenpu.rtl.sram import Sram
from edgenpu.rtl.store_unit import StoreUnit

__all__ = ["DmaHarness", "params"]


def params(config: HardwareConfig) -> dict:
    """The build parameters of the harness for ``config``."""
    return {"config": config}


class DmaHarness(wiring.Component):
    """The DMA path of ``config`` with the DRAM's host port, SRAM ports and taps.

    Parameters
    ----------
    config : HardwareConfig or dict
        The configuration (a dict as ``config_from_dict`` takes, for the build cache). Its
        DRAM (``dram.bytes``, a power of two) is built whole.
    srams : bool
        Build the four memories from ``rtl/sram.py`` and connect the units to them, rather
        than bringing the units' SRAM ports out (for Amaranth's simulator, where their size
        costs nothing).

    Members
    -------
    load_cmd, load_done, store_cmd, store_done
        The units' ``cmd`` and ``done`` streams.
    dram_host : ``In(HostPort)``
        The DRAM's host port.
    load_<space> : ``Out(SramWritePort)``
        The load unit's write port of each memory (without ``srams``).
    store_<space> : ``Out(SramReadPort)``
        The store unit's read port of each memory (without ``srams``).
    stall_rd_req, stall_wr : In(1)
        Hold the DRAM read-request / write channel not ready this cycle (the simulation
        DRAM never stalls; these exercise the units' back-pressure paths).
    tap_req_valid, tap_req_addr : Out
        A DRAM read request transfers this cycle, and its beat address.
    tap_dw_valid, tap_dw_addr, tap_dw_data, tap_dw_mask : Out
        A DRAM write transfers this cycle, and the write.
    """

    def __init__(self, config: HardwareConfig | dict, *, srams: bool = False) -> None:
        if isinstance(config, dict):
            config = config_from_dict(config)
        self.config = config
        self.srams = srams
        self.load = LoadUnit.from_config(config)
        self.store = StoreUnit.from_config(config)
        self.dram = Dram.from_config(config)
        B = config.dram.bandwidth_bytes_per_cycle
        load, store = self.load.signature.members, self.store.signature.members
        members = {
            "load_cmd": load["cmd"],
            "load_done": load["done"],
            "store_cmd": store["cmd"],
            "store_done": store["done"],
            "dram_host": self.dram.signature.members["host"],
            "stall_rd_req": In(1),
            "stall_wr": In(1),
            "tap_req_valid": Out(1),
            "tap_req_addr": Out(self.dram.beat_addr_bits),
            "tap_dw_valid": Out(1),
            "tap_dw_addr": Out(self.dram.beat_addr_bits),
            "tap_dw_data": Out(8 * B),
            "tap_dw_mask": Out(B),
        }
        for space in Space if not srams else ():
            members[f"load_{space.label}"] = load[space.label]
            members[f"store_{space.label}"] = store[space.label]
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.load = load = self.load
        m.submodules.store = store = self.store
        m.submodules.dram = dram = self.dram
        connect(m, flipped(self.load_cmd), load.cmd)
        connect(m, load.done, flipped(self.load_done))
        connect(m, flipped(self.store_cmd), store.cmd)
        connect(m, store.done, flipped(self.store_done))
        connect(m, flipped(self.dram_host), dram.host)
        connect(m, dram.rd_resp, load.rd_resp)
        for unit_side, dram_side, stall in (
            (load.rd_req, dram.rd_req, self.stall_rd_req),
            (store.wr, dram.wr, self.stall_wr),
        ):
            m.d.comb += [
                dram_side.valid.eq(unit_side.valid & ~stall),
                dram_side.payload.eq(unit_side.payload),
                unit_side.ready.eq(dram_side.ready & ~stall),
            ]
        for space in Space:
            writes, reads = getattr(load, space.label), getattr(store, space.label)
            if self.srams:
                sram = Sram.for_space(
                    self.config,
                    space,
                    read_ports=[("store", reads.signature.width)],
                    write_ports=[("load", writes.signature.width)],
                )
                m.submodules[f"sram_{space.label}"] = sram
                connect(m, writes, sram.load)
                connect(m, reads, sram.store)
            else:
                connect(m, writes, flipped(getattr(self, f"load_{space.label}")))
                connect(m, reads, flipped(getattr(self, f"store_{space.label}")))
        m.d.comb += [
            self.tap_req_valid.eq(load.rd_req.valid & load.rd_req.ready),
            self.tap_req_addr.eq(load.rd_req.payload.addr),
            self.tap_dw_valid.eq(store.wr.valid & store.wr.ready),
            self.tap_dw_addr.eq(store.wr.payload.addr),
            self.tap_dw_data.eq(store.wr.payload.data),
            self.tap_dw_mask.eq(store.wr.payload.mask),
        ]
        return m
