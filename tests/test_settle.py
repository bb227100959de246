"""Payments on account, reconciliation, subsequent reconciliation and disputes (docs/payments.md)."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.errors import UserError
from carecontract.payments import accounts
from carecontract.payments.calendar import Due, instalments, reconciliations
from carecontract.payments.components import PAID, WENT, payment_components, totals
from carecontract.payments.disputes import open_dispute, resolve
from carecontract.payments.journal import Journal, entry_rows
from carecontract.payments.settle import _entry, _on_account, _transactions, post_until, settle_amounts
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS

TODAY = date(2026, 1, 1)


def test_calendar_defaults_follow_the_rules_cited() -> None:
    contract = load_terms(CANCER_TERMS).contract
    months = instalments(contract, 0)
    assert [d.on for d in months][:2] == [date(2017, 4, 1), date(2017, 5, 1)] and len(months) == 12
    assert sum(d.pence for d in months) == 68_700_000_00  # the year's price, to the penny
    first, later = reconciliations(contract, 0)
    assert first.on == date(2018, 6, 1) and later.on == date(2019, 6, 1)  # 2 and 14 months after the year
    quarterly = load_terms(CANCER_TERMS, ["payments.calendar.on_account=quarterly"]).contract
    assert [d.on.month for d in instalments(quarterly, 0)] == [4, 7, 10, 1]
    with pytest.raises(UserError, match="subsequent_after_months"):
        load_terms(CANCER_TERMS, ["payments.calendar.subsequent_after_months=1"])


def test_pay_posts_once_and_refuses_years_not_ended_or_without_data(paid_store: Path, tmp_path: Path) -> None:
    local = tmp_path / "store"
    shutil.copytree(paid_store, local)
    terms = load_terms(CANCER_TERMS)
    first = post_until(terms, local, today=TODAY)
    assert first.years == [2017, 2018, 2019] and first.balanced
    assert post_until(terms, local, today=TODAY).posted == []  # idempotent: nothing new to the same date
    by_year = defaultdict(int)
    for r in first.rows:  # independently: every year's postings sum to zero
        by_year[r["period"]] += r["pence"]
    assert set(by_year.values()) == {0}
    with pytest.raises(UserError, match="has not ended"):
        post_until(terms, local, date(2019, 12, 31), [2019], today=TODAY)
    with pytest.raises(UserError, match="none in that year"):
        post_until(terms, local, years=[2021], today=TODAY)
    with pytest.raises(UserError, match="after today"):
        post_until(terms, local, date(2026, 6, 1), today=TODAY)


def test_components_add_up_and_show_the_gain_loss_share(paid_store: Path, tmp_path: Path) -> None:
    local = tmp_path / "store"
    shutil.copytree(paid_store, local)
    terms = load_terms(CANCER_TERMS)
    done = post_until(terms, local, today=TODAY)
    rows = payment_components(done.rows, terms.contract)
    for year, sums in totals(rows).items():
        assert sums[PAID] == sums[WENT]
        paid = -sum(r["pence"] for r in done.rows if r["period"] == year and r["account"].startswith("commissioner:"))
        assert sums[PAID] == paid  # counted from the ledger, not from the component rows
    shares = [r for r in rows if "underspend" in r["component"] or "overspend" in r["component"]]
    assert shares and all(r["note"] for r in rows if r["pence"] < 0)


# -- the invariants, over random contracts, data, orders and disputes ---------------------------------------------

_due = st.integers(min_value=0, max_value=10**10)


def _balanced_due(contract, price: int, keep: int, vat: int, subs: list[int]) -> dict[str, dict[str, int]]:
    """A year's amounts as the rules would give them (by rule and account), each rule balanced."""
    prime = accounts.prime(contract.prime.code)
    paid = keep + vat + sum(subs)
    split = {accounts.commissioner(c.code): c.share for c in contract.commissioners}
    from carecontract.payments.ledger import split_pence

    parts = split_pence(paid, split)
    out = {"true_up": {**{a: -p for a, p in parts.items()}, prime: paid}}
    out["management_fee"] = {prime: -keep, accounts.management(contract.prime.code): keep}
    out["vat"] = {prime: -vat, accounts.HMRC_VAT: vat}
    codes = [s.code for s in contract.subcontractors]
    out["subcontract_payment"] = {
        prime: -sum(subs),
        **{accounts.subcontractor(c): s for c, s in zip(codes, subs, strict=True)},
    }
    return out


@settings(max_examples=60, deadline=None)
@given(
    value=st.integers(min_value=10**6, max_value=10**9),
    share=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    first=st.tuples(_due, _due, _due, st.lists(_due, min_size=4, max_size=4)),
    final=st.tuples(_due, _due, _due, st.lists(_due, min_size=4, max_size=4)),
    disputes=st.lists(
        # a partly upheld dispute awards more than nothing and less than the whole: it needs 2p at least
        st.tuples(st.booleans(), st.integers(1, 10**8), st.sampled_from(["upheld", "partly", "rejected"])).filter(
            lambda d: d[2] != "partly" or d[1] >= 2
        ),
        max_size=3,
    ),
    dispute_after_final=st.booleans(),
    first_share=st.integers(min_value=1, max_value=44),
)
def test_paid_after_the_final_reconciliation_is_due_on_final_data(
    tmp_path_factory, value, share, first, final, disputes, dispute_after_final, first_share
) -> None:
    """Whatever the on-account share, the data at each reconciliation and the disputes: after the final
    reconciliation each account's net equals the final amounts plus what disputes awarded, to the penny;
    the ledger balances after every step; an amount in dispute is held, never also paid."""
    overrides = [
        f"value.total_gbp={value * 10}",
        f"payments.calendar.on_account_share={share}",
        f"commissioners.0.share={first_share / 100}",  # the first two commissioners' shares add up to 0.45
        f"commissioners.1.share={(45 - first_share) / 100}",
    ]
    terms = load_terms(CANCER_TERMS, overrides)
    contract = terms.contract
    journal = Journal(tmp_path_factory.mktemp("j"), contract.name)
    due1 = _balanced_due(contract, 0, first[0], first[1], first[3])
    due2 = _balanced_due(contract, 0, final[0], final[1], final[3])

    def step(entry) -> None:
        with journal.editing() as data:
            data["entries"].append(entry)
        assert sum(r["pence"] for r in journal.rows()) == 0  # balanced after every step

    def run_disputes() -> None:
        for by_prime, amount, outcome in disputes:
            by = contract.prime.code if by_prime else contract.commissioners[0].code
            before = _net(journal)
            d = open_dispute(journal, contract, 2017, by, amount, "Schedule 3", "evidence", on=TODAY)
            held = _net(journal)
            assert sum(held.values()) == 0  # balanced after the notice ...
            assert held[accounts.suspense(d["id"])] == amount  # held in full ...
            assert held.get(d["claimant"], 0) == before.get(d["claimant"], 0)  # ... and not paid to the claimant
            d = resolve(journal, contract, d["id"], outcome, "decided", amount // 2 or None, on=TODAY)
            after = _net(journal)
            assert sum(after.values()) == 0  # ... and after the resolution
            assert after.get(accounts.suspense(d["id"]), 0) == 0  # emptied by the resolution
            assert after.get(d["claimant"], 0) - held.get(d["claimant"], 0) == d["awarded_pence"]

    for inst in instalments(contract, 0):
        step(_on_account(contract, inst))
    r1, r2 = reconciliations(contract, 0)
    issued = {"issued": TODAY.isoformat(), "deemed_final": date(2026, 2, 15).isoformat()}
    entries = journal.entries()
    step(_entry(r1, _transactions(r1, settle_amounts(r1, due1, entries), "first"), due=due1, **issued))
    if not dispute_after_final:
        run_disputes()
    entries = journal.entries()
    step(_entry(r2, _transactions(r2, settle_amounts(r2, due2, entries), "final"), due=due2, **issued))
    if dispute_after_final:
        run_disputes()
    net = _net(journal)
    dispute_moves = _net(journal, rules=("dispute_held", "dispute_resolved"))
    expected: dict[str, int] = defaultdict(int)
    for by_account in due2.values():
        for account, pence in by_account.items():
            expected[account] += pence
    for account in set(net) | set(expected):
        if account.startswith(accounts.SUSPENSE):
            assert net[account] == 0
            continue
        assert net.get(account, 0) - dispute_moves.get(account, 0) == expected.get(account, 0), account
    assert sum(dispute_moves.values()) == 0
    awarded = sum(d["awarded_pence"] for d in journal.disputes())
    claimants = {d["claimant"] for d in journal.disputes()}
    assert sum(dispute_moves.get(c, 0) for c in claimants) <= awarded + sum(
        d["amount_pence"] for d in journal.disputes() if d["claimant"] in d["held_from"]
    )


def _net(journal: Journal, rules: tuple[str, ...] | None = None) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in entry_rows(journal.entries()):
        if rules is None or r["rule"] in rules:
            out[r["account"]] += r["pence"]
    return dict(out)


def test_a_notice_out_of_time_is_refused(tmp_path: Path) -> None:
    contract = load_terms(CANCER_TERMS).contract
    journal = Journal(tmp_path, contract.name)
    r1 = Due("reconciliation", 2017, date(2018, 6, 1), 1)
    with journal.editing() as data:
        data["entries"].append(_entry(r1, [], due={}, issued="2018-06-01", deemed_final="2018-07-16"))
    with pytest.raises(UserError, match="deemed final on 2018-07-16"):
        open_dispute(journal, contract, 2017, "PRIME1", 100, "Schedule 3", "x", on=date(2018, 7, 17))
    with pytest.raises(UserError, match="not a party"):
        open_dispute(journal, contract, 2017, "RJE", 100, "Schedule 3", "x", on=date(2018, 7, 1))
    d = open_dispute(journal, contract, 2017, "05W", 100, "Schedule 3", "x", on=date(2018, 7, 16))
    assert d["held_from"] == {"prime:PRIME1": 100}


def test_the_subsequent_reconciliation_posts_only_the_difference_and_says_why(paid_store: Path, tmp_path: Path) -> None:
    """On real data: corrections after the first reconciliation move the money only through the subsequent
    one; after it, each account has been paid exactly what the rules give on the final data."""
    from carecontract.payments.ledger import net_by_account
    from carecontract.payments.pay import pay_contract
    from carecontract.records.ingest import ingest
    from carecontract.records.pseudonymise import PseudonymKey
    from tests.conftest import write_csv

    local = tmp_path / "store"
    shutil.copytree(paid_store, local)
    terms = load_terms(CANCER_TERMS)
    first = post_until(terms, local, date(2020, 6, 1), [2019])
    assert [e["key"] for e in first.posted][-1] == "reconciliation:2019:1"
    from carecontract.records.store import Store

    con = Store(local).connect()
    treatments = con.execute(
        "SELECT record_id, provider_code FROM events WHERE event_type = 'treatment' "
        "AND event_date BETWEEN DATE '2019-04-01' AND DATE '2020-03-31' ORDER BY record_id"
    ).fetchall()
    con.close()
    withdrawals = [{"record_id": r, "provider_code": p, "action": "withdraw"} for r, p in treatments[::4]]
    ingest([write_csv(tmp_path / "corrections.csv", withdrawals)], local, as_of=TODAY, key=PseudonymKey(b"paid"))
    final = post_until(terms, local, date(2021, 6, 1), [2019])
    subsequent = final.posted[-1]
    assert subsequent["key"] == "subsequent:2019:2"
    notice = subsequent["notice"]
    assert notice["records"]["withdrawn"] == len(withdrawals)
    assert notice["from_version"] != notice["to_version"]
    # independently: the rules on the final data, against what the journal paid for the year
    ledger, _ = pay_contract(terms.contract, local, [2019])
    paid = {a: p for a, p in net_by_account(final.rows, by_period=False).items() if p}
    assert paid == {a: p for a, p in ledger.balances(2019).items() if p}
    assert post_until(terms, local, date(2021, 6, 1), [2019]).posted == []


def test_the_dispute_commands_record_each_step_and_refuse_in_one_line(paid_store: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    local = tmp_path / "store"
    shutil.copytree(paid_store, local)
    log = tmp_path / "decisions.jsonl"

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "carecontract.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)

    terms, store = str(CANCER_TERMS), ["--store", str(local)]
    assert cli("pay", terms, *store, "--period", "2020").returncode == 2  # no data in 2020/21
    paid = cli("pay", terms, *store, "--json")
    assert paid.returncode == 0, paid.stderr
    assert json.loads(paid.stdout)["balanced"] is True
    common = [*store, "--log", str(log)]
    claim = ["--year", "2019", "--by", "PRIME1", "--amount", "1,000.50", "--clause", "Schedule 3"]
    opened = cli("dispute", "open", terms, *common, *claim, "--evidence", "40 pathways miscounted")
    assert opened.returncode == 0, opened.stderr
    wrong = cli("dispute", "respond", terms, *common, "D1", "--by", "PRIME1", "--text", "me again")
    assert wrong.returncode == 2 and "other side" in wrong.stderr and "Traceback" not in wrong.stderr
    assert cli("dispute", "respond", terms, *common, "D1", "--by", "05W", "--text", "no").returncode == 0
    done = cli("dispute", "resolve", terms, *common, "D1", "--outcome", "rejected", "--text", "x", "--who", "panel")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["dispute"] * 3
    listed = json.loads(cli("dispute", "list", terms, *store, "--json").stdout)
    assert listed[0]["status"] == "resolved" and listed[0]["amount_pence"] == 100050
    assert [s["step"] for s in listed[0]["steps"]] == ["open", "respond", "resolve"]


def test_the_notebook_close_refuses_a_year_without_data_too(paid_store: Path, tmp_path: Path) -> None:
    from carecontract.payments.close import close_periods

    local = tmp_path / "store"
    shutil.copytree(paid_store, local)
    with pytest.raises(UserError, match="none in that year"):
        close_periods(load_terms(CANCER_TERMS), local, [2021])
    with pytest.raises(UserError, match="has not ended"):
        close_periods(load_terms(CANCER_TERMS), local, [2026])
