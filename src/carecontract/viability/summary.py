"""The stress test's published result: what the CLI prints, the API returns and the report shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from carecontract.records.store import Store
from carecontract.terms.loader import Terms
from carecontract.viability.charts import write_charts
from carecontract.viability.simulate import StressError, calibrate_from_store, stress

Progress = Callable[[str, float], None]


def _no_progress(step: str, done: float) -> None:
    """A progress callback that shows nothing."""


def stress_summary(
    terms: Terms,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    charts: Path | None = None,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """The stress test's published result: summary, year by year, sensitivity, terms and charts written.

    Calibrates the first-year cost from ``store`` when given; writes the fan and tornado charts into
    ``charts`` when given. The simulated paths themselves are not returned.
    """
    if runs < 1:
        raise StressError("--runs must be at least 1")
    baseline_cost, scope_factor = None, None
    if store is not None:
        store = store if isinstance(store, Store) else Store(store)
        baseline_cost, scope_factor = calibrate_from_store(terms.contract, store)
    progress("simulating", 0.0)
    summary = stress(terms.contract, runs, seed, baseline_cost, scope_factor=scope_factor)
    progress("simulating", 1.0)
    written = write_charts(terms.contract.name, summary, charts) if charts is not None else []
    summary.pop("_cumulative")
    summary["terms"] = terms.provenance()
    summary["charts"] = [str(p) for p in written]
    return summary
