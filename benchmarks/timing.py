"""Timing shared by the benchmark scripts: best of N runs, and the first (cold) one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(best seconds, first-run seconds, the last run's result) over ``repeat`` runs."""
    times, result = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times[0], result
