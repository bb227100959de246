"""``carecontract demo``: the newcomer's first run, the pipeline end to end (see :mod:`carecontract.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
