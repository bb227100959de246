"""Outcome measures, each defined once and declaratively (ids stable; ../shared/design.md).

A :class:`Measure` says which table it counts (pathways, deaths or experience returns), who is in
the denominator, what puts a case into a period (for waiting times, the day the clock stops),
what counts in the numerator, and which provider is accountable. Each part is an Ibis deferred
expression, so the same definition compiles to DuckDB or Spark, computes the measure, and
explains one pathway — there is no second copy to drift.

Waiting-time rules (NHS England cancer waiting times, simplified as the issue specifies):
- ``fds_28``: urgent and screening referrals; the clock runs from referral to the first of
  diagnosis or ruling-out; met when it stops within 28 days.
- ``cwt_31``: the clock runs from decision to treat to first treatment; met within 31 days.
- ``cwt_62``: urgent, screening and consultant-upgrade referrals; from referral to first
  treatment, less clock adjustments (patient-initiated pauses); met within 62 days.
A pathway counts in the period in which its clock stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import ibis
from ibis import Deferred, _

FDS_ROUTES = ["urgent_gp", "screening"]
CWT62_ROUTES = ["urgent_gp", "screening", "upgrade"]


def days(later: Deferred, earlier: Deferred) -> Deferred:
    """Whole days from ``earlier`` to ``later``."""
    return later.delta(earlier, unit="day")


@dataclass(frozen=True)
class Clock:
    """A waiting-time clock: it starts, stops, may be paused, and is met within ``limit`` days."""

    start: Deferred
    stop: Deferred
    limit: int
    pauses: Deferred = field(default_factory=lambda: ibis.literal(0))

    @property
    def elapsed(self) -> Deferred:
        return days(self.stop, self.start) - self.pauses

    @property
    def met(self) -> Deferred:
        return self.elapsed <= self.limit


@dataclass(frozen=True)
class Measure:
    id: str
    title: str
    source: str  # "pathways" | "deaths" | "experience"
    population: Deferred  # in the denominator (before the period filter)
    period_date: Deferred  # the date that puts a case in a period
    numerator: Deferred  # boolean for proportions; the value for means
    provider: Deferred  # the accountable provider
    tumour_site: Deferred
    kind: str = "proportion"  # "proportion" | "mean"
    higher_is_better: bool = True
    standard: float | None = None  # England's standard, the default target
    clock: Clock | None = None  # waiting-time measures: the numerator is "clock days <= limit"


FDS_STOP = ibis.least(_.diagnosis_date, _.ruled_out_date)
FDS = Clock(start=_.referral_date, stop=FDS_STOP, limit=28)
CWT31 = Clock(start=_.decision_date, stop=_.treatment_date, limit=31)
CWT62 = Clock(start=_.referral_date, stop=_.treatment_date, limit=62, pauses=_.adjustment_days.fill_null(0))


def _measures(censor: date | None = None) -> dict[str, Measure]:
    follow_up_end = ibis.literal(censor or date(9999, 12, 31))
    return {
        m.id: m
        for m in (
            Measure(
                "fds_28",
                "told of diagnosis or ruled out within 28 days of an urgent referral",
                "pathways",
                population=_.referral_route.isin(FDS_ROUTES) & FDS_STOP.notnull(),
                period_date=FDS_STOP,
                numerator=FDS.met,
                provider=ibis.coalesce(_.diagnosis_provider, _.ruled_out_provider),
                tumour_site=_.tumour_site,
                standard=0.75,
                clock=FDS,
            ),
            Measure(
                "cwt_31",
                "first treatment within 31 days of the decision to treat",
                "pathways",
                population=_.decision_date.notnull() & _.treatment_date.notnull(),
                period_date=_.treatment_date,
                numerator=CWT31.met,
                provider=_.treatment_provider,
                tumour_site=_.tumour_site,
                standard=0.96,
                clock=CWT31,
            ),
            Measure(
                "cwt_62",
                "first treatment within 62 days of an urgent, screening or upgrade referral, less pauses",
                "pathways",
                population=_.referral_route.isin(CWT62_ROUTES) & _.treatment_date.notnull(),
                period_date=_.treatment_date,
                numerator=CWT62.met,
                provider=_.treatment_provider,
                tumour_site=_.tumour_site,
                standard=0.85,
                clock=CWT62,
            ),
            Measure(
                "early_stage",
                "staged diagnoses at stage 1 or 2",
                "pathways",
                population=_.diagnosis_date.notnull() & _.stage.notnull(),
                period_date=_.diagnosis_date,
                numerator=_.stage <= 2,
                provider=_.diagnosis_provider,
                tumour_site=_.tumour_site,
            ),
            Measure(
                "survival_1y",
                "diagnosed patients alive one year after diagnosis (diagnoses with a full year of follow-up)",
                "pathways",
                population=_.diagnosis_date.notnull() & (_.diagnosis_date + ibis.interval(days=365) <= follow_up_end),
                period_date=_.diagnosis_date,
                numerator=_.death_date.isnull() | (days(_.death_date, _.diagnosis_date) > 365),
                provider=_.diagnosis_provider,
                tumour_site=_.tumour_site,
            ),
            Measure(
                "emergency_presentation",
                "diagnoses that followed an emergency presentation",
                "pathways",
                population=_.diagnosis_date.notnull(),
                period_date=_.diagnosis_date,
                numerator=_.referral_route == "emergency",
                provider=_.diagnosis_provider,
                tumour_site=_.tumour_site,
                higher_is_better=False,
            ),
            Measure(
                "usual_place_of_death",
                "deaths in the usual place of residence",
                "deaths",
                population=_.place_of_death.notnull() & _.usual_residence.notnull(),
                period_date=_.event_date,
                numerator=_.place_of_death == _.usual_residence,
                provider=_.provider_code,
                tumour_site=ibis.null(str),
            ),
            Measure(
                "patient_experience",
                "mean patient experience score (0-10)",
                "experience",
                population=_.score.notnull(),
                period_date=_.event_date,
                numerator=_.score,
                provider=_.provider_code,
                tumour_site=ibis.null(str),
                kind="mean",
            ),
        )
    }


#: The equity gap is derived: a measure's rate in the least deprived quintile (5) minus the most
#: deprived (1), for ``EQUITY_BASE``; positive means the most deprived do worse.
EQUITY_BASE = "early_stage"
EQUITY = Measure(
    "equity_gap",
    f"{EQUITY_BASE} in the least deprived quintile minus the most deprived",
    "derived",
    population=_.diagnosis_date.notnull(),
    period_date=_.diagnosis_date,
    numerator=_.diagnosis_date.notnull(),
    provider=_.diagnosis_provider,
    tumour_site=_.tumour_site,
    kind="gap",
    higher_is_better=False,
    standard=None,
)


def measures(censor: date | None = None) -> dict[str, Measure]:
    """Every measure; ``censor`` is the last date the data can see (for one-year survival)."""
    return {**_measures(censor), "equity_gap": EQUITY}


#: Whether a higher value is better, by measure id, in the order reported. Derived from the
#: definitions above (each id and direction is written once, in its :class:`Measure`); the terms'
#: validation, the gate and the payment rules all read it from here.
HIGHER_IS_BETTER: dict[str, bool] = {m.id: m.higher_is_better for m in measures().values()}
#: Every measure id, in the order reported.
MEASURE_IDS: tuple[str, ...] = tuple(HIGHER_IS_BETTER)
