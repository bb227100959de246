"""Every measure's counts by day and by every breakdown, made once, so any period and breakdown is a filter and a sum.

Why: a service asked for the measures of many periods and breakdowns of one store version would
otherwise run every measure's grouped aggregate over the pathways again for each request (seconds
each at 150k events). Each measure is additive over its cases: a case counts in the period holding
its period date (:attr:`~carecontract.measures.definitions.Measure.period_date`), and the
numerator, denominator and, for a mean, the sum of squares are sums. So one table per measure of
those sums by (period date, commissioner, provider, tumour site, IMD quintile) answers every
question :func:`~carecontract.measures.compute.compute_measures` answers — any [start, end], any
breakdowns — by keeping the days in the period and summing by the breakdowns asked for. The rows are
then finished by the same code as the engine's (:func:`~carecontract.measures.compute.finish`:
intervals, targets, equity gap, funnel limits), so the figures are the same, not a second copy.

The table is built once per store version (:meth:`MeasureCube.build`, one grouped aggregate per
measure on the Run's engine) and held as Arrow; answering reads Arrow only (no engine connection),
so requests answer in parallel. Its size is at most one row per measure, day and breakdown cell
that holds a case, and never more rows than the cases counted.

Persisted per store version (:func:`refresh`, :func:`load`). On a national store one build takes
minutes, far too long for a request, so the commands that commit a submission (``carecontract
ingest``/``import``, ``cc.ingest``/``cc.import_files``) build it right after the commit returns and
keep it in ``<store>/figures/<version>/`` with the version's data-quality report, which costs a full
scan too: counts only (no row of any patient), owner-only like the rest of the store, internal (the
service reads it; it is never published as-is). The service loads it in milliseconds, so the first
request after such a command sees the new version at once; a writer that did not refresh leaves the
service to build it in the background (docs/service.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from carecontract.measures.compute import (
    BREAKDOWNS,
    Sources,
    _keyed,
    check_request,
    events_table,
    finish,
    pathway_checks,
    sources,
)
from carecontract.measures.definitions import Measure, measures
from carecontract.records.quality import quality
from carecontract.records.store import PRIVATE_DIR, PRIVATE_FILE, Store

DAY = "_period"


@dataclass(frozen=True)
class MeasureCube:
    """Each measure's sums by day and breakdown cell (``tables``, Arrow), and the store's censor date."""

    censor: date | None
    tables: Mapping[str, pa.Table]

    @classmethod
    def build(cls, src: Sources) -> MeasureCube:
        """The counts of every measure over ``src`` (built with detail: providers and tumour sites)."""
        if not src.detail:
            raise ValueError("a measure cube needs sources built with detail (providers and tumour sites)")
        tables = {}
        for measure in measures(src.censor).values():
            if measure.kind == "gap":  # the equity gap is derived from its base measure's counts
                continue
            table = _keyed(measure, src.table(measure), BREAKDOWNS)
            table = table.filter(table._in, table._period.notnull())
            metrics: dict[str, Any] = {"denominator": table.count()}
            if measure.kind == "mean":
                value = table._value.cast("float64")
                metrics |= {"numerator": value.sum(), "sum_sq": (value * value).sum()}
            else:
                metrics["numerator"] = table._value.cast("int64").sum()
            tables[measure.id] = table.group_by([DAY, *BREAKDOWNS]).aggregate(**metrics).to_pyarrow()
        return cls(src.censor, tables)

    @property
    def nbytes(self) -> int:
        """Bytes the counts hold (what a cache of cubes weighs)."""
        return sum(t.nbytes for t in self.tables.values())

    def counts(self, measure: Measure, start: date, end: date, by: tuple[str, ...]) -> list[dict[str, Any]]:
        """The rows :func:`~carecontract.measures.compute.aggregate` gives, from the cube: days in
        [start, end] summed by ``by`` (one row even for no cases when ``by`` is empty, as SQL does)."""
        table = self.tables[measure.id]
        day = table[DAY]
        table = table.filter(
            pc.and_(pc.greater_equal(day, pa.scalar(start, day.type)), pc.less_equal(day, pa.scalar(end, day.type)))
        )
        sums = [c for c in ("denominator", "numerator", "sum_sq") if c in table.column_names]
        if not by:
            row = {c: pc.sum(table[c]).as_py() for c in sums}  # None for no cases, as SQL's sum
            row["denominator"] = row["denominator"] or 0  # SQL's count(*)
            return [row]
        grouped = table.group_by(list(by)).aggregate([(c, "sum") for c in sums])
        rows = [{c: r.pop(f"{c}_sum") for c in sums} | r for r in grouped.to_pylist()]
        return sorted(rows, key=lambda r: tuple(str(r[k]) for k in by))

    def measures(
        self,
        start: date,
        end: date,
        by: Iterable[str] = (),
        *,
        only: Iterable[str] | None = None,
        targets: Mapping[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """The same rows as :func:`~carecontract.measures.compute.compute_measures` for this store."""
        by, wanted = check_request(start, end, by, only)
        return finish(self.censor, self.counts, start, end, by, wanted, dict(targets or {}))


# -- persisted per store version ---------------------------------------------------------------------

FIGURES = "figures"  # <store>/figures/<version>/: one Parquet file per measure, and figures.json
FORMAT = 2
KEEP = 2  # versions kept on disk: the latest, and the one a service may still be answering from
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class VersionFigures:
    """What one store version's readers need computed once: the measure cube and the quality report
    (as :meth:`carecontract.run.Run.quality_report` gives it for the latest view)."""

    version: str
    cube: MeasureCube
    quality: dict[str, Any]
    event_range: tuple[date | None, date | None] = (None, None)  # first and last accepted event date


def figures_dir(root: str | os.PathLike[str], version: str) -> Path:
    if not _SAFE.match(version):
        raise ValueError(f"not a store version: {version!r}")
    return Path(root) / FIGURES / version


#: How much lower the CPU priority of making a version's figures is than its caller's (``nice``), so
#: a service answering on the same machine keeps its share of the cores while a writer refreshes.
NICE = 10


def compute(root: str | os.PathLike[str], version: str, nice: int = NICE) -> VersionFigures:
    """The figures of ``version`` (a submission id of the store at ``root``), read as at that version
    so a commit landing meanwhile changes nothing; made at ``nice`` lower CPU priority.

    In a thread of its own: on Linux a thread's priority is its own, and the engine's worker threads
    started from it inherit it, so the caller (a notebook, a service's event loop) keeps its own."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return _compute(root, version)
    out: list[VersionFigures] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
            out.append(_compute(root, version))
        except BaseException as exc:  # given to the caller
            failed.append(exc)

    thread = threading.Thread(target=work, name="carecontract-figures")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return out[0]


def _compute(root: str | os.PathLike[str], version: str) -> VersionFigures:
    store = Store(root, version)
    src = sources(events_table(store), detail=True)
    try:
        cube = MeasureCube.build(src)
        report = quality(store).as_dict()
        report["pathways"] = pathway_checks(src)
        first, last = store.event_range()
    finally:
        src.release()
    report["scope"]["as_at"] = None  # the latest view, read by its version (as Run(store).quality_report())
    # the report as the wire carries it (dates as ISO text), whether computed here or loaded
    return VersionFigures(version, cube, json.loads(json.dumps(report, default=str)), (_day(first), _day(last)))


def _day(value: Any) -> date | None:
    """A day as a ``date`` (DuckDB gives one; a timestamp would be cut to its day)."""
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def save(root: str | os.PathLike[str], figures: VersionFigures) -> Path:
    """Write ``figures`` to ``<root>/figures/<version>/`` all at once (a temporary folder renamed), and
    drop all but the newest :data:`KEEP` versions' folders."""
    target = figures_dir(root, figures.version)
    parent = target.parent
    parent.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    tmp = parent / f".{figures.version}.{uuid.uuid4().hex}"
    tmp.mkdir(mode=PRIVATE_DIR)
    try:
        for measure_id, table in figures.cube.tables.items():
            pq.write_table(table, tmp / f"{measure_id}.parquet")
        head = {
            "format": FORMAT,
            "version": figures.version,
            # the engine's own type of it (a pandas Timestamp from DuckDB), so loaded figures are identical
            "censor": None
            if figures.cube.censor is None
            else [type(figures.cube.censor).__name__, str(figures.cube.censor)],
            "measures": sorted(figures.cube.tables),
            "quality": figures.quality,
            "event_range": [None if d is None else d.isoformat() for d in figures.event_range],
        }
        (tmp / "figures.json").write_text(json.dumps(head, default=str))
        for path in tmp.iterdir():
            os.chmod(path, PRIVATE_FILE)
        try:
            os.rename(tmp, target)
        except OSError:  # made meanwhile by another writer: the same version's figures
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(parent)
    return target


def _prune(parent: Path) -> None:
    versions = sorted((p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_mtime)
    for old in versions[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def load(root: str | os.PathLike[str], version: str) -> VersionFigures | None:
    """The saved figures of ``version``, or None if there are none (or they are unreadable)."""
    folder = figures_dir(root, version)
    try:
        head = json.loads((folder / "figures.json").read_text())
        if head.get("format") != FORMAT or head.get("version") != version:
            return None
        tables = {m: pq.read_table(folder / f"{m}.parquet") for m in head["measures"]}
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None  # pruned meanwhile, or not written by this version: computed again
    censor = None if head["censor"] is None else _censor(*head["censor"])
    first, last = (None if d is None else date.fromisoformat(d) for d in head["event_range"])
    return VersionFigures(version, MeasureCube(censor, tables), head["quality"], (first, last))


def _censor(kind: str, text: str) -> Any:
    if kind == "Timestamp":
        import pandas as pd

        return pd.Timestamp(text)
    return datetime.fromisoformat(text) if kind == "datetime" else date.fromisoformat(text)


def saved(root: str | os.PathLike[str], version: str) -> bool:
    """Are ``version``'s figures saved (one ``stat``)?"""
    return (figures_dir(root, version) / "figures.json").exists()


def _marker(root: str | os.PathLike[str], version: str) -> Path:
    return figures_dir(root, version).parent / f".{version}.building"


def building(root: str | os.PathLike[str], version: str) -> bool:
    """Is a writer making ``version``'s figures right now (its marker there, its process alive)?
    A reader then waits for them rather than making them a second time."""
    try:
        who = json.loads(_marker(root, version).read_text())
    except (OSError, ValueError):
        return False
    if who.get("host") != os.uname().nodename:
        return True  # another machine's writer: trusted until it removes its marker
    try:
        os.kill(int(who["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError, TypeError):
        return False  # it died: the reader makes them
    except PermissionError:
        return True
    return True


def refresh(store: str | os.PathLike[str] | Store) -> Path | None:
    """Compute and save the figures of the store's latest version unless saved already (None for an
    empty store). Called by the commands that commit, after the commit; while it runs, a marker
    (``figures/.<version>.building``: this process) tells a service not to make them too."""
    root = store.root if isinstance(store, Store) else Path(store)
    version = Store(root).version()
    if version is None:
        return None
    if saved(root, version):
        return figures_dir(root, version)
    marker = _marker(root, version)
    marker.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    marker.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    try:
        return save(root, compute(root, version))
    finally:
        marker.unlink(missing_ok=True)
