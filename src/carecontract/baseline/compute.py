"""The baseline Stage 1 was meant to build: activity, cost, patient flows and payment flows.

Activity and cost are counted by contract year, tumour site, service, provider and commissioner.
An event's tumour site is its own (a diagnosis) or else its patient's first diagnosed site, so
treatments and end-of-life care are attributed to the cancer they belong to. The service is the
treatment modality for a treatment, otherwise the kind of event (first_seen, hospice_stay, ...).

Patient flows count pathways moving from one provider to the next (consecutive events of one
pathway at different providers) — the "patient flows" the seeds' commissioners could not see.
Written in Ibis like the measures, so the same definitions will run on Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis
from ibis import _
from ibis.expr.types import Table

from carecontract.engine import Engine
from carecontract.payments.book import PaymentBook
from carecontract.payments.ledger import transfers
from carecontract.run import Run, StoreLike
from carecontract.terms.loader import Terms
from carecontract.terms.years import contract_year

ACTIVITY_KEYS = ("year", "tumour_site", "service", "provider", "commissioner")


def activity(events: Table, start: date = date(2000, 4, 1)) -> Table:
    first_site = (
        events.filter(_.event_type == "diagnosis", _.tumour_site.notnull())
        .group_by("patient_id")
        .aggregate(patient_site=_.tumour_site.argmin(_.event_date))
    )
    tagged = events.left_join(first_site, "patient_id").mutate(
        year=contract_year(_.event_date, start.month, start.day),
        tumour_site=ibis.coalesce(_.tumour_site, _.patient_site, ibis.literal("(none)")),
        service=ibis.coalesce(_.modality, _.event_type),
        provider=_.provider_code,
        commissioner=_.commissioner_code,
    )
    return (
        tagged.group_by(list(ACTIVITY_KEYS))
        .aggregate(events=_.count(), patients=_.patient_id.nunique(), cost_gbp=_.cost_gbp.sum().fill_null(0))
        .order_by(list(ACTIVITY_KEYS))
    )


def patient_flows(events: Table) -> Table:
    """Pathways moving from one provider to another, counted per (from, to) pair."""
    referrals = events.filter(_.event_type == "referral").select(
        pathway_id=_.record_id, patient_id=_.patient_id, referral_date=_.event_date
    )
    order = ibis.window(group_by="patient_id", order_by=["referral_date", "pathway_id"])
    referrals = referrals.mutate(next_referral_date=_.referral_date.lead().over(order))
    steps = events.filter(_.event_type != "death").select("patient_id", "event_date", "record_id", "provider_code")
    joined = referrals.join(steps, "patient_id").filter(
        _.event_date >= _.referral_date, _.next_referral_date.isnull() | (_.event_date < _.next_referral_date)
    )
    within = ibis.window(group_by="pathway_id", order_by=["event_date", "record_id"])
    moves = joined.mutate(from_provider=_.provider_code.lag().over(within)).filter(
        _.from_provider.notnull(), _.from_provider != _.provider_code
    )
    return (
        moves.group_by(["from_provider", _.provider_code.name("to_provider")])
        .aggregate(moves=_.count(), pathways=_.pathway_id.nunique())
        .order_by([ibis.desc("moves"), "from_provider", "to_provider"])
    )


@dataclass
class Baseline:
    activity: list[dict[str, Any]]
    patient_flows: list[dict[str, Any]]
    payment_flows: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"activity": self.activity, "patient_flows": self.patient_flows, "payment_flows": self.payment_flows}


def payment_flows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger postings as (year, from, to, pence): who paid whom, summed by rule (each transaction
    split into transfers between two accounts: a true-up moves money from every commissioner at once)."""
    by_txn: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_txn.setdefault(row["txn"], []).append(row)
    totals: dict[tuple, int] = {}
    for postings in by_txn.values():
        for payer, payee, pence in transfers(postings):
            key = (payer["period"], payer["rule"], payer["account"], payee["account"])
            totals[key] = totals.get(key, 0) + pence
    return [{"year": y, "rule": r, "from": f, "to": to, "pence": p} for (y, r, f, to), p in sorted(totals.items())]


def activity_rows(events: Table, terms: Terms | None = None) -> list[dict[str, Any]]:
    """Activity and cost rows, by contract year of the terms (April years without them)."""
    start = terms.contract.term.start if terms else date(2000, 4, 1)
    rows = activity(events, start).to_pyarrow().to_pylist()
    for row in rows:
        row["cost_gbp"] = float(row["cost_gbp"])
    return rows


def build_baseline(
    store: Run | StoreLike,
    terms: Terms | None = None,
    engine: Engine = "duckdb",
    spark_master: str | None = None,
) -> Baseline:
    """Activity, patient flows and (with terms) the payment flows of the closed book.

    ``store`` is a Run (its engine, and its terms if ``terms`` is not given) or a store path read
    on ``engine``.
    """
    run = Run.of(store, terms, engine=engine, spark_master=spark_master)
    terms = terms if terms is not None else run.terms
    act = activity_rows(run.events, terms)
    flows = patient_flows(run.events).to_pyarrow().to_pylist()
    payments = payment_flows(PaymentBook(run, terms).paid_rows()) if terms is not None else []
    return Baseline(act, flows, payments)


def totals_by_year(activity: list[dict[str, Any]]) -> dict[int, tuple[int, float]]:
    """Events and cost (£) per contract year from the baseline's activity rows, by year."""
    out: dict[int, tuple[int, float]] = {}
    for row in activity:
        events, cost = out.get(row["year"], (0, 0.0))
        out[row["year"]] = (events + row["events"], cost + row["cost_gbp"])
    return dict(sorted(out.items()))


#: why recorded cost is outside a contract's scope, in the order the checks are made
OUT_OF_SCOPE = ("not a subcontractor", "no tumour site", "site not yet in scope")


def scope_of(row: dict[str, Any], terms: Terms) -> str:
    """Whether one activity row is in the contract's scope that year: "in scope" or why not
    (one of :data:`OUT_OF_SCOPE`). What payments count (:mod:`carecontract.payments.costs`) is
    exactly the "in scope" rows: a subcontractor's activity on a tumour site in scope that year (an
    event's site is its own or its patient's first diagnosed site; a contract without a scope by
    site takes every subcontractor event)."""
    contract = terms.contract
    if row["provider"] not in {s.code for s in contract.subcontractors}:
        return "not a subcontractor"
    if not contract.scope:
        return "in scope"
    if row["tumour_site"] == "(none)":
        return "no tumour site"
    sites = contract.scope_at(contract.term.year_start(row["year"] - contract.term.start.year))
    return "in scope" if row["tumour_site"] in sites else "site not yet in scope"


def scope_split(activity: list[dict[str, Any]], terms: Terms) -> list[dict[str, Any]]:
    """Per contract year: recorded cost in the contract's scope and outside it (by reason), beside the price.

    Each year also breaks its cost down by provider, tumour site and service, in and out of scope
    (``by``: dimension → value → {"in scope": £, "out of scope": £}). Outside the scope: another
    provider's activity, activity with no tumour site (ruled-out referrals, other deaths'
    end-of-life care), and sites the roll-out has not reached (:func:`scope_of`). ``ratio`` is
    in-scope cost over the year's price: far from 1, the store and the terms do not describe the
    same services.
    """
    values = terms.contract.value_per_year()
    out: dict[int, dict[str, Any]] = {}
    for row in activity:
        year = row["year"]
        if year not in values:
            continue
        entry = out.setdefault(
            year,
            {
                "in": 0.0,
                "out": dict.fromkeys(OUT_OF_SCOPE, 0.0),
                "by": {"provider": {}, "tumour_site": {}, "service": {}},
            },
        )
        reason = scope_of(row, terms)
        side = "in scope" if reason == "in scope" else "out of scope"
        if reason == "in scope":
            entry["in"] += row["cost_gbp"]
        else:
            entry["out"][reason] += row["cost_gbp"]
        for dimension, table in entry["by"].items():
            cell = table.setdefault(row[dimension], {"in scope": 0.0, "out of scope": 0.0})
            cell[side] += row["cost_gbp"]
    rows = []
    for year, entry in sorted(out.items()):
        price = float(values[year])
        rows.append(
            {
                "year": year,
                "in_scope_gbp": entry["in"],
                "out_of_scope_gbp": entry["out"],
                "price_gbp": price,
                "ratio": entry["in"] / price if price else None,
                "by": {d: dict(sorted(t.items())) for d, t in entry["by"].items()},
            }
        )
    return rows
