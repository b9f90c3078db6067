"""The one timing rule of the benchmark scripts (imported as ``timing`` by scripts run from
this folder): the best of several runs, since these machines are shared and noisy."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["best_time"]


def best_time(run: Callable[[], object], repeats: int) -> float:
    """Shortest wall-clock time of ``repeats`` calls of ``run``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)
