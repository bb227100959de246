"""Compute outcome measures per period and breakdown, with their uncertainty and targets.

Each measure is one grouped aggregate over the table its definition names; the small result is
finished in Python (intervals, targets, funnel limits). The events are read through Ibis, so the
same code runs on DuckDB (default) or Spark (``engine="spark"``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import ibis
from ibis import _
from ibis.expr.types import Table

from carecontract.engine import Engine, read_events
from carecontract.errors import UserError
from carecontract.measures import funnel, standards, stats
from carecontract.measures.definitions import EQUITY_BASE, MEASURE_IDS, Measure, measures
from carecontract.measures.pathways import build
from carecontract.records.store import EVENT_COLUMNS, Store

BREAKDOWNS = ("commissioner", "provider", "tumour_site", "imd_quintile")
#: Counts of one measure for [start, end] by some breakdowns: (measure, start, end, by) → rows of
#: numerator, denominator (and sum_sq for a mean) and the breakdown keys, as :func:`aggregate` gives.
Counts = Callable[[Measure, date, date, tuple[str, ...]], list[dict[str, Any]]]


class MeasureError(UserError, ValueError):
    """A request that cannot be answered (unknown measure or breakdown, empty store)."""


@dataclass
class Sources:
    """The tables measures count, built once per run."""

    pathways: Table
    treatments: Table  # one row per treatment, paired with its decision to treat (the 31-day standard)
    deaths: Table
    experience: Table
    censor: date | None
    events: Table  # the events they were built from, for other questions on the same engine
    detail: bool = True  # whether the pathways carry providers and tumour sites
    release: Callable[[], None] = lambda: None  # drops the engine-side tables behind these, when done

    def table(self, measure: Measure) -> Table:
        tables = {
            "pathways": self.pathways,
            "treatments": self.treatments,
            "deaths": self.deaths,
            "experience": self.experience,
        }
        return tables[measure.source]


def events_table(store: Store, engine: Engine = "duckdb", spark_master: str | None = None) -> Table:
    """The store's events as an Ibis table on the chosen engine (an empty, typed table for an empty store)."""
    files = [str(f) for f in store.files("events")]
    if not files:
        schema = ibis.schema({c: _ibis_type(t) for c, t in EVENT_COLUMNS.items()})
        return ibis.memtable({c: [] for c in EVENT_COLUMNS}, schema=schema)
    state = store.state_file()  # the store's version: rows superseded, withdrawn or held are not read
    return read_events(files, engine, spark_master, f"events_{store.fingerprint()}", str(state) if state else None)


def _ibis_type(sql_type: str) -> str:
    return {
        "VARCHAR": "string",
        "DATE": "date",
        "TINYINT": "int8",
        "INTEGER": "int32",
        "DOUBLE": "float64",
        "DECIMAL(14,2)": "decimal(14,2)",
        "SMALLINT": "int16",
        "BIGINT": "int64",
    }[sql_type]


_KEPT = itertools.count()  # a name of its own for every table kept in this process
#: Parts a table that ran out of memory is kept in, each its own statement (see :func:`_keep_in_parts`).
KEEP_PARTS = 8


def _keep_in_parts(backend: ibis.BaseBackend, name: str, table: Table, parts: int = KEEP_PARTS) -> Table:
    """Keep ``table`` as a temporary table ``name`` in ``parts`` statements, each for the rows whose
    first column hashes to one part, after one statement for all of it ran out of DuckDB's memory limit.

    Why: DuckDB spills joins and aggregates, but an aggregate's hash table over tens of millions of
    groups, with string states (the pathway summary's ``arg_min`` of providers and sites), still
    needs large allocations at once: at 100M events in 6 GB the pathway summary ran out on two
    threads and on one (DuckDB 2.0, "Guides > Performance > Out-of-Memory Issues"). Every kept table's
    first column is its key (the pathway, the treatment), and a filter on it is pushed below the
    aggregate and into the join that feeds it, so each part holds about 1/``parts`` of the state.
    Slower (each part reads the events again), so only after the one statement failed."""
    backend.raw_sql(f'DROP TABLE IF EXISTS "{name}"').fetchall()  # what the failed statement left
    sql = str(ibis.to_sql(table, dialect="duckdb"))
    key = table.columns[0]
    for part in range(parts):
        rows = f'SELECT * FROM ({sql}) WHERE hash("{key}") % {parts} = {part}'
        into = f'CREATE TEMP TABLE "{name}" AS ' if part == 0 else f'INSERT INTO "{name}" '
        backend.raw_sql(into + rows).fetchall()  # fetched: DuckDB 2.0 refuses the next statement else
    return backend.table(name)


def sources(events: Table, detail: bool = True) -> Sources:
    censor = events.event_date.max().execute()
    try:
        backend = events._find_backend()
    except Exception:  # an in-memory table (empty store): use the default backend
        backend = ibis.get_backend()

    kept: list[str] = []

    def keep(name: str, table: Table) -> Table:
        if backend.name == "pyspark":  # Spark has no temporary tables in Ibis: persist the DataFrame instead
            return table.cache()
        # an explicit temporary table rather than .cache(), whose finaliser fails under DuckDB 2.0; a
        # name of its own, so no overwrite (Ibis's overwrite of a temporary table fills one, then
        # copies it whole into another: twice the work and the memory at national scale)
        kept.append(f"{name}_{id(events)}_{next(_KEPT)}")
        try:
            return backend.create_table(kept[-1], table, temp=True)
        except duckdb.OutOfMemoryException:
            return _keep_in_parts(backend, kept[-1], table)

    def drop(names: list[str]) -> None:
        for name in names:
            backend.drop_table(name, force=True)

    tables = build(events, detail, keep)  # the treatments are kept as they are built
    built = keep("pathways", tables.pathways)
    treatments = tables.treatments
    final = kept[-2:]  # the treatments and the pathways; the tables they were built from can go now
    drop(kept[:-2])
    people = events.select(
        "commissioner_code",
        "imd_quintile",
        "provider_code",
        "event_date",
        "event_type",
        "place_of_death",
        "usual_residence",
        "score",
        "record_id",
    )
    return Sources(
        pathways=built,
        treatments=treatments,
        deaths=people.filter(_.event_type == "death"),
        experience=people.filter(_.event_type == "patient_experience"),
        censor=censor,
        detail=detail,
        events=events,
        release=lambda: drop(final),
    )


def pathway_checks(src: Sources) -> dict[str, int]:
    """Pathway-level data-quality counts the measures depend on, for the quality report.

    ``treatment_before_decision``: treatments dated before the decision to treat they are paired
    with; the 31-day standard counts them as 0 days (a reversed clock cannot be a wait), so a
    provider cannot gain from them unseen.
    """
    t = src.treatments
    count = t.filter(t.decision_date.notnull(), t.treatment_date < t.decision_date).count().execute()
    return {"treatment_before_decision": int(count)}


def _keyed(measure: Measure, table: Table, by: tuple[str, ...]) -> Table:
    keys = {
        "commissioner": _.commissioner_code,
        "provider": measure.provider,
        "tumour_site": measure.tumour_site,
        "imd_quintile": _.imd_quintile,
    }
    return table.mutate(
        _in=measure.population,
        _period=measure.period_date,
        _value=measure.numerator,
        **{k: keys[k] for k in by},
    )


def aggregate(measure: Measure, src: Sources, start: date, end: date, by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Numerator and denominator (or sum and sum of squares for a mean) per breakdown group."""
    table = _keyed(measure, src.table(measure), by)
    table = table.filter(_._in, _._period.between(start, end))
    if measure.kind == "mean":
        value = table._value.cast("float64")
        metrics = {"denominator": table.count(), "numerator": value.sum(), "sum_sq": (value * value).sum()}
    else:
        metrics = {"denominator": table.count(), "numerator": table._value.cast("int64").sum()}
    result = table.group_by(list(by)).aggregate(**metrics) if by else table.aggregate(**metrics)
    rows = result.to_pyarrow().to_pylist()
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in by))


def _finish(
    measure: Measure, row: dict[str, Any], target: float | None, operational: float | None = None
) -> dict[str, Any]:
    n, d = row.pop("numerator") or 0, row.pop("denominator")
    if measure.kind == "mean":
        total_sq = row.pop("sum_sq") or 0.0
        rate = n / d if d else None
        low, high = stats.mean_interval(n, total_sq, d)
        n = round(n, 6)
    else:
        rate = n / d if d else None
        low, high = stats.wilson(n, d)
    met = None
    if target is not None and rate is not None:
        met = rate >= target if measure.higher_is_better else rate <= target
    return {
        "measure": measure.id,
        "numerator": n,
        "denominator": d,
        "rate": rate,
        "ci_low": low,
        "ci_high": high,
        "target": target,
        "met": met,
        **({"operational_target": operational} if operational is not None else {}),
        **row,
    }


def _equity(
    base: Measure, counts: Counts, start: date, end: date, by: tuple[str, ...], target: float | None
) -> list[dict]:
    keys = tuple(k for k in by if k != "imd_quintile")
    groups: dict[tuple, dict[int, tuple[int, int]]] = {}
    for row in counts(base, start, end, (*keys, "imd_quintile")):
        groups.setdefault(tuple(row[k] for k in keys), {})[row["imd_quintile"]] = (
            row["numerator"] or 0,
            row["denominator"],
        )
    if not keys and not groups:
        groups[()] = {}  # an overall figure is always reported, even when nothing was diagnosed
    out = []
    for key, quintiles in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        (n5, d5), (n1, d1) = quintiles.get(5, (0, 0)), quintiles.get(1, (0, 0))
        rate = (n5 / d5 - n1 / d1) if d5 and d1 else None
        low, high = stats.newcombe(n5, d5, n1, d1)
        met = None if target is None or rate is None else rate <= target
        row = {
            "measure": "equity_gap",
            "numerator": None,
            "denominator": d1 + d5,
            "rate": rate,
            "ci_low": low,
            "ci_high": high,
            "target": target,
            "met": met,
            "base_measure": EQUITY_BASE,
        }
        row["least_deprived"] = {"numerator": n5, "denominator": d5}
        row["most_deprived"] = {"numerator": n1, "denominator": d1}
        out.append({**row, **dict(zip(keys, key, strict=True))})
    return out


def _add_funnel(rows: list[dict[str, Any]]) -> None:
    """Funnel-plot data: each group's control limits around the measure's overall rate, widened for
    overdispersion (Spiegelhalter 2005; docs/measures.md, "Fair comparisons")."""
    if not sum(r["denominator"] for r in rows):
        return
    plot = funnel.funnel([(str(i), r["numerator"] or 0, r["denominator"]) for i, r in enumerate(rows)])
    for r, p in zip(rows, plot.points, strict=True):
        r["funnel"] = {
            "overall": plot.target,
            "limits_95": [p.limits.low95, p.limits.high95],
            "limits_998": [p.limits.low998, p.limits.high998],
            "outlier": p.outlier is not None,
            "phi": plot.phi,
            "tau2": plot.tau2,
        }


def check_request(
    start: date, end: date, by: Iterable[str] = (), only: Iterable[str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The breakdowns and measures asked for, as tuples; :class:`MeasureError` for any that do not exist."""
    by = tuple(by)
    unknown = [b for b in by if b not in BREAKDOWNS]
    if unknown:
        raise MeasureError(f"unknown breakdown {', '.join(unknown)} (valid: {', '.join(BREAKDOWNS)})")
    wanted = tuple(only) if only else MEASURE_IDS
    bad = [m for m in wanted if m not in MEASURE_IDS]
    if bad:
        raise MeasureError(f"unknown measure {', '.join(bad)} (valid: {', '.join(MEASURE_IDS)})")
    if start > end:
        raise MeasureError(f"--from {start} is after --to {end}")
    return by, wanted


def needs_detail(by: Iterable[str]) -> bool:
    """Whether the pathways must carry providers and tumour sites (an arg_min each: built only when a
    breakdown needs them)."""
    return bool({"provider", "tumour_site"} & set(by))


def compute_measures(
    store: str | Path | Store,
    start: date,
    end: date,
    by: Iterable[str] = (),
    targets: dict[str, float] | None = None,
    only: Iterable[str] | None = None,
    src: Sources | None = None,
    engine: Engine = "duckdb",
    spark_master: str | None = None,
) -> list[dict[str, Any]]:
    """Every measure (or ``only`` these) for cases whose period date falls in [start, end].

    ``src`` reuses tables already built (see :func:`sources`) when one caller asks many questions
    of the same store, as a pay run does year after year. ``engine`` runs the same definitions on
    DuckDB or Spark.
    """
    store = store if isinstance(store, Store) else Store(store)
    by, wanted = check_request(start, end, by, only)
    detail = needs_detail(by)
    own = src is None or (detail and not src.detail)
    if own:
        src = sources(events_table(store, engine=engine, spark_master=spark_master), detail=detail)
    try:
        return _compute(src, start, end, by, wanted, targets or {})
    finally:
        if own:  # built for this call alone: free the engine's copy
            src.release()


def _compute(
    src: Sources, start: date, end: date, by: tuple[str, ...], wanted: tuple[str, ...], targets: dict[str, float]
) -> list[dict[str, Any]]:
    def counts(measure: Measure, first: date, last: date, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        return aggregate(measure, src, first, last, keys)

    return finish(src.censor, counts, start, end, by, wanted, targets)


def finish(
    censor: date | None,
    counts: Counts,
    start: date,
    end: date,
    by: tuple[str, ...],
    wanted: tuple[str, ...],
    targets: dict[str, float],
) -> list[dict[str, Any]]:
    """The measures' rows from their ``counts`` (as :func:`aggregate` gives them): intervals, targets,
    the equity gap and funnel limits, the same whoever counted (the engine here; a table of counts
    made once, in :mod:`carecontract.measures.cube`)."""
    defs = measures(censor)
    results: list[dict[str, Any]] = []
    for measure_id in wanted:
        measure = defs[measure_id]
        # the contract's target, else England's standard in force on the period's last day
        target = targets.get(measure_id, standards.standard(measure_id, end))
        operational = standards.operational(measure_id, end)
        if measure_id == "equity_gap":
            rows = _equity(defs[EQUITY_BASE], counts, start, end, by, target)
        else:
            rows = [_finish(measure, r, target, operational) for r in counts(measure, start, end, by)]
            if by and measure.kind == "proportion":
                _add_funnel(rows)
        results.extend(rows)
    return results
