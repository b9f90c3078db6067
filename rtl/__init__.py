"""The processor in Amaranth HDL, elaborated from a :class:`edgenpu.config.HardwareConfig`."""
