"""FHIR R4 (UK Core) → interchange events: a Bundle (JSON) or NDJSON of Patient, ServiceRequest,
Condition, Procedure and Encounter, each parsed and validated by ``fhir.resources`` (its R4B models:
R4B is R4 with a handful of medication and definition resources changed, none of those read here).

- **NDJSON streams** line by line; a **Bundle is loaded whole** (JSON has no streaming form for it), so
  send large extracts as NDJSON (the FHIR Bulk Data format).
- **Patient** resources are the context the others refer to (``subject.reference`` to a Patient earlier
  in the file, or ``subject.identifier`` with the NHS number): they are not records themselves and
  make no event. Memory grows with the number of patients, not the file.
- Every other resource is one source record: mapped to one event, or rejected with a reason naming
  the element and value (``Condition/c9 verificationStatus 'provisional': ...``).

Mapping rules and code systems: docs/imports-apc-deaths-fhir.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from carecontract.errors import UserError
from carecontract.imports.apc import ADMISSION_METHODS, CHEMOTHERAPY, RADIOTHERAPY
from carecontract.imports.base import Mapped
from carecontract.records import schema

KIND = "fhir"
SPECIFICATION = (
    "HL7 FHIR R4 (4.0.1; parsed with fhir.resources' R4B models), UK Core (NHS number identifier system, "
    "Extension-UKCore-AdmissionMethod with UKCore-AdmissionMethodEngland), ICD-10, OPCS-4; carecontract "
    "code systems for referral route, treatment modality, encounter type, provider and commissioner"
)

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
OPCS4_SYSTEM = "http://fhir.nhs.net/CodeSystem/opcs-4"
ADMISSION_METHOD_URL = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod"
ADMISSION_METHOD_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland"
#: carecontract's own code systems, for what UK Core has no value set for (docs/imports-apc-deaths-fhir.md).
CARECONTRACT = "https://carecontract.org/fhir"
ROUTE_SYSTEM = f"{CARECONTRACT}/CodeSystem/referral-route"
MODALITY_SYSTEM = f"{CARECONTRACT}/CodeSystem/treatment-modality"
ENCOUNTER_SYSTEM = f"{CARECONTRACT}/CodeSystem/encounter-type"
PROVIDER_URL = f"{CARECONTRACT}/StructureDefinition/provider"
COMMISSIONER_URL = f"{CARECONTRACT}/StructureDefinition/commissioner"

#: Encounter types carried with ENCOUNTER_SYSTEM (an emergency admission is recognised by its UK Core
#: admission method instead).
ENCOUNTER_TYPES = ("first_seen", "hospice_stay", "specialist_palliative_care")
GENDERS = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
STAGES = {"1": "1", "2": "2", "3": "3", "4": "4", "I": "1", "II": "2", "III": "3", "IV": "4"}
MAPPED_TYPES = ("ServiceRequest", "Condition", "Procedure", "Encounter")


class FhirFileError(UserError):
    """A file that is neither a FHIR Bundle nor NDJSON of resources: refused whole."""


class Problem(Exception):
    """A resource that cannot be mapped; the message names the element and value."""


def _resources(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, resource dict, problem) per resource, in file order: NDJSON streamed, a Bundle whole."""
    if _is_bundle(path):
        with open(path, encoding="utf-8-sig") as handle:
            bundle = json.load(handle)
        for n, entry in enumerate(bundle.get("entry") or [], start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            where = f"{path.name}#entry{n}"
            if not isinstance(resource, dict):
                yield where, None, "entry.resource: missing"
                continue
            yield where, resource, None
        return
    with open(path, encoding="utf-8-sig") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as e:
                yield where, None, f"line: not JSON ({e.msg})"
                continue
            if not isinstance(resource, dict):
                yield where, None, "line: not a JSON object"
                continue
            yield where, resource, None


def _is_bundle(path: Path) -> bool:
    """A Bundle: the first line is a Bundle, or is not a whole JSON object and the file is a Bundle.
    NDJSON is told apart by its first line alone, so it is never read whole."""
    with open(path, encoding="utf-8-sig") as handle:
        first = handle.readline()
    try:
        head = json.loads(first)
        return isinstance(head, dict) and head.get("resourceType") == "Bundle"
    except json.JSONDecodeError:
        pass
    with open(path, encoding="utf-8-sig") as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as e:
            if '"Bundle"' in first:  # a Bundle that is not one whole JSON document: refused whole
                raise FhirFileError(f"{path}: a Bundle that is not valid JSON (line {e.lineno}: {e.msg})") from None
            return False
    return isinstance(data, dict) and data.get("resourceType") == "Bundle"


def count_records(path: Path) -> int:
    """Resources other than Patient, counted apart from the mapping (no model parsing): the records."""
    n = 0
    path = Path(path)
    if _is_bundle(path):
        with open(path, encoding="utf-8-sig") as handle:
            entries = json.load(handle).get("entry") or []
        return sum(1 for e in entries if not (isinstance(e, dict) and _type_of(e.get("resource")) == "Patient"))
    with open(path, encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                patient = _type_of(json.loads(line)) == "Patient"
            except json.JSONDecodeError:
                patient = False
            n += not patient
    return n


def _type_of(resource: object) -> str | None:
    return resource.get("resourceType") if isinstance(resource, dict) else None


def map_file(path: Path) -> Iterator[Mapped]:
    path = Path(path)
    if not path.stat().st_size:
        raise FhirFileError(f"{path}: empty file")
    patients: dict[str, dict[str, str | None]] = {}
    for where, raw, problem in _resources(path):
        if problem:
            yield Mapped(where, problem=problem)
            continue
        assert raw is not None
        kind = raw.get("resourceType")
        if kind == "Patient":
            _remember_patient(raw, patients)
            continue
        label = f"{kind}/{raw.get('id', '')}"
        try:
            if kind not in MAPPED_TYPES:
                raise Problem(f"resourceType '{kind}': not one of Patient, {', '.join(MAPPED_TYPES)}")
            resource = _parse(kind, raw)
            yield Mapped(f"{label} ({where})", events=[_map(kind, resource, patients)])
        except Problem as e:
            yield Mapped(f"{label} ({where})", problem=f"{label} {e}")


def _parse(kind: str, raw: dict[str, Any]) -> Any:
    try:
        return get_fhir_model_class(kind).model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or kind
        value = err.get("input")
        shown = value if isinstance(value, str | int | float) else type(value).__name__
        raise Problem(f"{loc} '{shown}': {err['msg']} (FHIR R4)") from None


def _remember_patient(raw: dict[str, Any], patients: dict[str, dict[str, str | None]]) -> None:
    """A Patient's NHS number, sex and birth date under its id; an invalid one is remembered as such,
    so that each resource referring to it is rejected with the reason."""
    pid = str(raw.get("id", ""))
    try:
        patient = get_fhir_model_class("Patient").model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        patients[pid] = {"problem": f"Patient/{pid} {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"}
        return
    nhs = next((i.value for i in patient.identifier or [] if i.system == NHS_NUMBER_SYSTEM), None)
    patients[pid] = {
        "nhs_number": nhs,
        "sex": GENDERS.get(patient.gender or ""),
        "birth": patient.birthDate.isoformat() if isinstance(patient.birthDate, date) else None,
        "problem": None if nhs else f"Patient/{pid} identifier: no NHS number (system {NHS_NUMBER_SYSTEM})",
    }


def _subject(resource: Any, element: str, patients: dict[str, dict[str, str | None]]) -> dict[str, str | None]:
    ref = getattr(resource, element, None)
    if ref is None:
        raise Problem(f"{element}: missing (the patient)")
    if ref.identifier is not None and ref.identifier.system == NHS_NUMBER_SYSTEM and ref.identifier.value:
        return {"nhs_number": ref.identifier.value, "sex": None, "birth": None}
    target = (ref.reference or "").split("/")
    if len(target) == 2 and target[0] == "Patient" and target[1] in patients:
        patient = patients[target[1]]
        if patient.get("problem"):
            raise Problem(f"{element}.reference '{ref.reference}': {patient['problem']}")
        return patient
    raise Problem(
        f"{element}.reference '{ref.reference}': no Patient with that id earlier in the file, and no "
        f"{element}.identifier with an NHS number"
    )


def _ext_identifier(resource: Any, url: str) -> str | None:
    for ext in resource.extension or []:
        if ext.url == url and ext.valueIdentifier is not None and ext.valueIdentifier.system == ODS_SYSTEM:
            return ext.valueIdentifier.value
    return None


def _org(resource: Any, native: Any | None) -> tuple[str, str]:
    """(provider, commissioner) ODS codes: the provider from the resource's own organisation element
    where FHIR has one, else carecontract's provider extension; the commissioner from its extension."""
    provider = None
    if native is not None and native.identifier is not None and native.identifier.system == ODS_SYSTEM:
        provider = native.identifier.value
    provider = provider or _ext_identifier(resource, PROVIDER_URL)
    commissioner = _ext_identifier(resource, COMMISSIONER_URL)
    if not provider:
        raise Problem(f"provider: missing (an Organization identifier with system {ODS_SYSTEM})")
    if not commissioner:
        raise Problem(f"extension '{COMMISSIONER_URL}': missing (the commissioner's ODS code)")
    return provider, commissioner


def _code(concepts: list[Any] | Any | None, system: str) -> str | None:
    items = concepts if isinstance(concepts, list) else [concepts] if concepts is not None else []
    for concept in items:
        for coding in concept.coding or []:
            if coding.system == system and coding.code:
                return coding.code
    return None


def _day(value: object, element: str) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise Problem(f"{element}: missing or not a full date")


def _age(birth: str | None, day: str) -> str | None:
    if not birth:
        return None
    b, d = date.fromisoformat(birth), date.fromisoformat(day)
    return str(d.year - b.year - ((d.month, d.day) < (b.month, b.day)))


def _event(resource: Any, event_type: str, day: str, person: dict[str, str | None], orgs: tuple[str, str]) -> dict:
    return {
        "record_id": f"FHIR-{resource.get_resource_type()}-{resource.id}:{event_type}",
        "nhs_number": person["nhs_number"],
        "event_date": day,
        "event_type": event_type,
        "provider_code": orgs[0],
        "commissioner_code": orgs[1],
        "sex": person.get("sex"),
        "age": _age(person.get("birth"), day),
    }


def _map(kind: str, r: Any, patients: dict[str, dict[str, str | None]]) -> dict[str, object]:
    if not r.id:
        raise Problem("id: missing (the resource's id makes its record_id)")
    if kind == "ServiceRequest":
        return _service_request(r, patients)
    if kind == "Condition":
        return _condition(r, patients)
    if kind == "Procedure":
        return _procedure(r, patients)
    return _encounter(r, patients)


def _service_request(r: Any, patients: dict) -> dict[str, object]:
    """intent ``order`` with a referral route category: a referral; intent ``plan``: a decision to treat."""
    person = _subject(r, "subject", patients)
    day = _day(r.authoredOn, "authoredOn")
    performer = r.performer[0] if r.performer else None
    orgs = _org(r, performer)
    if r.intent == "plan":
        return _event(r, "decision_to_treat", day, person, orgs)
    if r.intent not in ("order", "original-order"):
        raise Problem(f"intent '{r.intent}': not order (a referral) or plan (a decision to treat)")
    route = _code(r.category, ROUTE_SYSTEM)
    if route not in schema.REFERRAL_ROUTES:
        raise Problem(f"category '{route or ''}': not a referral route in {ROUTE_SYSTEM}")
    return {**_event(r, "referral", day, person, orgs), "referral_route": route}


def _condition(r: Any, patients: dict) -> dict[str, object]:
    """verificationStatus ``confirmed``: a diagnosis (ICD-10, stage); ``refuted``: cancer ruled out."""
    person = _subject(r, "subject", patients)
    status = _code(r.verificationStatus, "http://terminology.hl7.org/CodeSystem/condition-ver-status")
    status = status or (
        r.verificationStatus.coding[0].code if r.verificationStatus and r.verificationStatus.coding else ""
    )
    orgs = _org(r, None)
    icd = _code(r.code, ICD10_SYSTEM)
    if status == "refuted":
        day = _day(r.recordedDate or r.onsetDateTime, "recordedDate")
        return {**_event(r, "cancer_ruled_out", day, person, orgs), "icd10": icd}
    if status != "confirmed":
        raise Problem(f"verificationStatus '{status}': not confirmed (a diagnosis) or refuted (cancer ruled out)")
    if not icd:
        raise Problem(f"code: no coding with system {ICD10_SYSTEM}")
    day = _day(r.onsetDateTime or r.recordedDate, "onsetDateTime")
    stage = None
    if r.stage:
        raw = ""
        for coding in (r.stage[0].summary.coding if r.stage[0].summary else None) or []:
            raw = coding.code or ""
            break
        key = raw.upper().rstrip("ABCDEFGH")
        if key not in STAGES:
            raise Problem(f"stage.summary '{raw}': not a stage group 1-4 (I-IV, with sub-stage letters)")
        stage = STAGES[key]
    return {**_event(r, "diagnosis", day, person, orgs), "icd10": icd, "stage": stage}


def _procedure(r: Any, patients: dict) -> dict[str, object]:
    person = _subject(r, "subject", patients)
    if r.status != "completed":
        raise Problem(f"status '{r.status}': not completed (only a given treatment counts)")
    when = r.performedDateTime or (r.performedPeriod.start if r.performedPeriod else None)
    day = _day(when, "performedDateTime")
    on_behalf = next((p.onBehalfOf for p in r.performer or [] if p.onBehalfOf is not None), None)
    orgs = _org(r, on_behalf)
    modality = _code(r.category, MODALITY_SYSTEM)
    if modality is None:
        opcs = _code(r.code, OPCS4_SYSTEM)
        category = (opcs or "").replace(".", "").upper()[:3]
        modality = "chemotherapy" if category in CHEMOTHERAPY else "radiotherapy" if category in RADIOTHERAPY else None
        if modality is None:
            raise Problem(
                f"code '{opcs or ''}': no modality (category in {MODALITY_SYSTEM}, or OPCS-4 X70-X74 / X65 in code)"
            )
    if modality not in schema.MODALITIES:
        raise Problem(f"category '{modality}': not a modality in {MODALITY_SYSTEM}")
    return {**_event(r, "treatment", day, person, orgs), "modality": modality}


def _encounter(r: Any, patients: dict) -> dict[str, object]:
    person = _subject(r, "subject", patients)
    day = _day(r.period.start if r.period else None, "period.start")
    orgs = _org(r, r.serviceProvider)
    method = None
    for ext in r.extension or []:
        if ext.url == ADMISSION_METHOD_URL:
            method = _code(ext.valueCodeableConcept, ADMISSION_METHOD_SYSTEM) or ""
    if method is not None:
        if method not in ADMISSION_METHODS:
            raise Problem(f"extension AdmissionMethod '{method}': not a code in {ADMISSION_METHOD_SYSTEM}")
        if ADMISSION_METHODS[method][1]:
            return _event(r, "emergency_admission", day, person, orgs)
    kind = _code(r.type, ENCOUNTER_SYSTEM)
    if kind in ENCOUNTER_TYPES:
        return _event(r, kind, day, person, orgs)
    if method is not None:
        raise Problem(f"extension AdmissionMethod '{method}': not an emergency, and no type in {ENCOUNTER_SYSTEM}")
    raise Problem(f"type '{kind or ''}': not one of {', '.join(ENCOUNTER_TYPES)} in {ENCOUNTER_SYSTEM}")
