"""Fair comparisons in one call each: adjusted measures and SPC charts, for the CLI, API and report.

Why: the arithmetic lives in ``casemix.py``, ``funnel.py``, ``spc.py`` and ``series.py``; every
surface needs the same few combinations of them (with the measure's direction and target), so
they are made here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from carecontract.measures import casemix, series, spc
from carecontract.measures.compute import MeasureError, Sources
from carecontract.measures.definitions import measures


def adjusted(
    src: Sources, start: date, end: date, by: Iterable[str] = ("provider",), only: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The ``<measure>_oe`` rows of every case-mix adjusted measure (or ``only`` those)."""
    wanted = [m.removesuffix(casemix.SUFFIX) for m in only] if only else list(casemix.ADJUSTED)
    bad = [m for m in wanted if m not in casemix.ADJUSTED]
    if bad:
        raise MeasureError(f"no case-mix adjustment for {', '.join(bad)} (adjusted: {', '.join(casemix.ADJUSTED)})")
    rows: list[dict[str, Any]] = []
    for measure_id in wanted:
        rows.extend(casemix.adjusted_rows(src, measure_id, start, end, tuple(by)))
    return rows


def spc_chart(
    src: Sources,
    measure_id: str,
    start: date,
    end: date,
    target: float | None = None,
    rebase_at: Iterable[date] = (),
    provider: str | None = None,
    commissioner: str | None = None,
    adjusted: bool = False,
) -> spc.SpcChart:
    """The measure's monthly XmR chart, improvement in the measure's own direction; with
    ``adjusted``, of the case-mix adjusted (indirectly standardised) rate by month."""
    points = monthly_points(src, measure_id, start, end, provider, commissioner, adjusted)
    points = [p for p in points if p["rate"] is not None]
    if not points:
        whose = "".join(f" for {w}" for w in (provider, commissioner) if w)
        raise MeasureError(f"no {measure_id} cases between {start} and {end}{whose}")
    higher = measures(src.censor)[measure_id].higher_is_better
    return spc.xmr(
        [p["month"] for p in points],
        [p["rate"] for p in points],
        target=target,
        improvement="increase" if higher else "decrease",
        rebase_at=list(rebase_at),
    )


def monthly_points(
    src: Sources,
    measure_id: str,
    start: date,
    end: date,
    provider: str | None = None,
    commissioner: str | None = None,
    adjusted: bool = False,
) -> list[dict[str, Any]]:
    """The chart's monthly points: ``{month, numerator, denominator, rate}`` (raw), or with
    ``adjusted`` also ``observed``, ``expected`` and ``ratio`` (numerator = observed)."""
    if not adjusted:
        return series.monthly(src, measure_id, start, end, provider, commissioner)
    if measure_id not in casemix.ADJUSTED:
        raise MeasureError(
            f"no case-mix adjustment for {measure_id} (adjusted: {', '.join(casemix.ADJUSTED)}); "
            "chart it without --adjusted"
        )
    rows = casemix.monthly(src, measure_id, start, end, provider, commissioner)
    return [r | {"numerator": r["observed"], "denominator": r["cases"]} for r in rows]


def spc_rows(chart: spc.SpcChart, measure_id: str, adjusted: bool = False) -> list[dict[str, Any]]:
    """One dict per month: value, mean, limits, the rules it breaks and its point type; ``basis`` says
    whether the value is the raw rate or the case-mix adjusted one."""
    return [
        {
            "measure": measure_id,
            "basis": "adjusted" if adjusted else "raw",
            "month": p.period,
            "value": p.value,
            "mean": p.mean,
            "lower_process_limit": p.lpl,
            "upper_process_limit": p.upl,
            "outside_limits": p.outside_limits,
            "run": p.run,
            "trend": p.trend,
            "two_in_three": p.two_in_three,
            "point_type": p.point_type,
            "target": chart.target,
            "variation": chart.variation,
            "assurance": chart.assurance,
        }
        for p in chart.points
    ]


def outlier_verdicts(
    raw: Iterable[dict[str, Any]], adjusted_rows: Iterable[dict[str, Any]], key: str = "provider"
) -> list[dict[str, Any]]:
    """Each unit that either funnel calls an outlier, with both verdicts side by side.

    ``raw`` are ``compute_measures`` rows by ``key`` (with their funnel), ``adjusted_rows`` the
    ``<measure>_oe`` rows by the same key. ``cleared`` is a raw outlier that adjustment clears (its
    patients explain it), ``stays`` an outlier either way (they do not).
    """
    adj = {(r["base_measure"], r.get(key)): r for r in adjusted_rows}
    out = []
    for r in raw:
        a = adj.get((r["measure"], r.get(key)))
        if a is None:
            continue
        raw_out = bool((r.get("funnel") or {}).get("outlier"))
        adj_side = (a.get("funnel") or {}).get("outlier")
        if not raw_out and adj_side is None:
            continue
        verdict = "cleared" if raw_out and adj_side is None else "stays" if raw_out else "adjusted_only"
        out.append(
            {
                "measure": r["measure"],
                key: r.get(key),
                "raw_rate": r["rate"],
                "ratio": a["ratio"],
                "raw_outlier": raw_out,
                "adjusted_outlier": adj_side,
                "verdict": verdict,
            }
        )
    return out
