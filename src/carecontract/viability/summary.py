"""The viability results as published: what the CLI prints, the API returns and the report shows.

Each entry point takes terms (and optionally a store) and returns plain data: the stress test
(:func:`stress_summary`), where the gap comes from (:func:`waterfall_summary`), the break-even
of each lever (:func:`break_even_summary`) and options side by side (:func:`options_summary`).
With a store, the first-year cost and the scope roll-out come from the recorded in-scope costs,
demand and cost growth from the recorded trend where there are enough whole years
(:mod:`.trend`), and every result says which figures came from data and which from the terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.terms.loader import Terms
from carecontract.viability import trend as trends
from carecontract.viability.causes import Method, waterfall
from carecontract.viability.charts import write_charts
from carecontract.viability.levers import APPETITE, break_even
from carecontract.viability.options import compare
from carecontract.viability.simulate import (
    Inputs,
    StressError,
    calibrate_from_store,
    draw,
    resolve_inputs,
    stress,
    terms_levers,
)

Progress = Callable[[str, float], None]
#: recorded in-scope cost against the price: outside this range they cannot describe the same scope
SCOPE_RATIO = (0.5, 1.5)


def _no_progress(step: str, done: float) -> None:
    """A progress callback that shows nothing."""


@dataclass
class Calibration:
    """What a store says about a contract: first-year cost, scope roll-out, growth, and warnings."""

    baseline_cost: float | None = None
    scope_factor: list[float] | None = None
    trend: trends.Trend | None = None
    warnings: list[str] = field(default_factory=list)

    def adjust(self, inputs: Inputs) -> Inputs:
        return trends.apply(inputs, self.trend) if self.trend is not None else inputs


def scope_check(terms: Terms, baseline_cost: float, scope_factor: list[float] | None) -> list[str]:
    """A warning when the recorded in-scope cost and the price are too far apart to be the same scope.

    The widest scope's recorded cost (first-year cost × the largest scope factor) is set against the
    mean yearly price; outside :data:`SCOPE_RATIO` the store and the terms describe different services
    (or areas, or years), and every deficit the stress test reports inherits the mismatch."""
    values = terms.contract.value_per_year()
    price = float(sum(values.values())) / len(values)
    widest = baseline_cost * max(scope_factor or [1.0])
    ratio = widest / price
    low, high = SCOPE_RATIO
    if low <= ratio <= high:
        return []
    return [
        f"recorded in-scope cost at the widest scope, £{widest / 1e6:,.1f}m a year, is {ratio:.2f}× the mean "
        f"price £{price / 1e6:,.1f}m: too far apart to be the same scope (expected {low}–{high}×); check the "
        "terms' scope and subcontractors against what the store covers"
    ]


def calibrate(terms: Terms, store: Run | str | Path | Store | None) -> Calibration:
    """The store's calibration for ``terms`` (nothing without a store); a Run shares what it has computed."""
    if store is None:
        return Calibration()
    run = store if isinstance(store, Run) else Run(store if isinstance(store, Store) else Store(store))
    base, factor = calibrate_from_store(terms.contract, run)
    trend = trends.measure(run, terms.contract)
    warnings = scope_check(terms, base, factor) + list(trend.notes)
    return Calibration(base, factor, trend, warnings)


def prepared(terms: Terms, runs: int, seed: int, calibration: Calibration) -> tuple[Inputs, dict[str, np.ndarray]]:
    """Inputs resolved from the terms and calibration, and the draws every question shares."""
    if runs < 1:
        raise StressError("--runs must be at least 1")
    inputs = resolve_inputs(terms.contract, calibration.baseline_cost, calibration.scope_factor)
    inputs = calibration.adjust(inputs)
    return inputs, draw(inputs, runs, seed)


def stress_summary(
    terms: Terms,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    charts: Path | None = None,
    progress: Progress = _no_progress,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The stress test's published result: summary, year by year, sensitivity, terms and charts written.

    Calibrates the first-year cost and growth from ``store`` when given (or takes ``calibration``);
    writes the fan and tornado charts into ``charts`` when given. The simulated paths themselves
    are not returned.
    """
    if runs < 1:
        raise StressError("--runs must be at least 1")
    calibration = calibration or calibrate(terms, store)
    progress("simulating", 0.0)
    summary = stress(
        terms.contract,
        runs,
        seed,
        calibration.baseline_cost,
        scope_factor=calibration.scope_factor,
        adjust=calibration.adjust,
    )
    progress("simulating", 1.0)
    written = write_charts(terms.contract.name, summary, charts) if charts is not None else []
    summary.pop("_cumulative")
    summary["terms"] = terms.provenance()
    summary["charts"] = [str(p) for p in written]
    summary["warnings"] = calibration.warnings
    return summary


def waterfall_summary(
    terms: Terms,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    method: Method = "shapley",
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """Where the expected funding gap comes from, by cause (:mod:`.causes`), with the inputs' sources."""
    calibration = calibration or calibrate(terms, store)
    inputs, draws = prepared(terms, runs, seed, calibration)
    out = waterfall(inputs, draws, method, seed, terms_levers(terms.contract)).as_dict()
    out["sources"] = inputs.sources
    out["warnings"] = calibration.warnings
    out["terms"] = terms.provenance()
    return out


def break_even_summary(
    terms: Terms,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    appetite: float = APPETITE,
    levers: list[str] | None = None,
    corridor: tuple[float, float] | None = (0.02, 0.5),
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """Each lever's break-even at the risk appetite (:mod:`.levers`), with the inputs' sources."""
    calibration = calibration or calibrate(terms, store)
    inputs, draws = prepared(terms, runs, seed, calibration)
    rows = break_even(inputs, draws, appetite, terms_levers(terms.contract), levers, corridor)
    return {
        "runs": runs,
        "seed": seed,
        "appetite": appetite,
        "levers": [r.as_dict() for r in rows],
        "sources": inputs.sources,
        "warnings": calibration.warnings,
        "terms": terms.provenance(),
    }


def options_summary(
    options: list[tuple[str, Terms]],
    runs: int = 10_000,
    seed: int = 0,
    store: Run | str | Path | Store | None = None,
    optimism_bias: float = 0.0,
    charts: Path | None = None,
) -> dict[str, Any]:
    """Options side by side (:mod:`.options`), each calibrated on the store if given; the chart written."""
    calibrations = {label: calibrate(t, store) for label, t in options} if store is not None else {}
    rows = compare(
        options,
        runs,
        seed,
        optimism_bias,
        {k: (c.baseline_cost, c.scope_factor) for k, c in calibrations.items()},
    )
    written: list[Path] = []
    if charts is not None:
        from carecontract.viability.charts import options_html, options_png

        charts.mkdir(parents=True, exist_ok=True)
        written = [options_html(rows, charts / "options.html"), options_png(rows, charts / "options.png")]
    warnings = sorted({w for c in calibrations.values() for w in c.warnings})
    return {
        "runs": runs,
        "seed": seed,
        "optimism_bias": optimism_bias,
        "discount": "HM Treasury Green Book STPR: 3.5% a year to year 30, declining after",
        "options": [r.as_dict() for r in rows],
        "charts": [str(p) for p in written],
        "warnings": warnings,
    }
