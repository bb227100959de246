"""The synthetic economy as FHIR R4 NDJSON (UK Core identifiers): one Patient per person, then one
resource per event FHIR carries here (carecontract.imports.fhir says which and how).

Events FHIR does not carry in this mapping (clock adjustments, palliative care register entries,
deaths with their place, patient experience returns) stay in the interchange file: the round trip
replaces exactly the resources written here (each resource's id is the synthetic record_id).
Patient ids are sequence numbers, never the NHS number.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from carecontract.imports import fhir as spec

CARRIED = (
    "referral",
    "first_seen",
    "diagnosis",
    "cancer_ruled_out",
    "decision_to_treat",
    "treatment",
    "emergency_admission",
    "hospice_stay",
    "specialist_palliative_care",
)
GENDER = {"M": "male", "F": "female", "U": "unknown"}
BATCH = 50_000


def _org(provider: str, commissioner: str) -> list[dict]:
    return [
        {"url": spec.PROVIDER_URL, "valueIdentifier": {"system": spec.ODS_SYSTEM, "value": provider}},
        {"url": spec.COMMISSIONER_URL, "valueIdentifier": {"system": spec.ODS_SYSTEM, "value": commissioner}},
    ]


def _coding(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def _resource(e: dict, patient: str) -> dict:
    day = e["event_date"].isoformat()
    base = {"id": e["record_id"], "extension": _org(e["provider_code"], e["commissioner_code"])}
    subject = {"reference": f"Patient/{patient}"}
    kind = e["event_type"]
    if kind in ("referral", "decision_to_treat"):
        r = {"resourceType": "ServiceRequest", **base, "status": "active", "subject": subject, "authoredOn": day}
        if kind == "referral":
            r |= {"intent": "order", "category": [_coding(spec.ROUTE_SYSTEM, e["referral_route"])]}
        else:
            r["intent"] = "plan"
        return r
    if kind in ("diagnosis", "cancer_ruled_out"):
        status = "confirmed" if kind == "diagnosis" else "refuted"
        r = {
            "resourceType": "Condition",
            **base,
            "verificationStatus": _coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", status),
            "subject": subject,
        }
        if e["icd10"]:
            r["code"] = _coding(spec.ICD10_SYSTEM, e["icd10"])
        if kind == "diagnosis":
            r["onsetDateTime"] = day
            if e["stage"] is not None:
                r["stage"] = [{"summary": {"coding": [{"code": str(e["stage"])}]}}]
        else:
            r["recordedDate"] = day
        return r
    if kind == "treatment":
        return {
            "resourceType": "Procedure",
            **base,
            "status": "completed",
            "category": _coding(spec.MODALITY_SYSTEM, e["modality"]),
            "subject": subject,
            "performedDateTime": day,
        }
    r = {
        "resourceType": "Encounter",
        **base,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": subject,
        "period": {"start": day},
    }
    if kind == "emergency_admission":
        r["extension"].append(
            {"url": spec.ADMISSION_METHOD_URL, "valueCodeableConcept": _coding(spec.ADMISSION_METHOD_SYSTEM, "21")}
        )
    else:
        r["type"] = [_coding(spec.ENCOUNTER_SYSTEM, kind)]
    return r


def write(events: pa.Table, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    carried = events.filter(pc.is_in(pc.cast(events["event_type"], pa.string()), pa.array(CARRIED)))
    carried = carried.sort_by([("event_date", "ascending"), ("record_id", "ascending")])
    path = out / "fhir-resources.ndjson"
    patients: dict[int, str] = {}
    with open(path, "w", encoding="utf-8") as handle:
        for batch in carried.to_batches(BATCH):
            for e in batch.to_pylist():
                nhs = e["nhs_number"]
                if nhs not in patients:
                    patients[nhs] = f"p{len(patients) + 1}"
                    patient = {
                        "resourceType": "Patient",
                        "id": patients[nhs],
                        "identifier": [{"system": spec.NHS_NUMBER_SYSTEM, "value": str(nhs)}],
                    }
                    if e["sex"]:
                        patient["gender"] = GENDER[e["sex"]]
                    if e["age"] is not None:
                        born = e["event_date"]
                        patient["birthDate"] = _years_before(born, e["age"]).isoformat()
                    handle.write(json.dumps(patient, separators=(",", ":")) + "\n")
                handle.write(json.dumps(_resource(e, patients[nhs]), separators=(",", ":")) + "\n")
    return [path]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)
