"""The synthetic economy written in the national data sets' own shapes, so the demo and the tests can
start from the files a commissioner receives and round-trip: import(synth in format X) gives the same
measures as ingest(synth in the interchange format), for the measures that format carries.

Each format is a module ``carecontract.synth.formats.<kind>`` with
``def write(events: pyarrow.Table, out: Path) -> list[Path]`` (``events``: the economy's interchange
table, ``Economy.events``). The kinds are the importers' (``carecontract import KIND``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads KINDS for its help: keep this module light
    import pyarrow as pa

#: Formats ``carecontract synth --format`` writes besides the interchange format (csv, parquet).
KINDS: tuple[str, ...] = ("cwt", "cosd", "apc", "deaths", "fhir")


def writer(kind: str) -> ModuleType:
    if kind not in KINDS:
        from carecontract.synth.economy import SynthError

        raise SynthError(f"unknown format {kind!r}: one of csv, parquet, {', '.join(KINDS)}")
    return importlib.import_module(f"carecontract.synth.formats.{kind}")


def write(kind: str, events: pa.Table, out: str | Path) -> list[Path]:
    """Write ``events`` as ``kind`` files into ``out``; the files written."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    return writer(kind).write(events, folder)
