"""Commands for outcome measures: a period's measures with targets, and why one pathway counted."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from carecontract.cli.options import (
    AsAtOption,
    EngineOption,
    JsonOption,
    OptionalTermsArgument,
    SetOption,
    SparkMasterOption,
    StoreOption,
    TermsFlag,
    check_period,
    load,
    parse_date,
    split,
    store_at,
    terms_path,
)
from carecontract.cli.shell import app
from carecontract.present import console, print_measures


@app.command()
def measures(
    store: StoreOption,
    start: Annotated[str, typer.Option("--from", help="First day of the period (ISO date).")],
    end: Annotated[str, typer.Option("--to", help="Last day of the period (ISO date).")],
    terms_file: OptionalTermsArgument = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            help="Breakdown: any of commissioner,provider,tumour_site,imd_quintile "
            "(comma-separated, or --by given again for each)."
        ),
    ] = None,
    overrides: SetOption = None,
    only: Annotated[str, typer.Option(help="Comma-separated measure ids (default: all).")] = "",
    public: Annotated[
        bool, typer.Option("--public", help="Disclosure control: counts < 8 suppressed, others rounded to 5.")
    ] = False,
    as_json: JsonOption = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    terms_flag: TermsFlag = None,
    as_at: AsAtOption = None,
    adjusted: Annotated[
        bool, typer.Option("--adjusted", help="Also the case-mix adjusted O/E ratios (by provider unless --by).")
    ] = False,
) -> None:
    """Outcome measures for a period, with Wilson 95% intervals, targets and funnel limits.

    With TERMS, the targets are the contract's outcomes and the terms' provenance is recorded.
    """
    from carecontract.run import Run
    from carecontract.terms.targets import contract_targets, label_rows, targets_rule

    terms_file = terms_path(terms_file, terms_flag, required=False)
    terms = load(terms_file, overrides) if terms_file else None
    contract = terms.contract if terms else None
    provenance = terms.provenance() if terms else None
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    keys = list(dict.fromkeys(key for value in by or [] for key in split(value)))
    view = store_at(store, as_at)
    check_period(view, first, last)
    run = Run(view, engine=engine, spark_master=spark_master)
    if adjusted:  # one build of the detailed pathway tables serves the raw rows and the adjusted ones
        run.sources(detail=True)
    rows = run.measures(first, last, keys, only=split(only) or None, targets=contract_targets(contract))
    if public:
        from carecontract.publish.disclosure import public_measures

        rows = public_measures(rows, keys)
    rows = label_rows(rows, contract)  # after disclosure control, which keeps only the published fields
    if provenance:
        for row in rows:
            row["terms"] = provenance
    if adjusted:  # raw and adjusted side by side (docs/measures.md, "Fair comparisons")
        from carecontract.cli.fair import adjusted_rows, print_adjusted

        extra = adjusted_rows(run, first, last, keys, split(only) or None)
        if public:  # from the linked public tables' counts (publish.disclosure.public_adjusted)
            from carecontract.publish.disclosure import PublicTables, public_adjusted

            akeys = keys or ["provider"]
            extra = public_adjusted(PublicTables(run.measures(first, last, akeys), akeys, len(akeys)), extra, akeys)
    if as_json:
        print(json.dumps(rows + (extra if adjusted else []), default=str))
        return
    caption = targets_rule(contract, terms_file.name if terms_file else None)
    if provenance:
        caption += f" Terms {provenance['terms']}, fingerprint {provenance['fingerprint']}."
    print_measures(rows, keys, caption, f"Outcome measures, {first} to {last}")
    if adjusted:
        print_adjusted(extra, keys)


@app.command()
def explain(
    measure: Annotated[str, typer.Argument(help="Measure id, e.g. cwt_62.")],
    store: StoreOption,
    pathway: Annotated[str, typer.Option(help="Pathway id: the referral's record_id (or a death/survey record_id).")],
    as_json: JsonOption = False,
) -> None:
    """Why one pathway counted as it did: clock start, stop, pauses and the verdict."""
    from carecontract.measures.explain import explain as run_explain

    result = run_explain(measure, store, pathway)
    if as_json:
        print(json.dumps(result, default=str))
        return
    console.print(f"[bold]{measure}[/] ({result['definition']}) for {pathway}:")
    console.print(f"  {result['explanation']}")
    for event in result.get("events", []):
        extra = ", ".join(f"{k} {v}" for k, v in event.items() if k not in ("record_id", "event_date", "event_type"))
        console.print(f"    {event['event_date']}  {event['event_type']:<20} {extra}")
