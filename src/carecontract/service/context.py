"""What the routes read: the store, the contracts served, and the figures, computed once per store state.

``create_app`` builds one :class:`ServiceContext` and puts it on ``app.state``; every route gets it
through the :func:`get_context` dependency (``ctx: Context``). The routes decide who sees what;
the context only computes, and its figure methods (:meth:`ServiceContext.measures`,
:meth:`~ServiceContext.ledger`, ...) are the one place the service calls the library, so a
per-request run context (store snapshot, terms, period, engine) slots in here and nowhere else.
Results are cached by the store's committed state: a dashboard refresh does not recompute
measures, and new data is never served stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from carecontract.baseline.accountability import accountability
from carecontract.errors import UserError
from carecontract.measures.compute import BREAKDOWNS
from carecontract.payments.book import PaymentBook, slug
from carecontract.publish.decisions import DecisionLog
from carecontract.publish.disclosure import PublicTables, default_period, published_periods
from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.terms.loader import Terms
from carecontract.terms.targets import contract_targets, label_rows
from carecontract.viability.simulate import stress


class _Cache:
    """Results keyed by the store's committed state, so new data is never served stale."""

    def __init__(self, store: Store) -> None:
        self.store, self._lock, self._values = store, threading.Lock(), {}
        # figures are computed one at a time: they share the Run's one DuckDB connection, which
        # serves one query at a time (DuckDB refuses a second caller rather than waiting)
        self._computing = threading.Lock()

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        full = (self.store.fingerprint(), *key)
        with self._lock:
            if full in self._values:
                return self._values[full]
        with self._computing:
            with self._lock:
                if full in self._values:  # computed by the request we waited for
                    return self._values[full]
            value = make()
        with self._lock:
            self._values[full] = value
        return value


class ServiceContext:
    """The service's store, its contracts by slug, and cached figures for them."""

    def __init__(
        self, store: Store, terms: list[Terms], decision_log: str | Path | None = None, stress_runs: int = 5000
    ) -> None:
        self.store = store
        self.contracts = {slug(t.contract.name): t for t in terms}
        self.decision_log = None if decision_log is None else Path(decision_log)
        self.stress_runs = stress_runs
        self._cache = _Cache(store)
        self._runs: dict[tuple[str, str | None], Run] = {}
        self._runs_lock = threading.Lock()

    def run(self, as_at: str | None = None) -> Run:
        """The Run over the store's committed state now, read as at ``as_at`` (``None``: the latest):
        one per state and as-at, so every request between two ingests reads the same snapshot and
        shares what it computed (events, pathways, measures). An unknown as-at is a 422."""
        state = self.store.fingerprint()
        with self._runs_lock:
            if any(key[0] != state for key in self._runs):  # new data: drop the old snapshots
                self._runs.clear()
            if (state, as_at) not in self._runs:
                try:
                    run = Run(self.store, as_at=as_at)
                    run.store.committed()  # an unknown submission is refused here, not mid-figure
                except UserError:  # its text names the server's path: say it without
                    raise HTTPException(
                        422, f"as_at {as_at!r}: neither a date (YYYY-MM-DD) nor a submission id or number of this store"
                    ) from None
                self._runs[state, as_at] = run
            return self._runs[state, as_at]

    # -- what the request names

    def contract(self, name: str) -> Terms:
        """The terms served under ``name``; 404 if none."""
        if name not in self.contracts:
            shown = name if len(name) <= 40 else name[:40] + "…"  # never echo a long path back
            raise HTTPException(404, f"no contract {shown!r} (known: {', '.join(self.contracts)})")
        return self.contracts[name]

    def period(self, start: date | None, end: date | None, as_at: str | None = None) -> tuple[date, date]:
        """The asked-for period, each missing end taken from the accepted events (as at ``as_at``); 409
        if there are none, 422 if it ends before it starts."""
        first, last = self.run(as_at).event_range()
        if first is None:
            raise HTTPException(409, "the store has no accepted events yet")
        start, end = start or first, end or last
        if start > end:
            raise HTTPException(422, f"from {start} is after to {end}")
        return start, end

    def public_period(self, name: str, start: date | None, end: date | None) -> tuple[date, date]:
        """The published period the public asked for (``from`` its first day, ``to`` its last, or
        both); none asked: the latest published period with data. 422 for any other window."""
        contract = self.contract(name).contract
        periods = published_periods(contract)
        if start is None and end is None:
            found = default_period(contract, *self.run().event_range())
            if found is None:
                raise HTTPException(409, "the store has no accepted events in any published period yet")
            return found
        for period in periods:
            if start in (None, period[0]) and end in (None, period[1]) and (start or end) is not None:
                return period
        shown = ", ".join(f"{a}..{b}" for a, b in periods[:6]) + (" ..." if len(periods) > 6 else "")
        raise HTTPException(
            422,
            f"the public sees figures for published periods only ({contract.publication.period}s: {shown}); "
            "give from= and/or to= as one of them",
        )

    # -- figures (cached by store state); raise the library's own errors

    def measures(
        self, name: str, by: list[str], first: date, last: date, as_at: str | None = None
    ) -> list[dict[str, Any]]:
        contract = self.contract(name).contract
        run = self.run(as_at)
        return self._cache.get(
            ("measures", name, tuple(by), first, last, as_at),
            # the one target rule (terms.targets), each row saying where its target came from
            lambda: label_rows(run.measures(first, last, by=by, targets=contract_targets(contract)), contract),
        )

    def public_tables(self, name: str, period: tuple[date, date]) -> PublicTables:
        """Every public measure table of one published period, protected together (see
        :class:`~carecontract.publish.disclosure.PublicTables`)."""
        rows = self.measures(name, list(BREAKDOWNS), *period)
        return self._cache.get(("public", name, period), lambda: PublicTables(rows, BREAKDOWNS))

    def ledger(self, name: str) -> list[dict[str, Any]]:
        """Every posting of the contract's closed periods."""
        terms = self.contract(name)
        return self._cache.get(("ledger", name), lambda: PaymentBook(self.run().with_terms(terms), terms).paid_rows())

    def accountability(self, name: str, first: date, last: date, as_at: str | None = None) -> list[dict[str, Any]]:
        terms = self.contract(name)
        run = self.run(as_at).with_terms(terms)
        return self._cache.get(
            ("accountability", name, first, last, as_at),
            lambda: accountability(run, terms, first, last),
        )

    def stress(self, name: str) -> dict[str, Any]:
        contract = self.contract(name).contract
        return self._cache.get(("stress", name), lambda: stress(contract, self.stress_runs, 0))

    def quality(self, as_at: str | None = None) -> dict[str, Any]:
        run = self.run(as_at)
        return self._cache.get(("quality", as_at), lambda: run.quality_report())

    def decisions(self) -> DecisionLog | None:
        """The decision log, or None if the service has none (or it has no file yet)."""
        return DecisionLog(self.decision_log) if self.decision_log and self.decision_log.exists() else None

    def patient_rows(self, view: str, provider: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of the ``events`` or ``quarantine`` view that ``provider`` recorded."""
        if view not in ("events", "quarantine"):
            raise ValueError(f"no patient-level view {view!r}")
        con = self.store.connect()
        try:
            cursor = con.execute(f"SELECT * FROM {view} WHERE provider_code = ? LIMIT ?", [provider, limit])
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()
        for row in rows:  # the file's name, which the provider sent; not where the server keeps it
            if row.get("source_file"):
                row["source_file"] = PurePath(str(row["source_file"]).replace("\\", "/")).name
        return rows


def get_context(request: Request) -> ServiceContext:
    """The app's context, set by ``create_app`` on ``app.state``."""
    return request.app.state.context


Context = Annotated[ServiceContext, Depends(get_context)]
