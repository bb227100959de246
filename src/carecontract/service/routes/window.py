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
