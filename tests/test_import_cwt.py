"""The CWT importer on the example extract built field by field from the data set (examples/national/cwt),
with the measures worked by hand from that file, and the rules one field at a time."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.api import compute_measures
from carecontract.imports import cwt
from carecontract.imports.run import import_files
from carecontract.records.store import Store

EXAMPLE = Path(__file__).parent.parent / "examples" / "national" / "cwt" / "cwt-extract.csv"


def _events(store: Path) -> dict[str, tuple]:
    con = Store(store).connect()
    try:
        rows = con.execute(
            "SELECT record_id, event_type, event_date::VARCHAR, provider_code, referral_route, modality, "
            "adjustment_days, icd10 FROM events"
        ).fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def test_example_extract_every_line_accounted_for(tmp_path: Path) -> None:
    result = import_files("cwt", [EXAMPLE], tmp_path / "store")
    data_lines = [line for line in EXAMPLE.read_text().splitlines()[1:] if line.strip()]
    assert result.records == len(data_lines) == 6
    assert (result.mapped, result.rejected) == (5, 1)
    events = _events(tmp_path / "store")
    assert len(events) == result.events == result.ingest.accepted == 22
    report = pq.read_table(result.report).to_pylist()
    assert [r["reason"] for r in report] == ["CANCER TREATMENT MODALITY '99': not a code of the CWT v12.1 table"]
    assert report[0]["source_record"] == "cwt-extract.csv:7"


def test_example_extract_events_field_by_field(tmp_path: Path) -> None:
    import_files("cwt", [EXAMPLE], tmp_path / "store")
    events = _events(tmp_path / "store")
    p1 = "CWT:RJE:RJE0000001"
    assert events[f"{p1}:referral"][:4] == ("referral", "2024-04-02", "RJE", "urgent_gp")
    assert events[f"{p1}:first_seen_adjustment"][:2] == ("clock_adjustment", "2024-04-02")
    assert events[f"{p1}:first_seen_adjustment"][5] == 5
    assert events[f"{p1}:diagnosis"][6] == "C34.1"
    assert events[f"{p1}:treatment_adjustment"][1:] == ("2024-05-03", "RJE", None, None, 7, None)
    assert events[f"{p1}:02-2024-06-24:treatment"][4] == "radiotherapy"  # 05 teletherapy
    assert events["CWT:RL4:RL40000002:referral"][3] == "breast_symptomatic"  # priority 3, type 16
    assert events["CWT:RL4:RL40000002:ruled_out"][0] == "cancer_ruled_out"  # FDS end reason 01
    assert events["CWT:RL4:RL40000003:referral"][3] == "screening"  # source 17
    assert events["CWT:RL4:RL40000003:treatment"][2] == "RJE"  # treated at site RJE02: trust RJE
    assert events["CWT:RJE:RJE0000004:referral"][3] == "other"  # routine, from a consultant
    assert events["CWT:RJE:RJE0000004:upgrade"][1:4] == ("2024-03-18", "RJE", "upgrade")
    assert not any(k.startswith("CWT:RJE:RJE0000004:diagnosis") for k in events)  # FDS end 02: excluded


def test_example_measures_worked_by_hand(tmp_path: Path) -> None:
    """fds_28: 19 (24 - 5 DNA), 19, 24 days: 3/3. cwt_62: 36 (48 - 5 - 7), 75 (breach), 23 (from the
    upgrade): 2/3. cwt_31: 10 (17 - 7), 14, 45 (breach), 0: 3/4."""
    import_files("cwt", [EXAMPLE], tmp_path / "store")
    with pytest.warns(UserWarning, match="only part"):
        frame = compute_measures(tmp_path / "store", "2024-01-01", "2024-12-31", only=["fds_28", "cwt_62", "cwt_31"])
    got = {r.measure: (int(r.numerator), int(r.denominator)) for r in frame.itertuples()}
    assert got == {"fds_28": (3, 3), "cwt_62": (2, 3), "cwt_31": (3, 4)}


def _line(**fields: str) -> str:
    row = {c: "" for c in cwt.COLUMNS} | {
        cwt.NHS_NUMBER: "9434765919",
        cwt.PROVIDER: "RJE",
        cwt.COMMISSIONER: "05W",
        cwt.PATHWAY: "P1",
        cwt.START: "2024-04-02",
        cwt.PRIORITY: "3",
        cwt.SOURCE: "03",
    }
    row.update(fields)
    return ",".join(row[c] for c in cwt.COLUMNS)


def _map(tmp_path: Path, *lines: str) -> list:
    path = tmp_path / "x.csv"
    path.write_text(",".join(cwt.COLUMNS) + "\n" + "\n".join(lines) + "\n")
    return list(cwt.map_file(path))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({cwt.PRIORITY: "7"}, "PRIORITY TYPE CODE '7'"),
        ({cwt.SOURCE: "99"}, "SOURCE OF REFERRAL FOR OUT-PATIENTS '99'"),
        ({cwt.START: "02/04/2024"}, "CANCER REFERRAL TO TREATMENT PERIOD START DATE '02/04/2024': not a date"),
        ({cwt.FDS_END: "2024-04-20", cwt.FDS_END_REASON: "04"}, "CANCER FASTER DIAGNOSIS PATHWAY END REASON '04'"),
        ({cwt.FDS_END: "2024-04-20", cwt.FDS_END_REASON: "03"}, "PRIMARY DIAGNOSIS (ICD) ''"),
        ({cwt.FIRST_SEEN_ADJUSTMENT: "4"}, "WAITING TIME ADJUSTMENT REASON (FIRST SEEN) ''"),
        ({cwt.TREATMENT: "2024-05-01", cwt.MODALITY: "97", cwt.EVENT_TYPE: "01"}, "CANCER TREATMENT MODALITY '97'"),
        ({cwt.TREATMENT: "2024-05-01", cwt.MODALITY: "01"}, "CANCER TREATMENT EVENT TYPE ''"),
        ({cwt.UPGRADE: "2024-03-01", cwt.PRIORITY: "1"}, "CONSULTANT UPGRADE DATE '2024-03-01': before"),
        ({cwt.PROVIDER: "R-JE"}, "ORGANISATION IDENTIFIER (CODE OF PROVIDER) 'R-JE'"),
    ],
)
def test_unknown_or_inconsistent_values_are_rejected_naming_field_and_value(tmp_path, fields, reason) -> None:
    (mapped,) = _map(tmp_path, _line(**fields))
    assert mapped.events == [] and mapped.problem.startswith(reason)


def test_a_line_that_does_not_split_is_rejected_alone(tmp_path: Path) -> None:
    broken = _line(**{cwt.PATHWAY: 'P2"'}).replace('P2"', '"P2')  # an unclosed quote
    out = _map(tmp_path, _line(), broken, _line(**{cwt.PATHWAY: "P3"}))
    assert [m.problem is None for m in out] == [True, False, True]
    assert out[1].problem == "line 3: a quoted field that does not close on its line"


def test_declined_treatment_gives_no_treatment_event(tmp_path: Path) -> None:
    (mapped,) = _map(
        tmp_path,
        _line(**{cwt.DECISION: "2024-04-20", cwt.TREATMENT: "2024-05-01", cwt.MODALITY: "98", cwt.EVENT_TYPE: "01"}),
    )
    assert [e["event_type"] for e in mapped.events] == ["referral", "decision_to_treat"]


@settings(max_examples=40, deadline=None)
@given(
    priority=st.sampled_from(sorted(cwt.PRIORITY_TYPES)),
    source=st.sampled_from(sorted(cwt.SOURCES)),
    referral_type=st.sampled_from(["", "16", "01"]),
)
def test_route_follows_the_clock_rules(priority: str, source: str, referral_type: str) -> None:
    """Screening (17) wins; then priority 3 is urgent (breast symptomatic with type 16); else the source."""
    fields = {cwt.PRIORITY: priority, cwt.SOURCE: source, cwt.REFERRAL_TYPE: referral_type}
    got = cwt.route(fields)
    if source == "17":
        assert got == "screening"
    elif priority == "3":
        assert got == ("breast_symptomatic" if referral_type == "16" else "urgent_gp")
    else:
        assert got == cwt.SOURCES[source][1] and got in ("emergency", "other")


def test_dates_are_iso(tmp_path: Path) -> None:
    (mapped,) = _map(tmp_path, _line())
    assert mapped.events[0]["event_date"] == date(2024, 4, 2)
