"""Contract terms: the shipped contracts, precise errors, dated parameters, what-ifs, round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from carecontract.records.schema import TUMOUR_SITE_NAMES
from carecontract.terms import TermsError, dump_terms, load_terms

ROOT = Path(__file__).parent.parent
CONTRACTS = sorted((ROOT / "contracts").glob("*.yaml"))
CANCER = ROOT / "contracts" / "staffordshire-cancer.yaml"


def test_three_contracts_ship() -> None:
    assert {p.name for p in CONTRACTS} == {"staffordshire-cancer.yaml", "staffordshire-eol.yaml", "unitingcare.yaml"}


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda p: p.stem)
def test_contract_loads_and_value_per_year_sums_to_total(path: Path) -> None:
    c = load_terms(path).contract
    per_year = c.value_per_year()
    assert len(per_year) == c.term.years
    assert sum(per_year.values()) == c.value.total_gbp


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda p: p.stem)
def test_round_trip_is_identical(path: Path, tmp_path: Path) -> None:
    first = load_terms(path).contract
    dumped = tmp_path / "again.yaml"
    dumped.write_text(dump_terms(first))
    second = load_terms(dumped).contract
    assert second == first
    assert dump_terms(second) == dump_terms(first)


def test_staffordshire_cancer_scope_and_figures() -> None:
    c = load_terms(CANCER).contract
    assert c.scope_at(date(2017, 4, 1)) == ["bladder", "lung", "prostate", "breast"]
    assert c.scope_at(date(2021, 3, 31)) == ["bladder", "lung", "prostate", "breast"]  # year 4
    assert c.scope_at(date(2021, 4, 1)) == list(TUMOUR_SITE_NAMES)  # year 5
    assert c.value.total_gbp == Decimal(687_000_000)
    assert [s.kind for s in c.stages] == ["fee", "outcomes"] and c.stages[0].max_years == 2
    assert {x.code for x in c.commissioners} == {"05D", "05G", "05V", "05W"}


def test_unitingcare_first_year_is_the_public_figure() -> None:
    c = load_terms(ROOT / "contracts" / "unitingcare.yaml").contract
    assert c.value_per_year()[2015] == Decimal(152_000_000)
    assert c.value.total_gbp == Decimal(726_000_000)


def test_flat_profile_keeps_every_penny(tmp_path: Path) -> None:
    path = _variant(tmp_path, lambda d: d["value"].update(total_gbp=100_000_001))
    per_year = load_terms(path).contract.value_per_year()
    assert sum(per_year.values()) == Decimal(100_000_001)


# -- dated parameters --------------------------------------------------------------------------
def test_parameters_resolve_by_date_at_the_boundaries(tmp_path: Path) -> None:
    path = _variant(
        tmp_path, lambda d: d["parameters"].update(cost_inflation={2017: 0.02, date(2019, 1, 15): 0.03, 2020: 0.04})
    )
    c = load_terms(path).contract
    assert c.parameter("cost_inflation", date(2017, 4, 1)) == 0.02  # first day of the entry
    assert c.parameter("cost_inflation", date(2019, 1, 14)) == 0.02  # the day before a change
    assert c.parameter("cost_inflation", date(2019, 1, 15)) == 0.03  # the day of the change
    assert c.parameter("cost_inflation", date(2020, 3, 31)) == 0.03  # a bare year starts on the contract's start day
    assert c.parameter("cost_inflation", date(2020, 4, 1)) == 0.04
    assert c.parameter("cost_inflation", date(2099, 1, 1)) == 0.04
    with pytest.raises(KeyError, match="no value on 2017-03-31"):
        c.parameter("cost_inflation", date(2017, 3, 31))
    with pytest.raises(KeyError, match="did you mean 'cost_inflation'"):
        c.parameter("cost_inflaton", date(2018, 1, 1))


# -- what-ifs ----------------------------------------------------------------------------------
def test_set_overrides_a_parameter_and_is_recorded() -> None:
    base = load_terms(CANCER)
    what_if = load_terms(CANCER, ["demand_growth=0.05"])
    assert what_if.contract.parameter("demand_growth", date(2024, 6, 1)) == 0.05
    assert base.contract.parameter("demand_growth", date(2024, 6, 1)) == 0.0096
    assert what_if.provenance()["overrides"] == ["demand_growth=0.05"]
    assert what_if.fingerprint != base.fingerprint


def test_set_overrides_any_term_by_dotted_path() -> None:
    t = load_terms(CANCER, ["stages.1.at_risk_share=0.25", "value.total_gbp=700000000"])
    assert t.contract.stages[1].at_risk_share == 0.25
    assert sum(t.contract.value_per_year().values()) == Decimal(700_000_000)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("demand_grwth=0.1", "did you mean 'demand_growth'"),
        ("vat_rate=2", "outside 0.0–1.0"),
        ("stages.1.at_risk_share=1.5", "stages[1].at_risk_share: Input should be less than or equal to 1"),
        ("nonsense", "expected name=value"),
        ("stages.7.at_risk_share=0.1", "has no '7'"),
    ],
)
def test_bad_overrides_are_precise(override: str, expected: str) -> None:
    with pytest.raises(TermsError) as info:
        load_terms(CANCER, [override])
    assert expected in str(info.value)


# -- precise errors ----------------------------------------------------------------------------
def _variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(CANCER.read_text())
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _error(path: Path) -> str:
    with pytest.raises(TermsError) as info:
        load_terms(path)
    return str(info.value)


def test_misspelt_key_points_at_its_line_and_suggests(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(CANCER.read_text().replace("subcontractors:", "subcontracters:", 1))
    message = _error(path)
    assert message.startswith(f"{path}:{_line_of(path, 'subcontracters:')}: subcontracters: unknown key")
    assert "did you mean 'subcontractors'" in message


def test_bad_stage_kind_lists_the_valid_kinds(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(CANCER.read_text().replace("kind: outcomes", "kind: outcome", 1))
    message = _error(path)
    assert f"{path}:{_line_of(path, 'name: stage2')}: stages[1]:" in message
    assert "'fee', 'outcomes'" in message


def test_out_of_range_value_names_line_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(CANCER.read_text().replace("at_risk_share: 0.10", "at_risk_share: 1.10", 1))
    assert _error(path) == (
        f"{path}:{_line_of(path, 'at_risk_share: 1.10')}: stages[1].at_risk_share: "
        "Input should be less than or equal to 1 (got 1.1)"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["commissioners"][0].update(share=0.5), "commissioners' shares add up to 1.33, not 1"),
        (lambda d: d["scope"].update({2017: ["lungs"]}), "unknown tumour site 'lungs'; did you mean 'lung'?"),
        (
            lambda d: d["outcomes"][0].update(measure="cwt62"),
            "outcomes[0].measure: unknown measure 'cwt62'; did you mean 'cwt_62'?",
        ),
        (lambda d: d["outcomes"][0].update(weight=0.5), "outcome weights add up to 1.3, not 1"),
        (lambda d: d["parameters"].update(demand_grwth={2017: 0.1}), "did you mean 'demand_growth'"),
        (lambda d: d["term"].update(start="April 2017"), "term.start: Input should be a valid date"),
        (lambda d: d.pop("term"), "term: Field required"),
        (lambda d: d["value"].update(profile=None, by_year={2017: 1}), "value.by_year must list each contract year"),
        (lambda d: d["payments"]["vat"].update(RJX="recoverable"), "did you mean 'RJE'"),
        (lambda d: d["stages"][0].update(max_years=10), "lasts as long as the contract"),
        (lambda d: d["stages"].reverse(), "must be a fee stage with a gate"),
        (lambda d: d["payments"]["vat"].update(RJE="reclaimable"), "'recoverable', 'irrecoverable' or 'exempt'"),
    ],
)
def test_each_kind_of_invalid_file_is_precise(tmp_path: Path, change, expected: str) -> None:
    message = _error(_variant(tmp_path, change))
    assert expected in message
    assert message.startswith(str(tmp_path / "variant.yaml") + ":")


def test_broken_yaml_gives_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("name: x\ncommissioners: [\n  {code: 05D\nterm: 1\n")
    assert _error(path).startswith(f"{path}:")
    assert "not valid YAML" in _error(path)


def test_impossible_date_gives_its_line_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(CANCER.read_text().replace("start: 2017-04-01", "start: 2017-13-01"))
    message = _error(path)
    assert message.startswith(f"{path}:{_line_of(path, '2017-13-01')}:") and "not a real date" in message
    with pytest.raises(TermsError, match="cannot read the value"):
        load_terms(CANCER, ["term.start=2017-02-30"])


def test_problems_are_listed_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    text = CANCER.read_text().replace("subcontractors:", "subcontracters:", 1).replace("kind: outcomes", "kind: x")
    path.write_text(text)
    lines = [int(p.split(":")[1]) for p in _error(path).splitlines()]
    assert lines == sorted(lines) and len(lines) >= 2


def test_cli_check_and_show(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True)

    ok = cli("terms", "check", str(CANCER), "--json", "--set", "demand_growth=0.02")
    summary = json.loads(ok.stdout)
    assert summary["overrides"] == ["demand_growth=0.02"]
    assert summary["scope_by_year"]["2017"] == ["bladder", "lung", "prostate", "breast"]
    assert len(summary["scope_by_year"]["2021"]) == len(TUMOUR_SITE_NAMES)
    shown = json.loads(cli("terms", "show", str(CANCER), "--at", "2020-01-01", "--json").stdout)
    assert shown["parameters"]["vat_rate"] == 0.2
    bad = tmp_path / "bad.yaml"
    bad.write_text(CANCER.read_text().replace("years: 10", "years: ten"))
    failed = cli("terms", "check", str(bad))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert f"{bad}:{_line_of(bad, 'years: ten')}: term.years:" in failed.stderr


def test_the_annotated_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "terms.md").read_text()
    example = text.split("## A complete annotated example", 1)[1].split("```yaml\n", 1)[1].split("\n```", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    c = load_terms(path).contract
    assert c.parameter("demand_growth", date(2029, 12, 31)) == 0.01
    assert c.parameter("demand_growth", date(2030, 1, 1)) == 0.02
    assert c.scope_at(date(2031, 4, 1)) == list(TUMOUR_SITE_NAMES)
    assert c.risks.vat_exposed_share.central == 0.5 and c.risks.demand_growth.uncertain
    documented = set(text.split("## Reference", 1)[1].split("## Checks", 1)[0].replace("`", " ").split())
    from carecontract.terms.model import MEASURES
    from carecontract.terms.parameters import PARAMETERS

    assert set(MEASURES) <= {w.strip(",.()") for w in documented}
    assert set(PARAMETERS) <= {w.strip(",.()") for w in documented}
