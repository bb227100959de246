"""National scale: each hot path at 2M, 10M (and 100M) events, against its baseline, with peak memory.

For each size, in one run and on one synthetic economy (Staffordshire cancer's term, from 2017):

* ingest           — ours vs two DuckDB floors over the same Parquet files, no validation: the files
                     written back as read, and store-shaped (typed columns, a pseudonym per row; the
                     goal's baseline: ingest within 2× of it);
* measures         — ours on DuckDB, ours on Spark (local mode), vs one hand-written DuckDB SQL
                     query of the same national rules (the floor; bench_measures.py);
* payments         — closing every contract year the data covers, on DuckDB and on Spark;
* baseline         — activity, cost and patient flows over the whole store, on DuckDB;
* stress test      — 100,000 runs vectorised vs the plain per-run Python loop (size-independent,
                     so run once).

Bounded, so a 100M run finishes within the machine: the economy is generated, written and ingested
a chunk (≤ ``--chunk`` million events) at a time, each chunk one submission; every DuckDB database,
ours and the floors', is opened through ``carecontract.records.duck`` with the same ``memory_limit``
(``--memory``, else ``CARECONTRACT_DUCKDB_MEMORY``, else 40% of RAM) and spills past it, so the
comparison is fair. Measures on every engine are checked equal to the floor before any time is
reported. Peak memory is the resident high-water mark of this process (reset before each step
through /proc/self/clear_refs) and, for Spark, of its JVM; the largest DuckDB spill folder seen
during the step is recorded too.

Run:  python benchmarks/bench_scale.py [--sizes 2 10 100] [--memory 4GB] [--chunk 10] [--no-spark]
Writes benchmarks/results-scale.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from bench_foundation import duckdb_floor, machine
from bench_measures import MEASURES, floor
from carecontract.baseline.compute import build_baseline
from carecontract.engine import spark_session
from carecontract.measures.compute import compute_measures
from carecontract.payments.pay import pay_contract
from carecontract.records import duck
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.store import Store
from carecontract.synth.economy import generate
from carecontract.synth.writer import write_economy
from carecontract.terms import load_terms
from timing import best_of, cpu_seconds, write_results

HERE = Path(__file__).parent
TERMS = HERE.parent / "contracts" / "staffordshire-cancer.yaml"
EVENTS_PER_PERSON_YEAR = 0.186
START = date(2017, 4, 1)
CHUNK_EVENTS = 10e6  # generated and ingested a chunk at a time, so memory stays bounded at 100M (--chunk)
MAX_PEOPLE = 90e6  # synthetic NHS numbers run out beyond this


def years_for(millions: float) -> int:
    """3 contract years, or 9 when 3 would need more people than there are synthetic NHS numbers."""
    return 3 if millions * 1e6 / 3 / EVENTS_PER_PERSON_YEAR <= MAX_PEOPLE else 9


def make_economy(millions: float, years: int, work: Path) -> tuple[int, list[list[Path]]]:
    """Activity files in chunks of ≤ ``CHUNK_EVENTS`` events: (people, files per chunk). Chunks are
    disjoint slices of one population (``id_offset``), with their own seeds and record ids; one is
    in memory at a time."""
    people = int(millions * 1e6 / years / EVENTS_PER_PERSON_YEAR)
    chunks = max(1, round(millions * 1e6 / CHUNK_EVENTS))
    size = people // chunks
    files = []
    for k in range(chunks):
        economy = generate(size, years, seed=5 + k, start=START, id_offset=k * size if chunks > 1 else None)
        files.append(write_economy(economy, work / "data" / f"chunk-{k}", "parquet"))
        del economy
    return size * chunks, files


def _reset_peak(pid: int | str = "self") -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: reset VmHWM to current RSS


def _peak_gib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _jvm_pid() -> int | None:
    return int(spark_session()._jvm.java.lang.ProcessHandle.current().pid())


class SpillWatch:
    """The most bytes DuckDB's spill folders held at once while a step ran (sampled every 0.5 s)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(OSError):
                held = sum(f.stat().st_size for f in duck.temp_root().rglob("*") if f.is_file())
                self.peak = max(self.peak, held)

    def __enter__(self) -> SpillWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


SPILL: dict[str, float] = {}  # the step's name → the most GiB DuckDB had spilled at once during it
CPU: dict[str, float] = {}  # the step's name → CPU seconds of this process per run (not Spark's JVM)


def measured(fn: Callable[[], Any], repeat: int, jvm: bool = False, name: str = "") -> tuple[float, float, Any]:
    """(best seconds, peak GiB, result); the peak includes the JVM's for Spark."""
    pid = _jvm_pid() if jvm else None
    _reset_peak()
    if pid:
        _reset_peak(pid)
    cpu = cpu_seconds()
    with SpillWatch() as spill:
        seconds, _, result = best_of(fn, repeat)
    CPU[name] = (cpu_seconds() - cpu) / max(1, repeat)
    peak = _peak_gib() + (_peak_gib(pid) if pid else 0.0)
    SPILL[name] = spill.peak / 2**30
    print(
        f"  {name}: {seconds:.2f} s ({CPU[name]:.1f} CPU s), peak {peak:.2f} GiB, spill {spill.peak / 2**30:.2f} GiB",
        flush=True,
    )
    return seconds, peak, result


def as_counts(rows: list[dict[str, Any]]) -> dict[str, tuple[float, int]]:
    return {r["measure"]: (r["numerator"], r["denominator"]) for r in rows if r["measure"] in MEASURES}


def run_size(millions: float, repeat: int, work: Path, spark: bool, floors: bool = True) -> list[str]:
    years = years_for(millions)
    population, chunks = make_economy(millions, years, work)
    files = [f for chunk in chunks for f in chunk]
    store_dir = work / "store"
    key = PseudonymKey(b"bench")
    print(f"{millions:g}M events: {len(files)} files in {len(chunks)} chunk(s)", flush=True)
    t_ingest, m_ingest, _ = measured(
        lambda: [ingest(chunk, store_dir, key=key) for chunk in chunks], 1, name="ingest (ours)"
    )
    store = Store(store_dir)
    event_files = [str(f) for f in store.files("events")]
    with contextlib.closing(duck.connect()) as con:
        events = con.execute(f"SELECT count(*) FROM read_parquet({event_files})").fetchall()[0][0]
    a, b = START, date(START.year + years, 3, 31)
    # ours before the measures floor, so a floor that fails (at 100M it spills 35 GB) costs only itself
    t_duck, m_duck, r_duck = measured(
        lambda: as_counts(compute_measures(store, a, b, only=MEASURES)), repeat, name="measures (ours)"
    )
    t_shaped = t_floor = r_floor = None  # the floors, unless left out (--no-floors)
    ingest_floors: list[tuple] = []
    measures_floor: list[tuple] = []
    if floors:  # once each, in the same run, over the same files, after ours
        t_floor_in, m_floor_in, _ = measured(
            lambda: duckdb_floor(files, work / "floor.parquet", "parquet"), 1, name="ingest floor, as read"
        )
        t_shaped, m_shaped, _ = measured(
            lambda: duckdb_floor(files, work / "floor.parquet", "parquet", store_shaped=True),
            1,
            name="ingest floor, store-shaped",
        )
        t_floor, m_floor, r_floor = measured(lambda: floor(event_files, a, b), repeat, name="measures floor")
        shaped = "DuckDB floor, store-shaped: typed columns + pseudonym, no validation"
        ingest_floors = [
            ("ingest", shaped, "ingest floor, store-shaped", t_shaped, m_shaped, t_shaped),
            (
                "ingest",
                "DuckDB floor, as read: read + write, no validation",
                "ingest floor, as read",
                t_floor_in,
                m_floor_in,
                t_shaped,
            ),
        ]
        measures_floor = [("measures", "hand-written DuckDB SQL (floor)", "measures floor", t_floor, m_floor, t_floor)]
    rows = [
        ("ingest", "carecontract (DuckDB, every rule)", "ingest (ours)", t_ingest, m_ingest, t_shaped),
        *ingest_floors,
        ("measures", "carecontract on DuckDB", "measures (ours)", t_duck, m_duck, t_floor),
        *measures_floor,
    ]
    checks = {"DuckDB": r_duck}
    terms = load_terms(TERMS)
    years_paid = [START.year + i for i in range(years)]
    t_pay, m_pay, _ = measured(lambda: pay_contract(terms.contract, store, years_paid), 1, name="payments")
    rows.append(("payments", f"close {len(years_paid)} contract years on DuckDB", "payments", t_pay, m_pay, t_pay))
    t_base, m_base, _ = measured(lambda: build_baseline(store, terms), 1, name="baseline")
    rows.append(("baseline", "activity, cost, patient flows on DuckDB", "baseline", t_base, m_base, t_base))
    if spark:
        spark_measures = lambda: as_counts(compute_measures(store, a, b, only=MEASURES, engine="spark"))  # noqa: E731
        t_sp, m_sp, r_sp = measured(spark_measures, repeat, jvm=True, name="measures on Spark")
        rows.append(("measures", "carecontract on Spark (local[2])", "measures on Spark", t_sp, m_sp, t_floor))
        checks["Spark"] = r_sp
        t_pay_sp, m_pay_sp, _ = measured(
            lambda: pay_contract(terms.contract, store, years_paid, engine="spark"),
            1,
            jvm=True,
            name="payments on Spark",
        )
        rows.append(
            (
                "payments",
                f"close {len(years_paid)} contract years on Spark",
                "payments on Spark",
                t_pay_sp,
                m_pay_sp,
                t_pay,
            )
        )
        # A local Spark left idle through the next size's ingest (both cores busy for minutes) lost
        # its driver endpoint and missed heartbeats at 100M once; a fresh session per size avoids it.
        spark_session().stop()
        spark_session.cache_clear()
    for name, result in checks.items() if r_floor is not None else ():  # checked against the floor's
        for m in MEASURES:
            assert abs(float(result[m][0]) - float(r_floor[m][0])) < 1e-6 and result[m][1] == r_floor[m][1], (
                name,
                m,
                result[m],
                r_floor[m],
            )
    ingested = "in chunks of ≤ 10M events" if len(chunks) > 1 else "in one go"
    lines = [
        f"### {events:,} events ({population:,} people × {years} years; generated and ingested {ingested})",
        "",
        "| step | implementation | seconds | events/s | ratio to baseline | CPU s | CPU ratio | peak memory GiB "
        "| DuckDB spill GiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_keys = {"ingest": "ingest floor, store-shaped", "measures": "measures floor"}
    for step, name, key, seconds, peak, base in rows:
        cpu, cpu_base = CPU.get(key, 0.0), CPU.get(base_keys.get(step, ""), 0.0)
        cpu_ratio = f"{cpu / cpu_base:.2f}×" if cpu_base and "Spark" not in name else "—"
        ratio = f"{seconds / base:.2f}×" if base else "—"
        lines.append(
            f"| {step} | {name} | {seconds:.2f} | {events / seconds:,.0f} | {ratio} | {cpu:.1f} "
            f"| {cpu_ratio} | {peak:.2f} | {SPILL.get(key, 0.0):.2f} |"
        )
    shutil.rmtree(work / "data", ignore_errors=True)
    shutil.rmtree(store_dir, ignore_errors=True)
    (work / "floor.parquet").unlink(missing_ok=True)
    return [*lines, ""]


def stress_rows(repeat: int) -> list[str]:
    from carecontract.viability.projection import project
    from carecontract.viability.simulate import draw, resolve_inputs, stress

    contract = load_terms(TERMS).contract
    inputs = resolve_inputs(contract)
    runs, sample = 100_000, 2_000
    t_vec, m_vec, _ = measured(lambda: stress(contract, runs, 0, with_sensitivity=False), repeat)
    draws = draw(inputs, sample, 0)
    rows = [{k: (v[r].tolist() if v.shape[1] > 1 else float(v[r, 0])) for k, v in draws.items()} for r in range(sample)]
    t_loop = best_of(lambda: [project(inputs, row) for row in rows], 1)[0] * runs / sample
    return [
        "### Stress test (independent of data size)",
        "",
        "| implementation | runs | seconds | runs/s | ratio to loop | peak memory GiB |",
        "|---|---:|---:|---:|---:|---:|",
        f"| vectorised NumPy | {runs:,} | {t_vec:.2f} | {runs / t_vec:,.0f} | {t_vec / t_loop:.3f}× | {m_vec:.2f} |",
        f"| per-run Python loop (timed on {sample:,}, scaled) | {runs:,} | {t_loop:.2f} | {runs / t_loop:,.0f} | "
        "1.00× | — |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2, 10, 100], help="millions of events")
    parser.add_argument("--memory", help=f"DuckDB memory_limit for ours and the floors (sets {duck.MEMORY_ENV})")
    parser.add_argument("--chunk", type=float, default=10.0, help="millions of events per chunk")
    parser.add_argument("--skip-100m", action="store_true", help="leave out sizes ≥ 100M (small disks)")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument(
        "--no-floors", action="store_true", help="leave out the floors (ratios then need a run that had them)"
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results-scale.md")
    args = parser.parse_args()
    sizes = [s for s in args.sizes if not (args.skip_100m and s >= 100)]
    if args.memory:
        os.environ[duck.MEMORY_ENV] = args.memory
    globals()["CHUNK_EVENTS"] = args.chunk * 1e6  # make_economy's chunk size
    work = Path(tempfile.mkdtemp(prefix="cc-bench-scale-"))
    lines = [
        "# Scale benchmark",
        "",
        machine(),
        "",
        "Ratios are against the baseline measured in the same run: the store-shaped DuckDB floor for ingest, "
        "the hand-written DuckDB SQL for measures, DuckDB for Spark's payments, the per-run loop for the "
        "stress test. "
        + (
            "The floors were left out (--no-floors): no ratio to them, and no check of the measures against "
            "the floor's. "
            if args.no_floors
            else "Every engine's measures were checked equal to the floor's. "
        )
        + "Every DuckDB database "
        f"(ours and the floors') had memory_limit = {duck.memory_limit()} (records.duck) and spilled past it. "
        "Peak memory: the process's resident high-water mark during the step (with Spark's JVM).",
        "",
    ]
    try:
        for millions in sizes:
            lines += run_size(millions, args.repeat, work, spark=not args.no_spark, floors=not args.no_floors)
            write_results(lines, args.out)  # keep what is done if a larger size fails
        lines += stress_rows(args.repeat)
        spark = (" --no-spark" if args.no_spark else "") + (" --no-floors" if args.no_floors else "")
        lines.append(
            f"Measured {date.today().isoformat()} by `python benchmarks/bench_scale.py "
            f"--sizes {' '.join(f'{s:g}' for s in sizes)} --memory {duck.memory_limit()} --chunk {args.chunk:g}"
            f"{spark}`; {os.cpu_count()} cores."
        )
        write_results(lines, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
