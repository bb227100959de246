"""Admitted patient care (SUS+ / HES APC) → ``emergency_admission`` and ``treatment`` events, with cost.

One source record is one episode row of a HES APC extract (or a SUS+ APC extract with the same field
names). It becomes:

- an ``emergency_admission`` on ADMIDATE when ADMIMETH is an emergency code (NHS Data Dictionary
  ADMISSION METHOD: 21–25, 2A–2D, and 28 as data before 2013/14 still carry it), with the primary
  diagnosis (DIAG_4_01) and the spell's cost (TARIFF_TOTAL_PAYMENT);
- one ``treatment`` per modality and date among OPERTN_4_01…OPERTN_4_24 (dated OPDATE_nn, else
  ADMIDATE), by the OPCS-4 rules in :data:`CHEMOTHERAPY`, :data:`RADIOTHERAPY` and :func:`modality`;
  the cost goes on the first treatment when the admission is not an emergency.

An admission that is neither an emergency nor holds a cancer treatment is rejected with that reason
(it is activity carecontract does not count, and saying so keeps every record accounted for). Any
code not in its table is a rejection naming the field and value; nothing is defaulted. Mapping rules
and code tables: docs/imports-apc-deaths-fhir.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from carecontract.imports import csvsource, national_csv
from carecontract.imports.base import Mapped

KIND = "apc"
SPECIFICATION = (
    "NHS Digital HES Admitted Patient Care Data Dictionary (field names); NHS Data Dictionary ADMISSION METHOD "
    "(July 2022 release; 28 kept for data before 2013/14); OPCS-4.10 chapters; ICD-10 5th edition"
)

#: NHS Data Dictionary, ADMISSION METHOD (attribute), national codes. True = emergency admission.
ADMISSION_METHODS: dict[str, tuple[str, bool]] = {
    "11": ("Elective: waiting list", False),
    "12": ("Elective: booked", False),
    "13": ("Elective: planned", False),
    "21": ("Emergency: Emergency Care Department or dental casualty department of the provider", True),
    "22": ("Emergency: general practitioner, direct request for immediate admission", True),
    "23": ("Emergency: bed bureau", True),
    "24": ("Emergency: consultant clinic, of this or another provider", True),
    "25": ("Emergency: Mental Health Crisis Resolution Team", True),
    "2A": ("Emergency: Emergency Care Department of another provider, patient not admitted there", True),
    "2B": ("Emergency: transfer of an admitted patient from another Hospital Provider in an emergency", True),
    "2C": ("Emergency: baby born at home as intended", True),
    "2D": ("Emergency: other emergency admission", True),
    "28": ("Emergency: other means (replaced by 2A-2D from 2013/14)", True),
    "31": ("Maternity: admitted ante partum", False),
    "32": ("Maternity: admitted post partum", False),
    "81": ("Other: transfer from another Hospital Provider, not in an emergency", False),
    "82": ("Other: birth of a baby in this provider", False),
    "83": ("Other: baby born outside the provider, except at home as intended", False),
}
#: NHS Data Dictionary default codes for ADMISSION METHOD (HOSPITAL PROVIDER SPELL): not classifiable.
ADMISSION_METHOD_DEFAULTS = {"98": "not applicable", "99": "not known"}

#: OPCS-4 chapter X, "Procurement of drugs for chemotherapy for neoplasm" (X70, X71) and "Delivery of
#: chemotherapy for neoplasm" (X72, X73), X74 other chemotherapy (OPCS-4 Chemotherapy Regimens Clinical
#: Coding Standards, NHS Digital, April 2020: "the chemotherapy Procurement and Delivery codes (X70-X74)").
CHEMOTHERAPY = ("X70", "X71", "X72", "X73", "X74")
#: OPCS-4 X65 "Radiotherapy delivery" (X67/X68 are the *preparation* for radiotherapy: no treatment).
RADIOTHERAPY = ("X65",)
#: OPCS-4 chapters A–W classify operations by body system; X, Y, Z are miscellaneous, methods and sites.
SURGERY_CHAPTERS = tuple("ABCDEFGHJKLMNOPQRSTUVW")
#: HES fills an empty procedure field with '-' and an unknown one with '&'.
NO_PROCEDURE = {"", "-", "&"}
PROCEDURE_SLOTS = 24

_OPCS = re.compile(r"^([A-Z][0-9]{2})\.?([0-9])?$")
_HRG = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z]$")
_MONEY = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
_CANCER = re.compile(r"^(C[0-9]{2}|D0[0-9])")

REQUIRED = ("EPIKEY", "NEWNHSNO", "ADMIDATE", "ADMIMETH", "PROCODE3", "CCG_RESPONSIBILITY", "DIAG_4_01")


def count_records(path: Path) -> int:
    return csvsource.count_records(path)


def modality(code: str, cancer: bool) -> str | None:
    """The treatment modality an OPCS-4 code (``X723``) records, or None when it is no cancer treatment.

    Surgery is any operation in a body-system chapter (A–W) on an admission whose primary diagnosis is
    a cancer (ICD-10 C00–C97, D00–D09): the documented rule of docs/imports-apc-deaths-fhir.md."""
    category = code[:3]
    if category in CHEMOTHERAPY:
        return "chemotherapy"
    if category in RADIOTHERAPY:
        return "radiotherapy"
    if cancer and category[0] in SURGERY_CHAPTERS:
        return "surgery"
    return None


def map_file(path: Path) -> Iterator[Mapped]:
    path = Path(path)
    for line in csvsource.read_lines(path, REQUIRED, "HES APC"):
        where = f"{path.name}:{line.number}"
        yield Mapped(where, problem=line.problem) if line.problem else map_row(where, line.fields)


def map_row(where: str, row: dict[str, str]) -> Mapped:
    """One episode row → its events, or the first problem found (naming the field and value)."""
    problems: list[str] = []

    def take(result: tuple[str | None, str | None]) -> str | None:
        value, problem = result
        if problem:
            problems.append(problem)
        return value

    key = row["EPIKEY"]
    if not key:
        return Mapped(where, problem="EPIKEY '': missing (the episode's key)")
    method = row["ADMIMETH"].upper()
    if method in ADMISSION_METHOD_DEFAULTS:
        return Mapped(where, problem=f"ADMIMETH '{method}': {ADMISSION_METHOD_DEFAULTS[method]} (a default code)")
    if method not in ADMISSION_METHODS:
        return Mapped(
            where, problem=f"ADMIMETH '{row['ADMIMETH']}': not a code in NHS Data Dictionary ADMISSION METHOD"
        )
    emergency = ADMISSION_METHODS[method][1]
    admitted = take(national_csv.parse_date("ADMIDATE", row["ADMIDATE"]))
    diagnosis = take(national_csv.icd10("DIAG_4_01", row["DIAG_4_01"]))
    hrg = row.get("SUSHRG", "").upper()
    if hrg and not _HRG.match(hrg):
        problems.append(f"SUSHRG '{row['SUSHRG']}': not an HRG4 code (two letters, two digits, a letter)")
    cost = row.get("TARIFF_TOTAL_PAYMENT", "")
    if cost and not _MONEY.match(cost):
        problems.append(f"TARIFF_TOTAL_PAYMENT '{cost}': not pounds and pence")
    person = {
        "nhs_number": row["NEWNHSNO"],
        "provider_code": row["PROCODE3"].upper(),
        "commissioner_code": row["CCG_RESPONSIBILITY"].upper(),
        "sex": take(national_csv.sex("SEX", row.get("SEX", ""))),
        "age": take(national_csv.age("STARTAGE", row.get("STARTAGE", ""))),
    }
    treatments = _treatments(row, admitted, bool(diagnosis and _CANCER.match(diagnosis)), problems)
    if problems:
        return Mapped(where, problem=problems[0])
    events: list[dict[str, object]] = []
    if emergency:
        events.append(
            {
                "record_id": f"APC-{key}:adm",
                "event_date": admitted,
                "event_type": "emergency_admission",
                "icd10": diagnosis,
                "cost_gbp": cost or None,
                **person,
            }
        )
    for n, (day, kind) in enumerate(treatments):
        events.append(
            {
                "record_id": f"APC-{key}:{kind}-{day}",
                "event_date": day,
                "event_type": "treatment",
                "modality": kind,
                "cost_gbp": (cost or None) if not emergency and n == 0 else None,
                **person,
            }
        )
    if not events:
        return Mapped(
            where,
            problem=f"ADMIMETH '{method}': not an emergency admission, and no chemotherapy, radiotherapy or cancer "
            "surgery in OPERTN_4_01..24 (activity carecontract does not count)",
        )
    return Mapped(where, events=events)


def _treatments(row: dict[str, str], admitted: str | None, cancer: bool, problems: list[str]) -> list[tuple[str, str]]:
    """(date, modality) per modality and date, in procedure order: one treatment however many codes."""
    seen: dict[tuple[str, str], None] = {}
    for n in range(1, PROCEDURE_SLOTS + 1):
        field = f"OPERTN_4_{n:02d}"
        code = row.get(field, "").upper()
        if code in NO_PROCEDURE:
            continue
        m = _OPCS.match(code)
        if not m:
            problems.append(f"{field} '{row[field]}': not an OPCS-4 code")
            continue
        kind = modality(m.group(1) + (m.group(2) or ""), cancer)
        if kind is None:
            continue
        when = row.get(f"OPDATE_{n:02d}", "")
        day = admitted
        if when:
            day, problem = national_csv.parse_date(f"OPDATE_{n:02d}", when)
            if problem:
                problems.append(problem)
                continue
        if day:
            seen.setdefault((day, kind), None)
    return list(seen)
