"""One rule for a measure's target, the same on every output, and the sentence that states it.

Why here: the terminal table, the report, the notebook API and the service all show a target
beside each rate, and a reader comparing two of them must see the same number. The rule is the
contract's target where its terms set one (``outcomes:``), England's standard otherwise (the
standard in force on the period's last day from ``measures.standards``' dated table, e.g. 85% for the
62-day wait, 75% then 80% from March 2026 for the 28-day standard), and no target where
neither exists. :func:`compute_measures` applies it when given :func:`contract_targets`; this
module says, for each measure, which of the three it was, so every output can state it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from carecontract.measures import standards
from carecontract.measures.definitions import MEASURE_IDS
from carecontract.terms.model import Contract

#: Where a target came from, as outputs print it (``target_source`` in rows and DataFrames).
FROM_CONTRACT = "contract"
FROM_STANDARD = "England's standard"


@dataclass(frozen=True)
class Target:
    """A measure's target and where it came from (``source`` is None when there is no target)."""

    measure: str
    value: float | None
    source: str | None


def contract_targets(contract: Contract | None) -> dict[str, float]:
    """The targets the contract's terms set, by measure (what ``compute_measures`` takes)."""
    return {o.measure: o.target for o in contract.outcomes} if contract is not None else {}


def targets(contract: Contract | None, on: date | None = None) -> dict[str, Target]:
    """Every measure's target under the rule: the contract's, else England's standard in force on
    ``on`` (the period's last day; today if not given), else none."""
    own = contract_targets(contract)
    out: dict[str, Target] = {}
    for measure_id in MEASURE_IDS:
        standard = standards.standard(measure_id, on or date.today())
        if measure_id in own:
            out[measure_id] = Target(measure_id, own[measure_id], FROM_CONTRACT)
        elif standard is not None:
            out[measure_id] = Target(measure_id, standard, FROM_STANDARD)
        else:
            out[measure_id] = Target(measure_id, None, None)
    return out


def label_rows(rows: Iterable[dict[str, Any]], contract: Contract | None) -> list[dict[str, Any]]:
    """Measure rows with ``target_source`` added: where each row's target came from (or None)."""
    rule = targets(contract)
    return [{**r, "target_source": rule[r["measure"]].source if r.get("target") is not None else None} for r in rows]


def targets_rule(contract: Contract | None, source: str | None = None) -> str:
    """The rule as one sentence, naming which measures took which kind of target."""
    rule = targets(contract)
    by_source: dict[str | None, list[str]] = {FROM_CONTRACT: [], FROM_STANDARD: [], None: []}
    for measure_id in MEASURE_IDS:
        by_source[rule[measure_id].source].append(measure_id)
    parts = []
    if by_source[FROM_CONTRACT]:
        whose = f"the contract's ({source})" if source else "the contract's"
        parts.append(f"{whose} for {', '.join(by_source[FROM_CONTRACT])}")
    if by_source[FROM_STANDARD]:
        parts.append(f"England's standards for {', '.join(by_source[FROM_STANDARD])}")
    if by_source[None]:
        parts.append(f"none set for {', '.join(by_source[None])}")
    rest = "" if contract is not None else " (no contract terms given)"
    return f"Targets{rest}: {'; '.join(parts)}."
