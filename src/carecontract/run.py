"""The run context: one object per command or request that every computation reads the data through.

Before, the store's path was threaded through every call and each layer opened it again: a pay
run reached the measures by two roads (each fee year's gate and each outcome year's payment), and
each built its own events table. A :class:`Run` is built once, at the edge (a CLI command, an
API request, a notebook cell), and passed down. It holds the store, the engine the queries run
on, the terms if the caller has them, and the point in the store's history to read (``as_at``: a date or
a submission id; ``None``, the latest committed state). ``Run(..., as_at=...)`` is the one entry
point for as-at reads: the Run's store is the store *as at* that point (:class:`Store` with
``as_at``), so every reader below it (events on either engine, measures, quality, gate, payments,
baseline, report, service) sees that version without knowing. What it computes it keeps:

- the events table, built once for the engine;
- the measures' source tables (pathways, deaths, experience returns), built once;
- the measures for one (period, breakdown, selection), computed once;
- the data-quality report, computed once;

so two readers in one run see the same figures and pay for them once. Layers: a Run reads the
records and computes measures; terms may ride along; payments, the baseline, viability, publish,
the service and the CLI take a Run (or, for callers not yet converted, a store path they make one
from). The terms' gate does not import this module: it takes any object with ``measures`` and
``quality_report`` (:class:`carecontract.terms.gate.Evidence`), which a Run is.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from ibis.expr.types import Table

from carecontract.engine import Engine, check_engine
from carecontract.measures.compute import (
    Sources,
    check_request,
    compute_measures,
    events_table,
    needs_detail,
    pathway_checks,
    sources,
)
from carecontract.measures.cube import MeasureCube
from carecontract.records.quality import quality
from carecontract.records.store import AsAt, Store
from carecontract.terms.loader import Terms
from carecontract.terms.model import Contract

T = TypeVar("T")
MEASURE_CUBE = "measure_cube"  # the run's cache key of a cube its measures are answered from
StoreLike = str | os.PathLike[str] | Store


@dataclass(frozen=True, eq=False)
class Run:
    """The data a command reads, opened once, and what has been computed from it so far.

    ``Run(store, terms=None, engine="duckdb", spark_master=None, as_at=None)``; ``store`` may be a
    path. Fields are fixed once built; only the cache behind them fills in.

    ``as_at`` (a date, an ISO date string or a submission id) reads the store as it stood then; a
    store given with its own ``as_at`` keeps it unless the Run is given one. Two Runs at the same
    as-at give the same figures whatever was submitted since.
    """

    store: Store
    terms: Terms | None = None
    engine: Engine = "duckdb"
    spark_master: str | None = None
    as_at: AsAt = None  # the store's state to read; None: the latest committed
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def __post_init__(self) -> None:
        store = self.store if isinstance(self.store, Store) else Store(self.store)
        if self.as_at is not None:
            store = store.at(self.as_at)
        object.__setattr__(self, "store", store)
        object.__setattr__(self, "as_at", store.as_at)
        check_engine(self.engine)
        store.committed()  # an unknown submission id fails here, in one line

    @classmethod
    def of(
        cls,
        source: Run | StoreLike,
        terms: Terms | None = None,
        *,
        engine: Engine = "duckdb",
        spark_master: str | None = None,
        as_at: AsAt = None,
    ) -> Run:
        """``source`` itself if it is a Run (its own engine, terms and as-at stand), else a new Run over it.

        The bridge for functions that still accept a store path: ``run = Run.of(store, engine=engine)``.
        """
        if isinstance(source, Run):
            return source
        return cls(source, terms, engine, spark_master, as_at)

    @property
    def version(self) -> str | None:
        """The last submission this Run reads (None: an empty store, or an as-at before any)."""
        return self.cached("version", self.store.version)

    def with_terms(self, terms: Terms | None) -> Run:
        """The same data, and what has been computed from it so far, under other terms (a what-if
        beside the official terms, or terms chosen per request over one store)."""
        other = Run(self.store, terms, self.engine, self.spark_master, self.as_at)
        object.__setattr__(other, "_cache", self._cache)  # results keyed on what they depend on
        object.__setattr__(other, "_lock", self._lock)
        return other

    # -- what the run holds ----------------------------------------------------------------------
    @property
    def contract(self) -> Contract:
        if self.terms is None:
            raise ValueError("this run was built without terms")
        return self.terms.contract

    def cached(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` the first time ``key`` is asked for in this run; the same object after.

        For results other layers derive from the run's data (a contract's costs by year, say). The
        key must identify everything the result depends on besides the run itself.
        """
        with self._lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return self._cache[key]

    @property
    def events(self) -> Table:
        """The store's events as an Ibis table on the run's engine, built once."""
        return self.cached("events", lambda: events_table(self.store, self.engine, self.spark_master))

    def sources(self, detail: bool = False) -> Sources:
        """The tables the measures count, built once; with providers and tumour sites if ``detail``.

        Tables built with detail answer questions without it too, so at most one of each is built,
        and only if a breakdown by provider or tumour site is asked for.
        """
        with self._lock:
            built = self._cache.get("sources")
            if built is None or (detail and not built.detail):
                built = self._cache["sources"] = sources(self.events, detail=detail)
            return built

    def event_range(self) -> tuple[Any, Any]:
        """(first, last) accepted event date, or (None, None) for an empty store."""
        return self.cached("event_range", self.store.event_range)

    # -- what the run computes -------------------------------------------------------------------
    def measures(
        self,
        start: date,
        end: date,
        by: Iterable[str] = (),
        *,
        only: Iterable[str] | None = None,
        targets: Mapping[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """:func:`~carecontract.measures.compute.compute_measures` for [start, end], computed once per
        (period, breakdown, selection, targets) in this run. Each call gets its own copy of the rows."""
        by, _ = check_request(start, end, by, only)  # a bad request fails before any table is built
        selection = tuple(only) if only else None
        key = ("measures", start, end, by, selection, tuple(sorted((targets or {}).items())))

        def compute() -> list[dict[str, Any]]:
            cube = self._cache.get(MEASURE_CUBE)
            if cube is not None:  # the same rows, by filtering and summing counts made once
                return cube.measures(start, end, by, only=selection, targets=dict(targets or {}))
            src = self.sources(needs_detail(by))
            return compute_measures(self.store, start, end, by, targets=dict(targets or {}), only=selection, src=src)

        return copy.deepcopy(self.cached(key, compute))

    def answer_measures_from(self, cube: MeasureCube) -> None:
        """Answer :meth:`measures` from ``cube`` (every measure's counts over this run's view, e.g. a
        store version's saved figures) instead of a pass over the pathways on the engine: a minute or
        more at national scale, for the same rows (``measures.cube``; tests/test_service_cache.py)."""
        with self._lock:
            self._cache[MEASURE_CUBE] = cube

    def quality_report(self, start: date | None = None, end: date | None = None) -> dict[str, Any]:
        """The data-quality report (:func:`carecontract.records.quality.quality`) of the Run's view of
        the store, over events dated in [start, end] if given, computed once per period; with the
        pathway checks the measures depend on (``pathways``: treatments dated before their decision to
        treat, over the whole view), which the records layer cannot compute since it sits below the
        measures."""

        def compute() -> dict[str, Any]:
            report = quality(self.store, start, end).as_dict()
            report["pathways"] = pathway_checks(self.sources())
            return report

        return copy.deepcopy(self.cached(("quality", start, end), compute))
