"""``carecontract demo``: the pipeline end to end on a synthetic Staffordshire-sized economy.

It is the newcomer's first run and the project's smoke test: synthesise 1.1 million people's
activity with 1% realistic errors, ingest it, show what was quarantined and why, report data
quality, check that every injected error was found, show the outcome measures, pay the
Staffordshire cancer contract for the years the data covers, and write the HTML report. Then a month
of corrections arrives, as real returns do: the providers correct some records, withdraw a few
recorded in error and resubmit quarantined rows fixed. The demo submits them and prints how the
figures moved between the two as-at points (the first submission, and now). Re-closing the
payments on the new view (``carecontract pay``) makes a new version with its difference.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pyarrow.csv as pacsv
from rich.console import Console

from carecontract.present import (
    percent,
    print_ingest,
    print_measures,
    print_quality,
    progress_bar,
    rate,
    table,
)
from carecontract.records import duck
from carecontract.records.ingest import ingest
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.synth.economy import contract_year_bounds, generate
from carecontract.synth.writer import write_economy
from carecontract.terms import load_terms
from carecontract.terms.targets import contract_targets, label_rows, targets_rule


def run_demo(
    out: Path, population: int, years: int, seed: int, error_rate: float, console: Console, err: Console
) -> dict:
    """Run the pipeline into ``out``, printing as it goes; returns the ingest, quality and measure results."""
    out = Path(out)
    data, store_dir = out / "data", out / "store"
    for folder in (data, store_dir):  # a demo starts afresh; it only removes its own folders
        if folder.exists():
            shutil.rmtree(folder)
    console.rule("[bold]carecontract demo")
    t0 = time.perf_counter()
    with progress_bar(True, err) as report:
        report("synthesise", 0.0)
        economy = generate(population, years, seed, error_rate=error_rate)
        report("synthesise", 0.7)
        files = write_economy(economy, data)
        report("synthesise", 1.0)
        result = ingest(files, store_dir, progress=report)
    console.print(
        f"Synthesised {economy.events.num_rows:,} activity records for {population:,} people, "
        f"{economy.start} to {years} year(s) on, with {economy.injected.num_rows:,} injected errors."
    )
    print_ingest(result.as_dict(), console)
    found = _check_injected(data / "injected_errors.csv", store_dir)
    console.print(found)
    report_data = quality(store_dir).as_dict()
    print_quality(report_data, console)
    years_covered = contract_year_bounds(economy.start, economy.years)
    period = (years_covered[0][0], years_covered[-1][1])
    console.rule(f"Outcome measures, {period[0]} to {period[1]}")
    terms_file = CONTRACTS / "staffordshire-cancer.yaml"
    contract = load_terms(terms_file).contract if terms_file.exists() else None  # the report's targets too
    run = Run(store_dir)  # one Run for the measures, the payments, the report and OCDS: pathways built once
    outcome_rows = label_rows(run.measures(*period, targets=contract_targets(contract)), contract)
    hint = (
        f"{targets_rule(contract, terms_file.name if contract else None)} By provider: carecontract measures "
        f"{terms_file if contract else ''} --store {store_dir} --from {period[0]} --to {period[1]} --by provider"
    )
    print_measures(outcome_rows, [], hint, console=console)
    _fair_comparison(run, period, store_dir, console)
    report_path = _pay_and_report(run, out, console)
    moved = _a_month_of_corrections(files[-1], store_dir, out, (result.batch_id, outcome_rows), period, console)
    console.rule()
    console.print(f"Done in {time.perf_counter() - t0:.1f}s. Outputs:")
    console.print(f"  activity files     {data}/activity-*.csv  (injected errors listed in injected_errors.csv)")
    console.print(f"  event store        {store_dir}/  (Parquet + manifest.json; open catalog.duckdb in DuckDB)")
    console.print(f"  quarantine         {store_dir}/quarantine/*.parquet  (every rejected row with its reasons)")
    console.print(f"  next               carecontract quality --store {store_dir}")
    if report_path:
        terms = CONTRACTS / "staffordshire-cancer.yaml"
        console.print(f"  dashboard          carecontract serve {terms} --store {store_dir}  (API docs at /docs)")
        console.print(f"[bold]Open the report:[/] {report_path}  (one file, works offline)")
    return {"ingest": result.as_dict(), "quality": report_data, "measures": outcome_rows, "corrections": moved}


CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"

#: What the demo's fair comparison says of a unit, by its verdict (measures.fair.outlier_verdicts).
VERDICT = {
    "cleared": "an outlier on the raw rate; within the limits once its patients' age, sex, tumour site and "
    "deprivation are allowed for",
    "stays": "an outlier on the raw rate and after case-mix adjustment: its patients do not explain it",
    "adjusted_only": "an outlier only after case-mix adjustment",
}


def _fair_comparison(run: Run, period: tuple, store_dir: Path, console: Console) -> list[dict]:
    """Raw against case-mix adjusted funnels by provider: which outliers adjustment clears and which
    stay (the synthetic economy gives one provider older, more deprived patients and another worse
    quality, rates.yaml ``case_mix``)."""
    from carecontract.measures.fair import adjusted, outlier_verdicts
    from carecontract.synth.rates import load_rates

    wanted = ["early_stage", "observed_survival_1y", "emergency_presentation"]
    raw = [r for r in run.measures(*period, by=["provider"]) if r["measure"] in wanted]
    verdicts = outlier_verdicts(raw, adjusted(run.sources(detail=True), *period, ("provider",), wanted))
    console.rule("Fair comparisons: raw rates against case-mix adjusted ratios, by provider")
    names = {p["code"]: p["name"] for p in load_rates()["providers"]}  # the synthetic economy's providers
    for v in verdicts:
        who = names.get(v["provider"], v["provider"])
        console.print(
            f"  {v['measure']}: {who} ({v['provider']}), raw {rate(v['measure'], v['raw_rate'])}, "
            f"O/E {v['ratio']:.2f}: {VERDICT[v['verdict']]}.",
            highlight=False,
        )
    if not verdicts:
        console.print("  No provider is outside the 99.8% funnel limits, raw or adjusted.")
    console.print(
        f"  Both side by side: carecontract measures --store {store_dir} --from {period[0]} --to {period[1]} "
        "--adjusted (limits widened for overdispersion, SHMI method; docs/measures.md, Fair comparisons)",
        highlight=False,
    )
    return verdicts


def _pay_and_report(run: Run, out: Path, console: Console) -> Path | None:
    """Close the Staffordshire cancer contract's years the data covers, and write the report."""
    from carecontract.payments.book import covered_years
    from carecontract.payments.components import PAID, totals
    from carecontract.payments.settle import post_until
    from carecontract.publish.ocds import release_package
    from carecontract.publish.report import build_report

    terms_file = CONTRACTS / "staffordshire-cancer.yaml"
    if not terms_file.exists():
        console.print("(contracts/ not found beside the source: payments and the report are skipped)")
        return None
    terms = load_terms(terms_file)
    run = run.with_terms(terms)
    years = covered_years(terms.contract, run)
    if years:  # the payment calendar up to today: on account, then each reconciliation and its true-up
        from carecontract.payments.components import payment_components

        done = post_until(terms, run, years=years)
        paid = sum(t[PAID] for t in totals(payment_components(done.rows, terms.contract)).values()) / 1e8
        console.print(
            f"Paid {terms.contract.name} for {years[0]}–{years[-1]}: £{paid:,.1f}m through a balanced ledger."
        )
    path = out / "report.html"
    path.write_text(build_report(terms, run, runs=5000))
    release = out / "release.json"
    release.write_text(json.dumps(release_package(terms, run), indent=2, ensure_ascii=False))
    console.print(f"Published the contract as OCDS 1.1 releases (ledger transactions, gate milestones): {release}")
    return path


#: Row rules a provider can fix by leaving an optional field empty (a miscoded value it cannot stand by).
FIXABLE = {
    "invalid_stage": "stage",
    "invalid_sex": "sex",
    "invalid_ethnicity": "ethnicity",
    "invalid_imd_quintile": "imd_quintile",
    "invalid_age": "age",
    "invalid_score": "score",
}


def corrections_file(last_file: Path, store_dir: Path, path: Path) -> tuple[str, dict[str, int]]:
    """Write a month of corrections for the last month of ``last_file``: about 2% of its treatments
    re-costed (+10%), 0.5% of its records withdrawn, and its quarantined rows whose only faults are
    optional fields resubmitted with those fields empty. Chosen by a hash of the record id, so the
    same data gives the same corrections."""
    from carecontract.records.schema import ALL_COLUMNS

    con = duck.connect()
    try:
        con.execute(f"CREATE TEMP VIEW raw AS SELECT * FROM read_csv('{last_file}', all_varchar = true)")
        Store(store_dir).connect(con)
        month = con.execute("SELECT strftime(max(event_date), '%Y-%m') FROM events").fetchone()[0]
        fixable = ", ".join(f"'{r}'" for r in FIXABLE)
        con.execute(
            "CREATE TEMP TABLE fix AS SELECT DISTINCT trim(record_id) AS record_id, reasons FROM quarantine_rows "
            f"WHERE len(reasons) > 0 AND len(list_filter(reasons, lambda r: r NOT IN ({fixable}))) = 0"
        )
        present = [c for c in ALL_COLUMNS if c != "action"]
        blank = {c: f"CASE WHEN list_contains(f.reasons, '{r}') THEN NULL ELSE r.{c} END" for r, c in FIXABLE.items()}
        fixed_cols = ", ".join(f"{blank.get(c, 'r.' + c)} AS {c}" for c in present)
        recost = ", ".join(
            "CAST(round(TRY_CAST(cost_gbp AS DOUBLE) * 1.1, 2) AS VARCHAR) AS cost_gbp" if c == "cost_gbp" else c
            for c in present
        )
        nulls = ", ".join(
            "record_id" if c == "record_id" else "provider_code" if c == "provider_code" else f"NULL AS {c}"
            for c in present
        )
        # records the store holds cleanly (no quarantined copy), dated in the month
        in_month = (
            f"event_date LIKE '{month}-%' AND trim(record_id) NOT IN (SELECT trim(record_id) FROM quarantine_rows "
            "WHERE record_id IS NOT NULL)"
        )
        treatment = "event_type = 'treatment' AND TRY_CAST(cost_gbp AS DOUBLE) > 0"
        con.execute(
            f"CREATE TEMP TABLE corrections AS "
            f"SELECT {recost}, 'submit' AS action, 'corrected' AS kind FROM raw "
            f"WHERE {in_month} AND {treatment} AND hash(record_id) % 50 = 0 "
            f"UNION ALL SELECT {nulls}, 'withdraw', 'withdrawn' FROM raw "
            f"WHERE {in_month} AND event_type NOT IN ('referral', 'death') AND hash(record_id) % 200 = 1 "
            f"UNION ALL SELECT {fixed_cols}, 'submit', 'fixed' FROM raw r "
            f"JOIN fix f ON trim(r.record_id) = f.record_id WHERE r.event_date LIKE '{month}-%'"
        )
        kinds = dict(con.execute("SELECT kind, count(*) FROM corrections GROUP BY kind").fetchall())
        if not kinds:  # a small economy's month can draw none: withdraw one record, so it is never empty
            con.execute(
                f"INSERT INTO corrections SELECT {nulls}, 'withdraw', 'withdrawn' FROM raw WHERE {in_month} "
                "AND event_type NOT IN ('referral', 'death') ORDER BY hash(record_id), record_id LIMIT 1"
            )
            kinds = dict(con.execute("SELECT kind, count(*) FROM corrections GROUP BY kind").fetchall())
        cols = ", ".join([*present, "action"])
        con.execute(f"COPY (SELECT {cols} FROM corrections) TO '{path}' (HEADER, DELIMITER ',')")
    finally:
        con.close()
    return month, kinds


def _counts(store: Store) -> tuple[int, int]:
    """(events in the figures, rows on the open quarantine list) of a view of the store."""
    con = store.connect()
    try:
        return con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine)").fetchone()
    finally:
        con.close()


def _rate_and_counts(row: dict) -> str:
    n, d = row.get("numerator"), row.get("denominator")
    counts = f"n={d:,}" if n is None else f"{n:,}/{d:,}"
    return f"{rate(row['measure'], row['rate'])} ({counts})"


def _a_month_of_corrections(
    last_file: Path, store_dir: Path, out: Path, first: tuple[str | None, list[dict]], period: tuple, console: Console
) -> dict:
    """Submit a month of corrections, then show how the figures moved between the two as-at points.

    ``first`` is the first submission and the measures already computed on it (read again as at that
    submission they are the same: the store's versions are immutable), so only "now" is computed.
    """

    first_batch, before = first
    path = out / "data" / "corrections.csv"
    month, kinds = corrections_file(last_file, store_dir, path)
    console.rule(f"A month of corrections ({month})")
    result = ingest([path], store_dir)
    c = result.counts
    console.print(
        f"{path.name}: {result.read:,} rows from the providers: {c['corrected']:,} corrected (re-costed treatments), "
        f"{c['withdrawn']:,} withdrawn (recorded in error), {c['new']:,} quarantined rows resubmitted fixed; "
        f"{result.quarantined:,} quarantined. Earlier events released from hold: {c['released']:,}."
    )
    after = Run(store_dir).measures(*period)
    moved = table(
        f"How the figures moved, as at {first_batch} → as at {result.batch_id}",
        ["figure", "then", "now"],
        left=("figure",),
    )
    (e0, q0), (e1, q1) = _counts(Store(store_dir, first_batch)), _counts(Store(store_dir))
    moved.add_row("events in the figures", f"{e0:,}", f"{e1:,}")
    moved.add_row("open quarantine", f"{q0:,}", f"{q1:,}")
    moved.add_row("validity", percent(e0 / (e0 + q0)), percent(e1 / (e1 + q1)))
    for b, a in zip(before, after, strict=True):
        if (b["numerator"], b["denominator"]) != (a["numerator"], a["denominator"]):
            moved.add_row(b["measure"], _rate_and_counts(b), _rate_and_counts(a))
    console.print(moved)
    terms = CONTRACTS / "staffordshire-cancer.yaml"
    console.print(
        "Closed payments stand, each with the view it read. To re-close on the corrected figures (a new "
        f"version for each year that moved, with its difference): carecontract pay {terms} --store {store_dir}"
    )
    return {"month": month, "kinds": kinds, "ingest": result.as_dict(), "before": before, "after": after}


def _check_injected(manifest: Path, store_dir: Path) -> str:
    """Did ingest find every injected error, with the reason it should have given?"""
    injected = pacsv.read_csv(manifest)
    con = Store(store_dir).connect()
    con.register("injected", injected)
    missed = con.execute(
        "SELECT count(*) FROM injected i WHERE kind <> 'duplicate_row' AND NOT EXISTS "
        "(SELECT 1 FROM quarantine q WHERE q.record_id = i.record_id AND list_contains(q.reasons, i.expected_reason))"
    ).fetchone()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    con.close()
    total = injected.num_rows
    if missed == 0 and quarantined == total:
        return f"[green]✓[/] all {total:,} injected errors were quarantined with the expected reason, and nothing else."
    return f"[red]✗[/] {missed:,} of {total:,} injected errors were missed; {quarantined:,} rows quarantined."
