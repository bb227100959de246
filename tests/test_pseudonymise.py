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
    got = duckdb.execute(f"SELECT {sql}", {"n": number, "opad": key.outer_pad, "ipad": key.inner_pad}).fetchone()[0]
    assert got == pseudonymise.pseudonym(key, number)


def test_long_keys_are_hashed_first_as_hmac_requires() -> None:
    key = pseudonymise.PseudonymKey(b"k" * 100)
    sql = pseudonymise.pseudonym_sql("'9434765919'")
    got = duckdb.execute(f"SELECT {sql}", {"opad": key.outer_pad, "ipad": key.inner_pad}).fetchone()[0]
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
    monkeypatch.setenv("CARECONTRACT_KEY", "another-key")
    with pytest.raises(StoreError, match="different pseudonymisation key"):
        ingest([src], tmp_path / "store")
