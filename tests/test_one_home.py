"""One home for each fact, and code a formatter can be trusted with (issue 13).

Each check reads the source, so a copy that creeps back in fails here rather than drifting.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from carecontract.measures.definitions import HIGHER_IS_BETTER, MEASURE_IDS
from carecontract.records import validation
from carecontract.synth.errors import ERROR_KINDS
from carecontract.terms.model import MEASURES

ROOT = Path(__file__).parent.parent
SOURCES = sorted((ROOT / "src" / "carecontract").rglob("*.py"))


def _python(name: str) -> Path:
    return Path(sys.executable).parent / name


def test_ruff_format_and_check_are_clean_with_no_skips() -> None:
    ruff = [str(_python("ruff"))]
    paths = ["src", "tests", "benchmarks"]
    formatted = subprocess.run([*ruff, "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    checked = subprocess.run([*ruff, "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    skips = [str(p) for d in paths for p in (ROOT / d).rglob("*.py") if "fmt: " + "skip" in p.read_text()]
    assert not skips


def test_ledger_account_names_are_spelled_only_in_payments_accounts() -> None:
    spelled = re.compile(r"""["'](commissioner|prime|management|subcontractor):|["']hmrc:vat["']""")
    copies = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in SOURCES
        if p.name != "accounts.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert not copies, copies


def test_measure_ids_and_directions_have_one_home() -> None:
    assert MEASURES is HIGHER_IS_BETTER
    assert tuple(HIGHER_IS_BETTER) == MEASURE_IDS
    listed = re.compile(r"""["']cwt_62["']\s*,\s*["'](fds_28|cwt_31)["']\s*,""")
    copies = [str(p.relative_to(ROOT)) for p in SOURCES if listed.search(p.read_text())]
    assert not copies, f"a second list of measure ids: {copies}"


def test_reasons_are_spelled_once() -> None:
    known = {r.reason for r in validation.all_rules()}
    assert {reason for reason, _ in ERROR_KINDS.values()} <= known
    cross = [r.reason for r in (*validation.CROSS_ROW_RULES, *validation.READ_RULES)]
    copies = [
        f"{p.relative_to(ROOT)}: {reason}"
        for p in SOURCES
        if p.name != "validation.py"
        for reason in cross
        if re.search(rf"""["']{reason}["']""", p.read_text())
    ]
    assert not copies, copies


def test_the_package_and_the_api_export_the_same_names() -> None:
    """``carecontract/__init__`` lists them so importing the package stays light; ``api`` must agree."""
    import carecontract
    import carecontract.api

    assert list(carecontract.api.__all__) == list(carecontract.__all__)
