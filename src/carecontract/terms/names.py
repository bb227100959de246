"""Organisations by name: the names a contract's terms give its parties, for every output a person reads.

Why: activity records and the ledger carry ODS-style codes (``RJE``, ``05D``), which a
commissioner reading a report should not have to look up. The terms name their commissioners,
prime and subcontractors; a code the terms do not list (a hospice that cared for a patient, say)
is shown as "unlisted provider HKHH1", so it reads as a fact about the contract, not a gap in
the report.
"""

from __future__ import annotations

from carecontract.terms.model import Contract


def organisation_names(contract: Contract) -> dict[str, str]:
    """Every party's name by code: commissioners, the prime and the subcontractors."""
    names = {c.code: c.name for c in contract.commissioners}
    names.update({s.code: s.name for s in contract.subcontractors})
    names[contract.prime.code] = contract.prime.name
    return names


def organisation(code: str | None, contract: Contract, role: str = "provider") -> str:
    """``code``'s name from the terms, or "unlisted <role> CODE" when the terms do not list it."""
    if code is None:
        return f"unknown {role}"
    return organisation_names(contract).get(code) or f"unlisted {role} {code}"


def named(code: str | None, contract: Contract, role: str = "provider") -> str:
    """ "Name (CODE)" for a listed party, "unlisted <role> CODE" otherwise: the code stays findable."""
    names = organisation_names(contract)
    return f"{names[code]} ({code})" if code in names else organisation(code, contract, role)
