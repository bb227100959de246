"""The Stage 1 → Stage 2 gate, evaluated from the store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from carecontract.records.ingest import ingest
from carecontract.terms import load_terms
from carecontract.terms.gate import evaluate_gate
from tests.conftest import VALID_ROW, write_csv

CANCER = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"
PERIOD = (date(2024, 1, 1), date(2024, 12, 31))


def _store(tmp_path: Path, scores: list[int], bad_rows: int = 0) -> Path:
    rows = [
        {**VALID_ROW, "record_id": f"s{i}", "event_type": "patient_experience", "score": str(s), "referral_route": ""}
        for i, s in enumerate(scores)
    ]
    rows += [{**VALID_ROW, "record_id": f"bad{i}", "stage": "9"} for i in range(bad_rows)]
    ingest([write_csv(tmp_path / "in.csv", rows)], tmp_path / "store", as_of=date(2025, 6, 1))
    return tmp_path / "store"


def _contract(tmp_path: Path, gate: dict) -> object:
    data = yaml.safe_load(CANCER.read_text())
    data["stages"][0]["gate"] = gate
    path = tmp_path / "terms.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_terms(path).contract


def test_gate_passes_when_every_aim_is_met(tmp_path: Path) -> None:
    contract = _contract(tmp_path, {"data_validity": 0.9, "measures": {"patient_experience": 8.5}})
    result = evaluate_gate(contract, _store(tmp_path, [9, 9, 8]), *PERIOD)
    assert result["passed"] is True
    values = {c["name"]: c["value"] for c in result["criteria"]}
    assert values == {"data_validity": 1.0, "patient_experience": pytest.approx(26 / 3)}


def test_gate_fails_on_any_aim_and_says_which(tmp_path: Path) -> None:
    contract = _contract(tmp_path, {"data_validity": 0.9, "measures": {"patient_experience": 8.5}})
    result = evaluate_gate(contract, _store(tmp_path, [9, 9, 8, 9], bad_rows=1), *PERIOD)  # validity 4/5
    assert result["passed"] is False
    verdicts = {c["name"]: c["passed"] for c in result["criteria"]}
    assert verdicts == {"data_validity": False, "patient_experience": True}


def test_a_lower_is_better_aim_and_a_missing_measure(tmp_path: Path) -> None:
    contract = _contract(tmp_path, {"measures": {"emergency_presentation": 0.2}})
    result = evaluate_gate(contract, _store(tmp_path, [9]), *PERIOD)
    (criterion,) = result["criteria"]
    assert criterion["direction"] == "at most"
    assert criterion["value"] is None and criterion["passed"] is False  # nothing measured: not passed


def test_contract_without_fee_stage_has_no_gate(tmp_path: Path) -> None:
    contract = load_terms(Path(__file__).parent.parent / "contracts" / "unitingcare.yaml").contract
    with pytest.raises(ValueError, match="no fee stage"):
        evaluate_gate(contract, _store(tmp_path, [9]), *PERIOD)


def test_gate_from_the_command_line(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    store = _store(tmp_path, [9, 9])
    args = ["terms", "gate", str(CANCER), "--store", str(store), "--from", "2024-01-01", "--to", "2024-12-31"]
    proc = subprocess.run([sys.executable, "-m", "carecontract.cli", *args, "--json"], capture_output=True, text=True)
    result = json.loads(proc.stdout)
    assert result["stage"] == "stage1" and result["fingerprint"]
    assert {c["name"] for c in result["criteria"]} == {
        "data_completeness",
        "data_validity",
        "patient_experience",
        "equity_gap",
    }


def test_a_run_is_evidence_and_measures_the_store_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carecontract import run as run_module
    from carecontract.run import Run
    from carecontract.terms.gate import Evidence, judge_gate

    contract = _contract(tmp_path, {"data_validity": 0.9, "measures": {"patient_experience": 8.5}})
    store = _store(tmp_path, [9, 9, 8])
    expected = evaluate_gate(contract, store, *PERIOD)
    calls: list[str] = []
    for name in ("compute_measures", "quality"):
        real = getattr(run_module, name)
        monkeypatch.setattr(
            run_module, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k)
        )
    run = Run(store)
    assert isinstance(run, Evidence)
    assert evaluate_gate(contract, run, *PERIOD) == evaluate_gate(contract, run, *PERIOD) == expected
    assert sorted(calls) == ["compute_measures", "quality"]  # each once, however often the gate is asked
    # the judgement alone is pure: values in, verdict out
    report = {"columns": [], "rows": {"read": 10, "accepted": 10}}
    verdict = judge_gate(contract, *PERIOD, {"patient_experience": 8.0}, report)
    assert [c["passed"] for c in verdict["criteria"]] == [True, False] and verdict["passed"] is False


# -- the gate's data quality is the period's, in one version of the store -------------------------
def test_data_quality_is_measured_over_the_period_not_the_store(tmp_path: Path) -> None:
    contract = _contract(tmp_path, {"data_validity": 0.9, "data_completeness": 0.5})
    rows = [{**VALID_ROW, "record_id": f"ok{i}"} for i in range(3)]
    rows += [{**VALID_ROW, "record_id": f"bad{i}", "stage": "9", "event_date": "2023-05-01"} for i in range(3)]
    ingest([write_csv(tmp_path / "in.csv", rows)], tmp_path / "store", as_of=date(2025, 6, 1))
    in_2024 = evaluate_gate(contract, tmp_path / "store", *PERIOD)  # the bad rows are dated 2023
    assert {c["name"]: c["value"] for c in in_2024["criteria"]}["data_validity"] == 1.0
    assert in_2024["evidence"]["rows"] == {"read": 3, "accepted": 3, "quarantined": 0}
    in_2023 = evaluate_gate(contract, tmp_path / "store", date(2023, 1, 1), date(2023, 12, 31))
    assert {c["name"]: c["value"] for c in in_2023["criteria"]}["data_validity"] == 0.0


def test_a_period_with_no_data_does_not_pass(tmp_path: Path) -> None:
    contract = _contract(tmp_path, {"data_validity": 0.9, "data_completeness": 0.5})
    store = _store(tmp_path, [9, 9])  # dated 2024
    result = evaluate_gate(contract, store, date(2019, 1, 1), date(2019, 12, 31))
    assert result["passed"] is False
    assert all(c["value"] is None and not c["passed"] for c in result["criteria"])


def test_undated_rows_count_in_every_period(tmp_path: Path) -> None:
    """A row whose date cannot be read cannot be placed, so it lowers validity wherever it might belong."""
    contract = _contract(tmp_path, {"data_validity": 0.5})
    rows = [VALID_ROW, {**VALID_ROW, "record_id": "undated", "event_date": "31/02/2024"}]
    ingest([write_csv(tmp_path / "in.csv", rows)], tmp_path / "store", as_of=date(2025, 6, 1))
    (criterion,) = evaluate_gate(contract, tmp_path / "store", *PERIOD)["criteria"]
    assert criterion["value"] == 0.5


def test_the_gate_as_at_an_earlier_submission(tmp_path: Path) -> None:
    from carecontract.run import Run

    contract = _contract(tmp_path, {"data_validity": 0.9})
    first = ingest(
        [write_csv(tmp_path / "a.csv", [VALID_ROW, {**VALID_ROW, "record_id": "x", "stage": "9"}])],
        tmp_path / "store",
        as_of=date(2025, 6, 1),
    )
    ingest(  # the bad row corrected
        [write_csv(tmp_path / "b.csv", [{**VALID_ROW, "record_id": "x", "stage": "2"}])],
        tmp_path / "store",
        as_of=date(2025, 6, 1),
    )
    then = evaluate_gate(contract, Run(tmp_path / "store", as_at=first.batch_id), *PERIOD)
    now = evaluate_gate(contract, Run(tmp_path / "store"), *PERIOD)
    assert (then["passed"], now["passed"]) == (False, True)
    assert then["evidence"]["version"] == first.batch_id and then["evidence"]["as_at"] == first.batch_id
