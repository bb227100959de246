"""The command line as a user meets it: JSON shapes, clear one-line errors, the demo end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontract.cli import app
from tests.conftest import VALID_ROW, write_csv

runner = CliRunner()
CONTRACTS = Path(__file__).parent.parent / "contracts"


def test_ingest_json_has_the_promised_keys(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", [VALID_ROW, {**VALID_ROW, "record_id": "x", "nhs_number": "1"}])
    result = runner.invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {k: out[k] for k in ("read", "accepted", "quarantined", "reasons")} == {
        "read": 2,
        "accepted": 1,
        "quarantined": 1,
        "reasons": {"invalid_nhs_number": 1},
    }
    # and each file's own ledger: its physical lines (counted here too) and where every record went
    (source,) = out["sources"]
    assert source["lines"]["physical_lines"] == len(src.read_bytes().splitlines()) == 3
    assert (source["lines"]["header_lines"], source["lines"]["records"]) == (1, 2)
    assert (source["accepted"], source["quarantined"]) == (1, 1)


def test_ingest_table_output(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", [VALID_ROW, {**VALID_ROW, "record_id": "x", "stage": "9"}])
    result = runner.invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0
    assert "1 accepted" in result.stdout and "invalid_stage" in result.stdout


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CARECONTRACT_KEY": "cli-test-key-of-at-least-thirty-two-bytes", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "file is empty"), (b"a,b\n1,2\n", "missing required column"), (b"\x00\x01binary", "not a CSV or Parquet")],
)
def test_unreadable_file_is_one_clear_line_no_traceback(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    proc = _cli("ingest", str(bad), "--store", str(tmp_path / "s"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_quality_on_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    proc = _cli("quality", "--store", str(tmp_path / "nothing"), cwd=tmp_path)
    assert proc.returncode == 2 and "no store here" in proc.stderr and "Traceback" not in proc.stderr


def test_synth_bad_start_is_a_clear_error(tmp_path: Path) -> None:
    proc = _cli("synth", "--out", str(tmp_path / "o"), "--start", "April", "--population", "5000", cwd=tmp_path)
    assert proc.returncode == 2 and "--start must be an ISO date" in proc.stderr


def test_synth_ingest_quality_round_trip(tmp_path: Path) -> None:
    args = ["synth", "--out", str(tmp_path / "d"), "--population", "20000", "--years", "1", "--seed", "1"]
    out = runner.invoke(app, [*args, "--start", "2023-04-01", "--error-rate", "0.01", "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    ingested = runner.invoke(app, ["ingest", *summary["files"], "--store", str(tmp_path / "s"), "--json"])
    counts = json.loads(ingested.stdout)
    assert counts["read"] == summary["rows"]
    assert counts["quarantined"] == summary["injected_errors"]
    quality = runner.invoke(app, ["quality", "--store", str(tmp_path / "s"), "--json"])
    report = json.loads(quality.stdout)
    assert report["rows"] == {
        "read": counts["read"],
        "accepted": counts["accepted"],
        "quarantined": counts["quarantined"],
    }
    assert {c["column"] for c in report["columns"]} >= {"nhs_number", "event_date", "icd10"}
    assert all(0 <= c["validity"] <= 1 for c in report["columns"])
    table = runner.invoke(app, ["quality", "--store", str(tmp_path / "s")])
    assert "By provider" in table.stdout and "By commissioner" in table.stdout


@pytest.mark.slow
def test_demo_runs_and_says_where_its_outputs_are(tmp_path: Path) -> None:
    proc = _cli("demo", "--out", str(tmp_path / "demo"), "--population", "50000", "--years", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "injected errors were quarantined with the expected reason" in proc.stdout
    assert "Outputs:" in proc.stdout and "catalog.duckdb" in proc.stdout
    assert "Outcome measures" in proc.stdout and "cwt_62" in proc.stdout
    # the demo's table takes its targets by the same rule as its report, and says so (issue 21)
    assert "Targets: the contract's (staffordshire-cancer.yaml) for" in " ".join(proc.stdout.split())
    assert "Open the report" in proc.stdout and (tmp_path / "demo" / "report.html").stat().st_size > 1_000_000
    assert (tmp_path / "demo" / "store" / "manifest.json").exists()
    # running the demo again starts afresh rather than quarantining everything as duplicates
    again = _cli("demo", "--out", str(tmp_path / "demo"), "--population", "50000", "--years", "2", cwd=tmp_path)
    assert again.returncode == 0 and "✓" in again.stdout


def test_version() -> None:
    assert runner.invoke(app, ["--version"]).stdout.startswith("carecontract ")


def test_measures_and_explain_from_the_command_line(tmp_path: Path) -> None:
    treatment = {"event_type": "treatment", "modality": "surgery", "event_date": "2024-03-15", "referral_route": ""}
    rows = [
        {**VALID_ROW, "record_id": "ref1", "event_date": "2024-01-01"},
        {**VALID_ROW, "record_id": "tx1", **treatment},
    ]
    src = write_csv(tmp_path / "a.csv", rows)
    assert runner.invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s")]).exit_code == 0
    terms = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"
    period = ["--store", str(tmp_path / "s"), "--from", "2024-01-01", "--to", "2024-12-31"]
    out = runner.invoke(app, ["measures", str(terms), *period, "--only", "cwt_62", "--by", "provider", "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.stdout)
    assert {k: row[k] for k in ("measure", "numerator", "denominator", "rate", "target", "met", "provider")} == {
        "measure": "cwt_62",
        "numerator": 0,
        "denominator": 1,
        "rate": 0.0,
        "target": 0.85,
        "met": False,
        "provider": "RJE",
    }
    assert set(row) >= {"ci_low", "ci_high", "funnel", "terms"}
    old = runner.invoke(
        app, ["measures", *period, "--only", "cwt_62", "--by", "provider", "--terms", str(terms), "--json"]
    )
    assert old.exit_code == 0 and json.loads(old.stdout) == [row]  # the old spelling still works,
    assert "deprecated: --terms" in old.stderr  # with a note
    why = runner.invoke(app, ["explain", "cwt_62", "--store", str(tmp_path / "s"), "--pathway", "ref1"])
    assert why.exit_code == 0 and "74 day(s)" in why.stdout and "not met" in why.stdout
    bad = _cli("measures", *period, "--by", "ward", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown breakdown ward" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("explain", "cwt_62", "--store", str(tmp_path / "s"), "--pathway", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no pathway" in missing.stderr


def test_public_measures_from_the_command_line(tmp_path: Path) -> None:
    rows = [
        {**VALID_ROW, "record_id": f"r{i}", "nhs_number": nhs} for i, nhs in enumerate(["9434765919", "4010232137"])
    ]
    treatment = {"event_type": "treatment", "modality": "surgery", "event_date": "2024-02-01", "referral_route": ""}
    rows += [
        {**VALID_ROW, "record_id": f"t{i}", "nhs_number": nhs, **treatment}
        for i, nhs in enumerate(["9434765919", "4010232137"])
    ]
    src = write_csv(tmp_path / "a.csv", rows)
    runner.invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s")])
    period = ["--store", str(tmp_path / "s"), "--from", "2024-01-01", "--to", "2024-12-31"]
    args = ["measures", *period, "--only", "cwt_62", "--public", "--json"]
    (row,) = json.loads(runner.invoke(app, args).stdout)
    assert row["numerator"] is None and row["denominator"] is None and row["rate"] is None  # 2 patients: hidden


def test_every_command_that_takes_terms_takes_set() -> None:
    import typer.main

    def commands(group, prefix: str = ""):
        for name, command in getattr(group, "commands", {}).items():
            if getattr(command, "commands", None):
                yield from commands(command, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", command

    checked = []
    for name, command in commands(typer.main.get_command(app)):
        params = {p.name: p for p in command.params}
        takes_terms = any(p in params for p in ("terms_file", "terms", "file")) and name != "ingest"
        if takes_terms:
            checked.append(name)
            assert any("--set" in p.opts for p in command.params), name
    assert {"pay", "stress", "measures", "baseline", "accountability", "decisions add", "terms check"} <= set(checked)


def _commands(group, prefix: str = ""):
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_terms_is_the_first_argument_of_every_command_about_a_contract() -> None:
    import typer.main

    for name, command in _commands(typer.main.get_command(app)):
        terms = [p for p in command.params if p.name in ("terms_file", "terms_files")]
        if terms:
            assert terms[0].param_type_name == "argument", name
            arguments = [p for p in command.params if p.param_type_name == "argument"]
            assert arguments[0] is terms[0], name
            assert all(p.hidden for p in command.params if "--terms" in getattr(p, "opts", ())), name


def test_decide_is_now_decisions_add_and_the_old_name_still_works(tmp_path: Path) -> None:
    terms = str(CONTRACTS / "unitingcare.yaml")
    log = str(tmp_path / "d.jsonl")
    assert "decide" not in runner.invoke(app, ["--help"]).stdout
    added = runner.invoke(app, ["decisions", "add", terms, "--kind", "gate", "--text", "Passed", "--log", log])
    assert added.exit_code == 0 and "Recorded decision 1" in added.stdout
    old = runner.invoke(app, ["decide", terms, "--kind", "gate", "--text", "Again", "--log", log])
    assert old.exit_code == 0 and "Recorded decision 2" in old.stdout and "decisions add" in old.stderr
    assert runner.invoke(app, ["decisions", "verify", "--log", log]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["quality", "--stor", "s"], "No such option: --stor"),
        (["qualty"], "No such command 'qualty'"),
        (["--bogus"], "No such option: --bogus"),
        (["pay", "--store", "s"], "Missing argument 'TERMS'"),
        (["synth", "--out", "o", "--population", "lots"], "--population"),
        (["synth", "--out", "o", "--population", "10"], "population must be at least 1,000"),
        (["stress", str(CONTRACTS / "unitingcare.yaml"), "--runs", "0"], "--runs must be at least 1"),
        (["terms", "check", "nope.yaml"], "nope.yaml: no such file"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_bug_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only user errors become one red line: a defect (here an unbalanced transaction) is not hidden."""
    from carecontract import run as quality  # where the quality command's report is computed
    from carecontract.payments.ledger import UnbalancedTransaction

    src = write_csv(tmp_path / "a.csv", [VALID_ROW])
    assert runner.invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s")]).exit_code == 0

    def broken(store, *period):
        raise UnbalancedTransaction("transaction t1 (rule) is off by 1 pence")

    monkeypatch.setattr(quality, "quality", broken)
    result = runner.invoke(app, ["quality", "--store", str(tmp_path / "s")])
    assert result.exit_code == 1 and isinstance(result.exception, UnbalancedTransaction)
    assert "error:" not in result.stderr


def test_nothing_below_the_cli_imports_it() -> None:
    """The CLI is the top layer: the demo, the presentation helpers and the library never import it."""
    import ast

    src = Path(__file__).parent.parent / "src" / "carecontract"
    for path in src.rglob("*.py"):
        if "cli" in path.relative_to(src).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "carecontract.cli" or n.startswith("carecontract.cli.") for n in names), path
