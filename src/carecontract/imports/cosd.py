"""The Cancer Outcomes and Services Data Set (COSD), core items: one record per primary cancer → a diagnosis.

Specification: NDRS (NHS England), *COSD user guide v10* (v10.2.8) — Core: Linkage, Diagnosis,
Referral and first seen, Staging — and the NHS Data Dictionary's *Cancer Outcomes and Services Data Set -
Core*. Data item numbers (CRnnnn) are the user guide's. COSD is submitted to NDRS as XML; this importer
reads the core items as CSV with the data elements' names as the header (one record a line, as the
CWT bulk upload does), the form an extract from a provider's cancer system or a registry takes.

What it carries for the measures: the date of diagnosis (CR2030), the primary diagnosis (CR0370), the
final pre-treatment TNM stage group (CR0580), the basis of diagnosis (CR0390), and the source of
referral (CR1600), whose emergency codes make the route to diagnosis an emergency presentation. One
record gives one ``diagnosis`` event; record ids come from the data set's own record key, the COSDS
UNIQUE IDENTIFIER with ORGANISATION IDENTIFIER (CODE OF PROVIDER):
``COSD:<provider>:<COSDS UNIQUE IDENTIFIER>:diagnosis``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from carecontract.imports import cwt
from carecontract.imports.base import Mapped
from carecontract.imports.csvsource import Rejected, map_lines
from carecontract.imports.csvsource import count_records as count_records

KIND = "cosd"
SPECIFICATION = "Cancer Outcomes and Services Data Set v10 (COSD user guide v10.2.8, NDRS), core items"
SPECIFICATION_SHORT = "COSD v10"

# -- data elements (data item numbers of the COSD user guide v10) ----------------------------------
RECORD_ID = "COSDS UNIQUE IDENTIFIER"
NHS_NUMBER = "NHS NUMBER"  # CR0010
PROVIDER = "ORGANISATION IDENTIFIER (CODE OF PROVIDER)"  # CR0030
COMMISSIONER = "ORGANISATION IDENTIFIER (CODE OF COMMISSIONER)"  # not a COSD item: the extract's own (see docs)
DIAGNOSIS_DATE = "DATE OF PRIMARY DIAGNOSIS (CLINICALLY AGREED)"  # CR2030
DIAGNOSIS = "PRIMARY DIAGNOSIS (ICD)"  # CR0370
DIAGNOSIS_SITE = "ORGANISATION SITE IDENTIFIER (OF DIAGNOSIS)"  # CR6230
BASIS = "BASIS OF DIAGNOSIS (CANCER)"  # CR0390
SOURCE = "SOURCE OF REFERRAL FOR OUT-PATIENTS"  # CR1600
STAGE = "TNM STAGE GROUPING (FINAL PRETREATMENT)"  # CR0580

COLUMNS = (
    RECORD_ID,
    NHS_NUMBER,
    PROVIDER,
    COMMISSIONER,
    DIAGNOSIS_DATE,
    DIAGNOSIS,
    DIAGNOSIS_SITE,
    BASIS,
    SOURCE,
    STAGE,
)
REQUIRED = (RECORD_ID, NHS_NUMBER, PROVIDER, COMMISSIONER, DIAGNOSIS_DATE, DIAGNOSIS)

#: BASIS OF DIAGNOSIS (CANCER) (CR0390). 0, death certificate only, is rejected: a cancer first known
#: from a death certificate was not diagnosed in life, and NDRS leaves it out of survival and stage.
BASES = {
    "0": "Death certificate only",
    "1": "Clinical",
    "2": "Clinical investigation",
    "4": "Specific tumour markers",
    "5": "Cytology",
    "6": "Histology of a metastasis",
    "7": "Histology of a primary tumour",
    "8": "Cytogenetic and/or molecular testing",
    "9": "Unknown",
}
DEATH_CERTIFICATE_ONLY = "0"
#: SOURCE OF REFERRAL FOR OUT-PATIENTS (CR1600): the same national codes as the CWT data set's.
SOURCES = cwt.SOURCES
#: TNM stage group (CR0580, UICC TNM 8): its stage number; X (cannot be assessed) and 0 (in situ) have none.
STAGE_GROUP = re.compile(r"^(0|IV|III|II|I|[1-4])(?:[A-C][0-9]?)?$")
ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4"}
UNSTAGED = {"X", "", "0", "0IS", "0A"}


def stage(value: str) -> str | None:
    """The stage number (1–4) of a TNM stage group ("IIIA" → "3", "2B" → "2"); None for X or 0 (in situ)."""
    text = value.strip().upper().replace(" ", "")
    if text in UNSTAGED:
        return None
    match = STAGE_GROUP.match(text)
    if not match:
        raise Rejected(f"{STAGE} '{value}': not a TNM stage group (0, I–IV or 1–4, with A–C, or X)")
    group = match.group(1)
    return None if group == "0" else ROMAN.get(group, group)


def _record(fields: dict[str, str]) -> list[dict[str, object]]:
    record = fields.get(RECORD_ID, "")
    if not record or ":" in record:
        raise Rejected(f"{RECORD_ID} '{record}': required, without ':'")
    provider = cwt._organisation(fields, PROVIDER, required=True)
    commissioner = cwt._organisation(fields, COMMISSIONER, required=True)
    diagnosed = cwt._date(fields, DIAGNOSIS_DATE, required=True)
    icd = fields.get(DIAGNOSIS, "").upper()
    if not cwt.ICD10.match(icd):
        raise Rejected(f"{DIAGNOSIS} '{icd}': not an ICD-10 code")
    basis = fields.get(BASIS, "")
    if basis and basis not in BASES:
        raise Rejected(f"{BASIS} '{basis}': not a code of the {SPECIFICATION_SHORT} table")
    if basis == DEATH_CERTIFICATE_ONLY:
        raise Rejected(f"{BASIS} '{basis}': death certificate only, not a diagnosis made in life")
    source = fields.get(SOURCE, "")
    if source and source not in SOURCES:
        raise Rejected(f"{SOURCE} '{source}': not a code of the {SPECIFICATION_SHORT} table")
    site = cwt._organisation(fields, DIAGNOSIS_SITE)
    event: dict[str, object] = {
        "record_id": f"COSD:{provider}:{record}:diagnosis",
        "nhs_number": fields.get(NHS_NUMBER, ""),
        "event_date": diagnosed,
        "event_type": "diagnosis",
        "provider_code": cwt.treating_provider(site, provider),
        "commissioner_code": commissioner,
        "icd10": icd,
        "stage": stage(fields.get(STAGE, "")),
    }
    if source and SOURCES[source][1] == "emergency":
        event["referral_route"] = "emergency"
    return [event]


def map_file(path: Path) -> Iterator[Mapped]:
    """One :class:`Mapped` per data line of a COSD core extract, streaming."""
    return map_lines(path, REQUIRED, f"COSD ({SPECIFICATION_SHORT} core)", _record)
