"""Pathways and treatments: the tables every cancer measure counts, each one Ibis expression.

A **pathway** is one patient's cancer pathway (docs/measures.md, "Pathways"). It is opened by a
``referral``, or by a ``diagnosis`` made when no pathway is open (a cancer found after an emergency
admission with no referral recorded). It stays open until it ends, at the first ruling-out of cancer
or the first treatment: a second referral while it is open belongs to it and does not restart any
clock (NHS England, National Cancer Waiting Times Monitoring Dataset Guidance v12.1: one pathway per
suspected cancer; a new referral is a new pathway only once the previous one has ended). Why it
matters: if every referral started a pathway, a provider could re-refer a patient to restart a
breached clock. The pathway's id is the ``record_id`` of the event that opened it.

Which referral opens a pathway follows from one ordering: a patient's referrals, diagnoses and
ending events by date (on one day: referrals, then diagnoses, then ending events). A referral or a
diagnosis opens a pathway exactly when the row before it is an ending event, or there is none —
proof: if the latest pathway started at or before the previous referral and had not ended by then,
only an ending event since that referral can have closed it. One window function, no recursion.

Every other event belongs to the latest pathway opened on or before its date. Clock adjustments are
kept apart and counted only inside the interval they belong to (:func:`_pauses`). A **treatment**
row pairs the n-th treatment of a pathway with its n-th decision to treat, for the 31-day standard,
which since October 2023 covers first and subsequent treatments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

#: Routes whose referral starts the 28-day Faster Diagnosis Standard clock (CWT guidance v12.1, 1.1).
FDS_ROUTES = ("urgent_gp", "screening", "breast_symptomatic")
#: Routes whose referral (or consultant upgrade) starts the 62-day clock (CWT guidance v12.1, 1.1).
CWT62_ROUTES = ("urgent_gp", "screening", "breast_symptomatic", "upgrade")
#: The events the treatment pairs and the adjustments read a second time.
LATER_EVENTS = ("decision_to_treat", "treatment", "clock_adjustment")
#: Events that end an open pathway: cancer ruled out, or the first definitive treatment.
ENDING_EVENTS = ("cancer_ruled_out", "treatment")
#: An emergency admission at most this many days before a diagnosis makes it an emergency
#: presentation, when it came before any referral of the pathway (docs/measures.md).
EMERGENCY_LOOKBACK_DAYS = 28
#: ICD-10 three-character codes of non-melanoma skin cancer, excluded from the diagnosis measures.
NMSC = ("C44",)

STEP_EVENTS = (
    "referral",
    "first_seen",
    "diagnosis",
    "cancer_ruled_out",
    "decision_to_treat",
    "treatment",
    "clock_adjustment",
)
STEP_COLUMNS = (
    "patient_id",
    "record_id",
    "event_date",
    "event_type",
    "provider_code",
    "referral_route",
    "icd10",
    "tumour_site",
    "stage",
    "modality",
    "adjustment_days",
)

PATHWAY_COLUMNS = (
    "pathway_id",
    "patient_id",
    "start_date",
    "opened_by",
    "referral_date",
    "referral_route",
    "commissioner_code",
    "referral_provider",
    "imd_quintile",
    "fds_start",
    "cwt62_start",
    "first_seen_date",
    "diagnosis_date",
    "diagnosis_provider",
    "tumour_site",
    "icd3",
    "stage",
    "ruled_out_date",
    "ruled_out_provider",
    "decision_date",
    "treatment_date",
    "treatment_provider",
    "treatment_modality",
    "fds_pause_days",
    "cwt62_pause_days",
    "emergency_admission_date",
    "death_date",
)

#: Columns only some questions need (by provider, by tumour site, explanations): computing them
#: costs an arg_min each, so a plain count of the measures leaves them out.
DETAIL_COLUMNS = (
    "diagnosis_provider",
    "tumour_site",
    "ruled_out_provider",
    "treatment_provider",
    "treatment_modality",
)

TREATMENT_COLUMNS = (
    "pathway_id",
    "patient_id",
    "commissioner_code",
    "imd_quintile",
    "tumour_site",
    "treatment_number",
    "decision_date",
    "treatment_date",
    "provider_code",
    "modality",
    "pause_days",
)


#: Materialises a table the engine would otherwise compute once per reader: (name, table) -> table.
Keep = Callable[[str, Table], Table]


@dataclass(frozen=True)
class Built:
    """The pathway table and the treatment table, built from one set of events."""

    pathways: Table
    treatments: Table


def _kind_order():
    return (
        ibis.cases((_.event_type == "referral", 0), (_.event_type == "diagnosis", 1), else_=2).cast("int8").name("kind")
    )


def pathway_starts(events: Table) -> Table:
    """The events that open a pathway (referrals and orphan diagnoses), with the next opening date."""
    marks = events.filter(_.event_type.isin(("referral", "diagnosis", *ENDING_EVENTS))).select(
        "patient_id",
        "record_id",
        "event_date",
        "event_type",
        "referral_route",
        "commissioner_code",
        "provider_code",
        "imd_quintile",
        kind=_kind_order(),
    )
    order = ibis.window(group_by="patient_id", order_by=["event_date", "kind", "record_id"])
    marks = marks.mutate(previous_kind=_.kind.lag().over(order))
    opens = (_.kind < 2) & (_.previous_kind.isnull() | (_.previous_kind == 2))
    starts = marks.filter(opens).select(
        pathway_id=_.record_id,
        patient_id=_.patient_id,
        start_date=_.event_date,
        opened_by=_.event_type,
        referral_route=_.referral_route,
        commissioner_code=_.commissioner_code,
        referral_provider=_.provider_code,
        imd_quintile=_.imd_quintile,
    )
    by_patient = ibis.window(group_by="patient_id", order_by=["start_date", "pathway_id"])
    return starts.mutate(next_start=_.start_date.lead().over(by_patient))


def steps_of(events: Table, starts: Table) -> Table:
    """Each pathway event with the pathway it belongs to (the latest opened on or before it)."""
    steps = events.filter(_.event_type.isin(STEP_EVENTS)).select(*STEP_COLUMNS)
    keys = starts.select("pathway_id", "patient_id", "start_date", "next_start")
    joined = keys.join(steps, "patient_id").filter(
        _.event_date >= _.start_date,
        _.next_start.isnull() | (_.event_date < _.next_start),
    )
    return joined.drop("start_date", "next_start")


def build(events: Table, detail: bool = True, keep: Keep | None = None) -> Built:
    """The pathway table (one row per pathway) and the treatment table (one row per treatment).

    ``keep(name, table)`` may materialise an intermediate table that several later ones read (the
    pathway events, the pathway summary), so the engine computes each once; by default nothing is.
    """
    keep = keep or (lambda _name, table: table)
    starts = keep("pathway_starts", pathway_starts(events))
    joined = steps_of(events, starts)  # read once, by the summary's one aggregate
    # the few events that need a second look (pairing treatments with decisions, adjustments by
    # interval), joined to their pathways once
    later = keep("pathway_later_events", steps_of(events.filter(_.event_type.isin(LATER_EVENTS)), starts))
    kind = joined.event_type

    def first(name: str):
        return joined.event_date.min(where=kind == name)

    def at_first(column: str, name: str):
        return joined[column].argmin(joined.event_date, where=kind == name)

    referral = kind == "referral"
    metrics = {
        "referral_date": first("referral"),
        "fds_start": joined.event_date.min(where=referral & joined.referral_route.isin(FDS_ROUTES)),
        "cwt62_start": joined.event_date.min(where=referral & joined.referral_route.isin(CWT62_ROUTES)),
        "first_seen_date": first("first_seen"),
        "diagnosis_date": first("diagnosis"),
        # the first diagnosis that carries a stage: a pathway may hold two diagnosis records of one
        # cancer (CWT's without stage, the registry's with it; see docs/imports.md)
        "stage": joined.stage.argmin(joined.event_date, where=(kind == "diagnosis") & joined.stage.notnull()),
        "icd3": at_first("icd10", "diagnosis").upper().substr(0, 3),
        "ruled_out_date": first("cancer_ruled_out"),
        "decision_date": first("decision_to_treat"),
        "treatment_date": first("treatment"),
    }
    if detail:
        metrics |= {
            "diagnosis_provider": at_first("provider_code", "diagnosis"),
            "tumour_site": at_first("tumour_site", "diagnosis"),
            "ruled_out_provider": at_first("provider_code", "cancer_ruled_out"),
            "treatment_provider": at_first("provider_code", "treatment"),
            "treatment_modality": at_first("modality", "treatment"),
        }
    # kept on its own: one statement holding the aggregate's hash table and both joins' at once
    # outgrew a 6 GB memory limit at 100M events (docs/scale.md)
    summary = keep("pathway_steps", joined.group_by("pathway_id").aggregate(**metrics))
    deaths = events.filter(_.event_type == "death").group_by("patient_id").aggregate(death_date=_.event_date.min())
    base = keep("pathway_summary", _left(_left(starts.drop("next_start"), summary, "pathway_id"), deaths, "patient_id"))

    treatments = keep("treatments", _treatments(later, base, detail))
    pauses = _pauses(later, base)
    first_treatment = treatments.filter(_.treatment_number == 1).select(
        "pathway_id", first_treatment_pause=_.pause_days
    )
    admitted = _emergency_admissions(events, base)
    out = _left(_left(_left(base, pauses, "pathway_id"), first_treatment, "pathway_id"), admitted, "pathway_id")
    out = out.mutate(
        fds_pause_days=_.fds_first_seen_pause.fill_null(0),
        cwt62_pause_days=_.cwt62_first_seen_pause.fill_null(0) + _.first_treatment_pause.fill_null(0),
    )
    pathways = out.select(*(c for c in PATHWAY_COLUMNS if detail or c not in DETAIL_COLUMNS))
    return Built(pathways=pathways, treatments=treatments)


def pathways(events: Table, detail: bool = True) -> Table:
    """One row per pathway, with the dates (and, with ``detail``, providers) of each step."""
    return build(events, detail).pathways


def _left(left: Table, right: Table, keys: str | list[str]) -> Table:
    """``left`` with ``right``'s other columns, matched on ``keys`` (null where nothing matches)."""
    keys = [keys] if isinstance(keys, str) else keys
    right = right.rename({f"{k}__key": k for k in keys})
    joined = left.left_join(right, [left[k] == right[f"{k}__key"] for k in keys])
    return joined.drop(*(f"{k}__key" for k in keys))


def _numbered(table: Table, name: str) -> Table:
    order = ibis.window(group_by="pathway_id", order_by=["event_date", "record_id"])
    return table.mutate(**{name: ibis.row_number().over(order) + 1})


def _treatments(joined: Table, base: Table, detail: bool) -> Table:
    """Each treatment paired with its decision to treat: the n-th of each in the pathway.

    A treatment with no n-th decision is not in the 31-day standard. The pause days are the clock
    adjustments dated from the decision up to (not including) the treatment: the treatment
    adjustment of the NHS Data Dictionary's WAITING TIME ADJUSTMENT (TREATMENT).
    """
    treated = _numbered(joined.filter(_.event_type == "treatment"), "treatment_number").select(
        "pathway_id",
        "treatment_number",
        treatment_date=_.event_date,
        provider_code=_.provider_code,
        modality=_.modality,
    )
    decided = _numbered(joined.filter(_.event_type == "decision_to_treat"), "treatment_number").select(
        "pathway_id", "treatment_number", decision_date=_.event_date
    )
    pairs = _left(treated, decided, ["pathway_id", "treatment_number"])
    adjustments = joined.filter(_.event_type == "clock_adjustment").select(
        "pathway_id", adjusted_on=_.event_date, days=_.adjustment_days
    )
    inside = pairs.join(adjustments, "pathway_id").filter(
        _.adjusted_on >= _.decision_date, _.adjusted_on < _.treatment_date
    )
    paused = inside.group_by(["pathway_id", "treatment_number"]).aggregate(pause_days=_.days.sum())
    pairs = _left(pairs, paused, ["pathway_id", "treatment_number"])
    context = ["pathway_id", "patient_id", "commissioner_code", "imd_quintile"] + (["tumour_site"] if detail else [])
    out = pairs.join(base.select(*context), "pathway_id").mutate(pause_days=_.pause_days.fill_null(0))
    if not detail:
        out = out.mutate(tumour_site=ibis.null(str))
    return out.select(*TREATMENT_COLUMNS)


def _pauses(joined: Table, base: Table) -> Table:
    """First-seen adjustments per pathway: dated from the clock's start up to (not including) the
    day the patient was first seen (NHS Data Dictionary: WAITING TIME ADJUSTMENT (FIRST SEEN), "an
    adjustment to a waiting time prior to the DATE FIRST SEEN"), for the 28-day and 62-day clocks.
    Where no first-seen date is recorded, the patient was seen by the pathway's first later step
    (diagnosis, ruling-out, decision to treat or treatment), so the interval ends there. An
    adjustment anywhere else in the pathway changes neither clock."""
    adjustments = joined.filter(_.event_type == "clock_adjustment").select(
        "pathway_id", adjusted_on=_.event_date, days=_.adjustment_days
    )
    seen_by = ibis.coalesce(
        _.first_seen_date, ibis.least(_.diagnosis_date, _.ruled_out_date, _.decision_date, _.treatment_date)
    )
    clocks = base.select("pathway_id", "fds_start", "cwt62_start", seen_by=seen_by)
    both = adjustments.join(clocks, "pathway_id").filter(_.adjusted_on < _.seen_by)
    return both.group_by("pathway_id").aggregate(
        fds_first_seen_pause=_.days.sum(where=_.adjusted_on >= _.fds_start),
        cwt62_first_seen_pause=_.days.sum(where=_.adjusted_on >= _.cwt62_start),
    )


def _emergency_admissions(events: Table, base: Table) -> Table:
    """The latest emergency admission that makes a pathway's diagnosis an emergency presentation:
    within the look-back before the diagnosis and not after the pathway's first referral (so the
    emergency, not the referral, was the route in; Routes to Diagnosis works back from the diagnosis)."""
    admissions = events.filter(_.event_type == "emergency_admission").select("patient_id", admitted_on=_.event_date)
    diagnosed = base.filter(_.diagnosis_date.notnull()).select(
        "pathway_id", "patient_id", "diagnosis_date", "referral_date"
    )
    window_start = _.diagnosis_date - ibis.interval(days=EMERGENCY_LOOKBACK_DAYS)
    hits = diagnosed.join(admissions, "patient_id").filter(
        _.admitted_on <= _.diagnosis_date,
        _.admitted_on >= window_start,
        _.referral_date.isnull() | (_.admitted_on <= _.referral_date),
    )
    return hits.group_by("pathway_id").aggregate(emergency_admission_date=_.admitted_on.max())
