; Regression kernel for the NPU bench: the first vector instruction after the simulator
; starts takes every lane's b from ``head`` (period 1, b a scalar) while b and the head
; registers are zero, i.e. while nothing the head pick reads has left its initial value.
; The pick was once an Amaranth Array, which Yosys writes as an `always @*` process: Icarus
; (IEEE 1800 rules) never ran it, and the vsub wrote X. Its name sorts it first on purpose:
; kernels run in name order on one simulator, and any earlier vector instruction with a
; non-zero b would have woken the process.

.entry main
        nop       stream=load
        vsub      d=act.i8[0x3c8], a=acc.i32[0x174], len=46, shift=1, b=act.i16[0x544], period=1
        halt
