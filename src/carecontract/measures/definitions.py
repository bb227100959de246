"""Outcome measures, each defined once and declaratively (ids stable; ../shared/design.md).

A :class:`Measure` says which table it counts (pathways, treatments, deaths or experience returns),
who is in the denominator, what puts a case into a period (for waiting times, the day the clock
stops), what counts in the numerator, and which provider is accountable. Each part is an Ibis
deferred expression, so the same definition compiles to DuckDB or Spark, computes the measure, and
explains one pathway — there is no second copy to drift.

The rules, and the published source of each, are the rulebook in docs/measures.md:
- ``fds_28``: urgent suspected cancer, screening and breast symptomatic referrals; from the first
  such referral of the pathway to the first of diagnosis or ruling-out, less first-seen adjustments;
  met within 28 days.
- ``cwt_31``: every treatment, first or subsequent, from its decision to treat, less the treatment
  adjustments between the two; met within 31 days. A treatment dated before its decision counts 0
  days (and is flagged in the quality report).
- ``cwt_62``: the same referrals and consultant upgrades; from the first such referral (or the
  upgrade) to the first treatment, less first-seen and treatment adjustments; met within 62 days.
A clock never runs below 0 days, and a case counts in the period in which its clock stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import ibis
from ibis import Deferred, _

from carecontract.measures.pathways import NMSC

#: ICD-10 three-character codes of the cancers NDRS stages (the stageable cancers of "Case-mix
#: adjusted percentage of cancers diagnosed at stages 1 and 2 in England"): oral cavity and
#: oropharynx, oesophagus, stomach, colon, rectum, pancreas, larynx, lung, melanoma, breast, cervix,
#: uterus, ovary, prostate, testis, kidney and urinary tract, bladder, thyroid, Hodgkin and
#: non-Hodgkin lymphoma. Non-melanoma skin cancer (C44) and in-situ tumours (D codes) are not staged.
STAGEABLE = (
    *(f"C{n:02d}" for n in (0, 1, 2, 3, 4, 5, 6, 9, 10)),
    "C15",
    "C16",
    "C18",
    "C19",
    "C20",
    "C25",
    "C32",
    "C33",
    "C34",
    "C43",
    "C50",
    "C53",
    "C54",
    "C55",
    "C56",
    "C61",
    "C62",
    "C64",
    "C65",
    "C66",
    "C67",
    "C73",
    *(f"C{n}" for n in range(81, 87)),
)
#: Excluded from the one-year survival cohort, as from the national index of cancer survival:
#: non-melanoma skin cancer and prostate (ONS, Index of cancer survival for CCGs in England).
SURVIVAL_EXCLUDED = (*NMSC, "C61")

#: Places that are a usual place of residence in the national "death in usual place of residence"
#: indicator (ONS / PHE End of Life Care Profiles): home, care home, religious establishment.
USUAL_RESIDENCES = ("home", "care_home", "religious_establishment")
#: The measures with a case-mix adjusted (observed/expected) version: measures/casemix.py and
#: docs/measures.md, "Fair comparisons".
CASE_MIX_ADJUSTED = ("early_stage", "observed_survival_1y", "emergency_presentation", "usual_place_of_death")


def days(later: Deferred, earlier: Deferred) -> Deferred:
    """Whole days from ``earlier`` to ``later``."""
    return later.delta(earlier, unit="day")


@dataclass(frozen=True)
class Clock:
    """A waiting-time clock: it starts, stops, may be adjusted, and is met within ``limit`` days."""

    start: Deferred
    stop: Deferred
    limit: int
    pauses: Deferred = field(default_factory=lambda: ibis.literal(0))

    @property
    def calendar_days(self) -> Deferred:
        """Days from start to stop before any adjustment (negative if the data put them in reverse)."""
        return days(self.stop, self.start)

    @property
    def elapsed(self) -> Deferred:
        """The waiting time: calendar days less adjustments, never below 0."""
        return ibis.greatest(self.calendar_days - self.pauses, 0)

    @property
    def met(self) -> Deferred:
        return self.elapsed <= self.limit


@dataclass(frozen=True)
class Measure:
    id: str
    title: str
    source: str  # "pathways" | "treatments" | "deaths" | "experience"
    population: Deferred  # in the denominator (before the period filter)
    period_date: Deferred  # the date that puts a case in a period
    numerator: Deferred  # boolean for proportions; the value for means
    provider: Deferred  # the accountable provider
    tumour_site: Deferred
    kind: str = "proportion"  # "proportion" | "mean"
    higher_is_better: bool = True
    clock: Clock | None = None  # waiting-time measures: the numerator is "clock days <= limit"
    short: str | None = None  # a shorter name for narrow terminals (shown with a legend)


FDS_STOP = ibis.least(_.diagnosis_date, _.ruled_out_date)
FDS = Clock(start=_.fds_start, stop=FDS_STOP, limit=28, pauses=_.fds_pause_days)
CWT31 = Clock(start=_.decision_date, stop=_.treatment_date, limit=31, pauses=_.pause_days)
CWT62 = Clock(start=_.cwt62_start, stop=_.treatment_date, limit=62, pauses=_.cwt62_pause_days)
INVASIVE = _.icd3.startswith("C")


def _measures(censor: date | None = None) -> dict[str, Measure]:
    follow_up_end = ibis.literal(censor or date(9999, 12, 31))
    return {
        m.id: m
        for m in (
            Measure(
                "fds_28",
                "diagnosis or ruling-out within 28 days of an urgent, screening or breast symptomatic referral",
                "pathways",
                population=_.fds_start.notnull() & FDS_STOP.notnull() & (_.fds_start <= FDS_STOP),
                period_date=FDS_STOP,
                numerator=FDS.met,
                provider=ibis.coalesce(_.diagnosis_provider, _.ruled_out_provider),
                tumour_site=_.tumour_site,
                clock=FDS,
            ),
            Measure(
                "cwt_31",
                "each treatment, first or subsequent, within 31 days of its decision to treat",
                "treatments",
                population=_.decision_date.notnull(),
                period_date=_.treatment_date,
                numerator=CWT31.met,
                provider=_.provider_code,
                tumour_site=_.tumour_site,
                clock=CWT31,
            ),
            Measure(
                "cwt_62",
                "first treatment within 62 days of an urgent, screening or breast symptomatic referral or an upgrade",
                "pathways",
                population=_.cwt62_start.notnull() & _.treatment_date.notnull(),
                period_date=_.treatment_date,
                numerator=CWT62.met,
                provider=_.treatment_provider,
                tumour_site=_.tumour_site,
                clock=CWT62,
            ),
            Measure(
                "early_stage",
                "stageable cancers diagnosed at stage 1 or 2, of those staged",
                "pathways",
                population=_.diagnosis_date.notnull() & _.stage.notnull() & _.icd3.isin(STAGEABLE),
                period_date=_.diagnosis_date,
                numerator=_.stage <= 2,
                provider=_.diagnosis_provider,
                tumour_site=_.tumour_site,
            ),
            Measure(
                "observed_survival_1y",
                "crude observed one-year survival of invasive cancers (not the national net survival index)",
                "pathways",
                population=_.diagnosis_date.notnull()
                & INVASIVE
                & ~_.icd3.isin(SURVIVAL_EXCLUDED)
                & (_.diagnosis_date + ibis.interval(days=365) <= follow_up_end),
                period_date=_.diagnosis_date,
                numerator=_.death_date.isnull() | (days(_.death_date, _.diagnosis_date) > 365),
                provider=_.diagnosis_provider,
                tumour_site=_.tumour_site,
                short="obs_surv_1y",
            ),
            Measure(
                "emergency_presentation",
                "invasive cancers (not non-melanoma skin) diagnosed after an emergency presentation",
                "pathways",
                population=_.diagnosis_date.notnull() & INVASIVE & ~_.icd3.isin(NMSC),
                period_date=_.diagnosis_date,
                numerator=(_.referral_route.fill_null("") == "emergency") | _.emergency_admission_date.notnull(),
                provider=_.diagnosis_provider,
                tumour_site=_.tumour_site,
                short="emerg_pres",
                higher_is_better=False,
            ),
            Measure(
                "usual_place_of_death",
                "deaths at home, in a care home or a religious establishment, of all deaths",
                "deaths",
                population=_.event_type == "death",
                period_date=_.event_date,
                numerator=_.place_of_death.isin(USUAL_RESIDENCES),
                provider=_.provider_code,
                tumour_site=ibis.null(str),
                short="usual_pod",
            ),
            Measure(
                "died_where_usually_lived",
                "deaths in the place recorded as the person's own usual residence, of deaths with one recorded",
                "deaths",
                population=_.usual_residence.notnull(),
                period_date=_.event_date,
                numerator=_.place_of_death == _.usual_residence,
                provider=_.provider_code,
                tumour_site=ibis.null(str),
                short="died_usual_res",
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
                short="experience",
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
#: Shorter names for the longest ids, for narrow terminals (``present`` prints them with a legend).
SHORT_NAMES: dict[str, str] = {m.id: m.short for m in measures().values() if m.short}
