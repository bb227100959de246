"""``carecontract stress``: the Monte Carlo stress test of a contract's whole life, in the terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import JsonOption, SetOption, TermsArgument, load, require_store
from carecontract.cli.shell import app
from carecontract.present import console, pounds_as_millions, progress_bar, table


def _m(pounds: float) -> str:
    return pounds_as_millions(pounds, places=1)


@app.command()
def stress(
    terms_file: TermsArgument,
    runs: Annotated[int, typer.Option(help="Monte Carlo runs.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same results.")] = 0,
    overrides: SetOption = None,
    store: Annotated[Path | None, typer.Option(help="Calibrate the first-year cost from this store.")] = None,
    charts: Annotated[Path, typer.Option(help="Where to save the fan and tornado charts (HTML and PNG).")] = Path(
        "stress-charts"
    ),
    as_json: JsonOption = False,
) -> None:
    """Monte Carlo stress test of the whole contract life: chance of deficit and size of the funding gap.

    TERMS needs a risks: section.
    """
    from carecontract.viability.charts import terminal_fan, terminal_tornado
    from carecontract.viability.summary import stress_summary

    terms = load(terms_file, overrides)
    if store:
        require_store(store)
    with progress_bar(not as_json and sys.stderr.isatty()) as report:
        summary = stress_summary(terms, runs, seed, store, charts, progress=report)
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"[bold]{terms.contract.name}[/]: {summary['runs']:,} runs, seed {seed}. "
        f"Probability of a deficit: [bold]{summary['deficit_probability']:.0%}[/]; expected funding gap "
        f"£{_m(summary['expected_gap_gbp'])}m (median £{_m(summary['gap_p50_gbp'])}m, "
        f"90th percentile £{_m(summary['gap_p90_gbp'])}m); first deficit year (median): "
        f"{summary['first_deficit_year_p50'] or '—'}; first-year shortfall (median) "
        f"£{_m(summary['first_year_gap_p50_gbp'])}m. First-year cost from {summary['baseline_cost_source']}."
    )
    years = table(
        "Year by year, £m", ["year", "income", "care cost", "surplus", "cumulative p10", "p50", "p90", "P(deficit)"]
    )
    for y in summary["by_year"]:
        years.add_row(
            str(y["year"]),
            _m(y["income_mean_gbp"]),
            _m(y["care_cost_mean_gbp"]),
            _m(y["surplus_mean_gbp"]),
            _m(y["cumulative_p10_gbp"]),
            _m(y["cumulative_p50_gbp"]),
            _m(y["cumulative_p90_gbp"]),
            f"{y['deficit_probability']:.0%}",
        )
    console.print(years)
    for line in terminal_fan(summary):
        console.print(line, highlight=False)
    if summary["sensitivity"]:
        for line in terminal_tornado(summary):
            console.print(line, highlight=False)
        tornado = table(
            "Biggest drivers: expected gap with the risk at its 10th / 90th percentile, £m",
            ["risk", "low", "high"],
            left=("risk",),
        )
        for r in summary["sensitivity"]:
            tornado.add_row(r["parameter"], _m(r["low"]), _m(r["high"]))
        console.print(tornado)
    console.print("Charts: " + ", ".join(summary["charts"]))
