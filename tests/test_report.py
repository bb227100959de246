"""The HTML report: self-contained, every section present, and nothing identifying in it."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from carecontract.publish.decisions import DecisionLog
from carecontract.publish.report import build_report, gather_report, render_report
from carecontract.terms import load_terms

CANCER = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"
SECTIONS = [
    "The contract",
    "Data quality",
    "Activity, cost and patient flows",
    "Outcomes",
    "Payments",
    "Viability",
    "Who did what for whom",
    "Decision log",
]


@pytest.fixture(scope="module")
def store(paid_store: Path) -> Path:
    return paid_store


def _visible(text: str) -> str:
    """The report without its scripts (the inlined Plotly library has hex ids of its own)."""
    return re.sub(r"<script.*?</script>", "", text, flags=re.S)


@pytest.mark.parametrize("public", [False, True], ids=["restricted", "public"])
def test_the_report_is_self_contained_and_complete(store: Path, tmp_path: Path, public: bool) -> None:
    log = DecisionLog(tmp_path / "decisions.jsonl")
    log.append("business_case", "Business case approved", "Staffordshire cancer care", "fp")
    text = build_report(load_terms(CANCER), store, public=public, runs=500, decision_log=log.path)
    assert re.findall(r"<h2>(.*?)</h2>", text)[: len(SECTIONS)] == [
        s if s != "Outcomes" else re.findall(r"<h2>(Outcomes[^<]*)</h2>", text)[0] for s in SECTIONS
    ]
    visible = _visible(text)
    assert not re.search(r'(src|href)="https?:', visible)  # nothing loaded from the network: works offline
    assert not re.search(r"<script[^>]+src=", text)
    assert text.count("Plotly.newPlot") >= 5 and "verified intact" in text
    assert not re.search(r"\b[0-9a-f]{64}\b", visible)  # no pseudonyms
    assert not re.search(r"\b9\d{9}\b", visible)  # no NHS numbers (the synthetic ones start with 9)
    assert ("Public edition" in visible) == public


def test_the_public_report_shows_no_small_counts(store: Path) -> None:
    visible = _visible(build_report(load_terms(CANCER), store, public=True, runs=200))
    cells = re.findall(r'<td class="n">([0-9,]+)</td>', visible)
    counts = [int(c.replace(",", "")) for c in cells]
    assert counts and all(c >= 8 and c % 5 == 0 for c in counts)


def test_report_from_the_command_line(store: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "r.html"
    command = ["report", str(CANCER), "--store", str(store), "--out", str(out), "--runs", "200", "--public"]
    proc = subprocess.run([sys.executable, "-m", "carecontract.cli", *command], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "open it in a browser" in proc.stdout and out.stat().st_size > 1_000_000


def test_the_templates_escape_what_they_show(store: Path) -> None:
    data = gather_report(load_terms(CANCER), store, runs=100)
    record = {
        "seq": 1,
        "at": "2026-01-01T00:00:00",
        "kind": "note",
        "text": "<script>x()</script> & co",
        "hash": "0" * 64,
    }
    text = render_report(replace(data, decisions=[record]))
    assert "&lt;script&gt;x()&lt;/script&gt; &amp; co" in text and "<script>x()" not in text
