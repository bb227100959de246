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
from carecontract.imports.run import import_files
from carecontract.records.ingest import ingest
from carecontract.records.store import Store
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
    ingest([tmp / "rest.csv"], tmp / "imported", as_of=date(2026, 1, 1))
    result = import_files(module.KIND, [written], tmp / "imported", as_of=date(2026, 1, 1))
    assert result.rejected == 0, result.rejections
    assert result.ingest.quarantined == 0, result.ingest.reasons
    return measures(tmp / "plain", exclude), measures(tmp / "imported", exclude), len(ids)


def check_example(kind: str, example: Path, tmp: Path, nhs_numbers: list[str]) -> None:
    """The example through the driver: counts reconcile by an independent count, no NHS number stored."""
    module = __import__(f"carecontract.imports.{kind}", fromlist=["map_file"])
    results = list(module.map_file(example))
    expected_events = sum(len(r.events) for r in results)
    result = import_files(kind, [example], tmp / "store", as_of=date(2026, 1, 1))
    assert result.records == len(results) == result.mapped + result.rejected
    assert result.rejected == sum(r.problem is not None for r in results)
    con = Store(tmp / "store").connect()
    try:
        # every event staged is stored (held ones too) or quarantined; a held event is in both views
        seen = con.execute(
            "SELECT count(DISTINCT record_id) FROM "
            "(SELECT record_id FROM all_events UNION ALL SELECT record_id FROM quarantine)"
        ).fetchone()[0]
    finally:
        con.close()
    assert seen == expected_events == result.events
    for path in (tmp / "store").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n.encode() in data for n in nhs_numbers), path
