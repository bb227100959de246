"""The ``carecontract`` application object and its one error handler.

Why a handler on the group: every command runs inside the top-level group's ``invoke``, so one
``except`` there sees every error any command raises. Errors a user can fix (:class:`UserError`,
a mistyped option, a path that does not exist) end as one red line and exit 2; anything else is a
bug and keeps its traceback, so a defect never hides as a user mistake.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from carecontract.errors import UserError
from carecontract.present import err

# Click's exceptions and context as Typer raises them (recent Typer carries its own copy of Click).
_click_exceptions = sys.modules[typer.BadParameter.__module__]
_click_globals = importlib.import_module(_click_exceptions.__name__.rsplit(".", 1)[0] + ".globals")
UsageError: type[Exception] = _click_exceptions.UsageError

#: A path the user named cannot be read or written: the message names it, so one line says it all.
PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


def fail(message: str, code: int = 2) -> None:
    """Print each line of ``message`` as an error and exit with ``code``."""
    for line in message.splitlines() or [""]:
        err.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


#: How each value's type reads in ``--help``: in words a user knows, not as Python annotations.
TYPE_LABELS = {"path": "PATH", "str": "TEXT", "int": "INTEGER", "float": "NUMBER"}


def plain_type(param: Any) -> None:
    """Show ``param``'s type in help as PATH, TEXT, INTEGER or NUMBER, and a flag's not at all.

    Typer prints Python annotations (``--public <bool>``, ``TERMS <list[Path]>``); a flag takes
    no value, and a list is the same value given again, so neither needs its annotation shown.
    """
    shown = param.display_type_rich

    def label(ctx: Any) -> str | None:
        if getattr(param, "is_flag", False):
            return None
        text = str(shown(ctx=ctx) or "").removesuffix("...").strip("<>")
        repeatable = text.startswith("list[")
        text = text.removeprefix("list[").removesuffix("]")
        text = TYPE_LABELS.get(text.lower(), text.upper())
        return f"{text} (repeatable)" if repeatable and getattr(param, "multiple", False) else text

    param.display_type_rich = label


def _plain_types(command: Any) -> None:
    """:func:`plain_type` for every parameter of ``command`` and its subcommands, ``--help`` included."""
    for param in command.params:
        plain_type(param)
    made = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            plain_type(option)
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_types(sub)


class Shell(TyperGroup):
    """The top-level group: runs the chosen command and turns user errors into one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_types(self)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            _usage(exc, ctx)
            raise  # pragma: no cover - _usage always raises

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _usage(exc, ctx)
        except UserError as exc:
            fail(escape(str(exc)))
        except PATH_ERRORS as exc:
            fail(escape(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)))
        except OSError as exc:  # a named file the system would not read or write (a key file that is a folder ...)
            if not exc.filename:
                raise  # no file named: not the user's to fix, so the traceback stays
            fail(escape(f"{exc.filename}: {exc.strerror}"))


def _usage(exc: Exception, ctx: typer.Context) -> None:
    """A mistyped command line in one line, with where to find the right spelling."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group run bare shows its help
        raise exc
    where = exc.ctx.command_path if getattr(exc, "ctx", None) else ctx.command_path  # type: ignore[attr-defined]
    fail(escape(f"{exc.format_message()} (see `{where} --help`)"))  # type: ignore[attr-defined]


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


def usage_error(message: str) -> Exception:
    """A usage mistake in the running command, reported like Typer's own (one line, exit 2)."""
    return UsageError(message, ctx=_click_globals.get_current_context(silent=True))


def missing_argument(name: str) -> Exception:
    """A required argument that was not given (for one that Typer must treat as optional)."""
    ctx = _click_globals.get_current_context(silent=True)
    return _click_exceptions.MissingParameter(ctx=ctx, param_hint=f"'{name}'", param_type="argument")
