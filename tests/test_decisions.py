"""The decision log: any edited, removed or reordered record, or changed attachment, is detected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecontract.publish.decisions import DecisionLog, DecisionLogError


def _log(tmp: Path, n: int = 3) -> DecisionLog:
    log = DecisionLog(tmp / "decisions.jsonl")
    (tmp / "case.pdf").write_bytes(b"%PDF business case")
    for i in range(n):
        log.append(
            "business_case" if i == 0 else "variation",
            f"decision {i}",
            "Contract",
            "fp",
            attach=tmp / "case.pdf" if i == 0 else None,
        )
    return log


def test_an_intact_log_verifies(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert log.verify() == []
    assert [r["seq"] for r in log.records()] == [1, 2, 3]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_changing_any_byte_is_detected(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    log = _log(tmp_path_factory.mktemp("log"))
    raw = bytearray(log.path.read_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    raw[position] = replacement
    log.path.write_bytes(bytes(raw))
    assert log.verify()


def test_removed_reordered_and_truncated_records_are_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = log.path.read_text().splitlines(keepends=True)
    log.path.write_text(lines[0] + lines[2])
    assert any("does not follow" in str(p) for p in log.verify())
    log.path.write_text(lines[1] + lines[0] + lines[2])
    assert log.verify()
    log.path.write_text(lines[0] + lines[1])  # the last record cut off: the head file notices
    assert any("head says 3" in str(p) for p in log.verify())


def test_a_changed_attachment_is_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    stored = next(log.attachments.iterdir())
    stored.write_bytes(b"%PDF a different business case")
    assert any("attachment case.pdf" in str(p) for p in log.verify())


def test_nothing_is_appended_to_a_tampered_log(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.path.write_text(log.path.read_text().replace("decision 1", "decision 9"))
    with pytest.raises(DecisionLogError, match="does not verify"):
        log.append("gate", "gate passed", "Contract", "fp")


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl")
    with pytest.raises(DecisionLogError, match="unknown kind"):
        log.append("vote", "x", "C", "fp")
    with pytest.raises(DecisionLogError, match="needs its text"):
        log.append("gate", "  ", "C", "fp")
    with pytest.raises(DecisionLogError, match="no such file"):
        log.append("gate", "x", "C", "fp", attach=tmp_path / "missing.pdf")


def test_decide_and_verify_from_the_command_line(tmp_path: Path) -> None:
    terms = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True, cwd=tmp_path
        )

    ok = cli("decide", str(terms), "--kind", "options_appraisal", "--text", "Three options compared")
    assert ok.returncode == 0 and "Recorded decision 1" in ok.stdout
    assert cli("decisions", "verify").returncode == 0
    (tmp_path / "decisions.jsonl").write_text((tmp_path / "decisions.jsonl").read_text().replace("Three", "Two"))
    bad = cli("decisions", "verify")
    assert bad.returncode == 1 and "tampered" in bad.stderr
