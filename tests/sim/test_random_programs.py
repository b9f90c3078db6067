"""The random-program generator: valid, covering, race-free, and trapping where it says."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from edgenpu.config import load_config, override
from edgenpu.isa import Opcode, TrapCause, decode
from edgenpu.sim.functional import run
from edgenpu.sim.interleave import run_interleaved
from edgenpu.sim.random_programs import injectable_causes, random_program

# The default config with a small DRAM: generated programs stay in the first 64 KiB, and
# comparing two 64 MiB DRAMs per program would dominate the test's time.
_DEFAULT = load_config("default")
_TINY = load_config("tiny")
CONFIGS = [_TINY, replace(_DEFAULT, dram=replace(_DEFAULT.dram, bytes=1 << 18))]
#: Tiny without int4 and the 2:4 format: a config on which ``unsupported`` can be injected.
TINY_INT8 = override(
    _TINY,
    {"name": "tiny-int8", "mac.precisions": ["int8"], "decompressor.formats": ["dense", "bitmask"]},
)
#: Programs per config in the regular suite; soak runs take EDGENPU_SOAK_PROGRAMS.
SAMPLE = 100


def machine_state(result) -> list[bytes]:
    m = result.machine
    return [bytes(a) for a in (m.dram, m.wgt, m.act, m.acc, m.lut)]


def check_programs(config, seeds) -> Counter:
    covered: Counter = Counter()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        generated = random_program(rng, config, length=int(rng.integers(5, 60)))
        result = run(generated.program, config)
        assert result.halted, f"seed {seed}: {result.trap}"
        covered.update(decode(w).opcode for w in generated.program.words)
        # Race freedom: a different legal order of the streams gives the same state.
        again = run_interleaved(generated.program, config, np.random.default_rng(seed + 1))
        assert again.halted
        assert machine_state(again) == machine_state(result), f"seed {seed}: race"
        assert again.machine.tokens == result.machine.tokens
    return covered


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_random_programs_halt_and_are_race_free(config):
    covered = check_programs(config, range(SAMPLE))
    assert set(covered) == set(Opcode), f"not covered: {set(Opcode) - set(covered)}"


@pytest.mark.soak
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_soak_random_programs(config):
    count = int(os.environ.get("EDGENPU_SOAK_PROGRAMS", "2000"))
    check_programs(config, range(10_000, 10_000 + count))


@pytest.mark.parametrize(
    ("config", "cause"),
    [(c, cause) for c in [*CONFIGS, TINY_INT8] for cause in injectable_causes(c)],
    ids=lambda v: getattr(v, "label", None) or v.name,
)
def test_injected_traps_are_reported_where_injected(config, cause):
    for seed in range(10):
        generated = random_program(np.random.default_rng(seed), config, length=20, trap=cause)
        result = run(generated.program, config)
        assert result.trap is not None, f"seed {seed}: no trap"
        assert (result.trap.cause, result.trap.index) == (cause, generated.trap_index), (
            f"seed {seed}: {result.trap}"
        )


def test_every_cause_is_injectable_somewhere():
    assert set(injectable_causes(TINY_INT8)) == set(TrapCause) - {TrapCause.NONE}
    assert TrapCause.UNSUPPORTED not in injectable_causes(_TINY)
    with pytest.raises(ValueError, match="config tiny cannot trap with unsupported"):
        random_program(np.random.default_rng(0), _TINY, trap=TrapCause.UNSUPPORTED)


def test_an_unsynchronised_program_is_caught_as_a_race():
    """The interleaving check is not vacuous: drop the tokens and results diverge."""
    from edgenpu.isa import Instruction, Program, Segment, Space

    make = Instruction.make
    code = [
        make(Opcode.LOAD, space=Space.ACT, sram=0, dram=0, rows=1, len=16),
        make(Opcode.VCOPY, d_kind=0, d_addr=100, a_kind=0, a_addr=0, len=16),  # no wait=load
        make(Opcode.STORE, space=Space.ACT, sram=100, dram=64, rows=1, len=16),
        make(Opcode.HALT),
    ]
    program = Program.from_instructions(code, (Segment(0, bytes(range(1, 17))),))
    config = CONFIGS[0]
    reference = machine_state(run(program, config))
    outcomes = {
        tuple(machine_state(run_interleaved(program, config, np.random.default_rng(s))))
        for s in range(20)
    }
    assert len(outcomes) > 1 and tuple(reference) in outcomes
