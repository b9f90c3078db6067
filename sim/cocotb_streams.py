"""cocotb drivers and monitors for ``amaranth.lib.stream`` ports, clocked together.

A stream port ``name`` of an Amaranth component appears in its Verilog as ``name__valid``,
``name__ready`` and ``name__payload`` (the payload's layout packed LSB first). A
:class:`StreamSource` drives one the component consumes, a :class:`StreamSink` takes one it
produces; both speak the payload's ``amaranth.lib.data`` layout (dicts in, dicts out).

All endpoints of a bench are stepped by one :class:`Clocked` loop, which waits for two
triggers per cycle in total (drive after the rising edge, sample in the read-only phase)
rather than two per endpoint: trigger callbacks are most of a cocotb bench's cost.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["Clocked", "StreamSink", "StreamSource", "pack_payload", "unpack_payload"]


def pack_payload(layout: data.Layout | None, value: int | Mapping[str, Any]) -> int:
    """A payload as the integer on the port: ``value`` itself, or a struct's fields (nested
    mappings for nested structs) placed at their offsets."""
    if not isinstance(value, Mapping):
        return int(value)
    if not isinstance(layout, data.StructLayout):
        raise TypeError(f"a mapping payload needs a struct layout, not {layout!r}")
    word = 0
    for name, field_value in value.items():
        field = layout[name]
        inner = field.shape if isinstance(field.shape, data.StructLayout) else None
        bits = pack_payload(inner, field_value)
        word |= (bits & ((1 << field.width) - 1)) << field.offset
    return word


def unpack_payload(layout: data.Layout | None, word: int) -> int | dict[str, Any]:
    """The inverse of :func:`pack_payload`: struct fields as a dict (integers otherwise)."""
    if not isinstance(layout, data.StructLayout):
        return word
    out = {}
    for name, field in layout:
        bits = (word >> field.offset) & ((1 << field.width) - 1)
        inner = field.shape if isinstance(field.shape, data.StructLayout) else None
        out[name] = unpack_payload(inner, bits)
    return out


def _value(handle: Any) -> int:
    value = handle.value
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class _Endpoint:
    def __init__(self, dut: Any, name: str, layout: data.Layout | None) -> None:
        self.name = name
        self.layout = layout
        self._valid = getattr(dut, f"{name}__valid")
        self._ready = getattr(dut, f"{name}__ready")
        self._payload = getattr(dut, f"{name}__payload", None)
        #: ``(cycle, payload)`` of every transfer so far.
        self.transfers: list[tuple[int, Any]] = []

    def drive(self) -> None:
        raise NotImplementedError

    def sample(self, cycle: int) -> None:
        raise NotImplementedError


class StreamSource(_Endpoint):
    """Offers queued payloads on a stream the DUT consumes.

    Parameters
    ----------
    dut, name
        The toplevel handle and the stream port's name.
    layout : amaranth.lib.data.Layout, optional
        The payload layout, to queue dicts rather than integers.
    bubbles : float
        Probability that a queued payload is held back for a cycle before being offered.
        Once offered it stays valid and unchanged until transferred, as a stream requires.
    rng : numpy.random.Generator, optional
        Source of the bubbles.
    """

    def __init__(
        self,
        dut: Any,
        name: str,
        layout: data.Layout | None = None,
        *,
        bubbles: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(dut, name, layout)
        self.queue: deque[Any] = deque()
        self.bubbles = bubbles
        self._rng = rng or np.random.default_rng(0)
        self._offered = False
        self._valid_now = -1
        self._valid.value = 0

    def send(self, payloads: Iterable[Any]) -> None:
        """Queue payloads (integers, or dicts of the layout's fields)."""
        self.queue.extend(payloads)

    def flush(self) -> None:
        """Drop everything not yet transferred, including an offered payload: for a source
        that moves on to a new request (as a DMA engine does after a ``done``)."""
        self.queue.clear()
        self._offered = False

    def drive(self) -> None:
        if not self._offered and self.queue and self._rng.random() >= self.bubbles:
            self._offered = True
            self._payload.value = pack_payload(self.layout, self.queue[0])
        valid = int(self._offered)
        if valid != self._valid_now:  # each write is a simulator call: skip the no-ops
            self._valid.value = valid
            self._valid_now = valid

    def sample(self, cycle: int) -> None:
        if self._offered and _value(self._ready):
            self.transfers.append((cycle, self.queue.popleft()))
            self._offered = False


class StreamSink(_Endpoint):
    """Takes payloads from a stream the DUT produces.

    Parameters
    ----------
    dut, name, layout
        As for :class:`StreamSource`; with a struct layout payloads are recorded as dicts.
    stalls : float
        Probability that ``ready`` is low in a cycle.
    rng : numpy.random.Generator, optional
        Source of the stalls.
    """

    def __init__(
        self,
        dut: Any,
        name: str,
        layout: data.Layout | None = None,
        *,
        stalls: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(dut, name, layout)
        self.stalls = stalls
        self._rng = rng or np.random.default_rng(0)
        self._ready_now = -1

    def drive(self) -> None:
        ready = int(self.stalls == 0.0 or self._rng.random() >= self.stalls)
        if ready != self._ready_now:
            self._ready.value = ready
            self._ready_now = ready

    def sample(self, cycle: int) -> None:
        if self._ready_now and _value(self._valid):
            word = _value(self._payload) if self._payload is not None else 0
            self.transfers.append((cycle, unpack_payload(self.layout, word)))


class Clocked:
    """Steps stream endpoints once per clock cycle and counts cycles.

    In each cycle every endpoint first drives its outputs (just after the rising edge), then
    samples the handshake once all signals have settled (the read-only phase), so a transfer
    is recorded in the cycle whose rising edge completes it.
    """

    def __init__(self, clk: Any, endpoints: Iterable[_Endpoint]) -> None:
        self.clk = clk
        self.endpoints = list(endpoints)
        #: Cycles stepped so far; the cycle number transfers are recorded with.
        self.cycle = 0
        self._writes: list[tuple[Any, int]] = []

    def start(self, period_ns: int = 10) -> None:
        """Start the clock."""
        cocotb.start_soon(Clock(self.clk, period_ns, unit="ns").start())

    async def reset(self, rst: Any, cycles: int = 2) -> None:
        """Hold ``rst`` for ``cycles`` cycles, then run one more cycle out of reset."""
        self.set(rst, 1)
        await self.step(cycles)
        self.set(rst, 0)
        await self.step()

    async def timed(self, runs: Iterable[Awaitable[Any]]) -> tuple[int, float]:
        """Await each of ``runs`` in turn: the clock cycles and the wall seconds they took
        (a bench's simulation rate)."""
        began, wall = self.cycle, time.perf_counter()
        for run in runs:
            await run
        return self.cycle - began, time.perf_counter() - wall

    def set(self, handle: Any, value: int) -> None:
        """Drive ``handle`` to ``value`` from the next cycle on (a step ends in the read-only
        phase, where signals cannot be written)."""
        self._writes.append((handle, value))

    async def step(self, cycles: int = 1) -> None:
        """Run ``cycles`` clock cycles."""
        for _ in range(cycles):
            await RisingEdge(self.clk)
            self.cycle += 1
            for handle, value in self._writes:
                handle.value = value
            self._writes.clear()
            for e in self.endpoints:
                e.drive()
            await ReadOnly()
            for e in self.endpoints:
                e.sample(self.cycle)

    async def until(self, condition: Callable[[], bool], timeout: int, what: str) -> None:
        """Step until ``condition()`` holds after a cycle; ``AssertionError`` naming ``what``
        after ``timeout`` cycles."""
        for _ in range(timeout):
            await self.step()
            if condition():
                return
        raise AssertionError(f"timed out after {timeout} cycles waiting for {what}")
