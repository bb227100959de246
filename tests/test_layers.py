"""The layers point one way (ARCHITECTURE.md): import-linter checks the contract in pyproject.toml.

A second test makes sure the contract cannot go stale: every module and package directly under
``carecontract`` must sit in one of its layers, so a new package is placed on purpose.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "src" / "carecontract"


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return contract["layers"]


def test_imports_only_point_down() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_every_top_level_module_has_a_layer() -> None:
    placed = {name.strip().removeprefix("carecontract.") for layer in _layers() for name in layer.split("|")}
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    present |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert present == placed, f"not in a layer: {sorted(present - placed)}; gone: {sorted(placed - present)}"
