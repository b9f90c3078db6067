"""The compiler: lowers trained RNN-T graphs to programs for a hardware config."""
