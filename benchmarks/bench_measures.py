"""Benchmark outcome measures against a hand-written DuckDB SQL floor and a pandas version.

Same store, same period, same eight measures (numerator and denominator each), in one run:

* ours    — ``compute_measures`` (Ibis definitions compiled to DuckDB);
* floor   — one hand-written DuckDB SQL query over the same Parquet files, the fastest way a
            skilled analyst would write it by hand;
* pandas  — the same logic in pandas, the usual notebook alternative.

All three must give identical numbers (checked), so the ratios compare equal work.

Run:  python benchmarks/bench_measures.py [--events-millions 10] [--repeat 3]
Writes benchmarks/results-measures.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from carecontract.measures.compute import compute_measures
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.store import Store
from carecontract.synth.economy import generate
from carecontract.synth.writer import write_economy
from timing import best_of, write_results

HERE = Path(__file__).parent
MEASURES = (
    "fds_28",
    "cwt_31",
    "cwt_62",
    "early_stage",
    "survival_1y",
    "emergency_presentation",
    "usual_place_of_death",
    "patient_experience",
)

FLOOR_SQL = """
WITH ev AS (SELECT * FROM read_parquet($files)),
ref AS (
  SELECT record_id AS pathway_id, patient_id, event_date AS referral_date, referral_route,
         lead(event_date) OVER (PARTITION BY patient_id ORDER BY event_date, record_id) AS next_date
  FROM ev WHERE event_type = 'referral'),
steps AS (
  SELECT r.pathway_id,
    min(e.event_date) FILTER (WHERE e.event_type = 'diagnosis') AS dx,
    arg_min(e.stage, e.event_date) FILTER (WHERE e.event_type = 'diagnosis') AS stage,
    min(e.event_date) FILTER (WHERE e.event_type = 'cancer_ruled_out') AS ro,
    min(e.event_date) FILTER (WHERE e.event_type = 'decision_to_treat') AS dtt,
    min(e.event_date) FILTER (WHERE e.event_type = 'treatment') AS tx,
    sum(e.adjustment_days) FILTER (WHERE e.event_type = 'clock_adjustment') AS pause
  FROM ref r JOIN ev e ON e.patient_id = r.patient_id AND e.event_date >= r.referral_date
   AND (r.next_date IS NULL OR e.event_date < r.next_date)
  WHERE e.event_type IN ('first_seen','diagnosis','cancer_ruled_out','decision_to_treat','treatment','clock_adjustment')
  GROUP BY r.pathway_id),
deaths AS (SELECT patient_id, min(event_date) AS died FROM ev WHERE event_type = 'death' GROUP BY 1),
p AS (SELECT r.*, s.*, d.died, least(s.dx, s.ro) AS fds_stop FROM ref r LEFT JOIN steps s USING (pathway_id)
      LEFT JOIN deaths d USING (patient_id)),
censor AS (SELECT max(event_date) AS c FROM ev)
SELECT
  count(*) FILTER (WHERE referral_route IN ('urgent_gp','screening') AND fds_stop BETWEEN $a AND $b
                   AND fds_stop - referral_date <= 28),
  count(*) FILTER (WHERE referral_route IN ('urgent_gp','screening') AND fds_stop BETWEEN $a AND $b),
  count(*) FILTER (WHERE dtt IS NOT NULL AND tx BETWEEN $a AND $b AND tx - dtt <= 31),
  count(*) FILTER (WHERE dtt IS NOT NULL AND tx BETWEEN $a AND $b),
  count(*) FILTER (WHERE referral_route IN ('urgent_gp','screening','upgrade') AND tx BETWEEN $a AND $b
                   AND tx - referral_date - coalesce(pause, 0) <= 62),
  count(*) FILTER (WHERE referral_route IN ('urgent_gp','screening','upgrade') AND tx BETWEEN $a AND $b),
  count(*) FILTER (WHERE stage IS NOT NULL AND dx BETWEEN $a AND $b AND stage <= 2),
  count(*) FILTER (WHERE stage IS NOT NULL AND dx BETWEEN $a AND $b),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b AND dx + 365 <= (SELECT c FROM censor)
                   AND (died IS NULL OR died - dx > 365)),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b AND dx + 365 <= (SELECT c FROM censor)),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b AND referral_route = 'emergency'),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b),
  (SELECT count(*) FILTER (WHERE place_of_death = usual_residence) FROM ev WHERE event_type = 'death'
     AND place_of_death IS NOT NULL AND usual_residence IS NOT NULL AND event_date BETWEEN $a AND $b),
  (SELECT count(*) FROM ev WHERE event_type = 'death' AND place_of_death IS NOT NULL
     AND usual_residence IS NOT NULL AND event_date BETWEEN $a AND $b),
  (SELECT sum(score) FROM ev WHERE event_type = 'patient_experience' AND event_date BETWEEN $a AND $b),
  (SELECT count(score) FROM ev WHERE event_type = 'patient_experience' AND event_date BETWEEN $a AND $b)
FROM p
"""


def floor(files: list[str], start: date, end: date) -> dict[str, tuple[float, int]]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    row = con.execute(FLOOR_SQL, {"files": files, "a": start, "b": end}).fetchone()
    con.close()
    return {m: (row[2 * i], row[2 * i + 1]) for i, m in enumerate(MEASURES)}


def with_pandas(files: list[str], start: date, end: date) -> dict[str, tuple[float, int]]:
    cols = [
        "record_id",
        "patient_id",
        "event_date",
        "event_type",
        "referral_route",
        "stage",
        "adjustment_days",
        "place_of_death",
        "usual_residence",
        "score",
    ]
    ev = pd.concat([pd.read_parquet(f, columns=cols) for f in files], ignore_index=True)
    ev["event_date"] = pd.to_datetime(ev["event_date"])
    a, b = pd.Timestamp(start), pd.Timestamp(end)
    ref = ev[ev.event_type == "referral"][["record_id", "patient_id", "event_date", "referral_route"]]
    ref = ref.rename(columns={"record_id": "pathway_id", "event_date": "referral_date"})
    ref = ref.sort_values(["patient_id", "referral_date", "pathway_id"])
    ref["next_date"] = ref.groupby("patient_id")["referral_date"].shift(-1)
    kinds = ["first_seen", "diagnosis", "cancer_ruled_out", "decision_to_treat", "treatment", "clock_adjustment"]
    steps = ev[ev.event_type.isin(kinds)][["patient_id", "event_date", "event_type", "stage", "adjustment_days"]]
    j = ref.merge(steps, on="patient_id")
    j = j[(j.event_date >= j.referral_date) & (j.next_date.isna() | (j.event_date < j.next_date))]
    j = j.sort_values("event_date")
    first = j.groupby(["pathway_id", "event_type"])["event_date"].min().unstack()
    stage = j[j.event_type == "diagnosis"].groupby("pathway_id")["stage"].first()
    pause = j[j.event_type == "clock_adjustment"].groupby("pathway_id")["adjustment_days"].sum()
    p = ref.set_index("pathway_id").join(first).join(stage).join(pause.rename("pause"))
    died = ev[ev.event_type == "death"].groupby("patient_id")["event_date"].min().rename("died")
    p = p.join(died, on="patient_id")
    for c in ("diagnosis", "cancer_ruled_out", "decision_to_treat", "treatment"):
        if c not in p:
            p[c] = pd.NaT
    censor = ev.event_date.max()
    fds_stop = p[["diagnosis", "cancer_ruled_out"]].min(axis=1)
    days = lambda x, y: (x - y).dt.days  # noqa: E731
    out = {}
    pop = p.referral_route.isin(["urgent_gp", "screening"]) & fds_stop.between(a, b)
    out["fds_28"] = (int((pop & (days(fds_stop, p.referral_date) <= 28)).sum()), int(pop.sum()))
    pop = p.decision_to_treat.notna() & p.treatment.between(a, b)
    out["cwt_31"] = (int((pop & (days(p.treatment, p.decision_to_treat) <= 31)).sum()), int(pop.sum()))
    pop = p.referral_route.isin(["urgent_gp", "screening", "upgrade"]) & p.treatment.between(a, b)
    met = days(p.treatment, p.referral_date) - p.pause.fillna(0) <= 62
    out["cwt_62"] = (int((pop & met).sum()), int(pop.sum()))
    pop = p.stage.notna() & p.diagnosis.between(a, b)
    out["early_stage"] = (int((pop & (p.stage <= 2)).sum()), int(pop.sum()))
    pop = p.diagnosis.between(a, b) & (p.diagnosis + pd.Timedelta(days=365) <= censor)
    alive = p.died.isna() | (days(p.died, p.diagnosis) > 365)
    out["survival_1y"] = (int((pop & alive).sum()), int(pop.sum()))
    pop = p.diagnosis.between(a, b)
    out["emergency_presentation"] = (int((pop & (p.referral_route == "emergency")).sum()), int(pop.sum()))
    d = ev[
        (ev.event_type == "death")
        & ev.place_of_death.notna()
        & ev.usual_residence.notna()
        & ev.event_date.between(a, b)
    ]
    out["usual_place_of_death"] = (int((d.place_of_death == d.usual_residence).sum()), len(d))
    x = ev[(ev.event_type == "patient_experience") & ev.event_date.between(a, b) & ev.score.notna()]
    out["patient_experience"] = (float(x.score.sum()), len(x))
    return out


def ours(store: Path, start: date, end: date) -> dict[str, tuple[float, int]]:
    rows = compute_measures(store, start, end, only=MEASURES)
    return {r["measure"]: (r["numerator"], r["denominator"]) for r in rows}


def timed(fn, repeat: int) -> tuple[float, object]:
    fastest, _, result = best_of(fn, repeat)
    return fastest, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-millions", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results-measures.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cc-bench-m-"))
    try:
        years = 10
        population = int(args.events_millions * 1e6 / years / 0.186)  # ~0.186 events per person-year
        economy = generate(population, years, seed=3, start=date(2014, 4, 1))
        files = write_economy(economy, work / "data", "parquet")
        del economy
        ingest(files, work / "store", key=PseudonymKey(b"bench"))
        store = Store(work / "store")
        event_files = [str(f) for f in store.files("events")]
        events = duckdb.execute(f"SELECT count(*) FROM read_parquet({event_files})").fetchone()[0]
        start, end = date(2014, 4, 1), date(2024, 3, 31)
        t_ours, r_ours = timed(lambda: ours(work / "store", start, end), args.repeat)
        t_floor, r_floor = timed(lambda: floor(event_files, start, end), args.repeat)
        t_pandas, r_pandas = timed(lambda: with_pandas(event_files, start, end), 1)
        for name, result in (("floor", r_floor), ("pandas", r_pandas)):
            for m in MEASURES:
                assert abs(float(result[m][0]) - float(r_ours[m][0])) < 1e-6 and result[m][1] == r_ours[m][1], (
                    name,
                    m,
                    result[m],
                    r_ours[m],
                )
        lines = [
            "# Measures benchmark",
            "",
            f"{events:,} events ({population:,} people × {years} years); eight measures over the whole period; "
            f"best of {args.repeat} (pandas: 1 run). All three give identical numerators and denominators.",
            "",
            "| implementation | seconds | events/s | ratio to SQL floor |",
            "|---|---:|---:|---:|",
            f"| carecontract (Ibis → DuckDB) | {t_ours:.2f} | {events / t_ours:,.0f} | {t_ours / t_floor:.2f}× |",
            f"| hand-written DuckDB SQL (floor) | {t_floor:.2f} | {events / t_floor:,.0f} | 1.00× |",
            f"| pandas | {t_pandas:.2f} | {events / t_pandas:,.0f} | {t_pandas / t_floor:.2f}× |",
            "",
            f"Measured {date.today().isoformat()} by `python benchmarks/bench_measures.py`; "
            "the goal is ≤ 1.5× the floor.",
        ]
        write_results(lines, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
