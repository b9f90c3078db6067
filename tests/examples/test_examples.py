"""The example kernels, run in the functional simulator, against independent numpy.

The references here use plain integer arithmetic written out in this file (exact rational
rounding, explicit clamps), not edgenpu.fixedpoint, so that a wrong rule there cannot make
the simulator and its reference agree by sharing the mistake.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgenpu.config import load_config
from edgenpu.isa import SymbolKind
from edgenpu.isa.asm import assemble_file
from edgenpu.sim.functional import run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULT = load_config("default")


def round_shift(x: np.ndarray, s: int) -> np.ndarray:
    """floor(x / 2**s + 1/2), exactly, on Python integers."""
    return np.array(
        [(2 * int(v) + (1 << s)) // (1 << (s + 1)) for v in np.ravel(x)], dtype=object
    ).reshape(np.shape(x))


def clamp(x, bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.array([min(hi, max(lo, int(v))) for v in np.ravel(x)]).reshape(np.shape(x))


def assemble_and_run(name: str):
    program = assemble_file(EXAMPLES / f"{name}.s")
    result = run(program, DEFAULT, entry=program.symbols_of(SymbolKind.ENTRY)[0].name)
    assert result.halted, str(result.trap)
    data = {
        s.name: result.machine.read_symbol(s).astype(np.int64)
        for s in program.symbols
        if s.kind in (SymbolKind.DATA, SymbolKind.WEIGHTS)
    }
    return program, result, data


def shift_of(program, mnemonic_index: int) -> int:
    return program.instructions()[mnemonic_index]["shift"]


def test_gemv_int8():
    program, result, d = assemble_and_run("gemv_int8")
    shift = shift_of(program, 5)
    acc = d["W"].astype(object) @ d["x"].astype(object) + d["b"]
    want = clamp(round_shift(acc * d["mult"], shift), 8)
    assert result.outputs()["y"].tolist() == want.tolist()
    assert result.stats.macs == 64 * 128


def test_sparse_gemv_int4():
    program, result, d = assemble_and_run("sparse_gemv_int4")
    s1, s2 = shift_of(program, 6), shift_of(program, 9)
    assert d["W1"].min() >= -8 and d["W1"].max() <= 7
    y1 = np.maximum(clamp(round_shift((d["W1"] @ d["x"]).astype(object) * d["mult1"], s1), 8), 0)
    y2 = clamp(round_shift((d["W2"] @ y1).astype(object) * d["mult2"], s2), 8)
    assert result.outputs()["y"].tolist() == y2.tolist()
    # The compressed streams are smaller than the dense int4 tiles they decompress to.
    stats = result.stats
    assert stats.weight_stream_bytes < 0.6 * stats.dense_weight_bytes
    assert stats.nonzero_weight_macs == np.count_nonzero(d["W1"]) + np.count_nonzero(d["W2"])


def lstm_reference(d: dict, gate_shift: int):
    """The cell step as the kernel's comments define it, in exact integer arithmetic."""
    hidden = d["h0"].size
    xh = np.concatenate([d["x"], d["h0"]]).astype(object)
    gates = d["W"].astype(object) @ xh + d["bias"]
    g8 = clamp(round_shift(gates * d["mult"], gate_shift), 8)
    sig, tanh = d["sigmoid"], d["tanh"]
    i, f, g, o = (g8[k * hidden : (k + 1) * hidden] for k in range(4))
    i, f, o = sig[i + 128], sig[f + 128], sig[o + 128]
    g = tanh[g + 128]
    fc = clamp(round_shift(f * d["c0"], 7), 16)
    ig = clamp(round_shift(i * g, 3), 16)
    c = clamp(fc + ig, 16)
    tc = tanh[clamp(round_shift(c, 7), 8) + 128]
    h = clamp(round_shift(o * tc, 7), 8)
    return h, c


def test_lstm_cell_bit_exact_and_close_to_float():
    program, result, d = assemble_and_run("lstm_cell")
    gate_shift = shift_of(program, 9)
    h, c = lstm_reference(d, gate_shift)
    out = result.outputs()
    assert out["h"].tolist() == h.tolist()
    assert out["c"].tolist() == c.tolist()

    # The same cell in floating point, from the dequantized weights and inputs: what is left
    # is the error of int8 gates, 256-entry LUTs and int16 state, which must stay small.
    s_g = 1 / 16
    s_w = d["mult"] * s_g / 2.0**gate_shift
    xh = np.concatenate([d["x"], d["h0"]]).astype(float)  # scales are folded into W
    gates = s_w * (d["W"] @ xh + d["bias"])
    hidden = d["h0"].size
    i, f, g, o = (gates[k * hidden : (k + 1) * hidden] for k in range(4))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c_float = sigmoid(f) * d["c0"] / 2048 + sigmoid(i) * np.tanh(g)
    h_float = sigmoid(o) * np.tanh(c_float)
    assert np.abs(out["c"] / 2048 - c_float).max() < 0.05
    assert np.abs(out["h"] / 128 - h_float).max() < 0.05


@pytest.mark.parametrize("name", ["gemv_int8", "sparse_gemv_int4", "lstm_cell"])
def test_examples_round_trip_through_the_disassembler(name):
    from edgenpu.isa.asm import assemble
    from edgenpu.isa.disasm import disassemble

    program = assemble_file(EXAMPLES / f"{name}.s")
    again = assemble(disassemble(program), source=f"disasm:{name}")
    assert again.to_bytes() == program.to_bytes()


@pytest.mark.parametrize("name", ["gemv_int8", "sparse_gemv_int4", "lstm_cell"])
def test_examples_are_race_free(name):
    from edgenpu.sim.interleave import find_race

    program = assemble_file(EXAMPLES / f"{name}.s")
    assert find_race(program, DEFAULT, orders=30) is None
