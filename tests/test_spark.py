"""Parity: the same definitions give identical measures, ledgers and baselines on DuckDB and Spark.

The hand-worked spec cases (tests/spec) run on every engine through the ``engine`` fixture and
check the figures themselves; these tests compare the engines with each other on a synthetic
economy large enough to meet every branch, so each keeps an explicit DuckDB-against-Spark check.
The Spark session is the run's one session (the ``spark`` fixture in conftest.py).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontract.baseline.compute import build_baseline
from carecontract.cli import app
from carecontract.measures.compute import BREAKDOWNS, compute_measures, events_table
from carecontract.payments.costs import subcontractor_costs
from carecontract.payments.pay import pay_contract
from carecontract.records.store import Store
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS

pytestmark = pytest.mark.spark
START, END = date(2017, 4, 1), date(2020, 3, 31)


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


@pytest.mark.parametrize("by", [(), *[(b,) for b in BREAKDOWNS], ("commissioner", "provider")], ids=str)
@pytest.mark.usefixtures("spark")
def test_every_measure_is_identical(paid_store: Path, by: tuple[str, ...]) -> None:
    duck = compute_measures(paid_store, START, END, by=by)
    spark = compute_measures(paid_store, START, END, by=by, engine="spark")
    assert len(duck) > 9 or not by
    assert _sorted(spark) == _sorted(duck)


@pytest.mark.usefixtures("spark")
def test_the_ledger_is_identical(paid_store: Path) -> None:
    contract = load_terms(CANCER_TERMS).contract
    duck_ledger, duck_results = pay_contract(contract, paid_store, [2017, 2018, 2019])
    spark_ledger, spark_results = pay_contract(contract, paid_store, [2017, 2018, 2019], engine="spark")
    postings = [(t.id, p.account, p.pence) for t, p in duck_ledger.postings]
    assert postings and [(t.id, p.account, p.pence) for t, p in spark_ledger.postings] == postings
    assert spark_ledger.balances() == duck_ledger.balances() and spark_ledger.balanced
    assert [r.__dict__ for r in spark_results] == [r.__dict__ for r in duck_results]


@pytest.mark.usefixtures("spark")
def test_in_scope_costs_are_identical_to_the_penny(paid_store: Path) -> None:
    from carecontract.engine import read_events

    store = Store(paid_store)
    codes = ["RJE", "RL4", "RRE", "HDMH1"]
    files, state = [str(f) for f in store.files("events")], str(store.state_file())  # the store's current view
    spark_events = read_events(files, "spark", name="events_costs", exclude=state)
    for sites in (None, ["breast", "lung"], []):
        duck = subcontractor_costs(events_table(store), codes, START, END, sites)
        assert subcontractor_costs(spark_events, codes, START, END, sites) == duck
    assert sum(duck.values()) == 0  # an empty scope costs nothing


@pytest.mark.usefixtures("spark")
def test_the_baseline_is_identical(paid_store: Path) -> None:
    terms = load_terms(CANCER_TERMS)
    duck, spark = build_baseline(paid_store, terms), build_baseline(paid_store, terms, engine="spark")
    assert _sorted(spark.activity) == _sorted(duck.activity) and duck.activity
    assert _sorted(spark.patient_flows) == _sorted(duck.patient_flows) and duck.patient_flows


@pytest.mark.usefixtures("spark")
def test_the_cli_runs_on_spark(paid_store: Path) -> None:
    args = ["measures", "--store", str(paid_store), "--from", "2018-04-01", "--to", "2019-03-31", "--json"]
    duck = CliRunner().invoke(app, args)
    spark = CliRunner().invoke(app, [*args, "--engine", "spark"])
    assert spark.exit_code == 0, spark.output
    assert json.loads(spark.output) == json.loads(duck.output)


def test_an_unknown_engine_is_a_clear_error(paid_store: Path) -> None:
    args = ["measures", "--store", str(paid_store), "--from", "2018-04-01", "--to", "2019-03-31"]
    result = CliRunner().invoke(app, [*args, "--engine", "polars"])
    assert result.exit_code == 2 and "not an engine" in result.output
