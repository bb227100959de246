"""Options many commands share, defined once, and the small parsers every command uses.

Why one place: ``--store``, ``--engine``, ``--set``, ``--json`` and the contract's TERMS mean the
same thing in every command, so they are spelt, documented and checked the same way everywhere.
TERMS is always the first argument; ``--terms FILE`` still works where it once was the spelling,
hidden from the help and with a one-line note, so old scripts keep running.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carecontract.cli.shell import deprecated, missing_argument, usage_error
from carecontract.errors import UserError

if TYPE_CHECKING:
    from carecontract.terms import Terms


class BadOption(UserError):
    """A command-line value that cannot be used as given."""


def _check_engine(engine: str) -> str:
    """Refuse an unknown --engine before loading anything (an empty store never reaches the engine)."""
    from carecontract.engine import EngineError, check_engine

    try:
        check_engine(engine)
    except EngineError as exc:
        raise typer.BadParameter(str(exc)) from None
    return engine


StoreOption = Annotated[Path, typer.Option(help="Store directory.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="What-if override, name=value (a parameter, or a dotted path like stages.1.at_risk_share)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
#: Whether a command that commits a submission then saves the new store version's figures for the
#: service (measures.cube.refresh; docs/service.md).
RefreshOption = Annotated[
    bool,
    typer.Option(
        "--refresh/--no-refresh",
        help="Save the new version's figures for the service (a full pass; skip between a bulk load's batches).",
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        help="Query engine: duckdb (one machine) or spark (PySpark; local unless --spark-master).",
        callback=_check_engine,
    ),
]
SparkMasterOption = Annotated[
    str | None, typer.Option(help="Spark master URL for a cluster, e.g. spark://host:7077 (see docs/scale.md).")
]
LogOption = Annotated[Path, typer.Option("--log", help="The decision log file.")]
AsAtOption = Annotated[
    str | None,
    typer.Option(
        "--as-at",
        help="Read the store as it stood: a date (YYYY-MM-DD: every submission up to that day) or a "
        "submission, by its id or its number in `carecontract submissions` (1 the first). Default: the latest.",
    ),
]

#: TERMS, the first argument of every command about one contract.
TermsArgument = Annotated[Path, typer.Argument(metavar="TERMS", help="Contract terms YAML.", show_default=False)]
#: TERMS where ``--terms`` was once the spelling: optional to Typer only so that the deprecated flag
#: can stand in for it; :func:`terms_path` says when neither is given.
LegacyTermsArgument = Annotated[
    Path | None, typer.Argument(metavar="TERMS", help="Contract terms YAML.", show_default=False)
]
OptionalTermsArgument = Annotated[
    Path | None,
    typer.Argument(metavar="TERMS", help="Contract terms YAML (optional).", show_default=False),
]
TermsFlag = Annotated[
    Path | None, typer.Option("--terms", hidden=True, help="Deprecated: give TERMS as the first argument.")
]


def terms_path(positional: Path | None, flag: Path | None, required: bool = True) -> Path | None:
    """The TERMS file, from the argument or the deprecated ``--terms`` (with a note)."""
    if flag is not None:
        if positional is not None:
            raise usage_error("give TERMS once: as the first argument, not also as --terms")
        deprecated(f"--terms {flag}: give the terms file as the first argument instead")
        return flag
    if positional is None and required:
        raise missing_argument("TERMS")
    return positional


def load(file: Path, overrides: list[str] | None) -> Terms:
    """Load and validate a terms file with its what-ifs (a ``TermsError`` lists every problem)."""
    from carecontract.terms import load_terms

    return load_terms(file, overrides or [])


def parse_date(text: str, option: str) -> date:
    """An ISO date from an option, or one line saying what was expected."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadOption(f"{option} must be an ISO date like 2024-04-01, got {text!r}") from None


def require_store(store: Path) -> None:
    """A clear error, not an empty result, when the store directory holds no store."""
    from carecontract.records.store import Store, StoreError

    if not Store(store).exists():
        raise StoreError(f"{store}: no store here (run `carecontract ingest FILE --store {store}` first)")


def check_period(store: Any, first: date, last: date) -> None:
    """Refuse a period with no events in the store (a path, or a Store view as at a date), naming the
    dates it holds; note a partial one."""
    from carecontract.present import check_period as coverage
    from carecontract.present import err

    note = coverage(store, first, last)
    if note:
        err.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


def output_file(path: Path, option: str) -> Path:
    """A file to write, checked before any work is done: its folder exists and can be written in."""
    folder = path.parent
    if path.is_dir():
        raise BadOption(f"{option} {path}: that is a folder; give a file name in it")
    if not folder.is_dir():
        raise BadOption(f"{option} {path}: the folder {folder} does not exist (create it, or write elsewhere)")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadOption(f"{option} {path}: no permission to write there")
    return path


def store_at(store: Path, as_at: str | None):  # -> carecontract.records.store.Store
    """The store at ``--as-at`` (checked: an unknown submission id is one line), after ``require_store``."""
    from carecontract.records.store import Store

    require_store(store)
    view = Store(store, as_at)
    if as_at is not None and not view.committed():  # a date before any submission: nothing to read, say so
        first = (view.manifest()["batches"] or [{"ingested_at": "never"}])[0]["ingested_at"][:10]
        raise BadOption(f"--as-at {as_at}: the store held no submission then (its first is from {first})")
    return view


def split(text: str) -> list[str]:
    """A comma-separated option as a list, without empty items."""
    return [item for item in text.split(",") if item]
