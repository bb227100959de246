"""NHS number check digit (modulus 11), in Python and as a SQL expression.

The NHS number is ten digits; the tenth is a check digit computed from the first nine with
weights 10 down to 2: ``11 - (sum mod 11)``, where 11 becomes 0 and 10 means the number is
invalid. The SQL twin lets DuckDB (or Spark) validate millions of rows without a Python loop;
the tests hold the two to the same answers.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = tuple(range(10, 1, -1))  # 10, 9, ..., 2


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None if no valid number starts with them."""
    total = sum(int(d) * w for d, w in zip(first_nine, WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def is_valid(number: str) -> bool:
    """True if ``number`` is exactly ten digits with a correct modulus-11 check digit."""
    if len(number) != 10 or not number.isascii() or not number.isdigit():
        return False
    return check_digit(number[:9]) == int(number[9])


def check_digits(first_nine: np.ndarray) -> np.ndarray:
    """Vectorised check digits for an array of 9-digit integers; -1 where no valid number exists."""
    total = np.zeros(first_nine.shape, dtype=np.int64)
    rest = first_nine.astype(np.int64)
    for weight in range(2, 11):  # least significant digit has weight 2
        total += (rest % 10) * weight
        rest //= 10
    digit = 11 - total % 11
    digit = np.where(digit == 11, 0, digit)
    return np.where(digit == 10, -1, digit)


def valid_sql(column: str) -> str:
    """A SQL boolean expression: the column is ten digits with a valid modulus-11 check digit."""
    total = " + ".join(f"{w} * TRY_CAST(substr({column}, {i + 1}, 1) AS INTEGER)" for i, w in enumerate(WEIGHTS))
    check = f"(11 - (({total}) % 11))"
    return (
        f"(regexp_full_match({column}, '[0-9]{{10}}') AND "
        f"(CASE WHEN {check} = 11 THEN 0 ELSE {check} END) = TRY_CAST(substr({column}, 10, 1) AS INTEGER))"
    )
