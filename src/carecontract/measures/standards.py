"""England's targets for the waiting-time standards, as a dated table (docs/measures.md, "Targets").

Why a table and not one number per measure: the national figures change on known dates (the
28-day Faster Diagnosis Standard rises from 75% to 80% in March 2026) and the NHS's yearly planning
guidance sets interim operational targets beside the constitutional standard (62 days: 70% by March
2025, 75% by March 2026, against the 85% standard). A period is judged against the figures in force
on its last day; a contract's own ``outcomes`` targets replace the standard, never the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Target:
    measure: str
    kind: str  # "standard": England's standard, the default target | "operational": an interim target
    since: date  # in force from this day until the next row of the same measure and kind
    value: float
    source: str


CWT_GUIDANCE = "NHS England, National Cancer Waiting Times Monitoring Dataset Guidance v12.1 (July 2025), 1.1"
CWT_REVIEW = "NHS England, Cancer waiting times review: consultation response (PRN00654_i, August 2023)"
PLANNING_2425 = "NHS England, 2024/25 priorities and operational planning guidance (cancer)"
PLANNING_2526 = "NHS England, 2025/26 priorities and operational planning guidance (cancer)"

TARGETS: tuple[Target, ...] = (
    Target("fds_28", "standard", date(2023, 10, 1), 0.75, CWT_REVIEW),
    Target("fds_28", "standard", date(2026, 3, 1), 0.80, CWT_GUIDANCE + ": 75%, raising to 80% in March 2026"),
    Target("fds_28", "operational", date(2024, 4, 1), 0.77, PLANNING_2425 + ": 77% by March 2025"),
    Target("fds_28", "operational", date(2025, 4, 1), 0.80, PLANNING_2526 + ": 80% by March 2026"),
    Target("cwt_31", "standard", date(2023, 10, 1), 0.96, CWT_REVIEW + "; " + CWT_GUIDANCE),
    Target("cwt_62", "standard", date(2023, 10, 1), 0.85, CWT_REVIEW + "; " + CWT_GUIDANCE),
    Target("cwt_62", "operational", date(2024, 4, 1), 0.70, PLANNING_2425 + ": 70% by March 2025"),
    Target("cwt_62", "operational", date(2025, 4, 1), 0.75, PLANNING_2526 + ": 75% by March 2026"),
)


def in_force(measure: str, on: date, kind: str = "standard") -> Target | None:
    """The target of ``kind`` for ``measure`` in force on ``on``, or None if the table has none.

    Before its first row a *standard* takes the first row's value: the separate standards the
    October 2023 ones combined had the same thresholds (28 days 75%, 31 days 96%, 62 days 85%). An
    operational target applies only from its planning year."""
    rows = [t for t in TARGETS if t.measure == measure and t.kind == kind]
    current = [t for t in rows if t.since <= on]
    if current:
        return max(current, key=lambda t: t.since)
    return min(rows, key=lambda t: t.since) if rows and kind == "standard" else None


def standard(measure: str, on: date) -> float | None:
    """England's standard for ``measure`` on ``on``: the default target."""
    found = in_force(measure, on)
    return found.value if found else None


def operational(measure: str, on: date) -> float | None:
    """The interim operational target for ``measure`` on ``on``, if the planning guidance sets one."""
    found = in_force(measure, on, "operational")
    return found.value if found else None
