"""The ``carecontract`` application object and its one error handler.

Why a handler on the group: every command runs inside the top-level group's ``invoke``, so one
``except`` there sees every error any command raises. Errors a user can fix (:class:`UserError`,
a mistyped option, a path that does not exist) end as one red line and exit 2; anything else is a
bug and keeps its traceback, so a defect never hides as a user mistake.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
import typer
from rich.markup import escape
from typer.core import TyperGroup

from carecontract.errors import UserError
from carecontract.present import err
from carecontract.records.reading import UnreadableFile
from carecontract.records.store import StoreError

#: User errors still outside the UserError family: records/ is making them subclass it; then drop this.
PENDING_USER_ERRORS: tuple[type[Exception], ...] = (UnreadableFile, StoreError)

#: A path the user named cannot be read or written: the message names it, so one line says it all.
PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def fail(message: str, code: int = 2) -> None:
    """Print each line of ``message`` as an error and exit with ``code``."""
    for line in message.splitlines() or [""]:
        err.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


class Shell(TyperGroup):
    """The top-level group: runs the chosen command and turns user errors into one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a group run bare shows its help
                raise
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            fail(escape(f"{exc.format_message()} (see `{where} --help`)"))
        except (UserError, *PENDING_USER_ERRORS) as exc:
            fail(escape(str(exc)))
        except PATH_ERRORS as exc:
            fail(escape(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)))


app = typer.Typer(
    name="carecontract",
    cls=Shell,
    help="Run, pay and stress-test outcomes-based prime-provider care contracts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def deprecated(note: str) -> None:
    """A one-line note on standard error for a spelling that still works but will go."""
    err.print(f"[yellow]deprecated:[/] {note}", highlight=False, soft_wrap=True)


def deprecated_alias(command: Callable[..., Any], note: str) -> Callable[..., Any]:
    """``command`` under an old name: the same parameters, with a deprecation note first."""

    @functools.wraps(command)
    def alias(*args: Any, **kwargs: Any) -> Any:
        deprecated(note)
        return command(*args, **kwargs)

    return alias
