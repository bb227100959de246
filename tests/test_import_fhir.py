"""FHIR R4 (UK Core): the example NDJSON and Bundle, the rejections, the round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carecontract.imports import fhir
from carecontract.synth.formats import fhir as writer
from tests.national_roundtrip import check_example, round_trip

FOLDER = Path(__file__).parents[1] / "examples/national/fhir"
NDJSON = FOLDER / "uk-core-resources.ndjson"
BUNDLE = FOLDER / "uk-core-bundle.json"


def _non_patients(lines: list[dict]) -> int:
    return sum(r["resourceType"] != "Patient" for r in lines)


def test_ndjson_maps_every_resource_or_names_the_element():
    results = list(fhir.map_file(NDJSON))
    resources = [json.loads(line) for line in NDJSON.read_text().splitlines() if line.strip()]
    assert len(results) == _non_patients(resources) == fhir.count_records(NDJSON)
    kinds = {e["record_id"]: e["event_type"] for r in results for e in r.events}
    assert kinds == {
        "FHIR-ServiceRequest-sr1:referral": "referral",
        "FHIR-Encounter-e1:first_seen": "first_seen",
        "FHIR-Condition-c1:diagnosis": "diagnosis",
        "FHIR-ServiceRequest-dtt1:decision_to_treat": "decision_to_treat",
        "FHIR-Procedure-pr1:treatment": "treatment",
        "FHIR-Procedure-pr2:treatment": "treatment",
        "FHIR-Encounter-e2:emergency_admission": "emergency_admission",
        "FHIR-Condition-c2:cancer_ruled_out": "cancer_ruled_out",
        "FHIR-Encounter-e3:hospice_stay": "hospice_stay",
    }
    events = {e["record_id"]: e for r in results for e in r.events}
    diagnosis = events["FHIR-Condition-c1:diagnosis"]
    assert (diagnosis["icd10"], diagnosis["stage"], diagnosis["nhs_number"]) == ("C34.1", "2", "9990000018")
    assert diagnosis["sex"] == "M" and diagnosis["age"] == "72"  # born 1952-03-14, diagnosed 2024-04-26
    assert events["FHIR-Procedure-pr2:treatment"]["modality"] == "chemotherapy"  # OPCS-4 X72.3
    assert events["FHIR-Procedure-pr2:treatment"]["provider_code"] == "RL4"
    assert events["FHIR-Encounter-e2:emergency_admission"]["nhs_number"] == "9990000026"  # by subject.identifier
    problems = [r.problem for r in results if r.problem]
    assert [p.split(" ")[1] for p in problems] == [
        "verificationStatus",
        "subject.reference",
        "status",
        "category",
        "onsetDateTime",
        "resourceType",
    ]
    assert all("99900000" not in p for p in problems)


def test_bundle_reads_like_the_ndjson():
    from_bundle = [e for r in fhir.map_file(BUNDLE) for e in r.events]
    entries = json.loads(BUNDLE.read_text())["entry"]
    assert fhir.count_records(BUNDLE) == _non_patients([e["resource"] for e in entries])
    from_ndjson = {e["record_id"]: e for r in fhir.map_file(NDJSON) for e in r.events}
    assert from_bundle and all(from_ndjson[e["record_id"]] == e for e in from_bundle)


def test_a_reference_to_an_unknown_patient_is_rejected(tmp_path):
    path = tmp_path / "x.ndjson"
    resource = json.loads(NDJSON.read_text().splitlines()[3])  # sr1, refers to Patient/p1
    path.write_text(json.dumps(resource) + "\n" + "not json\n")
    results = list(fhir.map_file(path))
    assert fhir.count_records(path) == len(results) == 2
    assert "no Patient with that id earlier in the file" in results[0].problem
    assert results[1].problem.startswith("line: not JSON")


def test_round_trip_fhir_gives_the_same_measures(tmp_path):
    # FHIR carries no deprivation quintile (UK Core has no element for it), so equity_gap is not fed
    plain, imported, carried = round_trip(fhir, writer, "", tmp_path, ("equity_gap",))
    assert carried > 1000
    assert imported == plain


def test_example_through_the_driver_reconciles_and_stores_no_nhs_number(tmp_path):
    check_example(
        "fhir",
        NDJSON,
        tmp_path,
        [
            "9990000018",
            "9990000026",
            "9990000034",
            "9990000042",
            "9990000050",
            "9990000069",
            "9990000077",
            "9990000085",
        ],
    )


def test_ndjson_streams(tmp_path):
    """NDJSON is read line by line: memory grows with the patients, not with the resources."""
    import tracemalloc

    lines = NDJSON.read_text().splitlines()
    patient, referral = lines[0], lines[3]
    big = tmp_path / "big.ndjson"
    with open(big, "w") as handle:
        handle.write(patient + "\n")
        for n in range(3_000):
            handle.write(referral.replace('"id":"sr1"', f'"id":"sr{n}"') + "\n")
    list(fhir.map_file(NDJSON))  # the FHIR models build their validators on first use: not the file's cost
    tracemalloc.start()
    mapped = sum(1 for r in fhir.map_file(big) if r.events)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert mapped == 3_000 == fhir.count_records(big)
    assert peak < big.stat().st_size / 5, (peak, big.stat().st_size)


def test_a_broken_bundle_is_refused_whole(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"resourceType": "Bundle",\n "entry": [\n')
    with pytest.raises(fhir.FhirFileError, match="not valid JSON"):
        fhir.count_records(path)
    with pytest.raises(fhir.FhirFileError, match="not valid JSON"):
        list(fhir.map_file(path))


@pytest.mark.parametrize("status", ["confirmed", "refuted", "provisional", "unconfirmed", "entered-in-error", ""])
def test_every_verification_status_is_mapped_or_rejected_by_name(tmp_path, status):
    lines = NDJSON.read_text().splitlines()
    condition = json.loads(lines[5])
    condition["verificationStatus"]["coding"][0]["code"] = status
    path = tmp_path / "c.ndjson"
    path.write_text(lines[0] + "\n" + json.dumps(condition) + "\n")
    [result] = fhir.map_file(path)
    if status in ("confirmed", "refuted"):
        assert result.events[0]["event_type"] == {"confirmed": "diagnosis", "refuted": "cancer_ruled_out"}[status]
    else:
        assert result.problem and "verificationStatus" in result.problem
