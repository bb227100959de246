"""National data-set extracts as CSV: a header of the data set's own data element names, one record a line.

Why line by line and not a CSV parser over the whole file: the driver counts each file's records from
its physical lines (:func:`count_records`, bytes only) and every one must be mapped or rejected, so
a record must never swallow the lines after it. Each physical line is split on its own (``csv`` on
one line); a line that does not split into the header's fields (a stray quote, a line break inside a
field, a missing comma) is rejected with its line number, never merged with its neighbours.
Memory is one line at a time.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from carecontract.errors import UserError
from carecontract.imports.base import Mapped

BOM = "\ufeff"


class WrongHeader(UserError):
    """A file whose header lacks the data set's required data elements."""


def _clean(line: bytes) -> bytes:
    return line.rstrip(b"\r\n")


def count_records(path: Path) -> int:
    """Data records of a CSV extract counted from its bytes: non-blank physical lines after the header."""
    with open(path, "rb") as handle:
        handle.readline()  # the header
        return sum(1 for line in handle if _clean(line).strip())


@dataclass(frozen=True)
class Line:
    """One data line: its number in the file (header = 1) and its fields by header name, or why not."""

    number: int
    fields: dict[str, str]
    problem: str | None = None


def header(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        first = _clean(handle.readline()).decode("utf-8", errors="replace").lstrip(BOM)
    return [h.strip().upper() for h in next(csv.reader([first]), [])]


def read_lines(path: Path, required: tuple[str, ...], spec: str) -> Iterator[Line]:
    """Each non-blank data line of ``path``; a header missing a required data element is one error line."""
    names = header(path)
    missing = [r for r in required if r not in names]
    if missing:
        raise WrongHeader(f"{path}: not a {spec} extract: the header lacks {', '.join(missing)}")
    with open(path, "rb") as handle:
        handle.readline()
        for number, raw in enumerate(handle, start=2):
            line = _clean(raw)
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Line(number, {}, f"line {number}: not UTF-8 text (byte {exc.start + 1})")
                continue
            try:
                values = next(csv.reader([text], strict=True), []) if '"' in text else text.split(",")
            except csv.Error:
                yield Line(number, {}, f"line {number}: a quoted field that does not close on its line")
                continue
            if len(values) != len(names):
                yield Line(number, {}, f"line {number}: {len(values)} fields where the header has {len(names)}")
                continue
            yield Line(number, {n: v.strip() for n, v in zip(names, values, strict=True)})


class Rejected(Exception):
    """A record that cannot be mapped; its text names the source field and value."""


def map_lines(
    path: Path, required: tuple[str, ...], spec: str, map_row: Callable[[dict[str, str]], list[dict[str, object]]]
) -> Iterator[Mapped]:
    """One :class:`Mapped` per data line of an extract, streaming: the line's own problem (it did not
    split into the header's fields), the events ``map_row(fields)`` makes of it, or the reason it
    raised :class:`Rejected` with."""
    path = Path(path)
    for line in read_lines(path, required, spec):
        where = f"{path.name}:{line.number}"
        if line.problem:
            yield Mapped(where, problem=line.problem)
            continue
        try:
            yield Mapped(where, map_row(line.fields))
        except Rejected as problem:
            yield Mapped(where, problem=str(problem))
