"""Evaluate the gate from a fee stage to the outcomes stage, from the data in the store.

The Staffordshire Stage 1 existed to fix the data and meet a limited set of outcomes; "meeting
the Stage 1 aims starts Stage 2". Here each aim in the terms' gate is measured from the store
and compared with its threshold, so the decision to move to payment by outcomes rests on
figures anyone can reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from carecontract.measures.compute import Sources, compute_measures
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.terms.model import MEASURES, Contract, FeeStage


@dataclass
class Criterion:
    name: str
    threshold: float
    value: float | None
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold


def evaluate_gate(
    contract: Contract,
    store: str | Store,
    start: date,
    end: date,
    *,
    src: Sources | None = None,
    quality_report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Each criterion of the first fee stage's gate, measured over [start, end], and the verdict.

    ``src`` and ``quality_report`` let a caller evaluating several years build them once.
    """
    stage = next((s for s in contract.stages if isinstance(s, FeeStage)), None)
    if stage is None:
        raise ValueError(f"{contract.name} has no fee stage, so no gate to evaluate")
    gate = stage.gate
    store = store if isinstance(store, Store) else Store(store)
    criteria: list[Criterion] = []
    if gate.data_completeness is not None or gate.data_validity is not None:
        report = quality_report or quality(store).as_dict()
        # columns required only for event types absent from the data have no completeness to count
        required = [
            c["completeness_where_required"]
            for c in report["columns"]
            if c["required"] and c["completeness_where_required"] is not None
        ]
        completeness = sum(required) / len(required) if required else None
        rows = report["rows"]
        validity = rows["accepted"] / rows["read"] if rows["read"] else None
        if gate.data_completeness is not None:
            criteria.append(Criterion("data_completeness", gate.data_completeness, completeness, True))
        if gate.data_validity is not None:
            criteria.append(Criterion("data_validity", gate.data_validity, validity, True))
    if gate.measures:
        results = {r["measure"]: r for r in compute_measures(store, start, end, only=list(gate.measures), src=src)}
        for measure, threshold in gate.measures.items():
            value = results.get(measure, {}).get("rate")  # None: nothing to measure, so not met
            criteria.append(Criterion(measure, threshold, value, MEASURES[measure]))
    return {
        "stage": stage.name,
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "passed": all(c.passed for c in criteria),
        "criteria": [
            {
                "name": c.name,
                "threshold": c.threshold,
                "value": c.value,
                "passed": c.passed,
                "direction": "at least" if c.higher_is_better else "at most",
            }
            for c in criteria
        ],
    }
