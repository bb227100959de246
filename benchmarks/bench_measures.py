"""Benchmark outcome measures against a hand-written DuckDB SQL floor.

Same store, same period, the same nine measures (numerator and denominator each), in one run:

* ours    — ``compute_measures`` (Ibis definitions compiled to DuckDB);
* floor   — one hand-written DuckDB SQL query over the same Parquet files, the fastest way a
            skilled analyst would write the same national rules by hand (docs/measures.md):
            pathways opened only when none is open, adjustments counted only inside their
            interval, the 31-day standard per treatment with its own decision, breast
            symptomatic referrals, emergency admissions with or without a referral, DiUPR.

Both must give identical numbers (checked), so the ratio compares equal work. (The pandas
version the benchmark used to carry was dropped when the rules became national: re-implementing
them a third time would be a third copy to keep in step, and it was 9× the floor.)

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

from carecontract.measures.compute import compute_measures
from carecontract.measures.definitions import STAGEABLE
from carecontract.records import duck
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
    "observed_survival_1y",
    "emergency_presentation",
    "usual_place_of_death",
    "died_where_usually_lived",
    "patient_experience",
)

FLOOR_SQL = """
WITH ev AS (SELECT * FROM read_parquet($files)),
marks AS (
  SELECT patient_id, record_id, event_date, referral_route,
         CASE event_type WHEN 'referral' THEN 0 WHEN 'diagnosis' THEN 1 ELSE 2 END AS kind
  FROM ev WHERE event_type IN ('referral', 'diagnosis', 'cancer_ruled_out', 'treatment')),
lagged AS (
  SELECT *, lag(kind) OVER (PARTITION BY patient_id ORDER BY event_date, kind, record_id) AS prev FROM marks),
starts AS (
  SELECT record_id AS pathway_id, patient_id, event_date AS start_date, referral_route,
         lead(event_date) OVER (PARTITION BY patient_id ORDER BY event_date, record_id) AS next_start
  FROM lagged WHERE kind < 2 AND (prev IS NULL OR prev = 2)),
j AS (
  SELECT s.pathway_id, e.record_id, e.event_date, e.event_type, e.referral_route AS route, e.icd10, e.stage,
         e.adjustment_days
  FROM starts s JOIN ev e ON e.patient_id = s.patient_id AND e.event_date >= s.start_date
   AND (s.next_start IS NULL OR e.event_date < s.next_start)
  WHERE e.event_type IN ('referral', 'first_seen', 'diagnosis', 'cancer_ruled_out', 'decision_to_treat',
                         'treatment', 'clock_adjustment')),
g AS (
  SELECT pathway_id,
    min(event_date) FILTER (WHERE event_type = 'referral') AS first_ref,
    min(event_date) FILTER (WHERE event_type = 'referral'
                            AND route IN ('urgent_gp', 'screening', 'breast_symptomatic')) AS fds_start,
    min(event_date) FILTER (WHERE event_type = 'referral'
                            AND route IN ('urgent_gp', 'screening', 'breast_symptomatic', 'upgrade')) AS c62_start,
    min(event_date) FILTER (WHERE event_type = 'first_seen') AS seen,
    min(event_date) FILTER (WHERE event_type = 'diagnosis') AS dx,
    arg_min(stage, event_date) FILTER (WHERE event_type = 'diagnosis') AS stage,
    upper(substr(arg_min(icd10, event_date) FILTER (WHERE event_type = 'diagnosis'), 1, 3)) AS icd3,
    min(event_date) FILTER (WHERE event_type = 'cancer_ruled_out') AS ro,
    min(event_date) FILTER (WHERE event_type = 'treatment') AS tx,
    min(event_date) FILTER (WHERE event_type = 'decision_to_treat') AS dtt
  FROM j GROUP BY pathway_id),
adj AS (SELECT pathway_id, event_date AS on_day, adjustment_days AS days FROM j WHERE event_type = 'clock_adjustment'),
t AS (SELECT pathway_id, event_date AS t,
             row_number() OVER (PARTITION BY pathway_id ORDER BY event_date, record_id) AS n
      FROM j WHERE event_type = 'treatment'),
d AS (SELECT pathway_id, event_date AS d,
             row_number() OVER (PARTITION BY pathway_id ORDER BY event_date, record_id) AS n
      FROM j WHERE event_type = 'decision_to_treat'),
pairs AS (
  SELECT t.pathway_id, t.n, t.t, d.d, coalesce(sum(adj.days), 0) AS pause
  FROM t LEFT JOIN d USING (pathway_id, n)
  LEFT JOIN adj ON adj.pathway_id = t.pathway_id AND adj.on_day >= d.d AND adj.on_day < t.t
  GROUP BY t.pathway_id, t.n, t.t, d.d),
seen_pause AS (
  SELECT pathway_id, sum(days) FILTER (WHERE on_day >= fds_start) AS fds_p,
         sum(days) FILTER (WHERE on_day >= c62_start) AS c62_p
  FROM adj JOIN g USING (pathway_id) WHERE on_day < coalesce(seen, least(dx, ro, dtt, tx)) GROUP BY pathway_id),
emergency AS (
  SELECT DISTINCT g.pathway_id
  FROM g JOIN starts s USING (pathway_id)
  JOIN ev e ON e.patient_id = s.patient_id AND e.event_type = 'emergency_admission'
   AND e.event_date <= g.dx AND e.event_date >= g.dx - 28 AND (g.first_ref IS NULL OR e.event_date <= g.first_ref)),
deaths AS (SELECT patient_id, min(event_date) AS died FROM ev WHERE event_type = 'death' GROUP BY 1),
p AS (
  SELECT s.referral_route, g.*, deaths.died, least(g.dx, g.ro) AS fds_stop,
         coalesce(sp.fds_p, 0) AS fds_p, coalesce(sp.c62_p, 0) + coalesce(p1.pause, 0) AS c62_p,
         emergency.pathway_id IS NOT NULL AS admitted
  FROM starts s JOIN g USING (pathway_id) LEFT JOIN deaths USING (patient_id)
  LEFT JOIN seen_pause sp USING (pathway_id)
  LEFT JOIN (SELECT pathway_id, pause FROM pairs WHERE n = 1) p1 USING (pathway_id)
  LEFT JOIN emergency USING (pathway_id)),
censor AS (SELECT max(event_date) AS c FROM ev)
SELECT
  count(*) FILTER (WHERE fds_start IS NOT NULL AND fds_stop >= fds_start AND fds_stop BETWEEN $a AND $b
                   AND greatest(fds_stop - fds_start - fds_p, 0) <= 28),
  count(*) FILTER (WHERE fds_start IS NOT NULL AND fds_stop >= fds_start AND fds_stop BETWEEN $a AND $b),
  (SELECT count(*) FILTER (WHERE greatest(t - d - pause, 0) <= 31) FROM pairs
     WHERE d IS NOT NULL AND t BETWEEN $a AND $b),
  (SELECT count(*) FROM pairs WHERE d IS NOT NULL AND t BETWEEN $a AND $b),
  count(*) FILTER (WHERE c62_start IS NOT NULL AND tx BETWEEN $a AND $b
                   AND greatest(tx - c62_start - c62_p, 0) <= 62),
  count(*) FILTER (WHERE c62_start IS NOT NULL AND tx BETWEEN $a AND $b),
  count(*) FILTER (WHERE stage IS NOT NULL AND icd3 IN $stageable AND dx BETWEEN $a AND $b AND stage <= 2),
  count(*) FILTER (WHERE stage IS NOT NULL AND icd3 IN $stageable AND dx BETWEEN $a AND $b),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b AND icd3 LIKE 'C%' AND icd3 NOT IN ('C44', 'C61')
                   AND dx + 365 <= (SELECT c FROM censor) AND (died IS NULL OR died - dx > 365)),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b AND icd3 LIKE 'C%' AND icd3 NOT IN ('C44', 'C61')
                   AND dx + 365 <= (SELECT c FROM censor)),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b AND icd3 LIKE 'C%' AND icd3 <> 'C44'
                   AND (coalesce(referral_route, '') = 'emergency' OR admitted)),
  count(*) FILTER (WHERE dx BETWEEN $a AND $b AND icd3 LIKE 'C%' AND icd3 <> 'C44'),
  (SELECT count(*) FILTER (WHERE place_of_death IN ('home', 'care_home', 'religious_establishment')) FROM ev
     WHERE event_type = 'death' AND event_date BETWEEN $a AND $b),
  (SELECT count(*) FROM ev WHERE event_type = 'death' AND event_date BETWEEN $a AND $b),
  (SELECT count(*) FILTER (WHERE place_of_death = usual_residence) FROM ev WHERE event_type = 'death'
     AND usual_residence IS NOT NULL AND event_date BETWEEN $a AND $b),
  (SELECT count(*) FROM ev WHERE event_type = 'death' AND usual_residence IS NOT NULL
     AND event_date BETWEEN $a AND $b),
  (SELECT sum(score) FROM ev WHERE event_type = 'patient_experience' AND event_date BETWEEN $a AND $b),
  (SELECT count(score) FROM ev WHERE event_type = 'patient_experience' AND event_date BETWEEN $a AND $b)
FROM p
"""


def floor(files: list[str], start: date, end: date) -> dict[str, tuple[float, int]]:
    con = duck.connect()  # the same memory_limit and spill as ours (records.duck)
    sql = FLOOR_SQL.replace("$stageable", "(" + ", ".join(f"'{c}'" for c in STAGEABLE) + ")")
    row = con.execute(sql, {"files": files, "a": start, "b": end}).fetchone()
    con.close()
    return {m: (row[2 * i] or 0, row[2 * i + 1]) for i, m in enumerate(MEASURES)}


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
        events = duckdb.execute(f"SELECT count(*) FROM read_parquet({event_files})").fetchall()[0][0]
        start, end = date(2014, 4, 1), date(2024, 3, 31)
        t_ours, r_ours = timed(lambda: ours(work / "store", start, end), args.repeat)
        t_floor, r_floor = timed(lambda: floor(event_files, start, end), args.repeat)
        for name, result in (("floor", r_floor),):
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
            f"{events:,} events ({population:,} people × {years} years); nine measures over the whole period "
            f"by the national rules (docs/measures.md); best of {args.repeat}. Both give identical numerators "
            "and denominators (checked on every run).",
            "",
            "| implementation | seconds | events/s | ratio to SQL floor |",
            "|---|---:|---:|---:|",
            f"| carecontract (Ibis → DuckDB) | {t_ours:.2f} | {events / t_ours:,.0f} | {t_ours / t_floor:.2f}× |",
            f"| hand-written DuckDB SQL (floor) | {t_floor:.2f} | {events / t_floor:,.0f} | 1.00× |",
            "",
            f"Measured {date.today().isoformat()} by `python benchmarks/bench_measures.py`; "
            "the goal is ≤ 1.5× the floor. The machine is shared with other jobs: compare the ratio, "
            "measured in one run, rather than the seconds.",
        ]
        write_results(lines, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
