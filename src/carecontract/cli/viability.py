"""Viability commands: ``stress`` (how likely a deficit is), ``waterfall`` (where the gap comes from),
``breakeven`` (what each lever must be for a safe contract), ``options`` (terms side by side) and
``appraise`` (the five-case options appraisal, recorded in the decision log)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import BadOption, JsonOption, LogOption, SetOption, TermsArgument, load, require_store
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
    _print_sources(summary)


StoreCalibration = Annotated[
    Path | None,
    typer.Option(help="Calibrate from this store: first-year cost, scope roll-out, demand and cost growth trend."),
]
RunsOption = Annotated[int, typer.Option(help="Monte Carlo runs.")]
SeedOption = Annotated[int, typer.Option(help="Random seed: same seed, same results.")]
AppetiteOption = Annotated[float, typer.Option(help="Risk appetite: the deficit probability to get below.")]


def _print_sources(result: dict) -> None:
    """Which inputs came from data and which from the terms' assumptions; warnings first."""
    for warning in result.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")
    sources = result.get("sources") or {}
    if sources:
        rows = table("Where each input came from", ["input", "source"], left=("input", "source"))
        for name, source in sources.items():
            rows.add_row(name, source)
        console.print(rows)


@app.command()
def waterfall(
    terms_file: TermsArgument,
    runs: RunsOption = 10_000,
    seed: SeedOption = 0,
    method: Annotated[str, typer.Option(help="shapley (order-free) or sequential (in the listed order).")] = "shapley",
    overrides: SetOption = None,
    store: StoreCalibration = None,
    charts: Annotated[Path | None, typer.Option(help="Save the waterfall chart (HTML and PNG) here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Where the expected funding gap comes from: each cause switched off on the same random draws."""
    from carecontract.viability.summary import waterfall_summary

    if method not in ("shapley", "sequential"):
        raise BadOption(f"--method must be shapley or sequential, got {method!r}")
    terms = load(terms_file, overrides)
    if store:
        require_store(store)
    result = waterfall_summary(terms, runs, seed, store, method)  # type: ignore[arg-type]
    if charts is not None:
        from carecontract.viability.charts import waterfall_figure, waterfall_png

        charts.mkdir(parents=True, exist_ok=True)
        title = f"{terms.contract.name}: where the expected funding gap comes from"
        waterfall_figure(title, result).write_html(charts / "waterfall.html", include_plotlyjs=True)
        waterfall_png(title, result, charts / "waterfall.png")
        result["charts"] = [str(charts / "waterfall.html"), str(charts / "waterfall.png")]
    if as_json:
        print(json.dumps(result))
        return
    rows = table(
        f"{terms.contract.name}: expected funding gap by cause ({method}, {runs:,} runs, seed {seed}), £m",
        ["cause", "£m", "switched off means"],
        left=("cause", "switched off means"),
    )
    rows.add_row("base: price against first-year cost", _m(result["base_gbp"]), "every cause below off")
    for c in result["contributions"]:
        rows.add_row(c["cause"], _m(c["gbp"]), c["meaning_when_off"])
    rows.add_row("[bold]expected funding gap[/]", f"[bold]{_m(result['total_gbp'])}[/]", "")
    console.print(rows)
    _print_sources(result)


def _corridor(text: str) -> tuple[float, float] | None:
    if text in ("", "none"):
        return None
    try:
        width, share = (float(x) for x in text.split(","))
    except ValueError:
        raise BadOption(f"--corridor must be WIDTH,SHARE like 0.02,0.5 (or none), got {text!r}") from None
    return width, share


@app.command()
def breakeven(
    terms_file: TermsArgument,
    runs: RunsOption = 10_000,
    seed: SeedOption = 0,
    appetite: AppetiteOption = 0.10,
    corridor: Annotated[
        str, typer.Option(help="Risk corridor for the package: WIDTH,COMMISSIONER_SHARE (or none).")
    ] = "0.02,0.5",
    overrides: SetOption = None,
    store: StoreCalibration = None,
    as_json: JsonOption = False,
) -> None:
    """What would make the contract safe: each lever's value where the deficit probability meets the appetite."""
    from carecontract.viability.summary import break_even_summary

    terms = load(terms_file, overrides)
    if store:
        require_store(store)
    result = break_even_summary(terms, runs, seed, store, appetite, corridor=_corridor(corridor))
    if as_json:
        print(json.dumps(result))
        return
    rows = table(
        f"{terms.contract.name}: break-even at a {appetite:.0%} risk appetite ({runs:,} runs, seed {seed})",
        ["lever", "status", "value", "interval", "recommended", "P(deficit) there", "now"],
        left=("lever", "status"),
    )
    for r in result["levers"]:
        recommended = f"{r['recommended']:.2%}" if r["status"] == "solved" and r["recommended"] is not None else ""
        rows.add_row(
            r["lever"],
            r["status"],
            _lever_value(r),
            _lever_interval(r),
            recommended,
            _probability(r),
            f"{r['at_current_terms']:.1%}",
        )
    console.print(rows)
    for r in result["levers"]:
        console.print(f"  {r['lever']}: {r['meaning']}", highlight=False)
    _print_sources(result)


def _lever_value(r: dict) -> str:
    if r["value"] is None:
        return "—"
    if r["lever"] == "term_years":
        return f"{r['value']:.0f} years"
    if r["lever"] == "vat_treatment":
        return "NHS prime"
    text = f"{r['value']:.2%}"
    if r.get("per_year_gbp") is not None:
        text += f" (£{_m(r['per_year_gbp'])}m a year)"
    return text


def _lever_interval(r: dict) -> str:
    if r["value_low"] is None:
        return ""
    return f"{r['value_low']:.2%}–{r['value_high']:.2%}"


def _probability(r: dict) -> str:
    text = f"{r['probability']:.1%}"
    if r["probability_low"] is not None:
        text += f" ({r['probability_low']:.1%}–{r['probability_high']:.1%})"
    return text


#: Another terms file compared as an option (``options`` and ``appraise``).
CompareOption = Annotated[list[Path] | None, typer.Option("--compare", help="Another terms file as an option.")]
#: The Green Book optimism-bias uplift (``options`` and ``appraise``).
OptimismBiasOption = Annotated[
    float, typer.Option(help="Uplift to the first-year cost estimate (Green Book: 0–0.41 for outsourcing).")
]


def _variants(
    terms_file: Path, overrides: list[str] | None, variant: list[str] | None, other: list[Path] | None
) -> list:  # list[tuple[str, Terms]]
    """The options beside TERMS: each ``--variant "LABEL: a=b; c=d"`` (TERMS with those --set
    overrides on top of the command's own), then each ``--compare`` file under its own name."""
    from carecontract.viability.options import parse_variant

    out = []
    for text in variant or []:
        label, sets = parse_variant(text)
        out.append((label, load(terms_file, [*(overrides or []), *sets])))
    return out + [(path.stem, load(path, None)) for path in other or []]


@app.command()
def options(
    terms_file: TermsArgument,
    variant: Annotated[
        list[str] | None,
        typer.Option(help='A variant of TERMS: "LABEL: name=value; name=value" (repeat for more).'),
    ] = None,
    other: CompareOption = None,
    runs: RunsOption = 10_000,
    seed: SeedOption = 0,
    optimism_bias: OptimismBiasOption = 0.0,
    overrides: SetOption = None,
    store: StoreCalibration = None,
    charts: Annotated[Path | None, typer.Option(help="Save the options chart (HTML and PNG) here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Options side by side: deficit probability, expected and P90 gap, net present cost at the Green Book rate."""
    from carecontract.viability.summary import options_summary

    choices = [("as written", load(terms_file, overrides)), *_variants(terms_file, overrides, variant, other)]
    if store:
        require_store(store)
    result = options_summary(choices, runs, seed, store, optimism_bias, charts)
    if as_json:
        print(json.dumps(result))
        return
    rows = table(
        f"Options ({runs:,} runs, seed {seed}; optimism bias {optimism_bias:.0%}; {result['discount']})",
        ["option", "P(deficit)", "expected gap £m", "P90 gap £m", "NPC payments £m", "NPC with bail-out £m"],
        left=("option",),
    )
    for r in result["options"]:
        rows.add_row(
            r["label"],
            f"{r['deficit_probability']:.1%}",
            _m(r["expected_gap_gbp"]),
            _m(r["gap_p90_gbp"]),
            _m(r["npc_payments_gbp"]),
            _m(r["npc_with_bailout_gbp"]),
        )
    console.print(rows)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
    if result["charts"]:
        console.print("Charts: " + ", ".join(result["charts"]))


@app.command()
def appraise(
    terms_file: TermsArgument,
    variant: Annotated[
        list[str] | None,
        typer.Option(help='An option: a variant of TERMS, "LABEL: name=value; name=value" (repeat for more).'),
    ] = None,
    other: CompareOption = None,
    store: StoreCalibration = None,
    out: Annotated[Path, typer.Option(help="Directory for appraisal.html and appraisal.md.")] = Path("appraisal"),
    runs: RunsOption = 10_000,
    seed: SeedOption = 0,
    appetite: AppetiteOption = 0.10,
    optimism_bias: OptimismBiasOption = 0.0,
    log: LogOption = Path("decisions.jsonl"),
    who: Annotated[str | None, typer.Option(help="Who records the appraisal in the decision log.")] = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Options appraisal in the Green Book's five cases (HTML and Markdown), recorded in the decision log."""
    from carecontract.publish.appraisal import appraise as write_appraisal

    terms = load(terms_file, overrides)
    variants = _variants(terms_file, overrides, variant, other)
    if store:
        require_store(store)
    with progress_bar(not as_json and sys.stderr.isatty()) as report:
        report("appraising", 0.0)
        result = write_appraisal(terms, out, store, variants, runs, seed, appetite, optimism_bias, log, who)
        report("appraising", 1.0)
    if as_json:
        print(json.dumps(result, default=str))
        return
    console.print(f"Wrote {result['html']} and {result['markdown']}.")
    console.print(f"Preferred option: {result['preferred'] or f'none within the {appetite:.0%} risk appetite'}.")
    record = result["decision"]
    console.print(f"Recorded decision {record['seq']} (options_appraisal) in {log}: hash {record['hash'][:16]}…")
