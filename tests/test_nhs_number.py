"""Modulus-11: Python, NumPy and SQL versions against known numbers and each other."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.records import nhs_number

VALID = ["9434765919", "4010232137", "9876543210", "9990000018"]
INVALID = [
    "9434765918",  # wrong check digit
    "1234567890",  # check digit would be 10: no valid number starts 123456789
    "943476591",  # nine digits
    "94347659190",  # eleven digits
    "94347659a9",  # a letter
    "",
]


@pytest.mark.parametrize("number", VALID)
def test_known_valid_numbers(number: str) -> None:
    assert nhs_number.is_valid(number)


@pytest.mark.parametrize("number", INVALID)
def test_known_invalid_numbers(number: str) -> None:
    assert not nhs_number.is_valid(number)


def test_check_digit_ten_means_no_valid_number() -> None:
    assert nhs_number.check_digit("123456789") is None
    assert nhs_number.check_digit("943476591") == 9


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789a -", min_size=0, max_size=12))
def test_sql_agrees_with_python(text: str) -> None:
    got = duckdb.execute(f"SELECT coalesce({nhs_number.valid_sql('$n')}, false)", {"n": text}).fetchall()[0][0]
    assert got == nhs_number.is_valid(text)


@given(st.lists(st.integers(100_000_000, 999_999_999), min_size=1, max_size=50))
def test_vectorised_check_digits_agree(prefixes: list[int]) -> None:
    digits = nhs_number.check_digits(np.array(prefixes))
    for prefix, digit in zip(prefixes, digits, strict=True):
        expected = nhs_number.check_digit(str(prefix))
        assert digit == (-1 if expected is None else expected)
