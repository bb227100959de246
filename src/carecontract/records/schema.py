"""The activity record interchange format (stable; see ../shared/design.md).

One row per event. This module is the only place the format is spelled out: the validator,
the synthetic generator, the event store and the documentation all read it from here, so the
format cannot drift between them.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUIRED_COLUMNS: tuple[str, ...] = (
    "record_id",
    "nhs_number",
    "event_date",
    "event_type",
    "provider_code",
    "commissioner_code",
)

OPTIONAL_COLUMNS: tuple[str, ...] = (
    "icd10",
    "stage",
    "referral_route",
    "modality",
    "adjustment_days",
    "place_of_death",
    "usual_residence",
    "score",
    "cost_gbp",
    "age",
    "sex",
    "imd_quintile",
    "ethnicity",
)

#: Columns that say what to do with a row rather than describe the event (not stored as event fields).
CONTROL_COLUMNS: tuple[str, ...] = ("action",)

ALL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + CONTROL_COLUMNS

#: ``action``: empty or ``submit`` (the default) adds a record or corrects the provider's earlier
#: version of it (same ``record_id``); ``withdraw`` removes the provider's record from current
#: figures, and needs only ``record_id`` and ``provider_code``.
SUBMIT = "submit"
WITHDRAW = "withdraw"
ACTIONS: tuple[str, ...] = (SUBMIT, WITHDRAW)
#: What a withdrawal row must carry (the other required columns may be left empty).
WITHDRAWAL_COLUMNS: tuple[str, ...] = ("record_id", "provider_code")

EVENT_TYPES: tuple[str, ...] = (
    "referral",
    "first_seen",
    "diagnosis",
    "cancer_ruled_out",
    "decision_to_treat",
    "treatment",
    "clock_adjustment",
    "emergency_admission",
    "palliative_register",
    "specialist_palliative_care",
    "hospice_stay",
    "death",
    "patient_experience",
)

#: Events that belong to a cancer pathway and so cannot happen before the patient's first referral.
PATHWAY_EVENTS: tuple[str, ...] = (
    "first_seen",
    "diagnosis",
    "cancer_ruled_out",
    "decision_to_treat",
    "treatment",
    "clock_adjustment",
)

#: How a pathway came in. ``breast_symptomatic`` is the urgent referral of a patient with breast
#: symptoms where cancer is not suspected: in the 28-day and 62-day standards (NHS England, National
#: Cancer Waiting Times Monitoring Dataset Guidance v12.1, section 1.1). New values go at the end: the
#: synthetic generator stores routes by position.
REFERRAL_ROUTES: tuple[str, ...] = ("urgent_gp", "screening", "upgrade", "emergency", "other", "breast_symptomatic")
MODALITIES: tuple[str, ...] = (
    "surgery",
    "chemotherapy",
    "radiotherapy",
    "hormone",
    "immunotherapy",
    "active_monitoring",
    "palliative",
)
#: Place of death and usual residence. ``religious_establishment`` is the third usual place of residence
#: of the national "death in usual place of residence" indicator (with home and care home); a hospice
#: is not one (docs/measures.md, usual_place_of_death). New values go at the end (stored by position).
PLACES: tuple[str, ...] = ("home", "care_home", "hospital", "hospice", "other", "religious_establishment")
SEXES: tuple[str, ...] = ("M", "F", "U")
#: NHS Data Dictionary ethnic category codes (2001 census classification); Z = not stated.
ETHNIC_CATEGORIES: tuple[str, ...] = tuple("ABCDEFGHJKLMNPRSZ")

#: Optional columns whose value is required for a given event type.
REQUIRED_FOR_EVENT: dict[str, tuple[str, ...]] = {
    "diagnosis": ("icd10",),
    "referral": ("referral_route",),
    "treatment": ("modality",),
    "clock_adjustment": ("adjustment_days",),
    "death": ("place_of_death",),
    "patient_experience": ("score",),
}


@dataclass(frozen=True)
class TumourSite:
    """A tumour site and the ICD-10 three-character codes that belong to it."""

    name: str
    first: str  # first three-character code, inclusive, e.g. "C33"
    last: str  # last three-character code, inclusive


#: Tumour sites: the four named sites of the Staffordshire contract first, the rest by ICD-10 block.
#: Order matters: the first matching range wins, so named sites shadow the block they sit in.
TUMOUR_SITES: tuple[TumourSite, ...] = (
    TumourSite("bladder", "C67", "C67"),
    TumourSite("lung", "C33", "C34"),
    TumourSite("prostate", "C61", "C61"),
    TumourSite("breast", "C50", "C50"),
    TumourSite("head_and_neck", "C00", "C14"),
    TumourSite("colorectal", "C18", "C21"),
    TumourSite("other_digestive", "C15", "C26"),
    TumourSite("other_respiratory", "C30", "C39"),
    TumourSite("skin", "C43", "C44"),
    TumourSite("bone_and_soft_tissue", "C40", "C49"),
    TumourSite("gynaecological", "C51", "C58"),
    TumourSite("other_male_genital", "C60", "C63"),
    TumourSite("other_urological", "C64", "C68"),
    TumourSite("brain_and_cns", "C69", "C72"),
    TumourSite("endocrine", "C73", "C75"),
    TumourSite("ill_defined_and_unknown", "C76", "C80"),
    TumourSite("haematological", "C81", "C96"),
    TumourSite("multiple_primary", "C97", "C97"),
    TumourSite("in_situ", "D00", "D09"),
)

TUMOUR_SITE_NAMES: tuple[str, ...] = tuple(site.name for site in TUMOUR_SITES)


def tumour_site_sql(icd10_column: str) -> str:
    """A SQL CASE expression mapping an ICD-10 column to its tumour site (NULL when not cancer)."""
    code = f"upper(substr({icd10_column}, 1, 3))"
    arms = " ".join(f"WHEN {code} BETWEEN '{site.first}' AND '{site.last}' THEN '{site.name}'" for site in TUMOUR_SITES)
    return f"(CASE {arms} ELSE NULL END)"
