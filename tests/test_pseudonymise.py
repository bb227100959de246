"""Keyed pseudonyms: the SQL HMAC equals Python's, keys come from env or a private file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecontract.records import pseudonymise
from carecontract.records.ingest import ingest
from carecontract.records.store import StoreError
from tests.conftest import VALID_ROW, write_csv


@given(st.text(min_size=1, max_size=20), st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_sql_hmac_equals_python_hmac(secret: str, number: str) -> None:
    key = pseudonymise.PseudonymKey(secret.encode())
    sql = pseudonymise.pseudonym_sql("$n")
    got = duckdb.execute(f"SELECT {sql}", {"n": number, "opad": key.outer_pad, "ipad": key.inner_pad}).fetchall()[0][0]
    assert got == pseudonymise.pseudonym(key, number)


def test_long_keys_are_hashed_first_as_hmac_requires() -> None:
    key = pseudonymise.PseudonymKey(b"k" * 100)
    sql = pseudonymise.pseudonym_sql("'9434765919'")
    got = duckdb.execute(f"SELECT {sql}", {"opad": key.outer_pad, "ipad": key.inner_pad}).fetchall()[0][0]
    assert got == pseudonymise.pseudonym(key, "9434765919")


def test_key_file_is_created_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARECONTRACT_KEY")
    path = tmp_path / "sub" / "key"
    monkeypatch.setenv("CARECONTRACT_KEY_FILE", str(path))
    first = pseudonymise.load_key()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert pseudonymise.load_key() == first
    assert len(first.secret) == 64


def test_store_refuses_a_different_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_csv(tmp_path / "a.csv", [VALID_ROW])
    ingest([src], tmp_path / "store")
    monkeypatch.setenv("CARECONTRACT_KEY", "another-key-also-of-thirty-two-bytes")
    with pytest.raises(StoreError, match="different pseudonymisation key"):
        ingest([src], tmp_path / "store")


@pytest.mark.parametrize("content", ["", "   \n", "short-key", "x" * 31])
def test_a_short_or_empty_key_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    """An empty key makes every pseudonym a keyless HMAC anyone can recompute from an NHS number."""
    monkeypatch.delenv("CARECONTRACT_KEY")
    path = tmp_path / "key"
    path.write_text(content)
    monkeypatch.setenv("CARECONTRACT_KEY_FILE", str(path))
    with pytest.raises(pseudonymise.PseudonymKeyError, match="at least 32") as caught:
        pseudonymise.load_key()
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_short_key_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARECONTRACT_KEY", "k" * 31)
    with pytest.raises(pseudonymise.PseudonymKeyError, match="31 bytes"):
        pseudonymise.load_key()
    monkeypatch.setenv("CARECONTRACT_KEY", "k" * 32)
    assert pseudonymise.load_key().secret == b"k" * 32


def test_a_key_file_that_is_a_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARECONTRACT_KEY")
    monkeypatch.setenv("CARECONTRACT_KEY_FILE", str(tmp_path))
    with pytest.raises(pseudonymise.PseudonymKeyError, match="is a directory"):
        pseudonymise.load_key()


def test_the_cli_says_one_line_for_a_directory_key_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    src = write_csv(tmp_path / "a.csv", [VALID_ROW])
    env = {k: v for k, v in os.environ.items() if k != "CARECONTRACT_KEY"} | {"CARECONTRACT_KEY_FILE": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "carecontract.cli", "ingest", str(src), "--store", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "is a directory" in done.stderr
