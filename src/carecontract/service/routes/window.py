"""The period a request names: ``from`` and ``to``, as the CLI's ``--from``/``--to``.

``start`` and ``end`` are the old names, still read (and marked deprecated in /docs); giving a new
name and its old one together is refused.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import HTTPException, Query


def window(
    from_: Annotated[date | None, Query(alias="from", description="First day (as the CLI's --from).")] = None,
    to: Annotated[date | None, Query(description="Last day (as the CLI's --to).")] = None,
    start: Annotated[date | None, Query(deprecated=True, description="Old name of from.")] = None,
    end: Annotated[date | None, Query(deprecated=True, description="Old name of to.")] = None,
) -> tuple[date | None, date | None]:
    """(first, last) asked for, either possibly None."""
    if from_ is not None and start is not None:
        raise HTTPException(422, "give from= only (start= is its old name)")
    if to is not None and end is not None:
        raise HTTPException(422, "give to= only (end= is its old name)")
    first, last = from_ or start, to or end
    if first is not None and last is not None and first > last:
        raise HTTPException(422, f"from {first} is after to {last}")
    return first, last


def as_at(
    as_at: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Read the store as it stood (as the CLI's --as-at): a date (YYYY-MM-DD), or a "
            "submission's id or number. Not for the public, who see the latest published figures.",
        ),
    ] = None,
) -> str | None:
    """The as-at a request names (checked against the store by the context: unknown → 422)."""
    return as_at.strip() or None if as_at is not None else None


def refuse_public_as_at(at: str | None) -> None:
    """The public sees the latest published figures only: two as-at answers for one period could be
    subtracted to reveal the few records corrected in between (docs/transparency.md)."""
    if at is not None:
        raise HTTPException(403, "the public sees the latest published figures; as_at is for signed-in roles")
