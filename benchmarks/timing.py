"""Shared by the benchmark scripts: best-of-N timing, and writing the results table."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(best seconds, first-run seconds, the last run's result) over ``repeat`` runs."""
    times, result = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times[0], result


def write_results(lines: list[str], out: Path) -> None:
    """Write the results (Markdown lines) to ``out`` and print them."""
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)


def cpu_seconds() -> float:
    """CPU seconds this process has used so far, every thread (DuckDB's, polars') counted.

    On a shared machine wall time swings with the others' load; CPU time mostly does not, so the
    benchmarks report both.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
