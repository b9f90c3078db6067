"""Simulators: the bit-exact functional simulator (:mod:`edgenpu.sim.functional`); the
performance model and the cocotb benches join it here."""
