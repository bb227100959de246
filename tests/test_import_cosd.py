"""The COSD core importer on its example extract (examples/national/cosd), built field by field from the
COSD user guide v10 core items, and the stage rule one value at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from carecontract.api import compute_measures
from carecontract.imports import cosd
from carecontract.imports.csvsource import Rejected
from carecontract.imports.run import import_files
from carecontract.records.store import Store

EXAMPLE = Path(__file__).parent.parent / "examples" / "national" / "cosd" / "cosd-core-extract.csv"


def test_example_extract(tmp_path: Path) -> None:
    result = import_files("cosd", [EXAMPLE], tmp_path / "store")
    assert result.records == len(EXAMPLE.read_text().splitlines()) - 1 == 7
    assert (result.mapped, result.rejected, result.events) == (5, 2, 5)
    assert result.rejections == {"BASIS OF DIAGNOSIS (CANCER)": 1, "TNM STAGE GROUPING (FINAL PRETREATMENT)": 1}
    con = Store(tmp_path / "store").connect()
    try:
        rows = dict(
            (r[0], r[1:])
            for r in con.execute("SELECT record_id, stage, referral_route, tumour_site FROM events").fetchall()
        )
    finally:
        con.close()
    assert rows == {
        "COSD:RJE:RJE-0001:diagnosis": (3, None, "lung"),  # IIIA
        "COSD:RL4:RL4-0002:diagnosis": (1, None, "colorectal"),  # 1
        "COSD:RJE:RJE-0003:diagnosis": (2, "emergency", "prostate"),  # 2B, after an emergency admission (01)
        "COSD:RJE:RJE-0004:diagnosis": (None, None, "breast"),  # X: cannot be assessed
        "COSD:RJE:RJE-0006:diagnosis": (4, "emergency", "other_digestive"),  # IVB, after A&E (10)
    }


def test_example_measures_worked_by_hand(tmp_path: Path) -> None:
    """early stage: stages 3, 1, 2, 4 staged (breast unstaged): 2/4; emergency presentation: 2 of 5."""
    import_files("cosd", [EXAMPLE], tmp_path / "store")
    with pytest.warns(UserWarning, match="only part"):
        frame = compute_measures(
            tmp_path / "store", "2024-01-01", "2024-12-31", only=["early_stage", "emergency_presentation"]
        )
    got = {r.measure: (int(r.numerator), int(r.denominator)) for r in frame.itertuples()}
    assert got == {"early_stage": (2, 4), "emergency_presentation": (2, 5)}


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("IIIA", "3"),
        ("3A", "3"),
        ("I", "1"),
        ("1B2", "1"),
        ("IV", "4"),
        ("4", "4"),
        ("iib", "2"),
        ("X", None),
        ("", None),
        ("0", None),
        ("0is", None),
    ],
)
def test_stage_of_a_tnm_stage_group(group: str, expected: str | None) -> None:
    assert cosd.stage(group) == expected


@pytest.mark.parametrize("group", ["5", "V", "IIII", "T2N0M0", "2D"])
def test_not_a_stage_group_is_rejected(group: str) -> None:
    with pytest.raises(Rejected, match=f"TNM STAGE GROUPING \\(FINAL PRETREATMENT\\) '{group}'"):
        cosd.stage(group)
