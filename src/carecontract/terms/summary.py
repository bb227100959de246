"""A terms file in brief, and its gate measured from the store, as the CLI and API show them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from carecontract.records.store import Store
from carecontract.terms.gate import evaluate_gate, fee_stage_of
from carecontract.terms.loader import Terms
from carecontract.terms.model import Contract, Strict


def terms_summary(terms: Terms) -> dict[str, Any]:
    """A terms file in brief: provenance, parties, term, value per year, stages, scope, outcomes."""
    c = terms.contract
    return {
        **terms.provenance(),
        "commissioners": [{"code": x.code, "name": x.name, "share": x.share} for x in c.commissioners],
        "prime": {"code": c.prime.code, "name": c.prime.name, "kind": c.prime.kind, "clause": c.prime.clause},
        "subcontractors": [{"code": x.code, "name": x.name, "kind": x.kind} for x in c.subcontractors],
        "term": {"start": c.term.start.isoformat(), "end": c.term.end.isoformat(), "years": c.term.years},
        "value_gbp": str(c.value.total_gbp),
        "value_per_year": {str(y): str(v) for y, v in c.value_per_year().items()},
        "stages": [_with_clause(s) for s in c.stages],
        "scope_by_year": {str(d.year): c.scope_at(d) for d in c.contract_years()},
        "outcomes": [_with_clause(o) for o in c.outcomes],
        "clauses": clauses(c),
    }


def _with_clause(term: Strict) -> dict[str, Any]:
    """A term as JSON with its clause (model_dump leaves the clause out, to keep the fingerprint)."""
    return {**term.model_dump(mode="json"), "clause": term.clause}


def clauses(contract: Contract) -> dict[str, str]:
    """Every clause reference in the terms, by where it is written (``stages.stage2``,
    ``outcomes.cwt_62``, ``parameters.vat_rate`` ...): what ``explain-payment`` quotes."""
    found: dict[str, str] = {}

    def walk(where: str, node: object) -> None:
        if isinstance(node, Strict):
            if node.clause:
                found[where] = node.clause
            for name in type(node).model_fields:
                walk(f"{where}.{name}" if where else name, getattr(node, name))
        elif isinstance(node, list):
            for item in node:
                label = getattr(item, "measure", None) or getattr(item, "code", None) or getattr(item, "name", "")
                walk(f"{where}.{label}", item)

    walk("", contract)
    found.update({f"parameters.{name}": clause for name, clause in contract.parameter_clauses.items()})
    return found


def gate_result(terms: Terms, store: str | Path | Store, start: date, end: date) -> dict[str, Any]:
    """The fee stage's gate measured from the store, with the terms' provenance."""
    contract = terms.contract
    fee_stage_of(contract)  # a GateError (one line) when there is no gate to evaluate
    return {**evaluate_gate(contract, store, start, end), **terms.provenance()}
