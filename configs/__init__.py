"""Hardware configurations shipped with edgenpu; load them by name with
:func:`edgenpu.config.load_config` (``"default"``, ``"tiny"``)."""
