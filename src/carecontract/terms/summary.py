"""A terms file in brief, and its gate measured from the store, as the CLI and API show them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from carecontract.records.store import Store
from carecontract.terms.gate import evaluate_gate, fee_stage_of
from carecontract.terms.loader import Terms


def terms_summary(terms: Terms) -> dict[str, Any]:
    """A terms file in brief: provenance, parties, term, value per year, stages, scope, outcomes."""
    c = terms.contract
    return {
        **terms.provenance(),
        "commissioners": [{"code": x.code, "name": x.name, "share": x.share} for x in c.commissioners],
        "prime": {"code": c.prime.code, "name": c.prime.name},
        "subcontractors": [{"code": x.code, "name": x.name} for x in c.subcontractors],
        "term": {"start": c.term.start.isoformat(), "end": c.term.end.isoformat(), "years": c.term.years},
        "value_gbp": str(c.value.total_gbp),
        "value_per_year": {str(y): str(v) for y, v in c.value_per_year().items()},
        "stages": [s.model_dump(mode="json") for s in c.stages],
        "scope_by_year": {str(d.year): c.scope_at(d) for d in c.contract_years()},
        "outcomes": [o.model_dump(mode="json") for o in c.outcomes],
    }


def gate_result(terms: Terms, store: str | Path | Store, start: date, end: date) -> dict[str, Any]:
    """The fee stage's gate measured from the store, with the terms' provenance."""
    contract = terms.contract
    fee_stage_of(contract)  # a GateError (one line) when there is no gate to evaluate
    return {**evaluate_gate(contract, store, start, end), **terms.provenance()}
