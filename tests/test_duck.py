"""Every DuckDB database the program opens has a bounded memory and a spill folder of its own."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from carecontract import engine
from carecontract.errors import UserError
from carecontract.records import duck

SRC = Path(__file__).parent.parent / "src" / "carecontract"


def _setting(con, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def test_default_limit_is_a_fraction_of_physical_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(duck.MEMORY_ENV, raising=False)
    mib = int(duck.memory_limit().removesuffix("MiB"))
    assert mib == int(duck.physical_memory() * duck.DEFAULT_FRACTION) // 2**20
    assert mib * 2**20 < duck.physical_memory() / 2  # DuckDB's own default (80%) is not used


def test_limit_and_spill_folder_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(duck.MEMORY_ENV, "300MB")
    monkeypatch.setenv(duck.TEMP_ENV, str(tmp_path / "spill"))
    first, second = duck.connect(), duck.connect()
    try:
        assert _setting(first, "memory_limit") == "286.1 MiB"  # DuckDB shows 300 MB in MiB
        folders = {Path(_setting(c, "temp_directory")) for c in (first, second)}
        assert len(folders) == 2  # never shared: DuckDB databases sharing one overwrite each other's spill
        assert all(f.parent == tmp_path / "spill" for f in folders)
    finally:
        first.close()
        second.close()


def test_a_query_larger_than_the_limit_spills_and_completes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(duck.MEMORY_ENV, "64MB")
    monkeypatch.setenv(duck.TEMP_ENV, str(tmp_path))
    con = duck.connect()
    try:
        con.execute("SET threads = 1")
        # ~200 MB of sort keys under a 64 MB limit: only completes by spilling
        n = 6_000_000
        rows = con.execute(
            f"SELECT count(*), count(DISTINCT h) FROM (SELECT hash(i) AS h, i FROM range({n}) t(i) ORDER BY h)"
        ).fetchone()
        assert rows[0] == n
    finally:
        con.close()


@pytest.mark.parametrize("value", ["lots", "12XB", "-1GB"])
def test_a_bad_setting_is_a_one_line_user_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(duck.MEMORY_ENV, value)
    with pytest.raises(UserError, match=duck.MEMORY_ENV):
        duck.connect()


def test_the_ibis_backend_gets_the_same_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(duck.MEMORY_ENV, "300MB")
    monkeypatch.setenv(duck.TEMP_ENV, str(tmp_path))
    con = engine.backend("duckdb")
    (limit, spill) = con.raw_sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert limit == "286.1 MiB"
    assert Path(spill).parent == tmp_path


def test_no_duckdb_database_is_opened_anywhere_else() -> None:
    """Every connection goes through records.duck, so none escapes the limit."""
    opened = re.compile(r"\bduckdb\.connect\(|ibis\.duckdb\.connect\(|\bduckdb\.(sql|execute|query)\(")
    found = [
        f"{p.relative_to(SRC)}:{n}"
        for p in SRC.rglob("*.py")
        if p.name != "duck.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if opened.search(line) and "duck.settings()" not in line
    ]
    assert not found, found


def test_spill_folders_of_dead_processes_are_swept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])  # a pid that has certainly exited (and been reaped)
    gone.wait()
    left = tmp_path / f"{gone.pid}-0"
    (left / "x").mkdir(parents=True)
    (left / "x" / "duckdb_temp_storage-0.tmp").write_bytes(b"spilled")
    mine = tmp_path / f"{os.getpid()}-999"
    mine.mkdir()
    other = tmp_path / "notes"
    other.mkdir()
    monkeypatch.setenv(duck.TEMP_ENV, str(tmp_path))
    duck.connect().close()
    assert not left.exists()
    assert mine.exists() and other.exists()
