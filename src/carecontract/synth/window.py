"""The window of synthetic activity: it may not run past today.

Ingest quarantines events dated in the future, so a synthetic economy that ran past today would
arrive with its last months quarantined: the CLI and the API refuse such a window up front.
"""

from __future__ import annotations

from datetime import date

from carecontract.errors import UserError


class FutureActivity(UserError):
    """Synthetic activity asked for dates after today, which ingest would quarantine."""


def whole_years_since(first: date, today: date | None = None) -> int:
    """Whole years from ``first`` to today."""
    today = today or date.today()
    return today.year - first.year - (1 if (today.month, today.day) < (first.month, first.day) else 0)


def check_activity_window(first: date, years: int, today: date | None = None) -> None:
    """Refuse synthetic activity that would run past today."""
    today = today or date.today()
    last = date(first.year + years, first.month, first.day)
    if last > today:
        raise FutureActivity(
            f"{years} year(s) from {first} run to {last}, after today, and activity cannot be dated in "
            f"the future (ingest would quarantine it): use at most {whole_years_since(first, today)} year(s) "
            "or an earlier --start"
        )
