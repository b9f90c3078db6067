"""Quantization: the fixed-point formats the compiled kernels compute in, the quantized IR
(:mod:`.qir`), the pass that builds it from a float model (:mod:`.quantize`) and its
integer reference executor (:mod:`.reference`)."""
