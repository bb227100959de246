"""The source's own ledger: a CSV file's physical lines and records, found without the CSV parser.

Why: "every row read is accepted or quarantined" used to hold only because *read* was the CSV
parser's own count. A parser that drops or merges lines (one stray double quote can make a
quoted field swallow the rest of a file; DuckDB silently drops a line over ~32 MB) still
"reconciles" with itself. This module counts the file's bytes directly (NumPy over a memory map),
so ingest can prove that every physical line is one of:

- the header (one line, or more if a header field is quoted across lines);
- a blank line (nothing between two line ends; DuckDB skips these);
- the first line of a data record, accepted or quarantined;
- a continuation line of a record whose quoted field holds a line break (accepted or
  quarantined with its record, as one row).

Line ends are ``\\n``, ``\\r\\n`` and a lone ``\\r`` (Python's ``bytes.splitlines``); a file that
mixes them is read through a normalised copy (every record ended by ``\\n``), never leniently.

Record boundaries follow RFC 4180: a line break inside a quoted field does not end the record.
Only lines with an odd number of double quotes can open or close such a field, and those are rare,
so each is examined on its own in Python: a quote in the middle of an unquoted token (``RJ"E``) is
not a field quote and does not count. A quoted field that spans lines is **suspect** when the line
after its opening line is shaped like a record (it has at least as many commas as the header) or the
record is longer than :data:`MAX_RECORD_BYTES`: a stray quote, not a real multi-line field. The
opening and closing lines of a suspect field are quarantined as ``unbalanced_quote`` and the lines
between, each on its own line, as ``swallowed_by_quoted_field``.
"""

from __future__ import annotations

import csv
import io
import mmap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from carecontract.records import validation

#: A record (all its physical lines) longer than this is quarantined as ``record_too_long`` without
#: being parsed: real activity records are a few hundred bytes, and DuckDB drops lines over ~32 MB.
MAX_RECORD_BYTES = 1 << 20
#: How much of a line the quarantine keeps in ``raw_line`` (its full length and SHA-256 are kept too).
RAW_LINE_KEEP = 10_000

NEWLINE, CARRIAGE_RETURN, QUOTE, COMMA = 10, 13, 34, 44


@dataclass
class LineLedger:
    """What a CSV file holds, counted from its bytes.

    ``records`` lists every data record by its first physical line (1-based) and its number of
    lines; ``excluded`` are the records quarantined from here without parsing (line → reason).
    """

    physical_lines: int
    header_lines: int
    blank_lines: int
    record_start: np.ndarray  # first physical line of each data record, ascending
    record_lines: np.ndarray  # physical lines spanned by each data record
    record_byte_start: np.ndarray  # byte offset of each record in the file
    record_byte_end: np.ndarray  # byte offset just past the record's last character (line end excluded)
    header_byte_end: int
    line_endings: dict[str, int]
    excluded: dict[int, str] = field(default_factory=dict)
    swallowed: list[dict[str, int]] = field(default_factory=list)  # suspect quoted fields, for the user

    @property
    def records(self) -> int:
        return len(self.record_start)

    @property
    def continuation_lines(self) -> int:
        return int(self.record_lines.sum()) - self.records

    @property
    def mixed_line_endings(self) -> bool:
        return mixed(self.line_endings)

    @property
    def needs_copy(self) -> bool:
        """Whether DuckDB must read a normalised copy rather than the file itself."""
        return bool(self.excluded or self.mixed_line_endings or self.line_endings["cr"])

    def excluded_mask(self) -> np.ndarray:
        """True for each record quarantined from here without parsing."""
        if not self.excluded:
            return np.zeros(self.records, bool)
        return np.isin(self.record_start, np.fromiter(self.excluded, np.int64))

    def balanced(self) -> bool:
        """The ledger's own identity: every physical line is a header, blank or record line."""
        return self.physical_lines == self.header_lines + self.blank_lines + int(self.record_lines.sum())

    def as_dict(self) -> dict[str, object]:
        return {
            "physical_lines": self.physical_lines,
            "header_lines": self.header_lines,
            "blank_lines": self.blank_lines,
            "records": self.records,
            "continuation_lines": self.continuation_lines,
            "line_endings": self.line_endings,
            "stray_quotes": self.swallowed,
        }


def mixed(line_endings: dict[str, int]) -> bool:
    """Whether a file ends its lines in more than one way (counts by kind: ``lf``, ``crlf``, ``cr``)."""
    return sum(1 for n in line_endings.values() if n) > 1


class NulByte(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _map(path: Path) -> tuple[bytes | mmap.mmap, np.ndarray]:
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return b"", np.zeros(0, np.uint8)
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return data, np.frombuffer(data, np.uint8)


def _line_ends(data: bytes | mmap.mmap, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Byte offsets where each physical line's content ends, and where the next line starts."""
    newlines = np.flatnonzero(arr == NEWLINE)
    if data.find(b"\r") < 0:
        ends, nexts = newlines, newlines + 1
        endings = {"lf": len(newlines), "crlf": 0, "cr": 0}
    else:
        crs = np.flatnonzero(arr == CARRIAGE_RETURN)
        follows = np.zeros(len(crs), bool)
        inside = crs + 1 < len(arr)
        follows[inside] = arr[crs[inside] + 1] == NEWLINE
        crlf_nl = crs[follows] + 1
        lone_cr = crs[~follows]
        lf_only = np.setdiff1d(newlines, crlf_nl, assume_unique=True)
        ends = np.sort(np.concatenate([lf_only, crs[follows], lone_cr]))
        width = np.ones(len(ends), np.int64)
        width[np.isin(ends, crs[follows], assume_unique=True)] = 2
        nexts = ends + width
        endings = {"lf": len(lf_only), "crlf": int(follows.sum()), "cr": len(lone_cr)}
    return ends, nexts, endings


def _field_quotes(line: bytes) -> int:
    """Quotes on one line that can open, close or escape a field (not one inside an unquoted token)."""
    count = 0
    for i, ch in enumerate(line):
        if ch != QUOTE:
            continue
        before = line[i - 1] if i else COMMA
        after = line[i + 1] if i + 1 < len(line) else COMMA
        if before in (COMMA, QUOTE) or after in (COMMA, QUOTE):
            count += 1
    return count


def _swallows_records(span: bytes, follower: bytes, header_fields: int) -> bool:
    """Whether a quoted field across lines looks like a stray quote rather than a real multi-line value.

    Stray when the text the field holds after its first line break is shaped like a record (as
    many commas as the header before any quote), or when the lines do not make one record of the
    header's width under RFC 4180.
    """
    if follower.split(b'"', 1)[0].count(b",") >= header_fields - 1:
        return True
    try:
        parsed = list(csv.reader(io.StringIO(span.decode("utf-8", errors="replace"), newline="")))
    except csv.Error:
        return True
    return len(parsed) != 1 or len(parsed[0]) != header_fields


def scan(path: Path, header_fields: int) -> LineLedger:
    """Count ``path``'s lines and records from its bytes; raise :class:`NulByte` on a NUL byte."""
    data, arr = _map(path)
    nul = data.find(b"\0")
    if nul >= 0:
        head = bytes(data[:nul])
        raise NulByte(len(head.splitlines()) + (1 if head.endswith((b"\n", b"\r")) or not head else 0))
    ends, nexts, endings = _line_ends(data, arr)
    starts = np.concatenate([[0], nexts])
    stops = np.concatenate([ends, [len(arr)]])
    if starts[-1] >= len(arr):  # the file ends with a line end: no final line
        starts, stops = starts[:-1], stops[:-1]
    n = len(starts)
    blank = stops == starts

    # lines that may open or close a quoted field: an odd count of quotes (rare), checked one by one
    odd = np.zeros(n, bool)
    if data.find(b'"') >= 0 and n:
        quotes = np.flatnonzero(arr == QUOTE)
        per_line = np.searchsorted(quotes, stops) - np.searchsorted(quotes, starts)
        for i in np.flatnonzero(per_line & 1):
            odd[i] = _field_quotes(bytes(data[starts[i] : stops[i]])) % 2 == 1

    # a record is a run of lines from a line outside any quoted field to the line that closes it
    excluded: dict[int, str] = {}
    swallowed: list[dict[str, int]] = []
    toggles = np.flatnonzero(odd)
    header_last = 0
    # the header is line 0 unless a quoted header field runs across lines (then it ends at its closer)
    if len(toggles) and toggles[0] == 0:
        header_last = int(toggles[1]) if len(toggles) > 1 else n - 1
        toggles = toggles[2:] if len(toggles) > 1 else toggles[:0]
    spans: list[tuple[int, int, bool]] = []  # quoted fields across lines: (opening line, closing line, closed)
    for k in range(0, len(toggles), 2):
        closed = k + 1 < len(toggles)
        spans.append((int(toggles[k]), int(toggles[k + 1]) if closed else n - 1, closed))

    single = np.ones(n, bool)
    single[: header_last + 1] = False
    single[blank] = False
    multi: list[tuple[int, int]] = []
    for open_at, close_at, closed in spans:
        single[open_at : close_at + 1] = False
        stray = (
            not closed
            or int(stops[close_at] - starts[open_at]) > MAX_RECORD_BYTES
            or _swallows_records(
                bytes(data[starts[open_at] : stops[close_at]]),
                bytes(data[starts[open_at + 1] : stops[open_at + 1]]),
                header_fields,
            )
        )
        if not stray:
            multi.append((open_at, close_at))  # a real quoted field across lines: one record
            continue
        # a stray quote: its line (and the line that closes it) alone, every line between on its own
        swallowed.append({"opened_at_line": open_at + 1, "first_line": open_at + 2, "last_line": close_at + 1})
        excluded[open_at + 1] = validation.UNBALANCED_QUOTE
        multi.append((open_at, open_at))
        last_between = close_at - 1 if closed else close_at
        if closed:
            excluded[close_at + 1] = validation.UNBALANCED_QUOTE
            multi.append((close_at, close_at))
        for line in range(open_at + 1, last_between + 1):
            if not blank[line]:
                multi.append((line, line))
                excluded[line + 1] = validation.SWALLOWED_BY_QUOTED_FIELD
    record_first = record_last = np.flatnonzero(single)
    if multi:
        record_first = np.concatenate([record_first, np.array([m[0] for m in multi], np.int64)])
        record_last = np.concatenate([record_last, np.array([m[1] for m in multi], np.int64)])
        order = np.argsort(record_first, kind="stable")
        record_first, record_last = record_first[order], record_last[order]
    byte_start = starts[record_first]
    byte_end = stops[record_last]
    too_long = np.flatnonzero(byte_end - byte_start > MAX_RECORD_BYTES)
    for i in too_long:
        line = int(record_first[i]) + 1
        excluded.setdefault(line, validation.RECORD_TOO_LONG)
    # blank lines inside a swallowed range count as blank; inside a real multi-line record they are record lines
    spanning = np.flatnonzero(record_last > record_first)
    blank_before = np.concatenate([[0], np.cumsum(blank)])
    inside = blank_before[record_last[spanning] + 1] - blank_before[record_first[spanning]]
    counted_blank = int(blank.sum()) - int(inside.sum())
    return LineLedger(
        physical_lines=n,
        header_lines=header_last + 1 if n else 0,
        blank_lines=counted_blank,
        record_start=np.asarray(record_first, np.int64) + 1,
        record_lines=np.asarray(record_last, np.int64) - np.asarray(record_first, np.int64) + 1,
        record_byte_start=np.asarray(byte_start, np.int64),
        record_byte_end=np.asarray(byte_end, np.int64),
        header_byte_end=int(stops[header_last]) if n else 0,
        line_endings=endings,
        excluded=excluded,
        swallowed=swallowed,
    )


def record_bytes(path: Path, ledger: LineLedger, indices: list[int]) -> list[bytes]:
    """The bytes of the given records (indices into the ledger), as they are in the file."""
    data, _ = _map(path)
    return [bytes(data[ledger.record_byte_start[i] : ledger.record_byte_end[i]]) for i in indices]


def write_normalised_copy(path: Path, ledger: LineLedger, target: Path) -> np.ndarray:
    """Write the header and every record not excluded, each ended by ``\\n``; return each kept record's
    byte offset in the copy (so a DuckDB reject's byte position maps back to its record).

    Line ends inside a record (a quoted field's own line breaks) are kept as they are.
    """
    data, _ = _map(path)
    keep = ~ledger.excluded_mask()
    offsets = np.zeros(int(keep.sum()), np.int64)
    with open(target, "wb") as out:
        position = out.write(bytes(data[: ledger.header_byte_end]) + b"\n")
        for k, i in enumerate(np.flatnonzero(keep)):
            offsets[k] = position
            position += out.write(bytes(data[ledger.record_byte_start[i] : ledger.record_byte_end[i]]) + b"\n")
    return offsets
