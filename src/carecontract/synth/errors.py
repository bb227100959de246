"""Inject realistic data errors into a synthetic extract, and say exactly what was injected.

The seeds' contracts were let on "unreliable, outdated base data". To test that ingest and the
quality report find such problems, the generator can corrupt a chosen share of rows the way real
extracts go wrong: mistyped NHS numbers, US-style or impossible dates, a year typed wrong, event
types misspelt, non-cancer codes on a diagnosis, stage in Roman numerals, costs with a pound sign,
missing provider codes, rows sent twice, and treatments dated before the referral or after death.

Each injected row is listed with the ingest reason it must produce. Referral and death rows are
never corrupted (only duplicated), because other rows are checked against them: corrupting one
would make a clean row fail too, and the manifest would no longer say exactly what must be found.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carecontract.records import schema, validation
from carecontract.synth.table import EPOCH, Drawn, build_table

#: kind -> (expected ingest reason, relative frequency)
ERROR_KINDS: dict[str, tuple[str, float]] = {
    "nhs_check_digit": ("invalid_nhs_number", 3),
    "nhs_missing": ("missing_nhs_number", 1),
    "date_us_format": ("invalid_event_date", 2),
    "date_impossible": ("invalid_event_date", 1),
    "date_future_typo": ("future_event_date", 1),
    "event_type_typo": ("unknown_event_type", 1),
    "provider_missing": ("missing_provider_code", 1),
    "cost_pound_sign": ("invalid_cost_gbp", 1),
    "icd10_not_cancer": ("diagnosis_not_cancer", 1),
    "stage_roman": ("invalid_stage", 1),
    "treatment_before_referral": (validation.BEFORE_FIRST_REFERRAL, 1),
    "event_after_death": (validation.AFTER_DEATH, 1),
    "duplicate_row": (validation.DUPLICATE_RECORD_ID, 2),
}

_TYPOS = {
    "first_seen": "first seen",
    "diagnosis": "diagnoses",
    "cancer_ruled_out": "ruled_out",
    "decision_to_treat": "DTT",
    "treatment": "treatement",
    "clock_adjustment": "pause",
    "emergency_admission": "A&E",
    "palliative_register": "palliative",
    "specialist_palliative_care": "SPC",
    "hospice_stay": "hospice",
    "patient_experience": "survey",
}


def inject(gen: Drawn, cols: dict[str, np.ndarray], error_rate: float) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """Corrupt ``error_rate`` of the rows; returns (rows, what was injected, each row's true day)."""
    table = build_table(gen, cols)
    n = table.num_rows
    empty = pa.table({name: pa.array([], pa.string()) for name in ("record_id", "kind", "expected_reason")})
    total = round(n * error_rate)
    if total == 0:
        return table, empty, cols["day"]
    rng = np.random.default_rng([gen.seed, 7])
    event = cols["event"]
    person = cols["person"]
    day = cols["day"].astype(np.int64)
    codes = {name: i for i, name in enumerate(schema.EVENT_TYPES)}
    anchor = np.isin(event, [codes["referral"], codes["death"]])
    first_ref = np.full(gen.person_count, np.iinfo(np.int64).max)
    refs = event == codes["referral"]
    np.minimum.at(first_ref, person[refs], day[refs])
    death = np.full(gen.person_count, -1, np.int64)
    deaths = event == codes["death"]
    death[person[deaths]] = day[deaths]
    pathway = np.isin(event, [codes[e] for e in schema.PATHWAY_EVENTS])

    eligible = {
        "icd10_not_cancer": event == codes["diagnosis"],
        "stage_roman": (event == codes["diagnosis"]) & (cols["stage"] > 0),
        "cost_pound_sign": cols["cost_pence"] >= 0,
        "event_type_typo": ~anchor,
        # before the first referral: only possible where the patient has one
        "treatment_before_referral": pathway & (first_ref[person] < np.iinfo(np.int64).max),
        # after death: a non-death event of someone whose death is in the window, moved past it (still in window)
        "event_after_death": (~anchor) & (death[person] >= 0) & (death[person] < gen.span - 31),
    }
    weights = np.array([w for _, w in ERROR_KINDS.values()], float)
    counts = rng.multinomial(total, weights / weights.sum())
    used = np.zeros(n, bool)
    chosen: dict[str, np.ndarray] = {}
    for (kind, _), count in zip(ERROR_KINDS.items(), counts, strict=True):
        # anchors (referrals, deaths) may be resent, but are never corrupted
        pool = (np.ones(n, bool) if kind == "duplicate_row" else eligible.get(kind, ~anchor)) & ~used
        candidates = np.flatnonzero(pool)
        take = rng.choice(candidates, min(count, len(candidates)), replace=False) if len(candidates) else candidates
        used[take] = True
        chosen[kind] = np.sort(take)

    columns = {name: table.column(name) for name in table.column_names}
    start_days = (gen.start - EPOCH).days

    def put(column: str, rows: np.ndarray, values: list[str] | pa.Array) -> None:
        mask = np.zeros(n, bool)
        mask[rows] = True
        if len(rows):
            current = columns[column]
            current = current.combine_chunks() if isinstance(current, pa.ChunkedArray) else current
            if current.type != pa.string():  # corrupted values are text: only now render the column as text
                current = current.cast(pa.string())
            columns[column] = pc.replace_with_mask(current, pa.array(mask), pa.array(values, pa.string()))

    def iso(days: np.ndarray) -> pa.Array:
        return pa.array((days + start_days).astype(np.int32), pa.date32()).cast(pa.string())

    rows = chosen["nhs_check_digit"]
    if len(rows):
        nhs = gen.nhs[person[rows]]
        last = nhs % 10
        wrong = nhs - last + (last + rng.integers(1, 10, len(rows))) % 10
        put("nhs_number", rows, pa.array(wrong).cast(pa.string()))
    put("nhs_number", chosen["nhs_missing"], [""] * len(chosen["nhs_missing"]))
    rows = chosen["date_us_format"]
    if len(rows):
        put("event_date", rows, [f"{d[8:10]}/{d[5:7]}/{d[0:4]}" for d in iso(day[rows]).to_pylist()])
    rows = chosen["date_impossible"]
    put("event_date", rows, [d[:4] + "-02-30" for d in iso(day[rows]).to_pylist()])
    rows = chosen["date_future_typo"]
    # 2096 is a leap year, so a 29 February stays a real (future) date
    put("event_date", rows, [("2096" if d[5:] == "02-29" else "2099") + d[4:] for d in iso(day[rows]).to_pylist()])
    rows = chosen["event_type_typo"]
    put("event_type", rows, [_TYPOS.get(schema.EVENT_TYPES[e], "unknown") for e in event[rows]])
    put("provider_code", chosen["provider_missing"], [""] * len(chosen["provider_missing"]))
    rows = chosen["cost_pound_sign"]
    put("cost_gbp", rows, ["£" + str(c) for c in pc.take(columns["cost_gbp"], pa.array(rows)).to_pylist()])
    rows = chosen["icd10_not_cancer"]
    put("icd10", rows, list(rng.choice(["I10", "J18.9", "K57.3", "R69"], len(rows))))
    rows = chosen["stage_roman"]
    roman = {"1": "I", "2": "II", "3": "III", "4": "IV"}
    put("stage", rows, [roman[str(s)] for s in pc.take(columns["stage"], pa.array(rows)).to_pylist()])
    rows = chosen["treatment_before_referral"]
    put("event_date", rows, iso(first_ref[person[rows]] - rng.integers(30, 366, len(rows))))
    rows = chosen["event_after_death"]
    put("event_date", rows, iso(death[person[rows]] + rng.integers(1, 31, len(rows))))

    corrupted = pa.table(columns)
    true_day = cols["day"]
    dup_rows = chosen["duplicate_row"]
    if len(dup_rows):
        # a resent row goes right after its original, as a repeated submission would
        source = np.concatenate([np.arange(n), dup_rows])
        order = np.argsort(source, kind="stable")
        corrupted = pa.concat_tables([corrupted, corrupted.take(pa.array(dup_rows))]).take(pa.array(order))
        true_day = true_day[source[order]]
    manifest_rows = [
        (kind, ERROR_KINDS[kind][0], pc.take(table.column("record_id"), pa.array(rows)))
        for kind, rows in chosen.items()
    ]
    injected = pa.table(
        {
            "record_id": pa.concat_arrays([r.combine_chunks() for _, _, r in manifest_rows]),
            "kind": pa.array([k for k, _, r in manifest_rows for _ in range(len(r))], pa.string()),
            "expected_reason": pa.array([e for _, e, r in manifest_rows for _ in range(len(r))], pa.string()),
        }
    )
    return corrupted, injected, true_day
