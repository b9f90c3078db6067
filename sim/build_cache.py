"""The keys and locks of the HDL caches (simulator builds, synthesis): where they live, what
names a design, and how parallel processes share them.

A design is named by a *factory* (a class or classmethod building a ``wiring.Component``)
and its *parameters* (JSON-like values; a :class:`~edgenpu.config.HardwareConfig` counts as
its plain-data form). :func:`design_key` digests both with the text of every source the RTL
is elaborated from and the Amaranth version, so that an edit anywhere in them, and only
that, makes a new key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import hashlib
import inspect
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["build_root", "design_key", "digest", "locked", "plain", "toplevel_name"]


def build_root() -> Path:
    """Where builds are cached."""
    if env := os.environ.get("EDGENPU_BUILD_DIR"):
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "rtl").is_dir():
        return checkout / "build" / "hdl"
    return Path.home() / ".cache" / "edgenpu" / "hdl"


def plain(value: Any) -> Any:
    """``value`` as JSON data, for cache keys and for handing parameters to a bench."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        # Labelled enums (formats, precisions) are written by label, as in the YAML.
        return getattr(value, "label", value.name)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a build parameter must be plain data or a dataclass, not {value!r}")


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def _rtl_sources(factory: Callable[..., Any]) -> list[Path]:
    """Every source the RTL is elaborated from: ``rtl/``, the ``edgenpu`` core package
    (config, ISA, formats, precision) whose definitions the components derive from, and the
    factory's own file (a bench-only wrapper lives outside ``rtl/``)."""
    import edgenpu.rtl

    roots = {Path(edgenpu.rtl.__file__).parent, Path(edgenpu.__file__).parent}
    owner = getattr(factory, "__self__", factory)
    own = {Path(inspect.getsourcefile(owner))}
    # The command line is the one module of the core no component reads.
    core = {p for root in roots for p in root.rglob("*.py") if p.name != "cli.py"}
    return sorted(core | own)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (so parallel test processes build once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def toplevel_name(factory: Callable[..., Any]) -> str:
    """The Verilog module name: the class a factory builds (itself, or the owner of a
    classmethod such as ``Decompressor.from_config``), else the function, in snake case
    (``MacArray`` -> ``mac_array``, the file's name; STYLE.md rule 1)."""
    owner = getattr(factory, "__self__", factory)
    name = owner.__name__ if isinstance(owner, type) else factory.__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def design_key(factory: Callable[..., Any], params: Mapping[str, Any], *extra: str) -> str:
    """The digest naming ``factory(**params)``: the factory, its parameters, the text of every
    source the RTL is elaborated from (:func:`_rtl_sources`), the Amaranth version, and
    ``extra`` (what a cache adds, such as a rewrite of the output)."""
    import amaranth

    sources = "".join(f"{p.parent.name}/{p.name}\n{p.read_text()}" for p in _rtl_sources(factory))
    return digest(
        f"{factory.__module__}.{factory.__qualname__}",
        json.dumps(plain(dict(params)), sort_keys=True),
        sources,
        amaranth.__version__,
        *extra,
    )
