"""`carecontract import KIND FILE... --store S` and `synth --format cwt|cosd`: user mistakes are one line
(exit 2), results print, --json is machine-readable, and the Python API does the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import carecontract as cc
from carecontract.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).parent.parent / "examples" / "national"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hes", "x.csv"], "error: unknown import kind 'hes': one of cwt, cosd"),
        (["cwt", "missing.csv"], "missing.csv: no such file"),
        (["cwt", str(EXAMPLES / "cosd" / "cosd-core-extract.csv")], "not a CWT (CWT v12.1) extract: the header lacks"),
    ],
)
def test_user_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["import", *args, "--store", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_import_prints_what_became_of_every_record(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["import", "cwt", str(EXAMPLES / "cwt" / "cwt-extract.csv"), "--store", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert "6 source records: 5 mapped to 22 events, 1 rejected" in " ".join(result.output.split())
    assert "1 rejected for CANCER TREATMENT MODALITY" in result.output


def test_synth_format_then_import_json(tmp_path: Path) -> None:
    out = runner.invoke(
        app,
        [
            "synth",
            "--out",
            str(tmp_path / "d"),
            "--population",
            "5000",
            "--years",
            "1",
            "--start",
            "2023-04-01",
            "--format",
            "cosd",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    (file,) = json.loads(out.output)["files"]
    lines = len(Path(file).read_text().splitlines()) - 1
    imported = runner.invoke(app, ["import", "cosd", file, "--store", str(tmp_path / "s"), "--json"])
    summary = json.loads(imported.output)
    assert summary["records"] == lines == summary["mapped"] + summary["rejected"]
    assert summary["ingest"]["read"] == summary["events"] == summary["ingest"]["accepted"]


def test_python_api(tmp_path: Path) -> None:
    files = cc.synthesise(tmp_path / "d", population=5000, years=1, start="2023-04-01", fmt="cwt")
    result = cc.import_files("cwt", files, tmp_path / "s")
    assert isinstance(result, cc.ImportResult)
    assert result.records == len(files[0].read_text().splitlines()) - 1 == result.mapped
