"""Pathways: the events of one patient from one referral, as one Ibis expression.

A pathway starts at a ``referral`` and holds the patient's events dated on or after it and
before their next referral. Its identifier is the referral's ``record_id``. Every measure reads
this table (or the death and experience events); written once in Ibis, it compiles to DuckDB SQL
today and to Spark SQL for national runs.
"""

from __future__ import annotations

import ibis
from ibis import _
from ibis.expr.types import Table

PATHWAY_COLUMNS = (
    "pathway_id",
    "patient_id",
    "referral_date",
    "referral_route",
    "commissioner_code",
    "referral_provider",
    "imd_quintile",
    "first_seen_date",
    "diagnosis_date",
    "diagnosis_provider",
    "tumour_site",
    "stage",
    "ruled_out_date",
    "ruled_out_provider",
    "decision_date",
    "treatment_date",
    "treatment_provider",
    "treatment_modality",
    "adjustment_days",
    "death_date",
)


STEP_EVENTS = ("first_seen", "diagnosis", "cancer_ruled_out", "decision_to_treat", "treatment", "clock_adjustment")
STEP_COLUMNS = (
    "patient_id",
    "event_date",
    "event_type",
    "provider_code",
    "tumour_site",
    "stage",
    "modality",
    "adjustment_days",
)


#: Columns only some questions need (by provider, by tumour site, explanations): computing them
#: costs an arg_min each, so a plain count of the measures leaves them out.
DETAIL_COLUMNS = (
    "first_seen_date",
    "diagnosis_provider",
    "tumour_site",
    "ruled_out_provider",
    "treatment_provider",
    "treatment_modality",
)


def pathways(events: Table, detail: bool = True) -> Table:
    """One row per referral, with the dates (and, with ``detail``, providers) of each step."""
    referrals = events.filter(_.event_type == "referral").select(
        pathway_id=_.record_id,
        patient_id=_.patient_id,
        referral_date=_.event_date,
        referral_route=_.referral_route,
        commissioner_code=_.commissioner_code,
        referral_provider=_.provider_code,
        imd_quintile=_.imd_quintile,
    )
    order = ibis.window(group_by="patient_id", order_by=["referral_date", "pathway_id"])
    referrals = referrals.mutate(next_referral_date=_.referral_date.lead().over(order))
    steps = events.filter(_.event_type.isin(STEP_EVENTS)).select(*STEP_COLUMNS)
    joined = referrals.join(steps, "patient_id").filter(
        _.event_date >= _.referral_date,
        _.next_referral_date.isnull() | (_.event_date < _.next_referral_date),
    )

    def first(kind: str):
        return joined.event_date.min(where=joined.event_type == kind)

    def at_first(column: str, kind: str):
        return joined[column].argmin(joined.event_date, where=joined.event_type == kind)

    metrics = {
        "diagnosis_date": first("diagnosis"),
        "stage": at_first("stage", "diagnosis"),
        "ruled_out_date": first("cancer_ruled_out"),
        "decision_date": first("decision_to_treat"),
        "treatment_date": first("treatment"),
        "adjustment_days": joined.adjustment_days.sum(where=joined.event_type == "clock_adjustment"),
    }
    if detail:
        metrics |= {
            "first_seen_date": first("first_seen"),
            "diagnosis_provider": at_first("provider_code", "diagnosis"),
            "tumour_site": at_first("tumour_site", "diagnosis"),
            "ruled_out_provider": at_first("provider_code", "cancer_ruled_out"),
            "treatment_provider": at_first("provider_code", "treatment"),
            "treatment_modality": at_first("modality", "treatment"),
        }
    summary = joined.group_by("pathway_id").aggregate(**metrics)
    deaths = events.filter(_.event_type == "death").group_by("patient_id").aggregate(death_date=_.event_date.min())
    out = referrals.left_join(summary, "pathway_id").left_join(deaths, "patient_id")
    return out.select(*(c for c in PATHWAY_COLUMNS if detail or c not in DETAIL_COLUMNS))
