"""Ingest against the tool a data team would otherwise use: a pandera schema on polars.

The same rules, over the same files, with the same rows accepted and quarantined:

* every single-row rule of ``records.validation.row_rules()`` (34, one per reason) as a pandera
  check: per column where the rule reads one column (``str_matches``, ``isin``, ``not_nullable``,
  custom checks), on the whole frame where it reads two (a withdrawal needs fewer fields; a
  diagnosis needs a cancer code ...); the columns normalised first as ingest does (trimmed, empty as
  missing, enums lower-case, codes upper-case, NHS numbers without spaces or hyphens);
* the cross-row rules that apply to a first submission into an empty store, in polars: a record id
  twice (the first valid copy in file order wins), a withdrawal with nothing to withdraw, a pathway
  event before the patient's first referral, an event after their death (these two over the rows
  that become versions). The other cross-row rule (another provider's record id) needs a store
  that already holds records, so it cannot fire here, in either;
* the accepted rows and the quarantine (with every reason) written to zstd Parquet.

Pandera is spared the pseudonyms (no HMAC in polars), the typed store columns, the versioning and the
line ledger, so the ratio flatters it. Before any time is reported, the script checks row by row
(each file's row number, with the record id) that both accepted and quarantined the same rows, for
the same reasons.

Run:  python benchmarks/bench_pandera.py [--population N] [--years Y] [--repeat R]
Writes benchmarks/results-pandera.md (and prints it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pandera.polars as pa
import polars as pl

from bench_foundation import duckdb_floor, machine
from carecontract.records import duck, schema, validation
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.store import Store
from carecontract.synth.economy import generate
from carecontract.synth.writer import write_economy
from timing import best_of, cpu_seconds, write_results

HERE = Path(__file__).parent
TODAY = date.today()
ICD10 = r"[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?"
NHS_WEIGHTS = tuple(range(10, 1, -1))


def full(pattern: str) -> str:
    """A regular expression that must match the whole value (DuckDB's regexp_full_match)."""
    return f"^(?:{pattern})$"


# -- reading and normalising: what ingest does before any rule ----------------------------------


def read(files: list[Path]) -> pl.DataFrame:
    """Every file as text, with its position (file, row) so each row can be named."""
    frames = []
    for index, path in enumerate(files):
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path).select(pl.all().cast(pl.String))
        else:
            frame = pl.read_csv(path, infer_schema=False)
        frame = frame.select(
            [pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c) for c in schema.ALL_COLUMNS]
        )
        frames.append(frame.with_columns(source_index=pl.lit(index), source_row=pl.int_range(1, pl.len() + 1)))
    return pl.concat(frames)


def normalise(frame: pl.DataFrame) -> pl.DataFrame:
    """records.validation.normalise_sql in polars: trim spaces, empty as null, case by column."""
    out = []
    for c in schema.ALL_COLUMNS:
        value = pl.col(c).str.strip_chars(" ")
        if c == "nhs_number":
            value = value.str.replace_all(r"[ -]", "")
        elif c in validation.LOWER:
            value = value.str.to_lowercase()
        elif c in validation.UPPER:
            value = value.str.to_uppercase()
        out.append(pl.when(value == "").then(None).otherwise(value).alias(c))
    return frame.with_columns(out)


# -- the schema: each of the 34 row rules, named by its reason ---------------------------------


def _date(column: str = "event_date") -> pl.Expr:
    return pl.col(column).str.to_date("%Y-%m-%d", strict=False)


def _nhs_valid(column: str) -> pl.Expr:
    digits = [pl.col(column).str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(10)]
    total = sum(w * d for w, d in zip(NHS_WEIGHTS, digits[:9], strict=True))
    check = 11 - total % 11
    check = pl.when(check == 11).then(0).otherwise(check)
    return pl.col(column).str.contains(full("[0-9]{10}")) & (check == digits[9])


def _site(column: str) -> pl.Expr:
    """The tumour site of an ICD-10 code (null when not cancer): schema.TUMOUR_SITES in polars."""
    code = pl.col(column).str.slice(0, 3).str.to_uppercase()
    expr = pl.lit(None, pl.String)
    for site in reversed(schema.TUMOUR_SITES):  # the first matching range wins
        expr = pl.when(code.is_between(pl.lit(site.first), pl.lit(site.last))).then(pl.lit(site.name)).otherwise(expr)
    return expr


WITHDRAWAL = pl.col("action") == schema.WITHDRAW


def _frame_check(reason: str, bad: pl.Expr) -> pa.Check:
    """A whole-frame check: fails the rows where ``bad`` is true (null counts as not broken)."""
    return pa.Check(lambda data: data.lazyframe.select(~bad.fill_null(False)), name=reason)


def _column_check(reason: str, bad: pl.Expr) -> pa.Check:
    """A check on one column's values (the column is ``pl.col(data.key)``); nulls pass."""
    return pa.Check(lambda data: data.lazyframe.select(~bad.fill_null(False)), name=reason)


def _matches(reason: str, pattern: str) -> pa.Check:
    return pa.Check.str_matches(full(pattern), name=reason, error=reason)


def _one_of(reason: str, values: tuple[str, ...]) -> pa.Check:
    return pa.Check.isin(list(values), name=reason, error=reason)


def _pattern_or(reason: str, column: str, pattern: str, too_big: pl.Expr) -> pa.Check:
    value = pl.col(column)
    return _column_check(reason, value.is_not_null() & (~value.str.contains(full(pattern)) | too_big))


def build_schema() -> pa.DataFrameSchema:
    """The pandera schema: one check per reason of records.validation.row_rules()."""
    not_withdrawal = ~WITHDRAWAL.fill_null(False)
    date_ = _date()
    column_checks: dict[str, list[pa.Check]] = {
        "nhs_number": [
            _column_check("invalid_nhs_number", pl.col("nhs_number").is_not_null() & ~_nhs_valid("nhs_number"))
        ],
        "event_date": [
            _column_check(
                "invalid_event_date",
                pl.col("event_date").is_not_null()
                & (~pl.col("event_date").str.contains(full("[0-9]{4}-[0-9]{2}-[0-9]{2}")) | date_.is_null()),
            ),
            _column_check("future_event_date", date_ > TODAY),
            _column_check("implausible_event_date", date_ < date(1900, 1, 1)),
        ],
        "event_type": [_one_of("unknown_event_type", schema.EVENT_TYPES)],
        "provider_code": [_matches("invalid_provider_code", "[A-Z0-9]{3,8}")],
        "commissioner_code": [_matches("invalid_commissioner_code", "[A-Z0-9]{3,8}")],
        "icd10": [_matches("invalid_icd10", ICD10)],
        "stage": [_one_of("invalid_stage", ("1", "2", "3", "4"))],
        "referral_route": [_one_of("invalid_referral_route", schema.REFERRAL_ROUTES)],
        "modality": [_one_of("invalid_modality", schema.MODALITIES)],
        "adjustment_days": [
            _pattern_or(
                "invalid_adjustment_days",
                "adjustment_days",
                "[0-9]{1,4}",
                pl.col("adjustment_days").cast(pl.Int64, strict=False) > 3650,
            )
        ],
        "place_of_death": [_one_of("invalid_place_of_death", schema.PLACES)],
        "usual_residence": [_one_of("invalid_usual_residence", schema.PLACES)],
        "score": [
            _pattern_or(
                "invalid_score", "score", r"[0-9]{1,2}(\.[0-9]+)?", pl.col("score").cast(pl.Float64, strict=False) > 10
            )
        ],
        "cost_gbp": [_matches("invalid_cost_gbp", r"[0-9]{1,10}(\.[0-9]{1,2})?")],
        "age": [_pattern_or("invalid_age", "age", "[0-9]{1,3}", pl.col("age").cast(pl.Int64, strict=False) > 120)],
        "sex": [_one_of("invalid_sex", schema.SEXES)],
        "imd_quintile": [_one_of("invalid_imd_quintile", ("1", "2", "3", "4", "5"))],
        "ethnicity": [_one_of("invalid_ethnicity", schema.ETHNIC_CATEGORIES)],
        "action": [_one_of("invalid_action", schema.ACTIONS)],
    }
    # missing_record_id and missing_provider_code: the two fields even a withdrawal needs
    always = set(schema.WITHDRAWAL_COLUMNS)
    columns = {
        c: pa.Column(pl.String, checks=column_checks.get(c, []), nullable=c not in always, required=True)
        for c in schema.ALL_COLUMNS
    }
    frame_checks = [
        _frame_check(f"missing_{c}", pl.col(c).is_null() & not_withdrawal)
        for c in schema.REQUIRED_COLUMNS
        if c not in always
    ]
    frame_checks.append(
        _frame_check(
            "diagnosis_not_cancer",
            (pl.col("event_type") == "diagnosis")
            & pl.col("icd10").str.contains(full(ICD10))
            & _site("icd10").is_null(),
        )
    )
    for event_type, needed in schema.REQUIRED_FOR_EVENT.items():
        frame_checks += [
            _frame_check(f"missing_{c}", (pl.col("event_type") == event_type) & pl.col(c).is_null()) for c in needed
        ]
    return pa.DataFrameSchema(columns, checks=frame_checks)


#: pandera's own name for a failed ``nullable=False`` → our reason for that column
NOT_NULLABLE = {c: f"missing_{c}" for c in schema.WITHDRAWAL_COLUMNS}


def rules_in(schema_: pa.DataFrameSchema) -> list[str]:
    """The reason each check of the schema stands for (``not_nullable`` columns included)."""
    names = [check.name for column in schema_.columns.values() for check in column.checks]
    names += [check.name for check in schema_.checks]
    return names + [NOT_NULLABLE[c] for c, column in schema_.columns.items() if not column.nullable]


# -- the pipeline a data team would run --------------------------------------------------------


def pandera_ingest(files: list[Path], out: Path, schema_: pa.DataFrameSchema) -> pl.DataFrame:
    """Validate ``files`` with pandera and the cross-row rules; write accepted rows and the quarantine.

    Returns the quarantine's (source_index, source_row, record_id, reasons) for the comparison.
    """
    raw = read(files)
    frame = normalise(raw).with_row_index("row")
    try:
        schema_.validate(frame, lazy=True)
        failures = pl.DataFrame(schema={"row": pl.UInt32, "reason": pl.String})
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        broken = cases.filter(pl.col("index").is_null())  # a check that could not run, not a row that failed
        assert broken.is_empty(), broken
        reason = (
            pl.when(pl.col("check") == "not_nullable")
            .then(pl.col("column").replace_strict(NOT_NULLABLE, default=None))
            .otherwise(pl.col("check"))
        )
        failures = cases.select(pl.col("index").cast(pl.UInt32).alias("row"), reason.alias("reason"))
    bad_rows = failures.group_by("row").agg(pl.col("reason").unique().sort().alias("reasons"))
    judged = frame.join(bad_rows, on="row", how="left")
    valid = judged.filter(pl.col("reasons").is_null())
    # cross-row: a record id twice (first valid copy in file order wins), nothing to withdraw (empty store)
    copy = pl.int_range(pl.len()).over("record_id", order_by=["source_index", "source_row"])
    valid = valid.with_columns(
        cross=pl.when(copy > 0)
        .then(pl.lit(validation.DUPLICATE_RECORD_ID))
        .when(WITHDRAWAL.fill_null(False))
        .then(pl.lit(validation.NOTHING_TO_WITHDRAW))
    )
    written = valid.filter(pl.col("cross").is_null()).with_columns(d=_date())
    # held: a pathway event before the patient's first referral, any event after their death
    timeline = written.group_by("nhs_number").agg(
        first_referral=pl.col("d").filter(pl.col("event_type") == "referral").min(),
        death=pl.col("d").filter(pl.col("event_type") == "death").min(),
    )
    before = pl.col("event_type").is_in(schema.PATHWAY_EVENTS) & (pl.col("d") < pl.col("first_referral"))
    after = pl.col("d") > pl.col("death")
    written = written.join(timeline, on="nhs_number", how="left").with_columns(
        held=pl.concat_list(
            pl.when(before.fill_null(False)).then(pl.lit(validation.BEFORE_FIRST_REFERRAL)),
            pl.when(after.fill_null(False)).then(pl.lit(validation.AFTER_DEATH)),
        ).list.drop_nulls()
    )
    accepted = written.filter(pl.col("held").list.len() == 0)
    accepted.drop("row", "reasons", "cross", "d", "first_referral", "death", "held").write_parquet(
        out / "accepted.parquet", compression="zstd"
    )
    keys = ["source_index", "source_row", "record_id"]
    quarantine = pl.concat(
        [
            judged.filter(pl.col("reasons").is_not_null()).select(*keys, "reasons"),
            valid.filter(pl.col("cross").is_not_null()).select(*keys, pl.concat_list("cross").alias("reasons")),
            written.filter(pl.col("held").list.len() > 0).select(*keys, pl.col("held").alias("reasons")),
        ]
    )
    # the rows as read, with their reasons, for the people who correct them
    raw.with_row_index("row").join(
        frame.select("row", *keys).join(quarantine.select(*keys, "reasons"), on=keys), on="row"
    ).write_parquet(out / "quarantine.parquet", compression="zstd")
    return quarantine


def ours_quarantine(store_dir: Path, files: list[Path]) -> pl.DataFrame:
    """carecontract's quarantined rows (rejected and held) as (source_index, source_row, record_id, reasons)."""
    store = Store(store_dir)
    index = {str(f): i for i, f in enumerate(files)}
    con = store.connect(duck.connect())
    try:
        rejected = con.execute(
            "SELECT source_file, source_row, trim(record_id), list_sort(reasons) FROM quarantine_rows"
        ).fetchall()
        held = con.execute(
            "SELECT e.source_file, e.source_row, e.record_id, list_sort(s.reasons) FROM state s "
            "JOIN all_events e USING (batch_id, record_id) WHERE s.kind = 'event' AND s.status = 'held'"
        ).fetchall()
    finally:
        con.close()
    rows = [(index[f], r, rid, list(reasons)) for f, r, rid, reasons in rejected + held]
    return pl.DataFrame(
        rows,
        schema={
            "source_index": pl.Int32,
            "source_row": pl.Int64,
            "record_id": pl.String,
            "reasons": pl.List(pl.String),
        },
        orient="row",
    )


def same_rows(ours: pl.DataFrame, theirs: pl.DataFrame, total: int) -> int:
    """Check both quarantined exactly the same rows (file, row, record id) for the same reasons;
    return how many. Every other row was accepted by both."""
    keys = ["source_index", "source_row", "record_id"]
    a = ours.with_columns(
        pl.col("source_index").cast(pl.Int32), pl.col("source_row").cast(pl.Int64), pl.col("reasons").list.sort()
    )
    b = theirs.with_columns(
        pl.col("source_index").cast(pl.Int32), pl.col("source_row").cast(pl.Int64), pl.col("reasons").list.sort()
    )
    joined = a.join(b, on=keys, how="full", coalesce=True, suffix="_pandera")
    only_ours = joined.filter(pl.col("reasons_pandera").is_null())
    only_theirs = joined.filter(pl.col("reasons").is_null())
    differ = joined.filter(
        pl.col("reasons").is_not_null()
        & pl.col("reasons_pandera").is_not_null()
        & (pl.col("reasons") != pl.col("reasons_pandera"))
    )
    assert only_ours.is_empty() and only_theirs.is_empty() and differ.is_empty(), (
        f"quarantined only by carecontract: {only_ours.head(5)}\nonly by pandera: {only_theirs.head(5)}\n"
        f"different reasons: {differ.head(5)}"
    )
    assert len(a) == len(b) < total
    return len(a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1_100_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"])
    parser.add_argument("--out", type=Path, default=HERE / "results-pandera.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cc-bench-pandera-"))
    key = PseudonymKey(b"benchmark")
    schema_ = build_schema()
    rules = rules_in(schema_)
    ours_rules = [r.reason for r in validation.row_rules()]
    assert sorted(rules) == sorted(ours_rules), (set(rules) ^ set(ours_rules), len(rules), len(ours_rules))
    report = [
        "# Ingest against a pandera schema on polars",
        "",
        f"Machine: {machine()}, pandera {pa.__version__ if hasattr(pa, '__version__') else _version('pandera')}, "
        f"polars {pl.__version__}.",
        f"Economy: {args.population:,} people × {args.years} years, 1% injected errors; best of {args.repeat}.",
        f"The pandera schema holds the {len(rules)} row rules of `records.validation.row_rules()` (one check per "
        f"reason) and the cross-row rules in polars; both quarantined the same rows for the same reasons "
        "(checked row by row: file, row, record id, reasons) before any time was kept.",
        "",
        "Seconds are wall clock, with CPU seconds (every thread of the process) in brackets: the machine is "
        "shared, and CPU time does not swing with the others' load as wall time does.",
        "",
        "| files | rows | quarantined (same in both) | carecontract ingest s (CPU s) | pandera + polars s (CPU s) "
        "| store-shaped floor s (CPU s) | pandera / carecontract (CPU) | pandera / floor (CPU): the most any ingest "
        "could reach |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        economy = generate(args.population, args.years, seed=1, start=date(2014, 4, 1), error_rate=0.01)
        rows = economy.events.num_rows
        for fmt in args.formats:
            files = write_economy(economy, work / fmt, fmt)
            runs: list[int] = []

            def ours(fs: list[Path] = files, runs: list[int] = runs, f: str = fmt) -> Path:
                runs.append(1)
                target = work / f"store-{f}-{len(runs)}"
                ingest(fs, target, key=key)
                return target

            def theirs(fs: list[Path] = files, f: str = fmt) -> pl.DataFrame:
                target = work / f"pandera-{f}"
                target.mkdir(exist_ok=True)
                return pandera_ingest(fs, target, schema_)

            c0 = cpu_seconds()
            t_ours, _, store_dir = best_of(ours, args.repeat)
            c1 = cpu_seconds()
            t_theirs, _, quarantine = best_of(theirs, args.repeat)
            c2 = cpu_seconds()
            t_floor, _, _ = best_of(
                lambda fs=files, f=fmt: duckdb_floor(fs, work / f"floor-{f}.parquet", f, True), args.repeat
            )
            c3 = cpu_seconds()
            cpu_ours, cpu_theirs = (c1 - c0) / args.repeat, (c2 - c1) / args.repeat
            cpu_floor = (c3 - c2) / args.repeat
            n = same_rows(ours_quarantine(store_dir, files), quarantine, rows)
            report.append(
                f"| {fmt} | {rows:,} | {n:,} | {t_ours:.2f} ({cpu_ours:.1f}) | {t_theirs:.2f} ({cpu_theirs:.1f}) "
                f"| {t_floor:.2f} ({cpu_floor:.1f}) | {t_theirs / t_ours:.1f}× ({cpu_theirs / cpu_ours:.1f}×) "
                f"| {t_theirs / t_floor:.1f}× ({cpu_theirs / cpu_floor:.1f}×) |"
            )
            print(report[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report += [
        "",
        "carecontract's time includes what pandera's does not: HMAC pseudonyms, the store's typed columns, the "
        "line ledger (CSV), versions and the manifest. Both write zstd Parquet.",
        "The store-shaped floor (`bench_foundation.duckdb_floor(store_shaped=True)`, the same files, no validation) "
        "writes what the store must hold: every column typed, a SHA-256 per row, the tumour site. Any ingest "
        "that writes the store costs at least that, so pandera / floor bounds how much faster than pandera any "
        "ingest could be, measured in the same run.",
        f"Measured {date.today().isoformat()} by `python benchmarks/bench_pandera.py` on a shared, loaded machine "
        "(both timed in the same run).",
    ]
    write_results(report, args.out)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
