"""cocotb benches, one module per unit, run through :mod:`edgenpu.sim.hdl_build`.

Each ``*_bench`` module holds the ``@cocotb.test`` coroutines and runs inside the simulator;
the stimulus and the expected results come from the reference modules beside it, which
import nothing from cocotb so that plain pytest tests can use them too.
"""
