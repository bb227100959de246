"""Write a synthetic economy as activity files: one file per contract year, plus what was injected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carecontract.synth.economy import Economy, SynthError, contract_year_bounds


def write_economy(economy: Economy, out: str | Path, fmt: str = "csv") -> list[Path]:
    """Write ``activity-<year>.<fmt>`` per contract year, ``injected_errors.csv`` and ``synth.json``."""
    if fmt not in ("csv", "parquet"):
        raise SynthError("format must be csv or parquet")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    year = economy.year_of_rows()  # rows are in date order, so each year is one contiguous slice
    written = []
    for y, (first, _) in enumerate(contract_year_bounds(economy.start, economy.years)):
        rows = np.flatnonzero(year == y)
        part = economy.events.slice(int(rows[0]), len(rows)) if len(rows) else economy.events.slice(0, 0)
        path = out / f"activity-{first.year}.{fmt}"
        if fmt == "csv":
            pacsv.write_csv(part, path)
        else:
            pq.write_table(part, path, compression="zstd")
        written.append(path)
    pacsv.write_csv(economy.injected, out / "injected_errors.csv")
    meta = {
        "population": economy.population,
        "years": economy.years,
        "start": economy.start.isoformat(),
        "seed": economy.seed,
        "rows": economy.events.num_rows,
        "injected_errors": economy.injected.num_rows,
        "files": [p.name for p in written],
        **economy.meta,
    }
    (out / "synth.json").write_text(json.dumps(meta, indent=1))
    return written
