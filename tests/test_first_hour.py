"""The first hour of a new user (issue 21): each stumble they met, as a test that it is gone.

The store is the session's small paid economy (30,000 people, events 2017-04-01 to 2020-03-31).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import carecontract as cc
from carecontract.cli import app
from carecontract.measures.definitions import SHORT_NAMES
from carecontract.present import EmptyPeriod, period_coverage
from carecontract.terms import load_terms
from tests.conftest import VALID_ROW, write_csv

runner = CliRunner()
ROOT = Path(__file__).parent.parent
CANCER = ROOT / "contracts" / "staffordshire-cancer.yaml"
UNITINGCARE = ROOT / "contracts" / "unitingcare.yaml"
#: the line of UnitingCare's ``value:`` (the error must name it, wherever edits to the file move it)
VALUE_LINE = next(n for n, line in enumerate(UNITINGCARE.read_text().splitlines(), 1) if line.startswith("value:"))


def _cli(*args: str, cwd: Path, columns: int = 200, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CARECONTRACT_KEY": "first-hour", "COLUMNS": str(columns), **env}
    return subprocess.run(
        [sys.executable, "-m", "carecontract.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


def _one_line(proc: subprocess.CompletedProcess | object) -> str:
    stderr = proc.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    return stderr


# -- 2. empty periods ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["measures", "--store", "{store}"],
        ["terms", "gate", str(CANCER), "--store", "{store}"],
        ["accountability", str(CANCER), "--store", "{store}"],
    ],
    ids=["measures", "gate", "accountability"],
)
def test_a_period_with_no_events_says_which_dates_the_store_holds(paid_store: Path, command: list[str]) -> None:
    args = [a.replace("{store}", str(paid_store)) for a in command]
    result = runner.invoke(app, [*args, "--from", "2010-04-01", "--to", "2011-03-31"])
    assert result.exit_code == 2, result.output
    assert "no events from 2010-04-01 to 2011-03-31" in result.stderr
    assert "the store holds events from 2017-04-01 to 2020-03-31" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_period_partly_outside_the_data_is_noted(paid_store: Path) -> None:
    period = ["--from", "2019-04-01", "--to", "2021-03-31", "--only", "fds_28"]
    result = runner.invoke(app, ["measures", "--store", str(paid_store), *period])
    assert result.exit_code == 0, result.output
    assert "the store holds events from 2017-04-01 to 2020-03-31" in result.stderr


def test_period_coverage_rule() -> None:
    from datetime import date

    first, last = date(2020, 1, 1), date(2020, 12, 31)
    assert period_coverage(date(2020, 3, 1), date(2020, 4, 1), first, last) is None
    assert "only part" in (period_coverage(date(2019, 3, 1), date(2020, 4, 1), first, last) or "")
    for start, end in ((date(2021, 1, 1), date(2021, 2, 1)), (date(2019, 1, 1), date(2019, 12, 31))):
        with pytest.raises(EmptyPeriod, match="holds events from 2020-01-01 to 2020-12-31"):
            period_coverage(start, end, first, last)
    with pytest.raises(EmptyPeriod, match="no events yet"):
        period_coverage(start, end, None, None)


# -- 1. the Python API says so too --------------------------------------------------------------
def test_the_python_api_refuses_an_empty_period_and_warns_on_a_partial_one(paid_store: Path) -> None:
    with pytest.raises(cc.EmptyPeriod, match="holds events from 2017-04-01 to 2020-03-31"):
        cc.compute_measures(paid_store, "2021-04-01", "2022-03-31")
    with pytest.warns(UserWarning, match="only part of"):
        cc.compute_measures(paid_store, "2019-04-01", "2021-03-31", only=["fds_28"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = cc.compute_measures(paid_store, "2018-04-01", "2019-03-31", only=["fds_28"])
    assert not [w for w in caught if "store holds events" in str(w.message)]
    assert rows["denominator"].iloc[0] > 0


# -- 3. one rule for targets --------------------------------------------------------------------
def test_targets_agree_between_terminal_api_and_report(paid_store: Path) -> None:
    from carecontract.publish.report import gather_report
    from carecontract.terms.targets import FROM_CONTRACT, FROM_STANDARD, targets

    terms = load_terms(CANCER)
    contract_sets = {o.measure: o.target for o in terms.contract.outcomes}
    period = ("2018-04-01", "2019-03-31")
    api = cc.compute_measures(paid_store, *period, terms=terms).set_index("measure")
    result = runner.invoke(
        app, ["measures", str(CANCER), "--store", str(paid_store), "--from", period[0], "--to", period[1], "--json"]
    )
    cli = {r["measure"]: r for r in json.loads(result.stdout)}
    from datetime import date

    report = {
        r["measure"]: r
        for r in gather_report(terms, paid_store, runs=50, period=(date(2018, 4, 1), date(2019, 3, 31))).outcomes
    }
    rule = targets(terms.contract)
    for measure, row in cli.items():
        expected = contract_sets.get(measure, rule[measure].value)
        assert row["target"] == report[measure]["target"] == expected
        assert api.loc[measure, "target"] == pytest.approx(expected) or expected is None
        source = FROM_CONTRACT if measure in contract_sets else (FROM_STANDARD if expected is not None else None)
        assert row["target_source"] == report[measure]["target_source"] == source
    # the accountability table judges each subcontractor against the same targets
    from carecontract.baseline.accountability import accountability

    rows = accountability(paid_store, terms, date(2018, 4, 1), date(2019, 3, 31))
    judged = [(m, o["target"]) for r in rows for m, o in r["outcomes"].items()]
    assert judged and all(target == contract_sets[m] for m, target in judged)
    # the public editions say where each target came from too
    public = runner.invoke(
        app,
        [
            "measures",
            str(CANCER),
            "--store",
            str(paid_store),
            "--from",
            period[0],
            "--to",
            period[1],
            "--public",
            "--json",
        ],
    )
    assert {r["measure"]: r["target_source"] for r in json.loads(public.stdout)} == {
        m: r["target_source"] for m, r in cli.items()
    }
    public_report = gather_report(terms, paid_store, public=True, runs=50, period=(date(2018, 4, 1), date(2019, 3, 31)))
    assert {r["measure"]: r["target_source"] for r in public_report.outcomes} == {
        m: r["target_source"] for m, r in cli.items()
    }
    # without terms: England's standards where they exist, and the table says so
    plain = runner.invoke(app, ["measures", "--store", str(paid_store), "--from", period[0], "--to", period[1]])
    assert "England's standards for fds_28, cwt_31, cwt_62" in " ".join(plain.stdout.split())
    with_terms = runner.invoke(
        app, ["measures", str(CANCER), "--store", str(paid_store), "--from", period[0], "--to", period[1]]
    )
    assert "the contract's (staffordshire-cancer.yaml) for" in with_terms.stdout.replace("\n", " ")


# -- 7. messages --------------------------------------------------------------------------------
def test_a_bad_set_value_blames_the_command_line_not_the_file() -> None:
    result = runner.invoke(app, ["terms", "show", str(UNITINGCARE), "--at", "2016-04-01", "--set", "demand_growth=abc"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --set demand_growth=abc:"), result.stderr
    assert "unitingcare.yaml:" not in result.stderr


def test_a_check_across_fields_names_the_set_that_broke_it() -> None:
    result = runner.invoke(app, ["terms", "check", str(UNITINGCARE), "--set", "value.total_gbp=700000000"])
    assert result.exit_code == 2
    assert "value.by_year adds up to" in result.stderr
    assert "(with --set value.total_gbp=700000000)" in result.stderr


@pytest.mark.parametrize("command", [["terms", "check"], ["stress", "--runs", "10"], ["pay", "--store", "s"]])
def test_a_huge_contract_value_is_one_line(tmp_path: Path, command: list[str]) -> None:
    args = [*command[:1], *([command[1]] if command[0] == "terms" else []), str(CANCER)]
    args += [a for a in command[1:] if command[0] != "terms"]
    result = runner.invoke(app, [*args, "--set", "value.total_gbp=1e30"])
    assert result.exit_code == 2, result.output
    assert "--set value.total_gbp=1e30" in result.stderr and "less than or equal to" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ingesting_synths_json_says_what_to_ingest_instead(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "synth.json").write_text(json.dumps({"seed": 1}))
    result = runner.invoke(app, ["ingest", str(tmp_path / "data" / "synth.json"), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "a JSON file, not activity records" in result.stderr and "activity-*.csv" in result.stderr
    assert "found: {" not in result.stderr and not (tmp_path / "s" / "manifest.json").exists()


def test_terms_check_states_the_gate_in_words() -> None:
    result = runner.invoke(app, ["terms", "check", str(CANCER)])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "data completeness at least 95.0%" in text and "equity_gap at most 10.0%" in text
    assert "{'" not in text and "2017-04-01 to 2027-03-31" in text


def test_a_decision_without_who_records_the_os_user_and_says_so(tmp_path: Path) -> None:
    import getpass

    log = tmp_path / "d.jsonl"
    result = runner.invoke(
        app, ["decisions", "add", str(CANCER), "--kind", "business_case", "--text", "x", "--log", str(log)]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["who"] == getpass.getuser()
    assert "no --who given" in result.stderr and getpass.getuser() in result.stderr


def test_report_to_a_missing_folder_is_one_line_before_any_work(tmp_path: Path, paid_store: Path) -> None:
    out = tmp_path / "nowhere" / "r.html"
    result = runner.invoke(app, ["report", str(CANCER), "--store", str(paid_store), "--out", str(out)])
    assert result.exit_code == 2
    assert f"the folder {out.parent} does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_second_serve_on_a_busy_port_fails_before_the_banner(tmp_path: Path, paid_store: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            app, ["serve", str(CANCER), "--store", str(paid_store), "--port", str(port), "--tokens", "t.json"]
        )
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Dashboard" not in result.stdout and "Tokens" not in result.stdout


def test_a_key_file_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", [VALID_ROW])
    (tmp_path / "keys").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CARECONTRACT_KEY"}
    env["CARECONTRACT_KEY_FILE"] = str(tmp_path / "keys")
    proc = subprocess.run(
        [sys.executable, "-m", "carecontract.cli", "ingest", str(src), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "keys" in _one_line(proc)


def test_a_repeated_by_keeps_every_breakdown(paid_store: Path) -> None:
    period = ["--from", "2018-04-01", "--to", "2019-03-31", "--only", "cwt_62", "--json"]
    both = runner.invoke(
        app, ["measures", "--store", str(paid_store), *period, "--by", "provider", "--by", "commissioner"]
    )
    assert both.exit_code == 0, both.output
    rows = json.loads(both.stdout)
    assert rows and all("provider" in r and "commissioner" in r for r in rows)
    comma = runner.invoke(app, ["measures", "--store", str(paid_store), *period, "--by", "provider,commissioner"])
    assert json.loads(comma.stdout) == rows


# -- 8. an 80-column terminal -------------------------------------------------------------------
def test_at_80_columns_no_figure_is_cut(paid_store: Path, tmp_path: Path) -> None:
    period = ["--from", "2018-04-01", "--to", "2019-03-31"]
    proc = _cli("measures", "--store", str(paid_store), *period, "--by", "provider", cwd=tmp_path, columns=80)
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    rows = json.loads(
        _cli("measures", "--store", str(paid_store), *period, "--by", "provider", "--json", cwd=tmp_path).stdout
    )
    lines = proc.stdout.splitlines()
    for r in rows:  # each row's counts appear whole on one line of the table
        if r["denominator"] and r["measure"] != "patient_experience" and r["measure"] != "equity_gap":
            counts = f"{r['numerator']:,} / {r['denominator']:,}"
            assert any(counts in line and r["provider"] in line for line in lines), counts
    if "usual_pod" in proc.stdout:
        assert "usual_pod = usual_place_of_death" in " ".join(proc.stdout.split())
    for measure in {r["measure"] for r in rows}:  # every measure's name (or its short name) on one line
        assert any(SHORT_NAMES.get(measure, measure) in line for line in lines), measure


# -- 10. housekeeping ---------------------------------------------------------------------------
def test_help_shows_no_python_annotations() -> None:
    group = typer.main.get_command(app)
    odd = re.compile(r"<(bool|str|int|float|path)>|list\[", re.I)

    def commands(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from commands(sub, [*path, name])

    for path in commands(group, []):
        text = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"}).stdout
        assert not odd.search(text), (path, odd.search(text))


def test_stress_charts_are_ignored_by_git() -> None:
    assert "stress-charts/" in (ROOT / ".gitignore").read_text().splitlines()


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(st.text("abcdefghij_", min_size=1, max_size=30), min_size=1, max_size=3),
    figures=st.lists(st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=4), min_size=1, max_size=6),
    width=st.integers(60, 120),
)
def test_a_table_never_cuts_a_figure_that_can_fit(names: list[str], figures: list[list[int]], width: int) -> None:
    """Property: whenever the figures alone fit the terminal, every figure is printed whole on its row."""
    from rich.console import Console

    from carecontract.present import table

    columns = len(figures[0])
    rows = [[f"{v:,}" for v in (row + [0] * columns)[:columns]] for row in figures]
    needed = sum(max(len(r[i]) for r in rows) + 3 for i in range(columns)) + 3 * len(names) + 3 * len(names)
    if needed > width:
        return  # no layout can show them all: not this property's case
    out = table(
        "t",
        [*[f"name {i}" for i in range(len(names))], *[f"a long heading {i}" for i in range(columns)]],
        left=tuple(f"name {i}" for i in range(len(names))),
    )
    for row in rows:
        out.add_row(*names, *row)
    console = Console(width=width, record=True, color_system=None)
    console.print(out)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    for row in rows:  # each row's figures, in order, on one line
        assert any(all(f" {cell} " in line for cell in row) for line in lines), (row, lines)


def test_pay_and_stress_tables_keep_their_figures_at_80_columns(paid_store: Path, tmp_path: Path) -> None:
    paid_store = Path(shutil.copytree(paid_store, tmp_path / "store"))  # pay posts: never into the shared store
    paid = _cli("pay", str(CANCER), "--store", str(paid_store), cwd=tmp_path, columns=80)
    assert paid.returncode == 0, paid.stderr
    years = json.loads(_cli("pay", str(CANCER), "--store", str(paid_store), "--json", cwd=tmp_path).stdout)
    for entry in years["periods"]:
        paid_m = f"{entry['result']['paid_by_commissioners_pence'] / 1e8:,.2f}"
        assert any(paid_m in line for line in paid.stdout.splitlines()), paid_m
    stress = _cli(
        "stress", str(UNITINGCARE), "--runs", "300", "--charts", str(tmp_path / "c"), cwd=tmp_path, columns=80
    )
    assert stress.returncode == 0, stress.stderr
    summary = json.loads(
        _cli(
            "stress", str(UNITINGCARE), "--runs", "300", "--charts", str(tmp_path / "c"), "--json", cwd=tmp_path
        ).stdout
    )
    lines = stress.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for y in summary["by_year"]:
        cells = [str(y["year"]), f"{y['cumulative_p50_gbp'] / 1e6:,.1f}", f"{y['cumulative_p90_gbp'] / 1e6:,.1f}"]
        assert any(all(c in line for c in cells) for line in lines), cells


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("value.profile=flat", f"unitingcare.yaml:{VALUE_LINE}: value: give either profile"),
        ("stages.0.max_years=3", "--set stages.0.max_years=3: stages[0].max_years: 'max_years' is not a key"),
    ],
)
def test_what_ifs_are_named_in_the_errors_they_cause(override: str, expected: str) -> None:
    result = runner.invoke(app, ["terms", "check", str(UNITINGCARE), "--set", override])
    assert result.exit_code == 2 and expected in result.stderr, result.stderr
    assert override.split("=")[0] in result.stderr and "did you mean" not in result.stderr
