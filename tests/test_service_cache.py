"""The service's cache: fresh on the next request after a submission, a correction or a close; bounded.

Figures are computed once per store version (and as-at, and payment-book version) and answered from
that result (service/context.py, docs/service.md). Checked here against the library computing
afresh, by counts the test makes itself (calls, live objects, traced memory), never by the cache's
own counters.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import carecontract.api as cc
from carecontract.cli import app as cli
from carecontract.measures.compute import BREAKDOWNS
from carecontract.measures.cube import MeasureCube, refresh
from carecontract.payments.book import PaymentBook
from carecontract.publish.disclosure import PublicTables
from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.service import Principal, Tokens, create_app
from carecontract.service.context import Results, ServiceContext
from carecontract.terms import load_terms
from carecontract.terms.targets import contract_targets, label_rows
from tests.conftest import CANCER_TERMS, write_csv
from tests.spec.cases import Case, store_for
from tests.spec.test_measure_cases import CASES, FIGURES, _expectations, _matches, _period
from tests.test_versions import NHS, _pathway, submit

NAME = "staffordshire-cancer-care"
AUDITOR = {"Authorization": "Bearer t-audit-cache"}
TOKENS = Tokens({"t-audit-cache": Principal("auditor")})
PERIOD = {"from": "2024-01-01", "to": "2024-12-31"}


def _client(store: Path, **options: float) -> TestClient:
    return TestClient(create_app(store, [load_terms(CANCER_TERMS)], TOKENS, stress_runs=50, **options))


def _cwt_62(client: TestClient) -> tuple[int, int]:
    response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    assert response.status_code == 200, response.text
    row = next(r for r in response.json() if r["measure"] == "cwt_62")
    return row["numerator"], row["denominator"]


# -- fresh on the next request ----------------------------------------------------------------------


def _submit(tmp_path: Path, name: str, rows: list[dict[str, str]]) -> str:
    """A submission as the CLI and ``cc.ingest`` make it: committed, then its figures saved."""
    result = submit(tmp_path, name, rows)
    refresh(tmp_path / "store")
    return result.batch_id


def test_a_new_submission_and_a_correction_are_seen_by_the_next_request(tmp_path: Path) -> None:
    _submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))  # treated in 27 days
    client = _client(tmp_path / "store")
    assert _cwt_62(client) == (1, 1)
    assert _cwt_62(client) == (1, 1)  # from the cache
    _submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20"))
    assert _cwt_62(client) == (2, 2)  # the new pathway, at once
    late = [r | {"event_date": "2024-06-01"} for r in _pathway(NHS[1], "b", "2024-03-01", "2024-03-20")[1:]]
    _submit(tmp_path, "c.csv", late)  # a correction: b treated in 92 days, not 19
    assert _cwt_62(client) == (1, 2)
    quality = client.get("/api/quality", headers=AUDITOR).json()
    expected = json.loads(json.dumps(Run(tmp_path / "store").quality_report(), default=str))
    assert quality == expected  # the quality report is fresh too


def test_a_commit_through_the_cli_or_cc_is_seen_by_the_very_next_request(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    cc.ingest([first], tmp_path / "store")
    client = _client(tmp_path / "store")
    assert _cwt_62(client) == (1, 1)
    second = write_csv(tmp_path / "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20"))
    result = CliRunner().invoke(cli, ["ingest", str(second), "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    assert response.headers["x-carecontract-store-version"] == Store(tmp_path / "store").version()
    assert "x-carecontract-refreshing" not in response.headers
    assert _cwt_62(client) == (2, 2)


def test_a_commit_without_a_refresh_is_answered_from_the_last_version_until_ready(tmp_path: Path) -> None:
    """A writer that did not save the new figures: the service answers from the version it has, says
    so, makes the new one in the background and answers from it once made."""
    old = _submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    client = _client(tmp_path / "store")
    assert _cwt_62(client) == (1, 1)
    new = submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20")).batch_id
    response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    if "x-carecontract-refreshing" in response.headers:  # the usual case: the refresh takes a while
        assert response.headers["x-carecontract-store-version"] == old
        assert response.headers["x-carecontract-refreshing"] == new
        assert next(r for r in response.json() if r["measure"] == "cwt_62")["denominator"] == 1
    for _ in range(600):
        response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
        if response.headers["x-carecontract-store-version"] == new:
            break
        time.sleep(0.1)
    assert response.headers["x-carecontract-store-version"] == new
    assert "x-carecontract-refreshing" not in response.headers
    assert _cwt_62(client) == (2, 2)
    assert (tmp_path / "store" / "figures" / new / "figures.json").exists()  # saved for the next service


def test_a_writer_that_marks_its_figures_late_is_waited_for_not_raced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``carecontract ingest`` commits, then marks and makes the new version's figures. A request in
    between sees the new version with no marker: the service must wait for the writer rather than make
    the same figures itself (at 10M events both did, for minutes, and the first request after the
    writer finished was still answered from the old version), and the first request after the
    writer saved them must answer from the new version."""
    import carecontract.measures.cube as figures

    _submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    client = _client(tmp_path / "store")
    assert _cwt_62(client) == (1, 1)
    made_by: list[str] = []
    real = figures.compute

    def counting(root, version, nice=figures.NICE):
        made_by.append(threading.current_thread().name)
        return real(root, version, nice)

    monkeypatch.setattr(figures, "compute", counting)
    new = submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20")).batch_id
    response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    assert response.headers["x-carecontract-refreshing"] == new  # seen before any writer's marker
    time.sleep(0.5)  # the writer, a moment later: marks, makes and saves them
    refresh(tmp_path / "store")
    response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    assert response.headers["x-carecontract-store-version"] == new  # the very next request
    assert "x-carecontract-refreshing" not in response.headers
    assert _cwt_62(client) == (2, 2)
    time.sleep(0.5)  # a thread of the service's own, had it started, would have made them by now
    assert made_by == [threading.current_thread().name], made_by  # made once, by the writer


def test_one_response_never_mixes_two_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit landing between two reads of one request: the whole answer is the version it began with."""
    old = _submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    # the answer takes as long as the commit inside it: not to be counted slow (given stale after)
    client = _client(tmp_path / "store", slow_seconds=3600)
    client.get("/api/whoami")  # the first version made ready
    period = ServiceContext.period
    landed: list[str] = []

    def commit_between(self: ServiceContext, *args: object) -> tuple[date, date]:
        found = period(self, *args)  # read at the old version
        if not landed:
            landed.append(_submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20")))
        return found

    monkeypatch.setattr(ServiceContext, "period", commit_between)
    response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    assert landed and response.headers["x-carecontract-store-version"] == old
    assert next(r for r in response.json() if r["measure"] == "cwt_62")["denominator"] == 1
    assert _cwt_62(client) == (2, 2)  # the next request: the new version


def test_a_kept_answer_goes_to_its_own_role_only(paid_store: Path) -> None:
    """One URL asked by the public, an auditor and two commissioners: each gets what a service that
    keeps nothing gives them, whatever order they ask in; a forged token is still refused."""
    terms = load_terms(CANCER_TERMS)
    codes = [c.code for c in terms.contract.commissioners][:2]
    tokens = Tokens({"t-a": Principal("auditor"), **{f"t-{c}": Principal("commissioner", c) for c in codes}})
    heads: list[dict[str, str]] = [{}, {"Authorization": "Bearer t-a"}]
    heads += [{"Authorization": f"Bearer t-{c}"} for c in codes]
    url = f"/api/contracts/{NAME}/measures?from=2018-04-01&to=2019-03-31&by=provider"
    public = f"/api/contracts/{NAME}/measures?from=2018-04-01&to=2019-03-31"
    keeping = TestClient(create_app(paid_store, [terms], tokens, stress_runs=50))
    first = [keeping.get(url if h else public, headers=h).json() for h in heads]
    again = [keeping.get(url if h else public, headers=h).json() for h in reversed(heads)][::-1]
    fresh = TestClient(create_app(paid_store, [terms], tokens, stress_runs=50, answer_bytes=1))  # keeps no answer
    for i, h in enumerate(heads):
        expected = fresh.get(url if h else public, headers=h).json()
        assert first[i] == expected and again[i] == expected
    assert first[2] != first[3]  # the two commissioners' own rows differ
    assert keeping.get(public, headers={"Authorization": "Bearer forged"}).status_code == 401


@pytest.fixture
def unpaid(paid_store: Path, tmp_path: Path) -> Path:
    """A copy of the paid store with no closed period yet."""
    store = tmp_path / "store"
    shutil.copytree(paid_store, store, ignore=shutil.ignore_patterns("payments"))
    return store


def test_a_new_close_is_seen_by_the_next_request(unpaid: Path) -> None:
    terms = load_terms(CANCER_TERMS)
    client = _client(unpaid)

    def years() -> set[int]:
        response = client.get(f"/api/contracts/{NAME}/payments", headers=AUDITOR)
        assert response.status_code == 200, response.text
        return {r["year"] for r in response.json()["by_year_and_account"]}

    assert years() == set()
    PaymentBook(unpaid, terms).close([2017])
    assert years() == {2017}  # not the empty ledger cached before the close
    PaymentBook(unpaid, terms).close([2018, 2019])
    assert years() == {2017, 2018, 2019}
    entries = client.get(f"/api/contracts/{NAME}/payments", headers=AUDITOR).json()["entries"]
    assert entries == PaymentBook(unpaid, terms).paid_rows()


def test_accountability_follows_the_book_too(unpaid: Path) -> None:
    """Accountability reads payments from the book: a close must refresh it, though the store did not change."""
    terms = load_terms(CANCER_TERMS)
    client = _client(unpaid)
    params = {"from": "2017-04-01", "to": "2018-03-31"}

    def paid() -> float:
        response = client.get(f"/api/contracts/{NAME}/accountability", params=params, headers=AUDITOR)
        assert response.status_code == 200, response.text
        return sum(r["payment_received_gbp"] for r in response.json())

    before = paid()
    PaymentBook(unpaid, terms).close([2017])
    after = paid()
    assert before == 0 and after > 0


# -- answered from the measure cube, the same figures as the library ---------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.dates(date(2016, 1, 1), date(2020, 12, 31)),
    days=st.integers(0, 1500),
    by=st.lists(st.sampled_from(BREAKDOWNS), unique=True, max_size=4),
)
def test_the_cube_gives_the_librarys_figures_for_any_period_and_breakdown(
    paid_store: Path, start: date, days: int, by: list[str]
) -> None:
    run = _run(paid_store)
    cube = run.cached("test_cube", lambda: MeasureCube.build(run.sources(detail=True)))
    end = start + timedelta(days=days)
    assert cube.measures(start, end, by) == run.measures(start, end, by=by)


@pytest.mark.parametrize("case", CASES)
def test_the_cube_answers_every_worked_measure_example(case: Case, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The hand-worked examples of tests/spec/measures, answered from the cube as the service does."""
    store = store_for(case, tmp_path_factory)
    start, end = _period(case)
    cube = MeasureCube.build(Run(store).sources(detail=True))
    for by, expectations in _expectations(case).items():
        rows = cube.measures(start, end, by, only=sorted({e["measure"] for e in expectations}))
        for expected in expectations:
            found = [r for r in rows if _matches(r, expected)]
            assert len(found) == 1, f"{case.id}: no single row for {expected} in {rows}"
            actual = {k: found[0][k] for k in FIGURES if k in expected}
            wanted = {k: pytest.approx(v, abs=1e-9) if k == "rate" else v for k, v in expected.items() if k in FIGURES}
            assert actual == wanted, f"{case.id}: {expected['measure']} {expected.get('by') or ''}"


_RUNS: dict[Path, Run] = {}


def _run(store: Path) -> Run:
    """One Run per store for the property test (its examples share the engine's tables)."""
    return _RUNS.setdefault(store, Run(store))


def test_the_public_sees_the_same_protected_tables_as_before(paid_store: Path) -> None:
    """Disclosure control is applied to the cube's figures exactly as to the engine's."""
    contract = load_terms(CANCER_TERMS).contract
    client = _client(paid_store)
    period = (date(2018, 4, 1), date(2019, 3, 31))
    rows = Run(paid_store).measures(*period, by=BREAKDOWNS, targets=contract_targets(contract))
    tables = PublicTables(label_rows(rows, contract), BREAKDOWNS)
    for by in ([], ["commissioner"], ["provider", "tumour_site"]):
        params = {"from": "2018-04-01", "to": "2019-03-31", "by": by}
        served = client.get(f"/api/contracts/{NAME}/measures", params=params).json()
        assert served == label_rows(tables.rows(by), contract)


# -- bounded -----------------------------------------------------------------------------------------


def _windows(n: int) -> list[dict[str, str]]:
    first = date(2017, 4, 1)
    by = ["commissioner", "provider"]  # a result of some size, so what is held shows above the noise
    return [
        {"from": str(first + timedelta(days=i)), "to": str(first + timedelta(days=400 + i)), "by": by} for i in range(n)
    ]


def _growth(store: Path, cache_size: int, warm: int, more: int) -> int:
    """Bytes held after ``warm + more`` distinct windows beyond those held after ``warm`` (traced from
    the first window on, so a result dropped from the cache counts as freed)."""
    client = _client(store, cache_size=cache_size, answer_bytes=1 if cache_size < 100 else 2**30)
    windows = _windows(1 + warm + more)

    def ask(params: dict[str, object]) -> None:
        assert client.get(f"/api/contracts/{NAME}/measures", params=params, headers=AUDITOR).status_code == 200

    ask(windows[0])  # the snapshot and its measure cube, made once
    tracemalloc.start()
    try:
        for params in windows[1 : 1 + warm]:
            ask(params)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for params in windows[1 + warm :]:
            ask(params)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_over_many_distinct_windows(paid_store: Path) -> None:
    """With room for 8 results, 40 more distinct windows hold no more memory than the 8 they replace;
    with room for all (the same measurement), they hold them all: the measurement can see growth."""
    bounded = _growth(paid_store, cache_size=8, warm=10, more=40)
    unbounded = _growth(paid_store, cache_size=10_000, warm=10, more=40)
    assert unbounded > 10 * max(bounded, 50_000), (bounded, unbounded)


def test_snapshots_are_bounded_over_many_as_at_dates(tmp_path: Path) -> None:
    _submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    client = _client(tmp_path / "store", snapshots=3)
    before = _live_cubes()  # other tests' services may still be alive
    for day in range(12):  # twelve as-at dates, each its own snapshot and measure cube
        at = str(date.today() + timedelta(days=day))  # each after the submission
        response = client.get(f"/api/contracts/{NAME}/measures", params={**PERIOD, "as_at": at}, headers=AUDITOR)
        assert response.status_code == 200, response.text
    assert _live_cubes() - before <= 3


def _live_cubes() -> int:
    gc.collect()
    return sum(isinstance(o, MeasureCube) for o in gc.get_objects())


def test_a_burst_for_one_figure_computes_it_once() -> None:
    results, calls, gate = Results(4), [], threading.Event()

    def make() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    threads = [threading.Thread(target=lambda: results.get(("k", None), make)) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results.get(("k", None), lambda: 0) == 42


def test_a_failed_computation_is_not_kept() -> None:
    results = Results(4)

    def fail() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError):
        results.get("k", fail)
    assert results.get("k", lambda: 7) == 7


def test_the_oldest_result_goes_first() -> None:
    results = Results(2)
    results.get("a", lambda: 1)
    results.get("b", lambda: 2)
    results.get("a", lambda: 0)  # a used again: b is now the oldest
    results.get("c", lambda: 3)
    assert results.get("a", lambda: -1) == 1 and results.get("b", lambda: -2) == -2


def test_a_bad_cache_size_setting_is_one_line(monkeypatch: pytest.MonkeyPatch, paid_store: Path) -> None:
    from carecontract.errors import UserError

    monkeypatch.setenv("CARECONTRACT_SERVICE_CACHE_SIZE", "lots")
    with pytest.raises(UserError, match="CARECONTRACT_SERVICE_CACHE_SIZE"):
        ServiceContext(Store(paid_store), [load_terms(CANCER_TERMS)])


def test_a_writer_making_the_figures_is_waited_for_not_repeated(tmp_path: Path) -> None:
    """While the committing command makes the new figures (its marker, its process alive), the
    service answers from the last version and makes nothing itself; once they are saved, the next
    request answers from them. A dead writer's marker is ignored: the service makes them."""
    _submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    client = _client(tmp_path / "store")
    ctx = client.app.state.context
    assert _cwt_62(client) == (1, 1)
    new = submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20")).batch_id
    marker = tmp_path / "store" / "figures" / f".{new}.building"
    marker.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))  # a live writer
    assert _cwt_62(client) == (1, 1) and ctx.refreshing is None  # the old version; nothing made here
    marker.unlink()
    refresh(tmp_path / "store")
    assert _cwt_62(client) == (2, 2)
    newer = submit(tmp_path, "c.csv", _pathway(NHS[2], "c", "2024-04-01", "2024-04-20")).batch_id
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "store" / "figures" / f".{newer}.building").write_text(
        json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename})
    )
    client.get("/api/whoami")
    for _ in range(600):
        if ctx.ready == newer:
            break
        time.sleep(0.1)
    assert _cwt_62(client) == (3, 3)


def test_a_slow_answer_is_given_from_the_last_version_while_the_new_one_is_made(tmp_path: Path) -> None:
    """Every answer counted slow (``slow_seconds=0``): after a new submission, an answer given before
    comes from the last version, saying so, while the new one is made once in the background; then
    the new one. An answer never asked for before is computed in the request."""
    old = _submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    app = create_app(tmp_path / "store", [load_terms(CANCER_TERMS)], TOKENS, stress_runs=50, slow_seconds=0)
    with TestClient(app) as client:  # one event loop for the whole test, as a server has
        assert _cwt_62(client) == (1, 1)
        new = _submit(tmp_path, "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20"))
        response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
        assert response.headers["x-carecontract-store-version"] == old
        assert response.headers["x-carecontract-refreshing"] == new
        assert next(r for r in response.json() if r["measure"] == "cwt_62")["denominator"] == 1
        other = client.get(f"/api/contracts/{NAME}/measures", params={**PERIOD, "by": "provider"}, headers=AUDITOR)
        assert other.headers["x-carecontract-store-version"] == new  # not asked before: made now
        for _ in range(600):
            response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
            if response.headers["x-carecontract-store-version"] == new:
                break
            time.sleep(0.05)
        assert "x-carecontract-refreshing" not in response.headers
        assert _cwt_62(client) == (2, 2)


def test_accountability_is_the_librarys(paid_store: Path) -> None:
    """Its outcomes come from the measure cube in the service: the same rows as the library's own."""
    from carecontract.baseline.accountability import accountability

    terms = load_terms(CANCER_TERMS)
    client = _client(paid_store)
    params = {"from": "2018-04-01", "to": "2019-03-31"}
    served = client.get(f"/api/contracts/{NAME}/accountability", params=params, headers=AUDITOR)
    assert served.status_code == 200, served.text
    expected = accountability(Run(paid_store, terms), terms, date(2018, 4, 1), date(2019, 3, 31))
    assert served.json() == json.loads(json.dumps(expected, default=str))
    assert any(r["outcomes"] for r in expected)


def test_the_first_submission_to_an_empty_store_is_answered_at_once(tmp_path: Path) -> None:
    """No figures to answer from meanwhile: the first version's are made in the request."""
    (tmp_path / "store").mkdir()
    client = _client(tmp_path / "store")
    empty = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    assert empty.status_code == 409 and empty.headers["x-carecontract-store-version"] == "none"
    first = submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01")).batch_id  # no refresh
    response = client.get(f"/api/contracts/{NAME}/measures", params=PERIOD, headers=AUDITOR)
    assert response.headers["x-carecontract-store-version"] == first
    assert "x-carecontract-refreshing" not in response.headers
    assert _cwt_62(client) == (1, 1)


def test_cc_ingest_saves_the_figures_unless_told_not_to(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cc.ingest([write_csv(tmp_path / "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))], store, refresh=False)
    assert not (store / "figures").exists()
    cc.ingest([write_csv(tmp_path / "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20"))], store)
    assert (store / "figures" / Store(store).version() / "figures.json").exists()


def test_ingest_saves_the_new_versions_figures_unless_told_not_to(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = write_csv(tmp_path / "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    result = CliRunner().invoke(cli, ["ingest", str(first), "--store", str(store), "--no-refresh"])
    assert result.exit_code == 0, result.output
    assert not (store / "figures").exists()
    second = write_csv(tmp_path / "b.csv", _pathway(NHS[1], "b", "2024-03-01", "2024-03-20"))
    result = CliRunner().invoke(cli, ["ingest", str(second), "--store", str(store)])
    assert result.exit_code == 0, result.output
    saved = sorted(p.name for p in (store / "figures").iterdir())
    assert saved == [Store(store).version()]
    assert oct((store / "figures" / saved[0]).stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in (store / "figures" / saved[0]).iterdir()} == {"0o600"}
