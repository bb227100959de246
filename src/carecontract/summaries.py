"""The library calls behind the thin commands: each is one step a command, a notebook or the demo asks for.

Why this module: the CLI used to compute inline (sum the ledger by account, sum cost by year, pop
a private array off the stress result, work out which years to pay). Those are library facts, so
they live here as named, tested functions, and a command only parses, calls one of these, and
renders. Each function's natural home is the package named in its docstring (payments, baseline,
viability, terms, synth); they wait here, in one small module above those packages, until their
owners move them in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carecontract.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from carecontract.records.store import Store
    from carecontract.terms import Terms
    from carecontract.terms.model import Contract

Progress = Callable[[str, float], None]


def _no_progress(step: str, done: float) -> None:
    """A progress callback that shows nothing."""


class NothingToPay(UserError):
    """The store covers no ended contract year, or a year asked for is not one of the contract's."""


class NoGate(UserError, ValueError):
    """The contract has no fee stage, so there is no gate to evaluate."""


class StressError(UserError, ValueError):
    """A stress test that cannot run as asked (no runs, or no costs to calibrate from)."""


class FutureActivity(UserError):
    """Synthetic activity asked for dates after today, which ingest would quarantine."""


# -- synth --------------------------------------------------------------------------------------
def whole_years_since(first: date, today: date | None = None) -> int:
    """Whole years from ``first`` to today (home: synth)."""
    today = today or date.today()
    return today.year - first.year - (1 if (today.month, today.day) < (first.month, first.day) else 0)


def check_activity_window(first: date, years: int, today: date | None = None) -> None:
    """Refuse synthetic activity that would run past today (home: synth)."""
    today = today or date.today()
    last = date(first.year + years, first.month, first.day)
    if last > today:
        raise FutureActivity(
            f"{years} year(s) from {first} run to {last}, after today, and activity cannot be dated in "
            f"the future (ingest would quarantine it): use at most {whole_years_since(first, today)} year(s) "
            "or an earlier --start"
        )


# -- terms --------------------------------------------------------------------------------------
def terms_summary(terms: Terms) -> dict[str, Any]:
    """A terms file in brief: provenance, parties, term, value per year, stages, scope, outcomes (home: terms)."""
    c = terms.contract
    return {
        **terms.provenance(),
        "commissioners": [{"code": x.code, "name": x.name, "share": x.share} for x in c.commissioners],
        "prime": {"code": c.prime.code, "name": c.prime.name},
        "subcontractors": [{"code": x.code, "name": x.name} for x in c.subcontractors],
        "term": {"start": c.term.start.isoformat(), "end": c.term.end.isoformat(), "years": c.term.years},
        "value_gbp": str(c.value.total_gbp),
        "value_per_year": {str(y): str(v) for y, v in c.value_per_year().items()},
        "stages": [s.model_dump(mode="json") for s in c.stages],
        "scope_by_year": {str(d.year): c.scope_at(d) for d in c.contract_years()},
        "outcomes": [o.model_dump(mode="json") for o in c.outcomes],
    }


def gate_result(terms: Terms, store: str | Path | Store, start: date, end: date) -> dict[str, Any]:
    """The fee stage's gate measured from the store, with the terms' provenance (home: terms.gate)."""
    from carecontract.terms.gate import evaluate_gate

    contract = terms.contract
    if not any(s.kind == "fee" for s in contract.stages):
        raise NoGate(f"{contract.name} has no fee stage, so no gate to evaluate")
    return {**evaluate_gate(contract, store, start, end), **terms.provenance()}


# -- payments -----------------------------------------------------------------------------------
def payable_years(contract: Contract, store: Store, requested: list[int] | None = None) -> list[int]:
    """The contract years to close: those asked for, checked, else every ended year the store covers.

    Raises :class:`NothingToPay` with what to do when there are none (home: payments.book).
    """
    from carecontract.payments.book import covered_years

    if requested:
        starts = [d.year for d in contract.contract_years()]
        unknown = [y for y in requested if y not in starts]
        if unknown:
            raise NothingToPay(
                f"{contract.name} has no contract year starting in {unknown} (years: {starts[0]}–{starts[-1]})"
            )
        return list(requested)
    years = covered_years(contract, store)
    if not years:
        first, last = store.event_range()
        if first is None:
            raise NothingToPay(f"{store.root}: the store has no accepted events to pay on")
        raise NothingToPay(
            f"{store.root}: its events ({first} to {last}) cover no ended year of {contract.name} "
            f"({contract.term.start} to {contract.term.end}); synthesise data for those years with --start"
        )
    return years


@dataclass
class PayRun:
    """What closing some contract years did: each period's outcome and the ledger's postings.

    ``by_account`` is each account's net over the periods (from :func:`net_by_account`), so the
    whole ledger sums to ``sum_pence``, which is zero when it balances.
    """

    periods: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    by_account: dict[str, int] = field(default_factory=dict)

    @property
    def sum_pence(self) -> int:
        return sum(int(r["pence"]) for r in self.entries)

    @property
    def balanced(self) -> bool:
        return self.sum_pence == 0

    def ledger(self) -> pd.DataFrame:
        """The postings as a DataFrame, one row per posting."""
        import pandas as pd

        return pd.DataFrame(self.entries)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "balanced": self.balanced,
            "sum_pence": self.sum_pence,
            "by_account": self.by_account,
            "periods": self.periods,
        }


def close_periods(
    terms: Terms,
    store: str | Path | Store,
    periods: list[int] | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
    progress: Progress = _no_progress,
) -> PayRun:
    """Close the contract years asked for (default: every ended year with data) and read back their ledger."""
    from carecontract.payments.book import PaymentBook
    from carecontract.payments.ledger import net_by_account
    from carecontract.records.store import Store

    store = store if isinstance(store, Store) else Store(store)
    years = payable_years(terms.contract, store, periods)
    progress("closing periods", 0.0)
    book = PaymentBook(store.root, terms, engine, spark_master)
    closed = book.close(years)
    progress("closing periods", 1.0)
    rows = book.ledger_rows(years)
    return PayRun(closed, rows, net_by_account(rows, by_period=False))


# -- baseline -----------------------------------------------------------------------------------
def totals_by_year(activity: list[dict[str, Any]]) -> dict[int, tuple[int, float]]:
    """Events and cost (£) per contract year from the baseline's activity rows, by year (home: baseline)."""
    out: dict[int, tuple[int, float]] = {}
    for row in activity:
        events, cost = out.get(row["year"], (0, 0.0))
        out[row["year"]] = (events + row["events"], cost + row["cost_gbp"])
    return dict(sorted(out.items()))


# -- viability ----------------------------------------------------------------------------------
def stress_summary(
    terms: Terms,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    charts: Path | None = None,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """The stress test's published result: summary, year by year, sensitivity, terms and charts written.

    Calibrates the first-year cost from ``store`` when given; writes the fan and tornado charts into
    ``charts`` when given. The simulated paths themselves are not returned (home: viability).
    """
    from carecontract.records.store import Store
    from carecontract.viability.charts import write_charts
    from carecontract.viability.simulate import calibrate_from_store, stress

    if runs < 1:
        raise StressError("--runs must be at least 1")
    baseline_cost, scope_factor = None, None
    if store is not None:
        store = store if isinstance(store, Store) else Store(store)
        try:
            baseline_cost, scope_factor = calibrate_from_store(terms.contract, store)
        except ValueError as exc:  # "no recorded costs": until viability raises a UserError itself
            raise StressError(str(exc)) from exc
    progress("simulating", 0.0)
    summary = stress(terms.contract, runs, seed, baseline_cost, scope_factor=scope_factor)
    progress("simulating", 1.0)
    written = write_charts(terms.contract.name, summary, charts) if charts is not None else []
    summary.pop("_cumulative")
    summary["terms"] = terms.provenance()
    summary["charts"] = [str(p) for p in written]
    return summary
