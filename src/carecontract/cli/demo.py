"""``carecontract demo``: the newcomer's first run, the pipeline end to end (see :mod:`carecontract.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import BadOption, StoreOption, output_file, require_store
from carecontract.cli.shell import app
from carecontract.present import console, err


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the demo's data, store and reports.")] = Path(
        "carecontract-demo"
    ),
    population: Annotated[int, typer.Option(help="People in the synthetic area.")] = 1_100_000,
    years: Annotated[int, typer.Option(help="Years of activity.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    error_rate: Annotated[float, typer.Option(help="Share of rows with injected errors.")] = 0.01,
) -> None:
    """The whole pipeline on a synthetic Staffordshire-sized economy: ingest, quality, measures, pay, report."""
    from carecontract.demo import run_demo

    run_demo(out, population, years, seed, error_rate, console, err)


@app.command()
def corrections(
    activity_file: Annotated[Path, typer.Argument(help="A synthetic activity CSV already ingested (its last month).")],
    store: StoreOption,
    out: Annotated[Path, typer.Option(help="The corrections file to write.")] = Path("corrections.csv"),
) -> None:
    """Write a synthetic month of corrections, as a provider's resubmission: some treatments re-costed,
    some records withdrawn (action=withdraw), quarantined rows fixed. Ingest it to see as-at figures move."""
    from carecontract.demo import corrections_file

    if not activity_file.is_file():
        raise BadOption(f"{activity_file}: no such file (give one of the activity-*.csv files `synth` wrote)")
    require_store(store)
    output_file(out, "--out")
    month, kinds = corrections_file(activity_file, store, out)
    shown = ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items()))
    console.print(f"Wrote {out}: corrections for {month} ({shown}).", highlight=False)
