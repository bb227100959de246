"""The versioned store: submissions, corrections, withdrawals, as-at reads and arrival order.

Counts are checked against what the test itself wrote (lines of the file, the record ids it chose),
never against the numbers the ingest reports about itself.
"""

from __future__ import annotations

import csv
import itertools
import json
import multiprocessing
import os
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecontract.records.history import record_history, submissions
from carecontract.records.ingest import ingest
from carecontract.records.store import Store, StoreError
from carecontract.run import Run
from carecontract.terms.targets import label_rows
from tests.conftest import VALID_ROW, write_csv

AS_OF = date(2026, 1, 1)
NHS = ["9434765919", "4010232137", "9990001200"]  # valid check digits (the first is the NHS's own example)
TREATMENT = {**VALID_ROW, "event_type": "treatment", "modality": "surgery", "referral_route": ""}


def submit(tmp_path: Path, name: str, rows: list[dict[str, str]], store: str = "store"):
    return ingest([write_csv(tmp_path / name, rows)], tmp_path / store, as_of=AS_OF)


def events(store: Path, as_at: object = None) -> dict[str, tuple]:
    con = Store(store, as_at).connect()  # type: ignore[arg-type]
    rows = con.execute("SELECT record_id, event_date, event_type, provider_code, stage FROM events").fetchall()
    return {r[0]: r[1:] for r in rows}


def open_quarantine(store: Path, as_at: object = None) -> list[tuple]:
    con = Store(store, as_at).connect()  # type: ignore[arg-type]
    return sorted(con.execute("SELECT trim(record_id), reasons FROM quarantine").fetchall(), key=str)


def lines_in(path: Path) -> int:
    """Records in a CSV file, counted by the test: its physical lines less the header."""
    return len(path.read_bytes().splitlines()) - 1


# -- submissions ----------------------------------------------------------------------------------
def test_a_correction_supersedes_the_earlier_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    submit(tmp_path, "a.csv", [VALID_ROW, {**VALID_ROW, "record_id": "r2"}])
    result = submit(tmp_path, "b.csv", [{**VALID_ROW, "event_date": "2024-02-01"}, {**VALID_ROW, "record_id": "r2"}])
    assert (result.counts["corrected"], result.counts["unchanged"]) == (1, 1)
    assert events(store)["r1"][0] == date(2024, 2, 1)
    assert len(events(store)) == 2  # a correction replaces, it does not add
    statuses = [v["status"] for v in record_history(Store(store), "r1")]
    assert statuses == ["superseded", "current"]


def test_counts_reconcile_with_the_files_own_lines(tmp_path: Path) -> None:
    submit(tmp_path, "a.csv", [VALID_ROW, {**VALID_ROW, "record_id": "r2"}, {**VALID_ROW, "record_id": "r3"}])
    rows = [
        {**VALID_ROW, "event_date": "2024-02-01"},  # corrected
        {**VALID_ROW, "record_id": "r2"},  # unchanged
        {"record_id": "r3", "provider_code": "RJE", "action": "withdraw"},  # withdrawn
        {**VALID_ROW, "record_id": "r4"},  # new
        {**VALID_ROW, "record_id": "r5", "stage": "9"},  # rejected
        {"record_id": "zz", "provider_code": "RJE", "action": "withdraw"},  # nothing to withdraw
    ]
    path = write_csv(tmp_path / "b.csv", rows)
    result = ingest([path], tmp_path / "store", as_of=AS_OF)
    c = result.counts
    assert (c["new"], c["corrected"], c["withdrawn"], c["unchanged"]) == (1, 1, 1, 1)
    assert lines_in(path) == len(rows) == result.read
    assert result.read == c["new"] + c["corrected"] + c["withdrawn"] + c["unchanged"] + result.quarantined
    assert result.reasons == {"invalid_stage": 1, "nothing_to_withdraw": 1}
    assert set(events(tmp_path / "store")) == {"r1", "r2", "r4"}  # r3 withdrawn


def test_a_withdrawal_removes_the_record_and_history_says_who(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = submit(tmp_path, "a.csv", [VALID_ROW])
    second = submit(tmp_path, "b.csv", [{"record_id": "r1", "provider_code": "RJE", "action": "Withdraw "}])
    assert second.counts["withdrawn"] == 1 and events(store) == {}
    history = record_history(Store(store), "r1")
    assert [(h["submission"], h["status"]) for h in history] == [
        (first.batch_id, "withdrawn"),
        (second.batch_id, "withdrawal"),
    ]
    assert events(store, first.batch_id) == {"r1": (date(2024, 1, 5), "referral", "RJE", None)}


def test_another_provider_reusing_a_record_id_is_an_error(tmp_path: Path) -> None:
    submit(tmp_path, "a.csv", [VALID_ROW])
    result = submit(tmp_path, "b.csv", [{**VALID_ROW, "provider_code": "RXW", "event_date": "2024-03-03"}])
    assert result.reasons == {"record_id_of_other_provider": 1} and result.accepted == 0
    assert events(tmp_path / "store")["r1"][2] == "RJE"
    withdraw = submit(tmp_path, "c.csv", [{"record_id": "r1", "provider_code": "RXW", "action": "withdraw"}])
    assert withdraw.reasons == {"record_id_of_other_provider": 1}


def test_a_quarantined_row_resubmitted_correctly_leaves_the_open_list(tmp_path: Path) -> None:
    store = tmp_path / "store"
    submit(tmp_path, "a.csv", [{**VALID_ROW, "stage": "9"}, {**VALID_ROW, "record_id": "r2", "stage": "8"}])
    assert [r for r, _ in open_quarantine(store)] == ["r1", "r2"]
    submit(tmp_path, "b.csv", [{**VALID_ROW, "stage": "2"}])
    assert [r for r, _ in open_quarantine(store)] == ["r2"]
    assert "r1" in events(store)
    report = Run(store).quality_report()
    assert report["rows"] == {"read": 2, "accepted": 1, "quarantined": 1}


def test_an_identical_file_is_a_no_op_from_the_command_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [VALID_ROW])
    cmd = [sys.executable, "-m", "carecontract.cli", "ingest", str(path), "--store", str(tmp_path / "s")]
    env = {**os.environ, "CARECONTRACT_KEY": "k" * 32}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    manifest = (tmp_path / "s" / "manifest.json").read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, env={**env, "COLUMNS": "200"})
    assert again.returncode == 0
    assert "already submitted" in again.stdout and "Nothing to do" in again.stdout
    assert (tmp_path / "s" / "manifest.json").read_bytes() == manifest


def test_history_and_submissions_never_show_an_nhs_number(tmp_path: Path) -> None:
    store = tmp_path / "store"
    submit(tmp_path, "a.csv", [{**VALID_ROW, "nhs_number": "9434765918"}, {**VALID_ROW, "record_id": "r2"}])
    submit(tmp_path, "b.csv", [VALID_ROW])
    env = {**os.environ, "CARECONTRACT_KEY": "test-key-" + "0" * 32, "COLUMNS": "250"}
    for args in (["history", "--record", "r1"], ["submissions"], ["history", "--record", "r1", "--json"]):
        cmd = [sys.executable, "-m", "carecontract.cli", *args, "--store", str(store)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
        assert "9434765918" not in out and "9434765919" not in out
    rows = submissions(Store(store))
    assert [(r["read"], r["new"], r["quarantined"]) for r in rows] == [(2, 1, 1), (1, 1, 0)]


def test_store_files_with_patient_rows_are_private(tmp_path: Path) -> None:
    submit(tmp_path, "a.csv", [VALID_ROW, {**VALID_ROW, "record_id": "x", "stage": "9"}])
    for folder in ("events", "quarantine", "state"):
        assert stat.S_IMODE((tmp_path / "store" / folder).stat().st_mode) == 0o700
        for f in (tmp_path / "store" / folder).iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


# -- as-at ---------------------------------------------------------------------------------------
def test_as_at_a_date_and_a_submission(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = submit(tmp_path, "a.csv", [VALID_ROW])
    submit(tmp_path, "b.csv", [{**VALID_ROW, "record_id": "r2"}])
    assert set(events(store, first.batch_id)) == {"r1"}
    assert set(events(store, date.today())) == {"r1", "r2"}
    assert events(store, date(2000, 1, 1)) == {}
    assert Run(store, as_at=first.batch_id).event_range() == (date(2024, 1, 5), date(2024, 1, 5))


def test_an_unknown_submission_is_one_line(tmp_path: Path) -> None:
    submit(tmp_path, "a.csv", [VALID_ROW])
    proc = subprocess.run(
        [sys.executable, "-m", "carecontract.cli", "quality", "--store", str(tmp_path / "store"), "--as-at", "nope"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nope" in proc.stderr


def _pathway(patient: str, prefix: str, first: str, second: str) -> list[dict[str, str]]:
    return [
        {**VALID_ROW, "record_id": f"{prefix}ref", "nhs_number": patient, "event_date": first},
        {**TREATMENT, "record_id": f"{prefix}tx", "nhs_number": patient, "event_date": second},
    ]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    later=st.lists(
        st.sampled_from(["correct", "withdraw", "new", "bad", "referral"]), min_size=1, max_size=3, unique=True
    )
)
def test_two_reads_at_one_as_at_agree_whatever_came_after(tmp_path_factory, later: list[str]) -> None:
    tmp = tmp_path_factory.mktemp("asat")
    store = tmp / "store"
    first = submit(tmp, "a.csv", [*_pathway(NHS[0], "a", "2024-01-05", "2024-02-01"), {**VALID_ROW, "stage": "9"}])
    start, end = date(2023, 1, 1), date(2024, 12, 31)

    def figures() -> tuple:
        run = Run(store, as_at=first.batch_id)
        return events(store, first.batch_id), open_quarantine(store, first.batch_id), run.measures(start, end)

    before = figures()
    changes = {
        "correct": [{**VALID_ROW, "record_id": "aref", "nhs_number": NHS[0], "event_date": "2024-03-01"}],
        "withdraw": [{"record_id": "atx", "provider_code": "RJE", "action": "withdraw"}],
        "new": _pathway(NHS[1], "b", "2024-01-05", "2024-02-01"),
        "bad": [{**VALID_ROW, "stage": "2"}],
        "referral": [{**VALID_ROW, "record_id": "early", "nhs_number": NHS[0], "event_date": "2023-06-01"}],
    }
    for i, change in enumerate(later):
        submit(tmp, f"later{i}.csv", changes[change])
    assert figures() == before


# -- arrival order --------------------------------------------------------------------------------
#: Small submissions whose cross-row rules depend on each other: a treatment before a referral that
#: arrives later, a late first referral that puts an earlier-accepted event on hold, a death that
#: holds a later event, a row that fails a row rule. Record ids are unique across submissions.
SUBMISSIONS = {
    "tx": [
        {**TREATMENT, "record_id": "tx1", "nhs_number": NHS[0], "event_date": "2024-02-01"},
        {**TREATMENT, "record_id": "tx2", "nhs_number": NHS[1], "event_date": "2024-01-10"},
    ],
    "ref": [
        {**VALID_ROW, "record_id": "ref1", "nhs_number": NHS[0], "event_date": "2024-01-15"},
        {**VALID_ROW, "record_id": "ref2", "nhs_number": NHS[1], "event_date": "2024-03-01"},
    ],
    "early": [
        {**VALID_ROW, "record_id": "ref0", "nhs_number": NHS[1], "event_date": "2023-12-01"},
        {**VALID_ROW, "record_id": "bad", "stage": "9", "nhs_number": NHS[2]},
    ],
    "death": [
        {
            **VALID_ROW,
            "record_id": "d1",
            "nhs_number": NHS[0],
            "event_type": "death",
            "event_date": "2024-01-20",
            "place_of_death": "home",
            "referral_route": "",
        }
    ],
}


def _final_state(tmp: Path, order: tuple[str, ...]) -> tuple:
    store = tmp / "-".join(order)
    for name in order:
        submit(tmp, f"{'-'.join(order)}-{name}.csv", SUBMISSIONS[name], store=store.name)
    return events(store), open_quarantine(store)


def test_the_final_store_is_the_same_in_every_order(tmp_path: Path) -> None:
    states = {order: _final_state(tmp_path, order) for order in itertools.permutations(SUBMISSIONS)}
    reference = next(iter(states.values()))
    # computed by hand: tx2 (2024-01-10) is after NHS[1]'s first referral ref0 (2023-12-01); tx1
    # (2024-02-01) is after the death d1 (2024-01-20); bad fails a row rule
    assert set(reference[0]) == {"tx2", "ref1", "ref2", "ref0", "d1"}
    assert reference[1] == [("bad", ["invalid_stage"]), ("tx1", ["after_death"])]
    assert all(state == reference for state in states.values())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(SUBMISSIONS)), split=st.integers(0, 3))
def test_arrival_order_does_not_matter_even_in_one_submission(tmp_path_factory, order: list[str], split: int) -> None:
    """The same rows, some submitted together, in any order: one final store."""
    tmp = tmp_path_factory.mktemp("order")
    together = [row for name in order[: split + 1] for row in SUBMISSIONS[name]]
    submit(tmp, "together.csv", together)
    for name in order[split + 1 :]:
        submit(tmp, f"{name}.csv", SUBMISSIONS[name])
    expected = {"tx2", "ref1", "ref2", "ref0", "d1"}
    assert set(events(tmp / "store")) == expected
    assert open_quarantine(tmp / "store") == [("bad", ["invalid_stage"]), ("tx1", ["after_death"])]


# -- concurrency --------------------------------------------------------------------------------
def _ingest_one(path: str, store: str) -> None:
    os.environ["CARECONTRACT_KEY"] = "test-key-" + "0" * 32
    ingest([path], store, as_of=AS_OF)


def test_two_concurrent_ingests_both_land(tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        rows = [{**VALID_ROW, "record_id": f"p{i}-{j}"} for j in range(200)]
        paths.append(str(write_csv(tmp_path / f"{i}.csv", rows)))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_ingest_one, args=(p, str(tmp_path / "store"))) for p in paths]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(events(tmp_path / "store")) == 400
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert len(manifest["batches"]) == 2


def test_withdrawal_file_with_the_whole_header(tmp_path: Path) -> None:
    """A withdrawal needs only record_id and provider_code filled; the file keeps the usual header."""
    submit(tmp_path, "a.csv", [VALID_ROW])
    path = tmp_path / "w.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["record_id", "nhs_number", "event_date", "event_type", "provider_code", "commissioner_code", "action"]
        )
        writer.writerow(["r1", "", "", "", "RJE", "", "withdraw"])
    result = ingest([path], tmp_path / "store", as_of=AS_OF)
    assert result.counts["withdrawn"] == 1 and events(tmp_path / "store") == {}


def test_a_withdrawal_with_a_bad_nhs_number_is_rejected(tmp_path: Path) -> None:
    submit(tmp_path, "a.csv", [VALID_ROW])
    result = submit(
        tmp_path, "b.csv", [{"record_id": "r1", "provider_code": "RJE", "action": "withdraw", "nhs_number": "123"}]
    )
    assert result.reasons == {"invalid_nhs_number": 1} and "r1" in events(tmp_path / "store")


@pytest.mark.parametrize("action", ["delete", "remove"])
def test_an_unknown_action_is_quarantined(tmp_path: Path, action: str) -> None:
    result = submit(tmp_path, "a.csv", [{**VALID_ROW, "action": action}])
    assert result.reasons == {"invalid_action": 1}


# -- payments close on a frozen view ---------------------------------------------------------------
def test_a_close_records_its_view_and_a_reclose_after_corrections_is_a_new_version(tmp_path: Path) -> None:
    import duckdb

    from carecontract.payments.book import PaymentBook
    from carecontract.payments.close import close_periods
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy
    from carecontract.terms import load_terms

    terms = load_terms(Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml")
    files = write_economy(generate(5_000, 1, seed=3, start=date(2017, 4, 1)), tmp_path / "data")
    store = tmp_path / "store"
    first = ingest(files, store, as_of=AS_OF)
    v1 = close_periods(terms, store, [2017]).periods[0]
    assert (v1["version"], v1["store_version"], v1["as_at"]) == (1, first.batch_id, None)
    # a month of corrections: the provider withdraws a fifth of its treatments
    treatments = (
        duckdb.connect()
        .sql(  # its own connection: the module's default is shared by every test
            f"SELECT record_id, provider_code FROM '{files[0]}' WHERE event_type = 'treatment'"
        )
        .fetchall()
    )
    withdrawals = [{"record_id": r, "provider_code": p, "action": "withdraw"} for r, p in treatments[::5]]
    second = submit(tmp_path, "corrections.csv", withdrawals)
    assert second.counts["withdrawn"] == len(withdrawals)
    v2 = close_periods(terms, store, [2017]).periods[0]
    assert (v2["version"], v2["store_version"]) == (2, second.batch_id)
    changed = {
        a for a in set(v1["by_account"]) | set(v2["by_account"]) if v1["by_account"].get(a) != v2["by_account"].get(a)
    }
    assert set(v2["diff"] or {}) == changed
    # the frozen view reproduces the first close exactly; an unchanged view closes nothing new
    again = close_periods(terms, store, [2017], as_at=first.batch_id).periods[0]
    assert again["by_account"] == v1["by_account"] and again["as_at"] == first.batch_id
    assert close_periods(terms, store, [2017], as_at=first.batch_id).periods[0]["status"] == "unchanged"
    assert len(PaymentBook(store, terms).manifest()["versions"]) == 3


def test_every_engine_reads_the_same_as_at_view(tmp_path: Path, engine: str) -> None:
    """Spark reads the store's versions as DuckDB does: corrections, withdrawals and holds applied."""
    store = tmp_path / "store"
    first = submit(
        tmp_path, "a.csv", [*_pathway(NHS[0], "a", "2024-01-05", "2024-02-01"), {**VALID_ROW, "record_id": "x"}]
    )
    submit(
        tmp_path,
        "b.csv",
        [
            {**VALID_ROW, "record_id": "aref", "nhs_number": NHS[0], "event_date": "2024-03-01"},  # holds atx
            {"record_id": "x", "provider_code": "RJE", "action": "withdraw"},
        ],
    )
    then = Run(store, engine=engine, as_at=first.batch_id)
    now = Run(store, engine=engine)
    ids = lambda run: sorted(run.events.record_id.execute().tolist())  # noqa: E731
    assert ids(then) == ["aref", "atx", "x"]
    assert ids(now) == ["aref"]
    period = (date(2024, 1, 1), date(2024, 12, 31))
    assert now.measures(*period) == Run(store).measures(*period)


def _correct_then_die(source: str, store: str) -> None:
    def die(*args: object, **kwargs: object) -> None:
        os._exit(9)  # kill -9 at the commit point: files written, manifest not replaced

    Store._commit = die  # type: ignore[method-assign]
    ingest([source], store, as_of=AS_OF)


def test_a_correction_killed_before_commit_leaves_the_last_good_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    submit(tmp_path, "a.csv", [VALID_ROW, {**VALID_ROW, "record_id": "r2"}])
    before = events(store), open_quarantine(store)
    fix = write_csv(
        tmp_path / "b.csv",
        [{**VALID_ROW, "event_date": "2024-02-02"}, {"record_id": "r2", "provider_code": "RJE", "action": "withdraw"}],
    )
    process = multiprocessing.get_context("fork").Process(target=_correct_then_die, args=(str(fix), str(store)))
    process.start()
    process.join(60)
    assert process.exitcode == 9
    assert len(list((store / "state").iterdir())) == 2  # the dead submission's state file, uncommitted
    assert (events(store), open_quarantine(store)) == before
    submit(tmp_path, "c.csv", [{**VALID_ROW, "record_id": "r3"}])  # the next writer sweeps what the crash left
    assert len(list((store / "state").iterdir())) == 2 and set(events(store)) == {"r1", "r2", "r3"}


# -- a model of submissions, checked against the store ---------------------------------------------
OP = st.tuples(
    st.sampled_from(["submit", "withdraw", "bad"]),
    st.sampled_from(["r1", "r2", "r3", "r4"]),
    st.sampled_from(["RJE", "RXW"]),
    st.integers(1, 3),  # the day: a resubmission with another day is a correction
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(OP, min_size=1, max_size=5, unique_by=lambda op: op[1]), min_size=1, max_size=4))
def test_every_submission_reconciles_with_a_model_of_the_records(tmp_path_factory, batches: list) -> None:
    """A dict of record → (provider, day) is the model: each submission's counts and the store's
    current records must be what it says. Referrals only, so no cross-row rule applies."""
    tmp = tmp_path_factory.mktemp("model")
    model: dict[str, tuple[str, int]] = {}
    owners: dict[str, str] = {}
    seen: set[bytes] = set()
    for i, ops in enumerate(batches):
        rows, expected = [], dict.fromkeys(["new", "corrected", "withdrawn", "unchanged", "quarantined"], 0)
        after, owned = dict(model), dict(owners)
        for action, rid, provider, day in ops:
            if action == "bad":
                rows.append({**VALID_ROW, "record_id": rid, "provider_code": provider, "stage": "9"})
                expected["quarantined"] += 1
                continue
            if action == "withdraw":
                rows.append({"record_id": rid, "provider_code": provider, "action": "withdraw"})
            else:
                rows.append({**VALID_ROW, "record_id": rid, "provider_code": provider, "event_date": f"2024-01-0{day}"})
            if owned.get(rid, provider) != provider or (action == "withdraw" and rid not in after):
                expected["quarantined"] += 1
            elif action == "withdraw":
                expected["withdrawn"] += 1
                del after[rid]
            else:
                owned[rid] = provider
                kind = "new" if rid not in after else "unchanged" if after[rid] == (provider, day) else "corrected"
                expected[kind] += 1
                after[rid] = (provider, day)
        path = write_csv(tmp / f"{i}.csv", rows)
        result = ingest([path], tmp / "store", as_of=AS_OF)
        if path.read_bytes() in seen:  # the same bytes again: skipped whole, nothing changes
            assert result.no_op
        else:
            seen.add(path.read_bytes())
            model, owners = after, owned
            got = {k: result.counts[k] for k in ("new", "corrected", "withdrawn", "unchanged")}
            assert {**got, "quarantined": result.quarantined} == expected
            assert result.read == lines_in(path) == sum(expected.values())
        current = {r: (p, d.day) for r, (d, _, p, _) in events(tmp / "store").items()}
        assert current == model


def test_the_same_bytes_twice_in_one_submission_are_read_once(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", [VALID_ROW])
    b = tmp_path / "b.csv"
    b.write_bytes(a.read_bytes())
    result = ingest([a, b, a], tmp_path / "store", as_of=AS_OF)
    assert (result.read, result.accepted, result.quarantined) == (1, 1, 0)
    assert result.skipped == {str(b): "this submission"}


def test_as_at_on_the_command_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = submit(tmp_path, "a.csv", _pathway(NHS[0], "a", "2024-01-05", "2024-02-01"))
    submit(tmp_path, "b.csv", [{"record_id": "atx", "provider_code": "RJE", "action": "withdraw"}])
    env = {**os.environ, "CARECONTRACT_KEY": "test-key-" + "0" * 32}
    period = ["--from", "2024-01-01", "--to", "2024-12-31"]

    def cli(*args: str) -> object:
        cmd = [sys.executable, "-m", "carecontract.cli", *args, "--store", str(store), "--json"]
        return json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout)

    then = cli("measures", *period, "--as-at", first.batch_id)
    assert then == json.loads(
        json.dumps(
            label_rows(Run(store, as_at=first.batch_id).measures(date(2024, 1, 1), date(2024, 12, 31)), None),
            default=str,
        )
    )
    assert then != cli("measures", *period)
    assert cli("quality", "--as-at", first.batch_id)["rows"]["accepted"] == 2
    assert cli("quality")["rows"]["accepted"] == 1
    assert [s["withdrawn"] for s in cli("submissions")] == [0, 1]
    assert [h["status"] for h in cli("history", "--record", "atx")] == ["withdrawn", "withdrawal"]


def test_as_at_a_submission_number_reads_the_first_n_submissions(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = submit(tmp_path, "a.csv", [VALID_ROW])
    submit(tmp_path, "b.csv", [{**VALID_ROW, "record_id": "r2"}])
    assert Store(store, "1").committed() == Store(store, first.batch_id).committed()
    assert len(Store(store, "2").committed()) == 2
    with pytest.raises(StoreError, match="2 submission"):
        Store(store, "3").committed()
