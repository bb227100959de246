"""``carecontract explain-payment``: how each amount of a year's payment was computed, to the clause."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from carecontract.cli.options import (
    AsAtOption,
    JsonOption,
    SetOption,
    StoreOption,
    TermsArgument,
    load,
    require_store,
    store_at,
)
from carecontract.cli.shell import app
from carecontract.present import console, contract_year, table


def _inputs(step: dict[str, Any]) -> str:
    """A step's inputs in one cell: parameters with their value and clause, other inputs as name value."""
    parts = []
    for name, value in step["inputs"].items():
        if name == "outcomes":
            continue
        if isinstance(value, dict) and "parameter" in value:
            where = f"cl. {value['clause']}" if value["clause"] else value["source"]
            parts.append(f"{name} {value['value']} ({where})")
        elif isinstance(value, list) and value and isinstance(value[0], dict) and "parameter" in value[0]:
            parts.append(f"{name} " + ", ".join(f"{v['value']} from {v['on'][:4]}" for v in value))
        elif isinstance(value, dict):
            parts.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, dict)))
        else:
            parts.append(f"{name} {value}")
    return "; ".join(p for p in parts if p)


def _render_year(year: dict[str, Any]) -> None:
    steps = table(
        f"{contract_year(year['year'])} ({year['stage']}, {year['kind']} stage): how each amount was computed",
        ["step", "£", "clause", "formula", "inputs"],
        left=("step", "clause", "formula", "inputs"),
    )
    for step in year["steps"]:
        gbp = "" if step["gbp"] is None else f"{step['gbp']:,.2f}"
        steps.add_row(step["step"].replace("_", " "), gbp, step["clause"] or "", step["formula"], _inputs(step))
    console.print(steps)
    outcomes = next((s["inputs"]["outcomes"] for s in year["steps"] if "outcomes" in s["inputs"]), None)
    if outcomes:
        shown = table(
            "the measures the at-risk pot depends on",
            ["measure", "numerator", "denominator", "rate", "target", "threshold", "weight", "achievement", "clause"],
            left=("measure", "clause"),
        )
        for o in outcomes:
            rate = "no data" if o["rate"] is None else f"{o['rate']:.4g}"
            shown.add_row(
                o["measure"] + (" (adjusted)" if o["basis"] == "adjusted" else ""),
                f"{o['numerator']:,.0f}" if o["numerator"] is not None else "",
                f"{o['denominator']:,.0f}" if o["denominator"] is not None else "",
                rate,
                f"{o['target']:g}",
                "" if o["threshold"] is None else f"{o['threshold']:g}",
                f"{o['weight']:g}",
                f"{o['achievement']:.3f}",
                o["clause"] or "",
            )
        console.print(shown)


@app.command("explain-payment")
def explain_payment(
    terms_file: TermsArgument,
    store: StoreOption,
    year: Annotated[
        list[int] | None, typer.Option(help="Contract year(s), by start year (default: every ended year with data).")
    ] = None,
    overrides: SetOption = None,
    as_at: AsAtOption = None,
    as_json: JsonOption = False,
) -> None:
    """How each amount of a year's payment was computed: formula, parameters with their clause, measures, as-at."""
    from carecontract.payments.trace import explain_payment as trace

    terms = load(terms_file, overrides)
    require_store(store)
    result = trace(terms, store_at(store, as_at), year)
    if as_json:
        print(json.dumps(result, default=str))
        return
    console.print(
        f"[bold]{terms.contract.name}[/] (terms {result['terms']}, fingerprint {result['fingerprint']}); "
        f"store read as at {result['as_at'] or 'its latest submission'} (version {result['store_version']})"
    )
    if result["overrides"]:
        console.print(f"what-if overrides: {', '.join(result['overrides'])}")
    for each in result["years"]:
        _render_year(each)
    console.print("Clause numbers are the terms file's clause: references (docs/payments.md, Tracing a payment).")
