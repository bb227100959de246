"""The ``carecontract`` command: a thin shell over the library, one module per area.

Each command parses its arguments, calls one library function and renders the result; the
computing lives in the library (e.g. :mod:`carecontract.payments.close`) and the formatting in
:mod:`carecontract.present`. User mistakes (a missing file, a bad argument, a store built with
another key) end with one red line and exit 2, never a traceback (see :mod:`.shell`); ``--json``
prints machine-readable results only.

The areas register their commands on :data:`app` when imported, in the order the help lists them.
Each command imports the library it calls when it runs, so ``carecontract --help`` and a mistyped
option answer at once, without loading Ibis, Plotly or Spark.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from carecontract import __version__
from carecontract.cli.shell import app
from carecontract.present import console

__all__ = ["app"]

#: The areas, in the order ``carecontract --help`` lists their commands.
AREAS = (
    "records",
    "imports",
    "measures",
    "fair",
    "payments",
    "disputes",
    "explain_payment",
    "viability",
    "publish",
    "demo",
    "terms",
    "cluster",
)
for _area in AREAS:
    importlib.import_module(f"carecontract.cli.{_area}")


def _version(value: bool) -> None:
    if value:
        console.print(f"carecontract {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """carecontract: outcomes-based prime-provider care contracts, made explicit and checkable."""
