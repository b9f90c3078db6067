"""edgenpu: a hardware/software co-design simulator for low-bit, sparse neural edge processors.

The shared core lives here: the hardware configuration (:mod:`edgenpu.config`), the
instruction set (:mod:`edgenpu.isa`), fixed-point arithmetic (:mod:`edgenpu.fixedpoint`),
weight precisions (:mod:`edgenpu.precision`) and compressed weight formats
(:mod:`edgenpu.formats`). The areas built on it are ``edgenpu.sim``, ``edgenpu.rtl``,
``edgenpu.compiler`` and ``edgenpu.asr_workloads``.
"""

__version__ = "0.1.0"
