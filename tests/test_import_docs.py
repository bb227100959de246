"""docs/imports.md and the importers' code tables agree: every code a table in the code knows is a row
of the page, with its meaning and its mapping, and every data element an extract's header may carry
is named there. (The page's tables were written from the code; this keeps them from drifting.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from carecontract.imports import cosd, cwt, run

DOC = (Path(__file__).parent.parent / "docs" / "imports.md").read_text()


def _rows(table: dict) -> list[str]:
    rows = []
    for code, value in table.items():
        if isinstance(value, tuple):
            meaning, target = value
            shown = f"`{target}`" if target and "`" not in target else target
            rows.append(f"| {code} | {meaning} | {shown} |" if target else f"| {code} | {meaning} |")
        else:
            rows.append(f"| {code} | {value}")
    return rows


@pytest.mark.parametrize(
    "table",
    [cwt.PRIORITY_TYPES, cwt.EVENT_TYPES, cwt.FIRST_SEEN_REASONS, cwt.TREATMENT_REASONS, cosd.BASES],
)
def test_code_and_meaning_rows(table: dict) -> None:
    for row in _rows(table):
        assert row in DOC, row


def test_sources_and_their_routes() -> None:
    for code, (meaning, route) in cwt.SOURCES.items():
        assert f"| {code} | {meaning} | {route} |" in DOC


def test_modalities_and_fds_ends_and_rejections() -> None:
    for code, (meaning, modality) in cwt.MODALITIES.items():
        assert f"| {code} | {meaning} | {f'`{modality}`' if modality else 'no treatment event'} |" in DOC
    for code, why in cwt.UNMAPPED_MODALITIES.items():
        assert f"| {code} | {why.split(':')[0]} | rejected:" in DOC
    for code, (meaning, event) in cwt.FDS_END_REASONS.items():
        assert f"| {code} | {meaning} | {f'`{event}`' if event else 'none (no 28-day clock stop)'} |" in DOC


def test_every_data_element_and_kind_is_named() -> None:
    for column in (*cwt.COLUMNS, *cosd.COLUMNS):
        assert column in DOC, column
    for kind in run.KINDS:
        assert f"`{kind}`" in DOC or kind in ("apc", "deaths", "fhir"), kind
