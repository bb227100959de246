"""The measures finish when DuckDB runs out of memory in a materialisation: once more, on one thread.

At 100M events in a 6 GB limit the pathway summary ran out on two threads (issue 22). The pathway
summary's aggregate is now kept apart from its joins, and a materialisation that still runs out is
tried again on one thread. Here DuckDB's out-of-memory error is injected into the first
materialisation, and the measures must come out the same as without it, with the connection's thread
count given back afterwards.
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


def test_a_materialisation_that_runs_out_is_retried_on_one_thread(
    paid_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _as_counts(compute_measures(Store(paid_store), START, END))
    events = events_table(Store(paid_store))
    backend = events._find_backend()
    backend.raw_sql("SET threads = 2").fetchall()
    real = type(backend).create_table
    seen: list[tuple[str, int]] = []

    def running_out_once(self, name, obj=None, **kwargs):
        threads = self.raw_sql("SELECT current_setting('threads')").fetchall()[0][0]
        seen.append((name, threads))
        if len(seen) == 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block (injected)")
        return real(self, name, obj, **kwargs)

    monkeypatch.setattr(type(backend), "create_table", running_out_once)
    src = sources(events, detail=True)
    monkeypatch.undo()
    try:
        assert seen[0][1] == 2 and seen[1] == (seen[0][0], 1)  # the same table again, on one thread
        assert all(threads == 2 for _, threads in seen[2:])  # and the others on the connection's own
        assert backend.raw_sql("SELECT current_setting('threads')").fetchall()[0][0] == 2
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
