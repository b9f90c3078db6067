"""Lowering: quantized kernels -> instructions, SRAM buffers, dependency tokens and the DRAM
image (:mod:`.builder`, :mod:`.allocate`, :mod:`.tokens`, :mod:`.dram`), one module per
kind of step (:mod:`.lstm`, :mod:`.dense`) and per kernel schedule (:mod:`.kernels`)."""
