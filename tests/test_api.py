"""The public Python API is what the README says it is: its example runs, and every name it shows exists."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

import carecontract
from carecontract.cli import app

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
USING_IT = README.split("## Using it", 1)[1].split("\n## ", 1)[0]


def _block(language: str) -> str:
    (block,) = re.findall(rf"```{language}\n(.*?)\n```", USING_IT, re.S)
    return block


def test_every_public_name_is_a_function_or_class_not_a_subpackage() -> None:
    importlib.import_module("carecontract.measures.compute")  # subpackages set attributes of the package
    for name in carecontract.__all__:
        value = getattr(carecontract, name)
        assert not isinstance(value, ModuleType), name
        assert callable(value), name
    assert set(carecontract.__all__) <= set(dir(carecontract))


def test_every_name_the_readme_shows_is_exported() -> None:
    block = _block("python")
    shown = set(re.findall(r"\bcc\.(\w+)\(", block))
    assert shown >= {"synthesise", "ingest", "quality", "compute_measures", "load_terms", "pay", "stress", "report"}
    assert shown <= set(carecontract.__all__), shown - set(carecontract.__all__)
    for line in block.splitlines():
        if m := re.match(r"from (carecontract[\w.]*) import (.+)", line):
            module = importlib.import_module(m.group(1))
            for name in m.group(2).split(","):
                assert hasattr(module, name.strip()), line


def test_importing_carecontract_stays_light() -> None:
    code = "import sys, carecontract; print(sorted(m for m in sys.modules if m.startswith(('duckdb', 'ibis'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_command_the_readme_shows_exists() -> None:
    runner = CliRunner()
    for line in _block("bash").splitlines():
        words = line.split("#", 1)[0].split()
        assert words[0] == "carecontract", line
        path = words[1:3] if words[1] in ("terms", "decisions") else words[1:2]
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (line, result.output)


@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the README's block as written (100,000 people, a few seconds), in a scratch directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CARECONTRACT_KEY", "readme-test-key-of-at-least-32-bytes")
    (tmp_path / "contracts").symlink_to(ROOT / "contracts")
    namespace: dict = {}
    exec(compile(_block("python"), "README.md", "exec"), namespace)
    result, run, risk = namespace["result"], namespace["run"], namespace["risk"]
    assert result.read == result.accepted + result.quarantined and result.quarantined > 0
    early = namespace["early"]
    assert len(early) > 0 and set(early["measure"]) == {"early_stage"}
    assert early["target"].notna().all() and early["rate"].between(0, 1).all()  # targets from the terms
    assert run.years == [2022, 2023, 2024]  # cc.pay posts through the calendar, as `carecontract pay`
    ledger = run.ledger()
    assert run.balanced and int(ledger["pence"].sum()) == 0 and set(ledger["period"]) == {2022, 2023, 2024}
    assert "on_account" in set(ledger["rule"]) and any(e["key"] == "reconciliation:2024:1" for e in run.entries)
    assert 0 <= risk["deficit_probability"] <= 1 and "_cumulative" not in risk
    assert (tmp_path / "report.html").stat().st_size > 1_000_000


def test_the_library_steps_behind_the_commands() -> None:
    """What the CLI once computed inline: cost by year, which years to pay, the activity window."""
    from datetime import date

    from carecontract.baseline.compute import totals_by_year
    from carecontract.errors import UserError
    from carecontract.payments.close import NothingToPay, payable_years
    from carecontract.synth.window import check_activity_window

    rows = [
        {"year": 2025, "events": 2, "cost_gbp": 10.0},
        {"year": 2024, "events": 1, "cost_gbp": 5.5},
        {"year": 2025, "events": 3, "cost_gbp": 1.0},
    ]
    assert totals_by_year(rows) == {2024: (1, 5.5), 2025: (5, 11.0)}
    contract = carecontract.load_terms(ROOT / "contracts" / "staffordshire-cancer.yaml").contract
    assert payable_years(contract, carecontract.Store("unused"), [2018, 2019]) == [2018, 2019]
    with pytest.raises(NothingToPay, match=r"no contract year starting in \[2030\]"):
        payable_years(contract, carecontract.Store("unused"), [2018, 2030])
    check_activity_window(date(2020, 4, 1), 3, today=date(2023, 4, 1))
    with pytest.raises(UserError, match="use at most 3 year"):
        check_activity_window(date(2020, 4, 1), 4, today=date(2023, 6, 1))


def test_viability_questions_from_a_notebook() -> None:
    """The waterfall adds up to its total, the break-even table has a row per lever, and a funded
    option is never riskier than the terms as written (same draws)."""
    from carecontract.terms import load_terms

    terms = "contracts/unitingcare.yaml"
    root = Path(__file__).resolve().parents[1]
    gaps = carecontract.waterfall(root / terms, runs=400)
    parts = gaps[~gaps["cause"].isin(["total"])]["gbp"].sum()
    assert parts == pytest.approx(gaps.set_index("cause").loc["total", "gbp"], abs=0.02)
    assert gaps.attrs["method"] == "shapley"
    levers = carecontract.break_even(root / terms, runs=400)
    assert len(levers) >= 5 and "lever" in levers.columns
    funded = load_terms(root / terms, overrides=["payments.fund_demand_growth=true"])
    table = carecontract.options({"as written": root / terms, "funded": funded}, runs=400)
    probability = table.set_index("label")["deficit_probability"]
    assert probability["funded"] <= probability["as written"]
