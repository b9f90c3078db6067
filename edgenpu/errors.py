"""The error types a user can cause, one per area.

Each carries a message that names the culprit (file, field, node, instruction, address);
the CLI prints it on one line and exits non-zero.
"""

__all__ = ["AsmError", "CompileError", "ConfigError", "EdgenpuError", "ProgramError"]


class EdgenpuError(Exception):
    """Base of every error a user can cause with bad input."""


class ConfigError(EdgenpuError):
    """A hardware configuration is malformed or inconsistent."""


class AsmError(EdgenpuError):
    """Assembly source that cannot be assembled (names the file and line)."""


class ProgramError(EdgenpuError):
    """A binary program container that cannot be read or encoded."""


class CompileError(EdgenpuError):
    """A model the compiler cannot take (names the file, graph, node, op or tensor)."""
