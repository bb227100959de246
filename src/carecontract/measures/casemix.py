"""Case-mix adjustment: observed/expected ratios by indirect standardisation.

Why: a provider that treats older, more deprived patients, or more of the cancers that are found
late, has a lower raw early-stage rate with the same quality of care. Paying or blaming it on the
raw rate punishes its case-mix. Indirect standardisation asks instead: given *these* patients, how
many would be early stage (or alive at a year, or presenting as an emergency, or dying where they
usually lived) at the rate of the whole store for patients like them?

Method (docs/measures.md, "Fair comparisons"):

- strata: age band × sex × tumour site × deprivation quintile (a death has no tumour site);
- the reference rate of each stratum is the whole store's over the same period (the population the
  units are compared with, as NDRS's case-mix adjusted early-stage indicator compares with England);
- a unit's expected count is the sum over its cases of their stratum's rate; O/E is the
  standardised ratio and ``O/E × overall rate`` the indirectly standardised rate;
- O/E's interval is the exact Poisson interval of O (the chi-square method) divided by E, as
  PHEindicatormethods ``calculate_ISRatio`` (DHSC/OHID, v2) does it with ``type = "full"``
  for small counts — used here for every count, so small and large units are treated alike.

Everything up to the per-unit sums is one Ibis expression, so it runs on DuckDB and Spark alike.
Adjusted rows are named ``<measure>_oe`` so they are never mistaken for the raw rate.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis
from ibis import _
from ibis.expr.types import Table
from scipy.stats import chi2

from carecontract.measures import funnel, stats
from carecontract.measures.compute import Sources
from carecontract.measures.definitions import CASE_MIX_ADJUSTED, measures

#: The measures adjusted for case-mix (defined with the measures).
ADJUSTED = CASE_MIX_ADJUSTED
#: Age bands' lower bounds (years at the event that opened the pathway, or at death).
AGE_BANDS = (0, 50, 60, 70, 80)
#: The suffix of an adjusted measure's id: ``early_stage_oe`` is early_stage's observed/expected ratio.
SUFFIX = "_oe"
#: The strata a case is standardised within.
STRATA = ("age_band", "stratum_sex", "stratum_site", "stratum_imd")


def adjusted_id(measure_id: str) -> str:
    return f"{measure_id}{SUFFIX}"


def _age_band(age):
    band = ibis.cases(*((age >= lo, str(lo)) for lo in reversed(AGE_BANDS[1:])), else_=str(AGE_BANDS[0]))
    return ibis.ifelse(age.isnull(), "unknown", band)


def _cases(src: Sources, measure_id: str) -> Table:
    """The measure's table with each case's age and sex (from the event that opened the pathway)."""
    measure = measures(src.censor)[measure_id]
    people = src.events.select(
        _rid=_.record_id,
        _age=_.age,
        _sex=_.sex,
        _tumour=_.tumour_site,
        _etype=_.event_type,
        _when=_.event_date,
        _prov=_.provider_code,
        _comm=_.commissioner_code,
        _imd=_.imd_quintile,
        _place=_.place_of_death,
    )
    if measure.source == "deaths":
        table = people.filter(_._etype == "death").select(
            age=_._age,
            sex=_._sex,
            tumour_site=_._tumour,
            imd_quintile=_._imd,
            commissioner_code=_._comm,
            provider_code=_._prov,
            event_type=_._etype,
            event_date=_._when,
            place_of_death=_._place,
        )
    else:
        opened = people.select("_rid", "_age", "_sex")
        table = src.pathways.left_join(opened, src.pathways.pathway_id == opened._rid)
        table = table.rename(age="_age", sex="_sex").drop("_rid")
    return table.mutate(
        _in=measure.population,
        _period=measure.period_date,
        _value=measure.numerator.cast("int64"),
        provider=measure.provider,
        commissioner=_.commissioner_code,
        age_band=_age_band(_.age),
        stratum_sex=_.sex.fill_null("unknown"),
        stratum_site=measure.tumour_site.fill_null("unknown"),
        stratum_imd=_.imd_quintile.cast("int32").fill_null(0),
    ).mutate(tumour_site=measure.tumour_site, month=_._period.truncate("M"))


def observed_expected(
    src: Sources,
    measure_id: str,
    start: date,
    end: date,
    by: tuple[str, ...],
    reference: tuple[date, date] | None = None,
    only: dict[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """Observed, expected and cases per unit of ``by`` (``month`` is the calendar month's first day).

    The stratum rates come from the whole store over ``reference`` (default: the same period, so
    with no breakdown O = E). A stratum the reference does not hold takes the reference's overall rate.
    ``only`` keeps one provider's or commissioner's cases, still against the whole store's rates.
    """
    strata = list(STRATA)
    everyone = _cases(src, measure_id).filter(_._in)
    cases = everyone.filter(_._period.between(start, end))
    base_cases = cases
    for key, value in (only or {}).items():
        if value is not None:
            cases = cases.filter(cases[key] == value)
    base = base_cases if reference is None else everyone.filter(_._period.between(*reference))
    rates = base.group_by(strata).aggregate(_rate=_._value.mean())
    overall = base._value.mean()
    joined = cases.left_join(rates, strata)
    joined = joined.mutate(_rate=joined._rate.fill_null(overall.as_scalar()))
    metrics = {"observed": joined._value.sum(), "expected": joined._rate.sum(), "denominator": joined.count()}
    result = joined.group_by(list(by)).aggregate(**metrics) if by else joined.aggregate(**metrics)
    rows = result.to_pyarrow().to_pylist()
    for r in rows:
        if "month" in r and hasattr(r["month"], "date"):
            r["month"] = r["month"].date()
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in by))


def monthly(
    src: Sources,
    measure_id: str,
    start: date,
    end: date,
    provider: str | None = None,
    commissioner: str | None = None,
) -> list[dict[str, Any]]:
    """The indirectly standardised rate of each calendar month: ``{month, observed, expected, cases,
    ratio, rate}`` with ``rate = O/E × the period's overall rate`` (the SPC chart's points on the
    measure's own scale, so its target still applies). Expected counts are from the whole store's
    stratum rates over [start, end], so a month whose patients are older or later-diagnosed than
    the period's usual mix is not read as a change in care."""
    if measure_id not in ADJUSTED:
        raise ValueError(f"no case-mix adjustment for {measure_id}")
    whole = observed_expected(src, measure_id, start, end, ())
    if not whole or not whole[0]["denominator"]:
        return []
    overall = (whole[0]["observed"] or 0) / whole[0]["denominator"]
    rows = observed_expected(
        src, measure_id, start, end, ("month",), only={"provider": provider, "commissioner": commissioner}
    )
    out = []
    for r in rows:
        o, e = int(r["observed"] or 0), float(r["expected"] or 0.0)
        ratio = o / e if e > 0 else None
        out.append(
            {
                "month": r["month"],
                "observed": o,
                "expected": e,
                "cases": int(r["denominator"]),
                "ratio": ratio,
                "rate": None if ratio is None else ratio * overall,
            }
        )
    return out


def exact_poisson(observed: int, level: float = 0.95) -> tuple[float, float]:
    """Exact interval for a Poisson count (chi-square method; Ulm 1990, as PHEindicatormethods)."""
    alpha = 1 - level
    low = 0.0 if observed == 0 else chi2.ppf(alpha / 2, 2 * observed) / 2
    high = chi2.ppf(1 - alpha / 2, 2 * (observed + 1)) / 2
    return float(low), float(high)


def adjusted_rows(src: Sources, measure_id: str, start: date, end: date, by: tuple[str, ...]) -> list[dict[str, Any]]:
    """``<measure>_oe`` rows: O, E, O/E with its exact 95% interval, the raw and the standardised
    rate side by side, and (with a breakdown) the funnel on the ratio scale with overdispersion."""
    rows = observed_expected(src, measure_id, start, end, by)
    total_o = sum(r["observed"] or 0 for r in rows)
    total_d = sum(r["denominator"] for r in rows)
    overall = total_o / total_d if total_d else None
    measure = measures(src.censor)[measure_id]
    out = []
    for r in rows:
        o, e, d = int(r["observed"] or 0), float(r["expected"] or 0.0), int(r["denominator"])
        ratio = o / e if e > 0 else None
        low, high = exact_poisson(o)
        out.append(
            {
                "measure": adjusted_id(measure_id),
                "base_measure": measure_id,
                "observed": o,
                "expected": round(e, 6),
                "denominator": d,
                "ratio": ratio,
                "ci_low": low / e if e > 0 else None,
                "ci_high": high / e if e > 0 else None,
                "raw_rate": o / d if d else None,
                "raw_ci": list(stats.wilson(o, d)),
                "adjusted_rate": None if ratio is None or overall is None else ratio * overall,
                "higher_is_better": measure.higher_is_better,
                **{k: r[k] for k in by},
            }
        )
    if by and out:
        plot = funnel.funnel(
            [("/".join(str(r[k]) for k in by), r["observed"], r["expected"]) for r in out], kind="ratio"
        )
        for r, p in zip(out, plot.points, strict=True):
            r["funnel"] = {
                "phi": plot.phi,
                "tau2": plot.tau2,
                "limits_95": [p.limits.low95, p.limits.high95],
                "limits_998": [p.limits.low998, p.limits.high998],
                "outlier": p.outlier,
            }
    return out


def adjusted_rate(src: Sources, measure_id: str, start: date, end: date) -> float | None:
    """The period's indirectly standardised rate against the whole store (every date it holds):
    O/E × the store's overall rate, so a year whose patients are older or later-diagnosed than the
    store's usual mix is not paid less for that (the ``basis: adjusted`` of a paid outcome)."""
    rows = observed_expected(src, measure_id, start, end, (), reference=(date.min, date.max))
    if not rows or not rows[0]["expected"]:
        return None
    everyone = _cases(src, measure_id).filter(_._in)
    overall = everyone.aggregate(n=everyone._value.sum(), d=everyone.count()).to_pyarrow().to_pylist()[0]
    if not overall["d"]:
        return None
    return (rows[0]["observed"] or 0) / rows[0]["expected"] * overall["n"] / overall["d"]
