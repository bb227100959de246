"""``carecontract terms``: check a terms file, show the parameters in force, evaluate the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import (
    AsAtOption,
    JsonOption,
    SetOption,
    StoreOption,
    check_period,
    load,
    parse_date,
    store_at,
)
from carecontract.cli.shell import app
from carecontract.present import console, contract_year, gate_aims, parameter_value, table, yes_no

terms_app = typer.Typer(
    help="Contract terms as code: check a terms file, show parameters in force.", no_args_is_help=True
)
app.add_typer(terms_app, name="terms")

FileArgument = Annotated[Path, typer.Argument(help="Terms YAML file.")]


@terms_app.command("check")
def terms_check(file: FileArgument, overrides: SetOption = None, as_json: JsonOption = False) -> None:
    """Validate a terms file and summarise it: parties, stages, value per year, scope by year."""
    from carecontract.terms.summary import clauses, terms_summary

    terms = load(file, overrides)
    if as_json:
        print(json.dumps(terms_summary(terms)))
        return
    c = terms.contract
    console.print(f"[green]✓[/] [bold]{c.name}[/] is valid ({file}, fingerprint {terms.fingerprint})")
    if terms.overrides:
        console.print(f"  what-if overrides: {', '.join(terms.overrides)}")
    kind = {p.code: f", {p.kind.replace('_', ' ')}" if p.kind else "" for p in c.parties()}
    console.print(f"  prime: {c.prime.name} ({c.prime.code}{kind[c.prime.code]})")
    console.print("  commissioners: " + ", ".join(f"{x.name} {x.share:.0%}" for x in c.commissioners))
    if c.subcontractors:
        console.print("  subcontractors: " + ", ".join(f"{x.name} ({x.code}{kind[x.code]})" for x in c.subcontractors))
    cited = clauses(c)
    console.print(f"  clauses cited: {len(cited)} terms name their clause" + (" (--json lists them)" if cited else ""))
    for s in c.stages:
        if s.kind == "fee":
            console.print(
                f"  stage {s.name}: fee £{s.fee_gbp_per_year:,.0f}/year, up to {s.max_years} years; "
                f"gate to the next stage: {gate_aims(s.gate)}"
            )
        else:
            console.print(f"  stage {s.name}: outcomes, {s.at_risk_share:.0%} of the budget at risk")
    years = table(
        f"{c.term.start} to {c.term.last_day} ({c.term.years} years): £{c.value.total_gbp:,.0f}",
        ["contract year", "value £", "tumour sites in scope"],
        left=("contract year", "tumour sites in scope"),
    )
    values = c.value_per_year()
    for d in c.contract_years():
        sites = c.scope_at(d)
        years.add_row(contract_year(d.year), f"{values[d.year]:,.0f}", "all" if len(sites) > 10 else ", ".join(sites))
    console.print(years)


@terms_app.command("show")
def terms_show(
    file: FileArgument,
    at: Annotated[str, typer.Option("--at", help="Date (ISO) to resolve parameters on.")],
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every parameter in force on a date (the latest entry on or before it)."""
    from carecontract.terms.parameters import PARAMETERS

    terms = load(file, overrides)
    when = parse_date(at, "--at")
    values = terms.contract.parameters_at(when)
    if as_json:
        clause = terms.contract.parameter_clauses
        print(json.dumps({**terms.provenance(), "at": when.isoformat(), "parameters": values, "clauses": clause}))
        return
    shown = table(
        f"{terms.contract.name}: parameters in force on {when}",
        ["parameter", "value", "unit", "meaning", "clause"],
        left=("parameter", "unit", "meaning", "clause"),
    )
    for name, value in values.items():
        spec = PARAMETERS[name]
        clause = terms.contract.parameter_clauses.get(name, "")
        shown.add_row(name, parameter_value(value), spec.unit, spec.description, clause)
    console.print(shown)
    if terms.overrides:
        console.print(f"what-if overrides: {', '.join(terms.overrides)} (fingerprint {terms.fingerprint})")


@terms_app.command("gate")
def terms_gate(
    file: FileArgument,
    store: StoreOption,
    start: Annotated[str, typer.Option("--from", help="First day of the period the measures cover.")],
    end: Annotated[str, typer.Option("--to", help="Last day of the period.")],
    overrides: SetOption = None,
    as_json: JsonOption = False,
    as_at: AsAtOption = None,
) -> None:
    """Is the gate from the fee stage to the outcomes stage passed? Each aim measured from the store."""
    from carecontract.terms.summary import gate_result

    terms = load(file, overrides)
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    view = store_at(store, as_at)
    check_period(view, first, last)
    result = gate_result(terms, view, first, last)
    if as_json:
        print(json.dumps(result))
        return
    verdict = "[green]passed[/]" if result["passed"] else "[red]not passed[/]"
    criteria = table(
        f"{terms.contract.name}: gate after {result['stage']}, {first} to {last}: {verdict}",
        ["aim", "needed", "measured", "passed"],
        left=("aim",),
    )
    for c in result["criteria"]:
        measured = "—" if c["value"] is None else f"{c['value']:.4g}"
        criteria.add_row(c["name"], f"{c['direction']} {c['threshold']:g}", measured, yes_no(bool(c["passed"])))
    console.print(criteria)
