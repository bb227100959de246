"""The service reads the store as at a date or submission (``?as_at=``), as the CLI's ``--as-at`` does.

Checked against the library's own as-at Run, and against the store growing after the answer: an
answer as at submission 1 never moves. The public is refused as-at reads (differencing two editions of
one period would reveal the records corrected in between).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carecontract.measures.cube import refresh
from carecontract.run import Run
from carecontract.service import Principal, Tokens, create_app
from carecontract.terms import load_terms
from carecontract.terms.targets import contract_targets, label_rows
from tests.conftest import CANCER_TERMS
from tests.test_versions import NHS, _pathway, submit

AUDITOR = {"Authorization": "Bearer t-audit-as-at"}
PERIOD = {"from": "2024-01-01", "to": "2024-12-31"}


@pytest.fixture
def grown(tmp_path: Path) -> tuple[Path, TestClient]:
    """A store of one submission, a client on it, and a second submission still to come."""
    submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    terms = load_terms(CANCER_TERMS)
    app = create_app(tmp_path / "store", [terms], Tokens({"t-audit-as-at": Principal("auditor")}), stress_runs=50)
    return tmp_path, TestClient(app)


def _measures(client: TestClient, **params: str) -> list[dict]:
    response = client.get("/api/contracts/staffordshire-cancer-care/measures", params=params, headers=AUDITOR)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_as_at_answer_is_the_librarys_and_does_not_move_when_data_arrives(grown) -> None:
    tmp_path, client = grown
    before = _measures(client, **PERIOD, as_at="1")
    submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20"))
    refresh(tmp_path / "store")  # as `carecontract ingest` does: the service's next request sees it
    contract = load_terms(CANCER_TERMS).contract
    expected = Run(tmp_path / "store", as_at="1").measures(
        date(2024, 1, 1), date(2024, 12, 31), targets=contract_targets(contract)
    )
    assert _measures(client, **PERIOD, as_at="1") == before == label_rows(expected, contract)
    now = _measures(client, **PERIOD)
    cwt_62 = {r["measure"]: r["denominator"] for r in now}["cwt_62"]
    assert cwt_62 == {r["measure"]: r["denominator"] for r in before}["cwt_62"] + 1 == 2  # the second pathway


def test_as_at_reaches_quality_and_accountability(grown) -> None:
    tmp_path, client = grown
    submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20"))
    refresh(tmp_path / "store")  # as `carecontract ingest` does: the service's next request sees it
    then = client.get("/api/quality", params={"as_at": "1"}, headers=AUDITOR).json()
    now = client.get("/api/quality", headers=AUDITOR).json()
    assert then["rows"]["accepted"] == 2 and now["rows"]["accepted"] == 4
    path = "/api/contracts/staffordshire-cancer-care/accountability"
    assert client.get(path, params={**PERIOD, "as_at": "1"}, headers=AUDITOR).status_code == 200


def test_an_unknown_as_at_is_a_422_that_names_no_server_path(grown) -> None:
    tmp_path, client = grown
    response = client.get(
        "/api/contracts/staffordshire-cancer-care/measures", params={"as_at": "nope"}, headers=AUDITOR
    )
    assert response.status_code == 422
    assert "nope" in response.text and str(tmp_path) not in response.text


def test_the_public_may_not_read_as_at(grown) -> None:
    _, client = grown
    for path in ("/api/contracts/staffordshire-cancer-care/measures", "/api/quality"):
        assert client.get(path, params={"as_at": "1"}).status_code == 403
