"""Evaluate the gate from a fee stage to the outcomes stage, from the data in the store.

The Staffordshire Stage 1 existed to fix the data and meet a limited set of outcomes; "meeting
the Stage 1 aims starts Stage 2". Here each aim in the terms' gate is measured from the store
and compared with its threshold, so the decision to move to payment by outcomes rests on
figures anyone can reproduce.

The judgement (:func:`judge_gate`) is a pure function of the measured values; :func:`evaluate_gate`
gathers them from :class:`Evidence` — a :class:`carecontract.run.Run`, which computes each figure
once per run — or, for callers without one, straight from a store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, runtime_checkable

from carecontract.errors import UserError
from carecontract.measures.compute import Sources, compute_measures
from carecontract.measures.definitions import HIGHER_IS_BETTER
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.terms.model import Contract, FeeStage


class GateError(UserError, ValueError):
    """A gate that cannot be evaluated (the contract has no fee stage)."""


@runtime_checkable
class Evidence(Protocol):
    """What a gate is judged on: measures and data quality over a period (a Run is one)."""

    def measures(self, start: date, end: date, by: Any = (), *, only: Any = None) -> list[dict[str, Any]]: ...

    def quality_report(self, start: date | None = None, end: date | None = None) -> dict[str, Any]: ...


@dataclass
class _StoreEvidence:
    """Evidence read straight from a store, for a caller without a Run."""

    store: Store
    src: Sources | None = None
    report: dict[str, Any] | None = None  # given by the caller: used as the period's report

    def measures(self, start: date, end: date, by: Any = (), *, only: Any = None) -> list[dict[str, Any]]:
        return compute_measures(self.store, start, end, by, only=only, src=self.src)

    def quality_report(self, start: date | None = None, end: date | None = None) -> dict[str, Any]:
        if self.report is None:
            self.report = quality(self.store, start, end).as_dict()
        return self.report


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


def fee_stage_of(contract: Contract) -> FeeStage:
    stage = contract.fee_stage
    if stage is None:
        raise GateError(f"{contract.name} has no fee stage, so no gate to evaluate")
    return stage


def data_quality(report: dict[str, Any]) -> tuple[float | None, float | None]:
    """(completeness, validity) from a quality report, as the gate counts them."""
    # columns required only for event types absent from the data have no completeness to count
    required = [
        c["completeness_where_required"]
        for c in report["columns"]
        if c["required"] and c["completeness_where_required"] is not None
    ]
    completeness = sum(required) / len(required) if required else None
    rows = report["rows"]
    validity = rows["accepted"] / rows["read"] if rows["read"] else None
    return completeness, validity


def judge_gate(
    contract: Contract,
    start: date,
    end: date,
    rates: dict[str, float | None],
    quality_report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The verdict on the first fee stage's gate from measured values (pure: no data is read).

    ``rates`` holds each gate measure's rate over [start, end] (missing or None: nothing measured,
    so not met); ``quality_report`` is needed only if the gate sets data completeness or validity.
    """
    stage = fee_stage_of(contract)
    gate = stage.gate
    criteria: list[Criterion] = []
    if gate.data_completeness is not None or gate.data_validity is not None:
        if quality_report is None:
            raise ValueError("this gate judges data quality: give the period's quality report")
        completeness, validity = data_quality(quality_report)
        if gate.data_completeness is not None:
            criteria.append(Criterion("data_completeness", gate.data_completeness, completeness, True))
        if gate.data_validity is not None:
            criteria.append(Criterion("data_validity", gate.data_validity, validity, True))
    for measure, threshold in gate.measures.items():
        criteria.append(Criterion(measure, threshold, rates.get(measure), HIGHER_IS_BETTER[measure]))
    return {
        "stage": stage.name,
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        # what the data-quality criteria were measured on: the period's rows in one version of the store
        "evidence": None
        if quality_report is None
        else {**quality_report.get("scope", {}), "rows": quality_report["rows"]},
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


def evaluate_gate(
    contract: Contract,
    evidence: Evidence | str | os.PathLike[str] | Store,
    start: date,
    end: date,
    *,
    src: Sources | None = None,
    quality_report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Each criterion of the first fee stage's gate, measured over [start, end], and the verdict.

    Data completeness and validity are measured over the period's rows (events dated in it, and
    rows whose date could not be read), in the evidence's version of the store: a period with no
    rows has no quality to measure, so those criteria fail.

    ``evidence`` is a Run (or anything with its ``measures`` and ``quality_report``), or a store.
    For a store, ``src`` and ``quality_report`` let a caller evaluating several years build them
    once; a Run keeps them itself.
    """
    gate = fee_stage_of(contract).gate
    if not isinstance(evidence, Evidence):
        store = evidence if isinstance(evidence, Store) else Store(evidence)
        evidence = _StoreEvidence(store, src, quality_report)
    report = None
    if gate.data_completeness is not None or gate.data_validity is not None:
        report = evidence.quality_report(start, end)
    rates: dict[str, float | None] = {}
    if gate.measures:
        rows = evidence.measures(start, end, only=list(gate.measures))
        rates = {r["measure"]: r["rate"] for r in rows}
    return judge_gate(contract, start, end, rates, report)
