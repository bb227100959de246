"""``carecontract import KIND FILE... --store S``: a national data-set extract into the store.

The library does the work (:func:`carecontract.imports.run.import_files`); this prints what became of
every source record and every event. A user's mistake (an unknown kind, a missing file, a header that
is not the data set's) is one red line, exit 2 (:mod:`.shell`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import JsonOption, RefreshOption
from carecontract.cli.records import print_counts
from carecontract.cli.shell import app
from carecontract.present import console, print_ingest, progress_bar

KIND_HELP = "The data set: cwt (Cancer Waiting Times), cosd (Cancer Outcomes and Services Data set), ..."


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help=KIND_HELP, metavar="KIND")],
    files: Annotated[list[Path], typer.Argument(help="Extracts of that data set (CSV with its data element names).")],
    store: Annotated[Path, typer.Option(help="Store directory (created if missing).")],
    as_json: JsonOption = False,
    refresh_figures: RefreshOption = True,
) -> None:
    """Map a national data set's extract to activity events and ingest them: every record mapped or rejected."""
    from carecontract.imports.run import import_files

    with progress_bar(not as_json and sys.stderr.isatty()) as report:
        result = import_files(kind, files, store, progress=report)
    # the new version's figures, for the service's next request (docs/service.md)
    if refresh_figures and not result.ingest.no_op:
        from carecontract.measures.cube import refresh

        refresh(store)
    if as_json:
        print(json.dumps(result.as_dict(), default=str))
        return
    console.print(
        f"{result.specification}: [bold]{result.records:,}[/] source records: [green]{result.mapped:,} mapped[/] "
        f"to {result.events:,} events, [yellow]{result.rejected:,} rejected[/]"
        + (f" (reasons kept in {result.report})" if result.report else "")
    )
    for name, n in sorted(result.rejections.items(), key=lambda kv: -kv[1]):
        console.print(f"  {n:,} rejected for {name}")
    if result.withdrawals:
        console.print(f"{result.withdrawals:,} events this extract no longer carries are withdrawn")
    if result.ingest.no_op:
        console.print("Nothing to ingest.")
        return
    print_ingest(result.ingest.as_dict())
    print_counts(result.ingest.batch_id, result.ingest.counts)
