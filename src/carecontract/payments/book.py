"""The payment book: closed periods, versioned, idempotent and crash-safe.

Layout, inside the store directory::

    payments/<contract-slug>/manifest.json          every version of every closed period
    payments/<contract-slug>/<year>-v<n>.parquet    that version's ledger postings
    payments/<contract-slug>--what-if-<fingerprint>/ the same for a run with --set overrides

Closing a period is idempotent: the inputs (the terms' fingerprint, with any what-ifs, and the
committed submissions of the store's view) are fingerprinted, and a period already closed on the same
inputs is left alone.

A close reads a frozen view of the store: the Run's ``as_at`` (a date or a submission; by default the
latest submission at the moment of closing). Each version records that view (``as_at``: what was
asked, ``store_version``: the last submission it read), so "what did the figures say when we paid"
is ``Run(store, as_at=version["store_version"])``. Re-closing after corrections have arrived reads a
newer view, so it makes a new version with its difference from the one before. Any changed input
produces a new version with a diff by account against the previous one — a correction is
recorded, never a silent overwrite. The manifest is replaced atomically
after the Parquet file is written, as for ingest, so a crash leaves the book as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from carecontract.engine import Engine
from carecontract.payments.ledger import Ledger
from carecontract.payments.pay import pay_contract
from carecontract.payments.rules import YearResult
from carecontract.records.store import write_json_atomic
from carecontract.run import Run, StoreLike
from carecontract.terms.loader import Terms
from carecontract.terms.model import Contract

RULES_VERSION = "2"  # bump when the payment rules change, so closed periods are recomputed


def covered_years(contract: Contract, store: Run | StoreLike) -> list[int]:
    """Contract years (by start year) that have ended and that the store's events overlap."""
    first, last = Run.of(store).event_range()
    if first is None:
        return []
    years = []
    for i, start in enumerate(contract.contract_years()):
        end = contract.term.year_start(i + 1)
        if start <= last and end > first and end <= date.today():
            years.append(start.year)
    return years


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class PaymentBook:
    """The closed periods of one contract's terms (with their what-ifs) over one store.

    ``store`` is a Run (its store, engine and, if ``terms`` is not given, its terms are used) or a
    store path, read on ``engine``.
    """

    def __init__(
        self,
        store: Run | StoreLike,
        terms: Terms | None = None,
        engine: Engine = "duckdb",
        spark_master: str | None = None,
    ) -> None:
        self.run = Run.of(store, terms, engine=engine, spark_master=spark_master)
        self.store = self.run.store
        terms = terms if terms is not None else self.run.terms
        if terms is None:
            raise ValueError("a payment book needs terms: pass them, or a Run built with them")
        self.terms: Terms = terms
        # the engine is not part of the inputs' fingerprint: both give the same ledger (parity-tested)
        self.engine, self.spark_master = self.run.engine, self.run.spark_master
        # a what-if (--set) is kept in a book of its own, so it can never become the official close
        name = slug(terms.contract.name) + (f"--what-if-{terms.fingerprint}" if terms.overrides else "")
        self.root = self.store.root / "payments" / name

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"contract": self.terms.contract.name, "versions": []}
        return json.loads(self.manifest_path.read_text())

    def frozen_view(self) -> dict[str, Any]:
        """The view of the store a close reads: what was asked, and the last submission it includes."""
        as_at = self.run.as_at
        return {"as_at": None if as_at is None else str(as_at), "store_version": self.run.version}

    def inputs_fingerprint(self, year: int) -> str:
        text = f"{RULES_VERSION}|{self.terms.fingerprint}|{self.store.fingerprint()}|{year}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def latest(self, year: int) -> dict[str, Any] | None:
        versions = [v for v in self.manifest()["versions"] if v["period"] == year]
        return versions[-1] if versions else None

    def close(self, years: list[int] | None = None) -> list[dict[str, Any]]:
        """Close each period (default: every contract year); returns what happened to each."""
        years = years or [d.year for d in self.terms.contract.contract_years()]
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._sweep()
            todo = [y for y in years if (self.latest(y) or {}).get("inputs") != self.inputs_fingerprint(y)]
            outcome = {
                y: {**(self.latest(y) or {}), "period": y, "status": "unchanged"} for y in years if y not in todo
            }
            if todo:
                ledger, results = pay_contract(self.terms.contract, self.run, todo)
                manifest = self.manifest()
                for result in results:
                    entry = self._write_version(manifest, ledger, result)
                    outcome[result.year] = entry
                write_json_atomic(self.manifest_path, manifest)  # the commit point
        return [outcome[y] for y in years]

    def _write_version(self, manifest: dict[str, Any], ledger: Ledger, result: YearResult) -> dict[str, Any]:
        year = result.year
        previous = self.latest(year)
        version = (previous or {}).get("version", 0) + 1
        file = f"{year}-v{version}.parquet"
        pq.write_table(pa.Table.from_pylist(ledger.rows(year)), self.root / file)
        balances = ledger.balances(year)
        diff = None
        if previous:
            before = previous["by_account"]
            accounts = sorted(set(before) | set(balances))
            diff = {
                a: balances.get(a, 0) - before.get(a, 0) for a in accounts if balances.get(a, 0) != before.get(a, 0)
            }
        summary = {k: v for k, v in asdict(result).items() if k not in ("start", "end")}
        entry = {
            "period": year,
            "version": version,
            "status": "new" if previous is None else ("changed" if diff else "recomputed, same payments"),
            "file": file,
            "inputs": self.inputs_fingerprint(year),
            **self.frozen_view(),
            "terms": self.terms.provenance(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "by_account": balances,
            "diff": diff,
            "result": summary,
        }
        manifest["versions"].append(entry)
        return entry

    def _sweep(self) -> None:
        """Remove version files a crash left behind (written, never committed)."""
        committed = {v["file"] for v in self.manifest()["versions"]}
        for path in self.root.glob("*.parquet"):
            if path.name not in committed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def ledger_rows(self, years: list[int] | None = None) -> list[dict[str, Any]]:
        """The postings of the latest version of each closed period."""
        out: list[dict[str, Any]] = []
        latest: dict[int, dict[str, Any]] = {}
        for v in self.manifest()["versions"]:
            latest[v["period"]] = v
        for year in sorted(latest):
            if years is None or year in years:
                out.extend(pq.read_table(self.root / latest[year]["file"]).to_pylist())
        return out

    def paid_rows(self, years: list[int] | None = None) -> list[dict[str, Any]]:
        """What was actually paid, year by year: the journal's postings (payments on account, true-up,
        later reconciliations, money in suspense while a dispute is open) for every year ``pay`` has
        posted; the latest statement's postings for a year only closed into the book (``close``,
        the notebook's older ``cc.pay``). Each row says which (``source``: ``journal`` or
        ``statement``). Every surface that shows money paid reads this, so none shows a statement
        where payments were made."""
        from carecontract.payments.journal import Journal

        journal = [r | {"source": "journal"} for r in Journal(self.root, self.terms.contract.name).rows(years)]
        posted = {r["period"] for r in journal}
        closed = [r | {"source": "statement"} for r in self.ledger_rows(years) if r["period"] not in posted]
        return sorted(journal + closed, key=lambda r: r["period"])
