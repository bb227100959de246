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


def test_the_report_reads_as_a_commissioner_needs(store: Path) -> None:
    """Issue 21: labelled funnel limits in percent with the target, named parties, no blank header, the last day."""
    import json as _json

    from carecontract.payments.components import account_name as account_label
    from carecontract.publish.report import _funnel, _payments

    terms = load_terms(CANCER)
    data = gather_report(terms, store, runs=100)
    text = render_report(data)
    visible = _visible(text)
    # the contract table has no empty header row, and the term ends on its last day
    assert "<th></th>" not in visible
    c = terms.contract
    assert f"{c.term.start} to {c.term.last_day} inclusive" in visible and str(c.term.end) not in visible
    # the target rule is stated, and each row says where its target came from
    assert "Targets: the contract&#39;s (staffordshire-cancer.yaml)" in visible
    assert "<th>target from</th>" in visible
    # names from the terms in the tables; codes the terms do not list are called unlisted
    for s in c.subcontractors:
        assert f"{s.name} ({s.code})" in visible
    # funnel: every line in the legend, percent axis, the target drawn and labelled
    points = [r for r in data.outcomes_by_provider if r["measure"] == "cwt_62" and r["rate"] is not None]
    fig = _funnel("cwt_62", points, c)
    legend = {t.name for t in fig.data if t.showlegend is not False}
    assert {"providers", "overall rate", "95% limits", "99.8% limits"} <= legend
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.xaxis.title.text
    assert any("target 85.0% (contract)" in (a.text or "") for a in fig.layout.annotations)
    assert [s.y0 for s in fig.layout.shapes] == [0.85]
    # payments: parties by name and role, both axes titled, no ledger ids anywhere in the chart
    chart = _payments(data.components, c)
    names = [bar.name for bar in chart.data]
    assert names and not any(re.search(r"\w+:\w+", n) for n in names), names
    assert chart.layout.yaxis.title.text == "£ million" and chart.layout.xaxis.title.text == "contract year"
    assert "hmrc:vat" not in _json.dumps(chart.to_plotly_json()) and "management:PRIME1" not in text
    assert account_label("hmrc:vat", c) == "HMRC (irrecoverable VAT)"
    assert account_label("subcontractor:HKHH1", c) == "unlisted provider HKHH1 (subcontractor, for care)"


def test_organisation_names_from_the_terms() -> None:
    from carecontract.terms.names import named, organisation

    c = load_terms(CANCER).contract
    assert organisation("RJE", c) == "University Hospitals of North Midlands NHS Trust"
    assert named("RJE", c) == "University Hospitals of North Midlands NHS Trust (RJE)"
    assert named("HKHH1", c) == "unlisted provider HKHH1"
    assert named("05D", c, "commissioner") == "Cannock Chase CCG (05D)"
    assert named("ZZ9", c, "commissioner") == "unlisted commissioner ZZ9"
