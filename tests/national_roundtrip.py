"""Round trip for the national formats (tests only): the synthetic economy written in format X and
imported must give the same measures as the same economy ingested from the interchange file.

The events a format carries are replaced by their import; every other event comes from the
interchange file. Which events were carried is read back from the written file's own key field
(each writer puts the synthetic record_id there), not from the writer.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from carecontract.api import compute_measures
from carecontract.records.ingest import ingest
from carecontract.records.schema import ALL_COLUMNS
from carecontract.synth.economy import generate

START = date(2022, 4, 1)
PERIOD = ("2022-04-01", "2024-03-31")


def economy(population: int = 20_000):
    return generate(population=population, years=2, seed=3, error_rate=0.0, start=START)


def carried_ids(path: Path, key: str) -> set[str]:
    if path.suffix == ".ndjson":
        ids = set()
        with open(path) as handle:
            for line in handle:
                r = json.loads(line)
                if r["resourceType"] != "Patient":
                    ids.add(r["id"])
        return ids
    with open(path, newline="") as handle:
        return {row[key] for row in csv.DictReader(handle)}


def staged(mapped_events: list[dict[str, object]], out: Path) -> Path:
    columns = {
        c: pa.array([None if e.get(c) is None else str(e[c]) for e in mapped_events], pa.string()) for c in ALL_COLUMNS
    }
    pacsv.write_csv(pa.table(columns), out)
    return out


def measures(store: Path, exclude: tuple[str, ...] = ()) -> dict[str, tuple]:
    frame = compute_measures(store, *PERIOD)
    return {
        r.measure: tuple(None if pd.isna(v) else v for v in (r.numerator, r.denominator, r.rate))
        for r in frame.itertuples()
        if r.measure not in exclude
    }


def round_trip(module, writer, key: str, tmp: Path, exclude: tuple[str, ...] = ()) -> tuple[dict, dict, int]:
    """(measures from the interchange file, measures through format X, events carried)."""
    eco = economy()
    events = eco.events
    everything = tmp / "all.csv"
    pacsv.write_csv(events, everything)
    ingest([everything], tmp / "plain", as_of=date(2026, 1, 1))

    [written] = writer.write(events, tmp / "national")
    ids = carried_ids(written, key)
    rest = events.filter(pc.invert(pc.is_in(events["record_id"], pa.array(sorted(ids)))))
    pacsv.write_csv(rest, tmp / "rest.csv")
    results = list(module.map_file(written))
    assert all(r.problem is None for r in results), [r.problem for r in results if r.problem][:3]
    mapped = staged([e for r in results for e in r.events], tmp / "mapped.csv")
    ingest([tmp / "rest.csv", mapped], tmp / "imported", as_of=date(2026, 1, 1))
    return measures(tmp / "plain", exclude), measures(tmp / "imported", exclude), len(ids)
