"""The measures finish when DuckDB runs out of memory in a materialisation: kept again, in parts.

At 100M events in a 6 GB limit the pathway summary ran out on two threads (issue 22). The pathway
summary's aggregate is now kept apart from its joins, and a materialisation that still runs out is
kept again in parts (by a hash of its key column). Here DuckDB's out-of-memory error is injected into
the first materialisation: the table kept in parts must hold every row once, and the measures must
come out the same as without it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import ibis
import pytest

from carecontract.measures.compute import compute_measures, events_table, sources
from carecontract.records.store import Store

START, END = date(2017, 4, 1), date(2020, 3, 31)


def _as_counts(rows: list[dict]) -> dict[str, tuple]:
    return {r["measure"]: (r["numerator"], r["denominator"]) for r in rows}


def test_a_materialisation_that_runs_out_is_kept_in_parts(paid_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = sources(events_table(Store(paid_store)), detail=True)
    try:
        expected = _as_counts(compute_measures(Store(paid_store), START, END, src=plain))
        whole = plain.pathways.count().execute()
    finally:
        plain.release()
    events = events_table(Store(paid_store))
    backend = events._find_backend()
    real = type(backend).create_table
    seen: list[str] = []

    def running_out_on_the_pathways(self, name, obj=None, **kwargs):
        seen.append(name)
        if name.startswith("pathways_"):
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block (injected)")
        return real(self, name, obj, **kwargs)

    monkeypatch.setattr(type(backend), "create_table", running_out_on_the_pathways)
    src = sources(events, detail=True)
    monkeypatch.undo()
    try:
        assert [n for n in seen if n.startswith("pathways_")] and seen[-1].startswith("pathways_")
        rows, distinct = backend.raw_sql(f'SELECT count(*), count(DISTINCT pathway_id) FROM "{seen[-1]}"').fetchall()[0]
        assert rows == distinct == whole > 0  # kept in parts: every pathway, once
        got = _as_counts(compute_measures(Store(paid_store), START, END, src=src))
    finally:
        src.release()
    assert got == expected


def test_an_error_that_is_not_memory_is_not_retried(paid_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = events_table(Store(paid_store))
    backend = events._find_backend()
    calls: list[str] = []

    def failing(self, name, obj=None, **kwargs):
        calls.append(name)
        raise duckdb.IOException("disk full (injected)")

    monkeypatch.setattr(type(backend), "create_table", failing)
    with pytest.raises(duckdb.IOException):
        sources(events, detail=True)
    assert len(calls) == 1
    assert isinstance(backend, ibis.BaseBackend)
