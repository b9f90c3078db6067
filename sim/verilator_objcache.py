"""A compiler wrapper that compiles Verilator's runtime once for every build.

Verilator's makefiles prefix each compile with ``$(OBJCACHE)`` (meant for ccache);
:mod:`edgenpu.sim.hdl_build` sets it to ``python -m edgenpu.sim.verilator_objcache``. The
runtime (``verilated*.cpp`` in ``$VERILATOR_ROOT/include``) does not depend on the design,
yet compiling it is most of a small design's build, so its objects are kept in
``$EDGENPU_OBJCACHE_DIR``, keyed by the exact compile command and source, and copied back on
the next build. Every other compile runs as is.

Usage: ``python -m edgenpu.sim.verilator_objcache COMPILER ARGS...``
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

#: Environment variable naming the cache directory; without it nothing is cached.
CACHE_ENV = "EDGENPU_OBJCACHE_DIR"


def _runtime_source(argv: list[str]) -> Path | None:
    """The Verilator runtime source ``argv`` compiles, if it compiles exactly one."""
    root = os.environ.get("VERILATOR_ROOT")
    if root is None or "-c" not in argv:
        return None
    include = (Path(root) / "include").resolve()
    sources = [Path(a) for a in argv if a.endswith(".cpp")]
    if len(sources) != 1 or sources[0].resolve().parent != include:
        return None
    return sources[0]


def _key(argv: list[str], source: Path) -> str:
    h = hashlib.sha256()
    compiler = shutil.which(argv[0]) or argv[0]
    for part in [
        compiler,
        str(Path(compiler).stat().st_mtime_ns) if Path(compiler).exists() else "",
        *argv[1:],
        source.read_text(errors="replace"),
    ]:
        h.update(part.encode(errors="replace") + b"\0")
    return h.hexdigest()[:24]


def main(argv: list[str]) -> int:
    cache = os.environ.get(CACHE_ENV)
    source = _runtime_source(argv) if cache else None
    if source is None or "-o" not in argv:
        return subprocess.call(argv)
    obj = Path(argv[argv.index("-o") + 1])
    dep = obj.with_suffix(".d")  # what -MMD writes next to -o
    entry = Path(cache) / _key(argv, source)
    if (entry / "obj").is_file():
        shutil.copyfile(entry / "obj", obj)
        if (entry / "dep").is_file():
            shutil.copyfile(entry / "dep", dep)
        return 0
    status = subprocess.call(argv)
    if status == 0:
        partial = entry.with_name(f"{entry.name}.{os.getpid()}.partial")
        partial.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(obj, partial / "obj")
        if dep.is_file():
            shutil.copyfile(dep, partial / "dep")
        try:
            partial.rename(entry)
        except OSError:  # a parallel build stored it first
            shutil.rmtree(partial, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
