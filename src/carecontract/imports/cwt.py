"""The National Cancer Waiting Times Monitoring Data Set (CWT): one record per cancer pathway → events.

Specification: NHS England, *National Cancer Waiting Times Monitoring Dataset Guidance* v12.1 (July
2025), section 1.1 (the standards: 28-day FDS, 31-day, 62-day; routes, clock starts and stops), with
the data elements of the NHS Data Dictionary's *National Cancer Waiting Times Monitoring Data Set*.
The extract is CSV (the CWT system's bulk upload route) with the data elements' names as its header.
Every code table and mapping rule is in ``docs/imports.md``; the tables below are its one home.

One record is one pathway's treatment period: the first definitive treatment (CANCER TREATMENT EVENT
TYPE 01) carries the referral, first seen, the faster diagnosis pathway's end, the decision to treat
and the treatment; a subsequent treatment's record (any other event type) carries only its own
decision to treat, treatment and adjustment (its referral is the first record's). Record ids come
from the data set's own keys, so a resubmitted extract corrects rather than duplicates:
``CWT:<ORGANISATION IDENTIFIER (CODE OF PROVIDER)>:<PATIENT PATHWAY IDENTIFIER>[:<event type>-<treatment
start date>]:<event>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from carecontract.imports.base import Mapped
from carecontract.imports.csvsource import Rejected, map_lines
from carecontract.imports.csvsource import count_records as count_records

KIND = "cwt"
SPECIFICATION = "National Cancer Waiting Times Monitoring Dataset Guidance v12.1 (NHS England, July 2025)"
SPECIFICATION_SHORT = "CWT v12.1"

# -- data elements (the extract's header) ---------------------------------------------------------
NHS_NUMBER = "NHS NUMBER"
PROVIDER = "ORGANISATION IDENTIFIER (CODE OF PROVIDER)"
COMMISSIONER = "ORGANISATION IDENTIFIER (CODE OF COMMISSIONER)"
PATHWAY = "PATIENT PATHWAY IDENTIFIER"
START = "CANCER REFERRAL TO TREATMENT PERIOD START DATE"
PRIORITY = "PRIORITY TYPE CODE"
SOURCE = "SOURCE OF REFERRAL FOR OUT-PATIENTS"
REFERRAL_TYPE = "TWO WEEK WAIT CANCER OR SYMPTOMATIC BREAST REFERRAL TYPE"
UPGRADE = "CONSULTANT UPGRADE DATE"
FIRST_SEEN = "DATE FIRST SEEN"
FIRST_SEEN_ADJUSTMENT = "WAITING TIME ADJUSTMENT (FIRST SEEN)"
FIRST_SEEN_ADJUSTMENT_REASON = "WAITING TIME ADJUSTMENT REASON (FIRST SEEN)"
FDS_END = "CANCER FASTER DIAGNOSIS PATHWAY END DATE"
FDS_END_REASON = "CANCER FASTER DIAGNOSIS PATHWAY END REASON"
DIAGNOSIS = "PRIMARY DIAGNOSIS (ICD)"
DECISION = "CANCER TREATMENT PERIOD START DATE"
EVENT_TYPE = "CANCER TREATMENT EVENT TYPE"
TREATMENT = "TREATMENT START DATE (CANCER)"
MODALITY = "CANCER TREATMENT MODALITY"
TREATMENT_SITE = "ORGANISATION SITE IDENTIFIER (OF TREATMENT)"
TREATMENT_ADJUSTMENT = "WAITING TIME ADJUSTMENT (TREATMENT)"
TREATMENT_ADJUSTMENT_REASON = "WAITING TIME ADJUSTMENT REASON (TREATMENT)"

COLUMNS = (
    NHS_NUMBER,
    PROVIDER,
    COMMISSIONER,
    PATHWAY,
    START,
    PRIORITY,
    SOURCE,
    REFERRAL_TYPE,
    UPGRADE,
    FIRST_SEEN,
    FIRST_SEEN_ADJUSTMENT,
    FIRST_SEEN_ADJUSTMENT_REASON,
    FDS_END,
    FDS_END_REASON,
    DIAGNOSIS,
    DECISION,
    EVENT_TYPE,
    TREATMENT,
    MODALITY,
    TREATMENT_SITE,
    TREATMENT_ADJUSTMENT,
    TREATMENT_ADJUSTMENT_REASON,
)
REQUIRED = (NHS_NUMBER, PROVIDER, COMMISSIONER, PATHWAY)

# -- code tables (NHS Data Dictionary national codes) ----------------------------------------------
#: PRIORITY TYPE CODE. 3 is the urgent suspected cancer referral (formerly "Two Week Wait").
PRIORITY_TYPES = {"1": "Routine", "2": "Urgent", "3": "Two Week Wait (urgent suspected cancer)"}
URGENT_SUSPECTED_CANCER = "3"
#: SOURCE OF REFERRAL FOR OUT-PATIENTS codes this importer reads; the route each one means.
SOURCES = {
    "01": ("following an emergency admission", "emergency"),
    "02": ("following a Domiciliary Consultation", "other"),
    "10": ("following an Emergency Care Attendance (including Minor Injuries Units, Walk In Centres)", "emergency"),
    "11": (
        "other (not listed), initiated by the CONSULTANT responsible for the Consultant Out-Patient Episode",
        "other",
    ),
    "03": ("referral from a GENERAL MEDICAL PRACTITIONER", "other"),
    "92": ("referral from a GENERAL DENTAL PRACTITIONER", "other"),
    "12": (
        "referral from a General Practitioner with an Extended Role (GPwER) or Dentist with Enhanced Skills",
        "other",
    ),
    "04": ("referral from an Emergency Care Department (including Minor Injuries Units, Walk In Centres)", "emergency"),
    "05": ("referral from a CONSULTANT, other than in an Emergency Care Department", "other"),
    "06": ("self-referral", "other"),
    "07": ("referral from a Prosthetist", "other"),
    "13": ("referral from a Specialist NURSE (Secondary Care)", "other"),
    "14": ("referral from an Allied Health Professional", "other"),
    "15": ("referral from an OPTOMETRIST", "other"),
    "16": ("referral from an Orthoptist", "other"),
    "17": ("referral from a National Screening Programme", "screening"),
    "93": ("referral from a Community Dental Service", "other"),
    "97": ("referral: other (not listed), not initiated by the CONSULTANT", "other"),
}
SCREENING = "17"
#: TWO WEEK WAIT CANCER OR SYMPTOMATIC BREAST REFERRAL TYPE: the one code that changes the route.
BREAST_SYMPTOMS_NOT_SUSPECTED = "16"  # exhibited (non-cancer) breast symptoms - cancer not initially suspected
#: CANCER FASTER DIAGNOSIS PATHWAY END REASON → the event the pathway's end is (None: no FDS clock stop).
FDS_END_REASONS = {
    "01": ("Ruling out of cancer", "cancer_ruled_out"),
    "02": ("Excluded from the Cancer Faster Diagnosis Pathway", None),
    "03": ("Diagnosis of cancer", "diagnosis"),
}
#: CANCER TREATMENT EVENT TYPE. 01 opens the record's pathway; every other is a subsequent treatment.
EVENT_TYPES = {
    "01": "First definitive treatment for a new primary cancer",
    "02": "Second or subsequent treatment for a new primary cancer",
    "03": "First treatment for a local recurrence of a primary cancer",
    "04": "Second or subsequent treatment for a local recurrence of a primary cancer",
    "05": "First treatment for a regional or distant metastatic disease (new or recurrent)",
    "06": "Second or subsequent treatment for a regional or distant metastatic disease",
    "07": "First treatment for metastatic disease following an unknown primary",
    "08": "Second or subsequent treatment for metastatic disease following an unknown primary",
}
FIRST_DEFINITIVE = "01"
#: CANCER TREATMENT MODALITY → the interchange's modality; None: no treatment event (all declined).
MODALITIES: dict[str, tuple[str, str | None]] = {
    "01": ("Surgery", "surgery"),
    "02": ("Anti-cancer drug regimen (Cytotoxic Chemotherapy)", "chemotherapy"),
    "03": ("Anti-cancer drug regimen (Hormone Therapy)", "hormone"),
    "04": ("Chemoradiotherapy", "radiotherapy"),
    "05": ("Teletherapy (Beam Radiation excluding Proton Therapy)", "radiotherapy"),
    "06": ("Brachytherapy", "radiotherapy"),
    "07": ("Specialist Palliative Care", "palliative"),
    "08": ("Active Monitoring", "active_monitoring"),
    "09": ("Non-Specialist Palliative Care", "palliative"),
    "10": ("Radio Frequency Ablation (RFA)", "surgery"),
    "11": ("High Intensity Focussed Ultrasound (HIFU)", "surgery"),
    "12": ("Cryotherapy", "surgery"),
    "13": ("Proton Therapy", "radiotherapy"),
    "14": ("Anti-cancer drug regimen (Other)", "chemotherapy"),
    "15": ("Anti-cancer drug regimen (Immunotherapy)", "immunotherapy"),
    "16": ("Light Therapy (including Photodynamic Therapy and PUVA Therapy)", "surgery"),
    "19": ("Radioisotope Therapy (including Radioiodine)", "radiotherapy"),
    "20": ("Laser Treatment (including Argon Beam therapy)", "surgery"),
    "21": ("Biological Therapies (excluding Immunotherapy)", "immunotherapy"),
    "22": ("Radiosurgery", "radiotherapy"),
    "98": ("All treatment declined", None),
}
#: Codes of the data set with no modality in the interchange format: rejected, with this reason.
UNMAPPED_MODALITIES = {
    "17": "Hyperbaric Oxygen Therapy: supportive, not one of the interchange's modalities",
    "97": "Other Treatment (not listed): no interchange modality says which treatment it was",
}
#: WAITING TIME ADJUSTMENT REASON (FIRST SEEN) (NHS Data Dictionary): 3 did not attend, 9 none.
FIRST_SEEN_REASONS = {"3": "Did Not Attend", "9": "No adjustment to waiting time"}
#: WAITING TIME ADJUSTMENT REASON (TREATMENT): 8 the patient declined a reasonable offer, 9 none.
TREATMENT_REASONS = {"8": "Patient declined an offered admission or appointment", "9": "No adjustment to waiting time"}
NO_ADJUSTMENT = "9"

ORGANISATION = re.compile(r"^[A-Z0-9]{3,5}$")
ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.?[0-9X])?[0-9A-Z]?$")


def _date(fields: dict[str, str], name: str, required: bool = False) -> date | None:
    value = fields.get(name, "")
    if not value:
        if required:
            raise Rejected(f"{name} '': required for this record")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Rejected(f"{name} '{value}': not a date (ccyy-mm-dd)") from None


def _code(fields: dict[str, str], name: str, table: dict, required: bool = False) -> str | None:
    value = fields.get(name, "")
    if not value:
        if required:
            raise Rejected(f"{name} '': required for this record")
        return None
    if name == MODALITY and value in UNMAPPED_MODALITIES:
        raise Rejected(f"{name} '{value}': {UNMAPPED_MODALITIES[value]}")
    if value not in table:
        raise Rejected(f"{name} '{value}': not a code of the {SPECIFICATION_SHORT} table")
    return value


def _days(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name, "")
    if not value:
        return None
    if not value.isdigit() or int(value) > 3650:
        raise Rejected(f"{name} '{value}': not a whole number of days")
    return int(value)


def _organisation(fields: dict[str, str], name: str, required: bool = False) -> str | None:
    value = fields.get(name, "").upper()
    if not value:
        if required:
            raise Rejected(f"{name} '': required for this record")
        return None
    if not ORGANISATION.match(value):
        raise Rejected(f"{name} '{value}': not an ODS organisation or site code")
    return value


def treating_provider(site: str | None, provider: str) -> str:
    """An NHS trust's site code is its trust code and two more characters (RJE01 → RJE)."""
    if site and len(site) == 5 and site[0] == "R":
        return site[:3]
    return site or provider


def route(fields: dict[str, str]) -> str:
    """The pathway's route in, from PRIORITY TYPE CODE, SOURCE OF REFERRAL FOR OUT-PATIENTS and the
    referral type (CWT guidance v12.1, 1.1: the 28-day and 62-day clocks start at an urgent suspected
    cancer referral, an urgent screening referral or a breast symptomatic referral)."""
    priority = _code(fields, PRIORITY, PRIORITY_TYPES, required=True)
    source = _code(fields, SOURCE, SOURCES, required=True)
    if source == SCREENING:
        return "screening"
    if priority == URGENT_SUSPECTED_CANCER:
        if fields.get(REFERRAL_TYPE, "") == BREAST_SYMPTOMS_NOT_SUSPECTED:
            return "breast_symptomatic"
        return "urgent_gp"
    return SOURCES[source][1]


def _record(fields: dict[str, str]) -> list[dict[str, object]]:
    provider = _organisation(fields, PROVIDER, required=True)
    commissioner = _organisation(fields, COMMISSIONER, required=True)
    pathway = fields.get(PATHWAY, "")
    if not pathway or ":" in pathway:
        raise Rejected(f"{PATHWAY} '{pathway}': required, without ':'")
    # no event type: a pathway with no treatment yet (a ruling out, or an FDS record) is the first record
    event_type = _code(fields, EVENT_TYPE, EVENT_TYPES, required=bool(fields.get(TREATMENT))) or FIRST_DEFINITIVE
    base = {"nhs_number": fields.get(NHS_NUMBER, ""), "provider_code": provider, "commissioner_code": commissioner}
    key = f"CWT:{provider}:{pathway}"
    events: list[dict[str, object]] = []

    def add(slot: str, event_type: str, day: date, **extra: object) -> None:
        events.append({**base, "record_id": f"{key}:{slot}", "event_type": event_type, "event_date": day, **extra})

    if event_type == FIRST_DEFINITIVE:
        _pathway_events(fields, add)
    else:  # a subsequent treatment: its own key, so it never collides with the first record's events
        treated = _date(fields, TREATMENT, required=True)
        key = f"{key}:{event_type}-{treated.isoformat()}"
    _treatment_events(fields, add, provider)
    if not events:
        raise Rejected(f"{START} '': the record carries no event (no referral, first seen or treatment)")
    return events


def _pathway_events(fields: dict[str, str], add) -> None:
    start = _date(fields, START)
    upgrade = _date(fields, UPGRADE)
    if start is not None:
        way = route(fields)
        if upgrade is not None and way not in ("urgent_gp", "screening", "breast_symptomatic"):
            if upgrade < start:
                raise Rejected(f"{UPGRADE} '{upgrade}': before the {START} '{start}'")
            if upgrade == start:  # upgraded on the day it was received: one referral, the upgrade
                way = "upgrade"
            else:
                add("upgrade", "referral", upgrade, referral_route="upgrade")
        add("referral", "referral", start, referral_route=way)
    elif upgrade is not None:
        add("upgrade", "referral", upgrade, referral_route="upgrade")
    seen = _date(fields, FIRST_SEEN)
    if seen is not None:
        add("first_seen", "first_seen", seen)
    days = _days(fields, FIRST_SEEN_ADJUSTMENT)
    reason = _code(fields, FIRST_SEEN_ADJUSTMENT_REASON, FIRST_SEEN_REASONS)
    if days:
        if reason in (None, NO_ADJUSTMENT):
            raise Rejected(f"{FIRST_SEEN_ADJUSTMENT_REASON} '{reason or ''}': an adjustment of {days} days needs 3")
        if start is None:
            raise Rejected(f"{START} '': a first-seen adjustment needs the clock start it is counted from")
        # the data set gives the days, not the day: dated on the clock start, inside [start, first seen)
        add("first_seen_adjustment", "clock_adjustment", start, adjustment_days=days)
    end = _date(fields, FDS_END)
    end_reason = _code(fields, FDS_END_REASON, FDS_END_REASONS, required=end is not None)
    if end_reason and end is None:
        raise Rejected(f"{FDS_END} '': required with {FDS_END_REASON} '{end_reason}'")
    outcome = FDS_END_REASONS[end_reason][1] if end_reason else None
    if outcome == "diagnosis":
        icd = fields.get(DIAGNOSIS, "").upper()
        if not ICD10.match(icd):
            raise Rejected(f"{DIAGNOSIS} '{icd}': an ICD-10 code is required with {FDS_END_REASON} '03'")
        add("diagnosis", "diagnosis", end, icd10=icd)
    elif outcome == "cancer_ruled_out":
        add("ruled_out", "cancer_ruled_out", end)


def _treatment_events(fields: dict[str, str], add, provider: str) -> None:
    decided = _date(fields, DECISION)
    treated = _date(fields, TREATMENT)
    modality_code = _code(fields, MODALITY, MODALITIES, required=treated is not None)
    site = _organisation(fields, TREATMENT_SITE)
    if decided is not None:
        add("decision_to_treat", "decision_to_treat", decided)
    modality = MODALITIES[modality_code][1] if modality_code else None
    if treated is not None and modality is not None:
        add("treatment", "treatment", treated, modality=modality, provider_code=treating_provider(site, provider))
    days = _days(fields, TREATMENT_ADJUSTMENT)
    reason = _code(fields, TREATMENT_ADJUSTMENT_REASON, TREATMENT_REASONS)
    if days:
        if reason in (None, NO_ADJUSTMENT):
            raise Rejected(f"{TREATMENT_ADJUSTMENT_REASON} '{reason or ''}': an adjustment of {days} days needs 8")
        if decided is None:
            raise Rejected(f"{DECISION} '': a treatment adjustment needs the decision to treat it is counted from")
        # dated on the decision to treat: inside [decision, treatment), where it comes off the 31-day clock
        add("treatment_adjustment", "clock_adjustment", decided, adjustment_days=days)


def map_file(path: Path) -> Iterator[Mapped]:
    """One :class:`Mapped` per data line of a CWT extract, streaming."""
    return map_lines(path, REQUIRED, f"CWT ({SPECIFICATION_SHORT})", _record)
