"""Ledger account names: the one place that spells them (as Beancount's ``core/account.py`` does).

An account is ``<kind>:<code>``: the kind says what role the holder plays in the contract's money
(a commissioner pays, the prime receives and passes on, its management account is what it keeps,
subcontractors are paid for care, HMRC receives irrecoverable VAT), the code is the organisation's.
The rules, the service's role filter, the report and the OCDS publication all build and read
account names through these functions, so renaming one is a change in one place.
"""

from __future__ import annotations

COMMISSIONER = "commissioner"
PRIME = "prime"
MANAGEMENT = "management"
SUBCONTRACTOR = "subcontractor"
HMRC_VAT = "hmrc:vat"
SUSPENSE = "suspense"  # money held while a notice of calculation error is open: not paid, not lost

KINDS = (COMMISSIONER, PRIME, MANAGEMENT, SUBCONTRACTOR, "hmrc", SUSPENSE)


def commissioner(code: str) -> str:
    return f"{COMMISSIONER}:{code}"


def prime(code: str) -> str:
    return f"{PRIME}:{code}"


def management(code: str) -> str:
    return f"{MANAGEMENT}:{code}"


def subcontractor(code: str) -> str:
    return f"{SUBCONTRACTOR}:{code}"


def suspense(dispute_id: str) -> str:
    """The account holding one dispute's amount while it is open (``suspense:D1``)."""
    return f"{SUSPENSE}:{dispute_id}"


def kind(account: str) -> str:
    """``commissioner`` for ``commissioner:05D``; ``hmrc`` for ``hmrc:vat``."""
    return account.split(":", 1)[0]


def code(account: str) -> str:
    """The organisation code of an account (``05D`` for ``commissioner:05D``)."""
    return account.split(":", 1)[1] if ":" in account else account


def provider_accounts(organisation: str) -> tuple[str, ...]:
    """Every account a provider organisation may hold: as subcontractor, as prime, and its management."""
    return (subcontractor(organisation), prime(organisation), management(organisation))
