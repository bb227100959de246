"""What the routes read: the store, the contracts served, and the figures, computed once per version.

``create_app`` builds one :class:`ServiceContext` and puts it on ``app.state``; every route gets it
through the :func:`get_context` dependency (``ctx: Context``). The routes decide who sees what;
the context only computes, and its figure methods (:meth:`ServiceContext.measures`,
:meth:`~ServiceContext.ledger`, ...) are the one place the service calls the library.

Caching (docs/service.md). Every figure is computed once per version of what it reads and kept in
one bounded LRU cache (:class:`Results`), keyed by that version, so a dashboard refresh or a crowd
of readers costs a dictionary lookup, and new data is never served stale:

- the **store version**: the last committed submission (``Store.version``), re-read only when the
  manifest file changes (its inode, size and modification time: every commit replaces it), so an
  ingest, a correction or a withdrawal is seen by the next request;
- the **as-at** asked for;
- the **payment book version**: the identity (path, size, modification time) of every file under
  ``<store>/payments/``, so a new ``pay`` (a period closed or re-closed) is seen by the next request,
  whatever the book's own layout;
- the request's own arguments (contract, period, breakdowns).

The measures are not recomputed per request: each store version (and as-at) gets one
:class:`~carecontract.measures.cube.MeasureCube`, every measure's counts by day and breakdown, and a
request for any period and breakdown filters and sums it (milliseconds, no engine connection).
What holds memory is bounded: at most ``cache_size`` results (default 256,
``CARECONTRACT_SERVICE_CACHE_SIZE``) and ``snapshots`` store snapshots (default 4,
``CARECONTRACT_SERVICE_SNAPSHOTS``: a Run with its engine connection, tables and cube), least
recently used dropped first; a new store version drops the old version's snapshots and results at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath
from typing import Annotated, Any

from cachetools import LRUCache
from fastapi import Depends, HTTPException, Request

from carecontract.baseline.accountability import accountability
from carecontract.errors import UserError
from carecontract.measures import cube as figures_store
from carecontract.measures.compute import BREAKDOWNS
from carecontract.measures.cube import MeasureCube, VersionFigures
from carecontract.payments.book import PaymentBook, slug
from carecontract.publish.decisions import DecisionLog
from carecontract.publish.disclosure import PublicTables, default_period, published_periods
from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.terms.loader import Terms
from carecontract.terms.targets import contract_targets, label_rows
from carecontract.viability.simulate import stress

log = logging.getLogger(__name__)
#: Seconds a new store version's figures are waited for from the writer that committed it before the
#: service makes them itself (the writer marks them a moment after its commit).
WRITER_GRACE = 5.0
#: The store version a request is answered from, set for the whole request by the service's response
#: layer (service/responses.py), so every figure of one response comes from one version.
PINNED: ContextVar[str | None] = ContextVar("carecontract_store_version", default=None)

#: Results kept (measure tables, public tables, ledgers, quality reports ...), least recently used dropped first.
DEFAULT_CACHE_SIZE = 256
#: Store snapshots kept (one per store version and as-at: a Run, its engine's tables and its measure cube).
DEFAULT_SNAPSHOTS = 4


def _setting(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.strip().isdigit() or int(value) < 1:
        raise UserError(f"{name}={value!r}: give a whole number of at least 1")
    return int(value)


class Results:
    """A bounded LRU cache (``cachetools.LRUCache``) that computes each missing key once.

    Requests for a key being computed wait for that computation rather than start another
    ("single flight"): a burst of readers after a new submission costs one computation, not one each.
    A computation that fails is not kept; the next request tries again.
    """

    def __init__(self, size: int) -> None:
        self._values: LRUCache = LRUCache(size)
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Event] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        while True:
            with self._lock:
                if key in self._values:
                    return self._values[key]  # a hit makes the key the most recently used
                waiting = self._pending.get(key)
                if waiting is None:
                    done = self._pending[key] = threading.Event()
            if waiting is not None:
                waiting.wait()
                continue  # computed (a hit now), or failed (compute it here)
            try:
                value = make()
                with self._lock:
                    self._values[key] = value
                return value
            finally:
                with self._lock:
                    del self._pending[key]
                done.set()

    def drop(self, keep: Callable[[Hashable], bool]) -> None:
        """Forget every result whose key ``keep`` refuses."""
        with self._lock:
            for key in [k for k in self._values if not keep(k)]:
                del self._values[key]


@dataclass
class Snapshot:
    """One store version read as at one as-at: its Run, and a lock for the Run's engine connection,
    which serves one query at a time (DuckDB refuses a second caller rather than waiting)."""

    run: Run
    version: str  # the store version it was made for ("" an empty store)
    lock: threading.Lock = field(default_factory=threading.Lock)
    figures: VersionFigures | None = None  # the version's saved figures (the latest view only)
    _cube: MeasureCube | None = field(default=None, init=False, repr=False)

    def cube(self) -> MeasureCube:
        """Every measure's counts by day and breakdown: the version's saved figures', else made once
        for this snapshot (once made, read without the lock: answering from it needs no engine)."""
        if self.figures is not None:
            return self.figures.cube
        if self._cube is None:
            with self.lock:
                if self._cube is None:
                    self._cube = MeasureCube.build(self.run.sources(detail=True))
        return self._cube

    def compute(self, make: Callable[[Run], Any]) -> Any:
        """``make(run)`` with the engine connection to itself."""
        with self.lock:
            return make(self.run)


class Versions:
    """The versions cached results are keyed by, each read cheaply: a ``stat`` or two per request."""

    def __init__(self, store: Store, books: list[str], decision_log: Path | None = None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._manifest: tuple[tuple[int, int, int] | None, str] = (None, "")
        # every file a pay, close, re-close, payment run or dispute replaces (atomically: a new inode)
        # in the books the service reads: the book's manifest (written last, after the ledger files
        # it names) and its journal (payments.book, payments.journal)
        self._book_files = [
            str(store.root / "payments" / book / name) for book in books for name in ("manifest.json", "journal.json")
        ]
        self._decision_log = None if decision_log is None else str(decision_log)

    def store_version(self) -> str:
        """The store's last committed submission ("" for an empty store), re-read only when the
        manifest changes."""
        stamp = _stamp(str(self.store.manifest_path))
        with self._lock:
            if stamp is not None and self._manifest[0] == stamp:
                return self._manifest[1]
        version = (self.store.at(None).version() or "") if stamp is not None else ""
        with self._lock:
            self._manifest = (stamp, version)
        return version

    def book_version(self) -> tuple:
        """The payment books' version: the identity (inode, size, modification time) of each book's
        manifest and journal, which every writer of a book replaces when it changes anything."""
        return tuple(_stamp(path) for path in self._book_files)

    def decision_log_version(self) -> tuple[int, int, int] | None:
        """The decision log's identity (it is appended to: its size changes)."""
        return None if self._decision_log is None else _stamp(self._decision_log)


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ServiceContext:
    """The service's store, its contracts by slug, and cached figures for them (see the module's
    docstring for what each is keyed by and how much is kept)."""

    def __init__(
        self,
        store: Store,
        terms: list[Terms],
        decision_log: str | Path | None = None,
        stress_runs: int = 5000,
        cache_size: int | None = None,
        snapshots: int | None = None,
    ) -> None:
        self.store = store
        self.contracts = {slug(t.contract.name): t for t in terms}
        self.decision_log = None if decision_log is None else Path(decision_log)
        self.stress_runs = stress_runs
        self.versions = Versions(store, list(self.contracts), self.decision_log)
        self.results = Results(cache_size or _setting("CARECONTRACT_SERVICE_CACHE_SIZE", DEFAULT_CACHE_SIZE))
        self._snapshots: LRUCache = LRUCache(snapshots or _setting("CARECONTRACT_SERVICE_SNAPSHOTS", DEFAULT_SNAPSHOTS))
        self._snapshots_lock = threading.Lock()
        self.ready: str | None = None  # the newest store version whose figures are ready (None: none yet)
        self.refreshing: str | None = None  # the version being made ready in the background, if any
        self._prepare_lock = threading.Lock()

    # -- which version a request is answered from (docs/service.md, "Stale while revalidating")

    def serving(self) -> tuple[str, str | None]:
        """(the store version to answer from, the newer version being made ready or None).

        The store's current version if its figures are ready, or are saved in the store (the command
        that committed it refreshed them: loaded here in milliseconds), or nothing is ready yet (a cold
        start: made now, once, the other requests waiting for it). Otherwise the last ready version,
        while the writer that committed makes the new one's figures (its marker says so) or, if none
        does, one background thread here; the next request after they are ready answers from them.
        May block: the service's response layer calls it off the event loop.
        A version made ready drops the snapshots and results of every version but itself and the
        one before it."""
        current = self.versions.store_version()
        ready = self.ready
        if ready == current:
            return current, None
        # saved by the writer that committed it (first, even while a thread here waits or works on
        # them: a writer's figures are loaded in milliseconds and answered from at once); or nothing
        # ready, or only an empty store's (no figures to answer from meanwhile): made now
        if not ready or current == "" or figures_store.saved(self.store.root, current):
            self._prepare(current)
            return current, None
        if ready is not None and self.refreshing is not None:
            return ready, current  # already being made
        if figures_store.building(self.store.root, current):
            return ready, current  # the writer is making them: answered from when saved
        with self._prepare_lock:
            if self.refreshing is None and self.ready != current:
                self.refreshing = current
                # not a daemon: an engine torn down mid-query at exit aborts the process
                threading.Thread(target=self._refresh, args=(current,), name="carecontract-refresh").start()
        return ready, current

    def _refresh(self, version: str) -> None:
        """Make ``version`` ready in the background: the figures its writer saves if one turns up
        (``carecontract ingest`` marks them only after its commit, so a request can see the new
        version a moment before the marker: waited for :data:`WRITER_GRACE` seconds), else computed
        here. Without the wait, a 10M-event store had both making the same figures for minutes."""
        try:
            root = self.store.root
            waited_until = time.monotonic() + WRITER_GRACE
            while not figures_store.saved(root, version):
                if not figures_store.building(root, version) and time.monotonic() >= waited_until:
                    break  # no writer (or it died): made here
                time.sleep(0.2)
            self._prepare(version)
        except Exception:  # the next request tries again; the old version is answered meanwhile
            log.exception("making the figures of store version %s ready failed", version)
        finally:
            self.refreshing = None

    def _prepare(self, version: str) -> None:
        """Make ``version``'s figures ready (loaded from the store, else computed and saved there), then
        answer from it, dropping older versions' snapshots and results. Once per version."""
        with self._prepare_lock:
            if self.ready == version:
                return
            done = None
            if version:
                done = figures_store.load(self.store.root, version)
                if done is None:
                    done = figures_store.compute(self.store.root, version)
                    try:
                        figures_store.save(self.store.root, done)
                    except OSError as exc:  # a read-only store: kept in memory only
                        log.warning("could not save the figures of store version %s: %s", version, exc)
            snapshot = self._new_snapshot(version, None, done)
            # kept: this version's, and the last one's (requests answered from it may still be running)
            keep = (version, self.ready, None)
            with self._snapshots_lock:
                for key in [k for k in self._snapshots if k[0] not in keep]:
                    del self._snapshots[key]
                self._snapshots[version, None] = snapshot
                self.results.drop(lambda key: not isinstance(key, tuple) or key[1] in keep)
                self.ready = version

    def _version(self) -> str:
        """The version this request is answered from (pinned by the response layer), else :meth:`serving`'s."""
        pinned = PINNED.get()
        return pinned if pinned is not None else self.serving()[0]

    def _new_snapshot(self, version: str, as_at: str | None, figures: VersionFigures | None = None) -> Snapshot:
        # the latest view is read as at its version (a submission id), so a commit landing while it
        # is read changes nothing in it
        at = as_at if as_at is not None else (version or None)
        run = Run(self.store, as_at=at)
        if figures is not None:  # what the figures hold, not read again (a full pass at 10M events)
            run.cached("event_range", lambda: figures.event_range)
        return Snapshot(run, version, figures=figures)

    def snapshot(self, as_at: str | None = None) -> Snapshot:
        """The store read as at ``as_at`` (``None``: the latest) for the version answered from: one per
        version and as-at, so every request between two ingests reads the same snapshot and shares
        what it computed (events, pathways, the measure cube). An unknown as-at is a 422."""
        version = self._version()
        with self._snapshots_lock:
            found = self._snapshots.get((version, as_at))
            if found is None:
                try:
                    found = self._new_snapshot(version, as_at)
                except UserError:  # its text names the server's path: say it without
                    raise HTTPException(
                        422, f"as_at {as_at!r}: neither a date (YYYY-MM-DD) nor a submission id or number of this store"
                    ) from None
                self._snapshots[version, as_at] = found
            return found

    def run(self, as_at: str | None = None) -> Run:
        """The Run of :meth:`snapshot` (for a route that reads it directly, under its own lock)."""
        return self.snapshot(as_at).run

    def cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        """``make()`` once per ``key``, whose second item is the store version it depends on (None: it
        depends on none, as the stress test and the payment book's ledger)."""
        return self.results.get(key, make)

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

    # -- figures (cached by version); raise the library's own errors

    def measures(
        self, name: str, by: list[str], first: date, last: date, as_at: str | None = None
    ) -> list[dict[str, Any]]:
        """The measures for [first, last] by ``by``, from the snapshot's measure cube."""
        contract = self.contract(name).contract
        snapshot = self.snapshot(as_at)
        return self.cached(
            ("measures", snapshot.version, as_at, name, tuple(by), first, last),
            # the one target rule (terms.targets), each row saying where its target came from
            lambda: label_rows(snapshot.cube().measures(first, last, by, targets=contract_targets(contract)), contract),
        )

    def on_engine(self, key: tuple, make: Callable[[Run], Any]) -> Any:
        """``make(run)`` once per ``key`` and store version, on the latest snapshot's Run with its
        engine connection to itself (figures the measure cube cannot answer: adjusted ratios, SPC).
        ``make`` must not itself ask this context for a figure."""
        snapshot = self.snapshot()
        return self.cached((key[0], snapshot.version, *key[1:]), lambda: snapshot.compute(make))

    def public_tables(self, name: str, period: tuple[date, date]) -> PublicTables:
        """Every public measure table of one published period, protected together (see
        :class:`~carecontract.publish.disclosure.PublicTables`)."""
        return self.cached(
            ("public", self.snapshot().version, name, period),
            lambda: PublicTables(self.measures(name, list(BREAKDOWNS), *period), BREAKDOWNS),
        )

    def ledger(self, name: str) -> list[dict[str, Any]]:
        """Every posting of the contract's closed periods (keyed by the book's files, not the store)."""
        terms = self.contract(name)
        return self.cached(
            ("ledger", None, self.versions.book_version(), name),
            lambda: PaymentBook(self.run().with_terms(terms), terms).paid_rows(),
        )

    def accountability(self, name: str, first: date, last: date, as_at: str | None = None) -> list[dict[str, Any]]:
        """Activity, cost and payments by commissioner and subcontractor: the store's and the book's."""
        terms = self.contract(name)
        snapshot = self.snapshot(as_at)

        def make(run: Run) -> list[dict[str, Any]]:
            if snapshot.figures is not None or snapshot._cube is not None:  # outcomes from the cube
                run.answer_measures_from(snapshot.cube())
            return accountability(run.with_terms(terms), terms, first, last)

        return self.cached(
            ("accountability", snapshot.version, as_at, self.versions.book_version(), name, first, last),
            lambda: snapshot.compute(make),
        )

    def stress(self, name: str) -> dict[str, Any]:
        """The stress test reads the terms only: computed once per contract."""
        contract = self.contract(name).contract
        return self.cached(("stress", None, name), lambda: stress(contract, self.stress_runs, 0))

    def quality(self, as_at: str | None = None) -> dict[str, Any]:
        """The data-quality report: the version's saved one for the latest view, else computed once."""
        snapshot = self.snapshot(as_at)
        if as_at is None and snapshot.figures is not None:
            return snapshot.figures.quality
        return self.cached(
            ("quality", snapshot.version, as_at), lambda: snapshot.compute(lambda run: _quality(run, as_at is None))
        )

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


def _quality(run: Run, latest: bool) -> dict[str, Any]:
    report = run.quality_report()
    if latest:  # the latest view, read by its version: as a Run of the latest reports it
        report["scope"]["as_at"] = None
    return report


def get_context(request: Request) -> ServiceContext:
    """The app's context, set by ``create_app`` on ``app.state``."""
    return request.app.state.context


Context = Annotated[ServiceContext, Depends(get_context)]
