"""Who is asking: API tokens, the four roles, and what each may see.

The seeds' commissioners could not see subcontractors, and the public could not see the deal.
The service answers each caller with what they are entitled to and no more:

- ``public`` (no token): aggregates with small numbers suppressed;
- ``commissioner``: its own patients' figures, at every subcontractor, unsuppressed;
- ``provider``: its own figures, and its own patient-level rows (the records it submitted and the
  rows quarantined from them, which it needs to correct) — the only role with any patient-level rows;
- ``prime``: the prime contractor of a contract — the contract-wide outcomes its payment depends on
  (with numerators, denominators and targets), every subcontractor's figures and payments under
  it, and its own money; no patient-level rows (those stay with the provider that recorded them);
- ``auditor``: every aggregate, unsuppressed, and the decision log.

Tokens live in a JSON file (mode 600) mapping each token to a role and an organisation code. If
the file does not exist, one token per organisation named in the terms is made on first use.

:data:`ACCESS` is the one table of which roles may call each route; routes declare it with
``Depends(allowed("measures"))``, and what a role sees *within* a route (its own rows, suppressed
counts) is decided by that route from the :class:`Principal` it gets back.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carecontract.errors import UserError
from carecontract.terms.loader import Terms

Role = Literal["public", "commissioner", "provider", "prime", "auditor"]
ROLES: tuple[Role, ...] = ("public", "commissioner", "provider", "prime", "auditor")
# roles that act for one organisation, named in their token
ORGANISATION_ROLES = ("commissioner", "provider", "prime")
EVERYONE: frozenset[Role] = frozenset(ROLES)
PATIENT_LEVEL = ("events", "quarantine")
# which roles may call each route; the role-matrix test holds every /api route to this table
ACCESS: dict[str, set[Role]] = {
    "whoami": set(EVERYONE),
    "contracts": set(EVERYONE),
    "measures": set(EVERYONE),
    "adjusted": set(EVERYONE),  # the public's under disclosure control (publish.disclosure.public_adjusted)
    "spc": set(EVERYONE),  # the public's months protected with their period's total (public_months)
    "payments": set(EVERYONE),
    "money-by-kind": set(EVERYONE),  # money between organisations, no patient counts
    "prime": {"prime", "auditor"},  # what the prime's payment depends on, and its subcontractors' figures
    "accountability": set(EVERYONE),
    "viability": set(EVERYONE),
    "quality": set(EVERYONE),
    "decisions": {"auditor"},
    "events": {"provider"},  # patient-level: only the provider's own rows
    "quarantine": {"provider"},  # patient-level: only the provider's own rows
}


class TokenFileError(UserError, ValueError):
    """A tokens file that cannot be used, said in one line."""


@dataclass(frozen=True)
class Principal:
    role: Role
    organisation: str | None = None  # the commissioner's or provider's code

    def describe(self) -> str:
        return self.role if self.organisation is None else f"{self.role} {self.organisation}"


PUBLIC = Principal("public")


def organisations(terms: list[Terms]) -> dict[str, set[str]]:
    """Commissioner, provider (subcontractor) and prime codes named in the terms."""
    out: dict[str, set[str]] = {"commissioner": set(), "provider": set(), "prime": set()}
    for t in terms:
        out["commissioner"] |= {c.code for c in t.contract.commissioners}
        out["provider"] |= {s.code for s in t.contract.subcontractors}
        out["prime"] |= {t.contract.prime.code}
    return out


def prime_of(who: Principal, terms: Terms) -> bool:
    """Is ``who`` the prime contractor of this contract (a prime token for another contract is not)?"""
    return who.role == "prime" and who.organisation == terms.contract.prime.code


class Tokens:
    def __init__(self, by_token: dict[str, Principal]) -> None:
        self._by_token = by_token

    @classmethod
    def load_or_create(cls, path: Path, terms: list[Terms]) -> Tokens:
        if not path.exists():
            made: dict[str, dict[str, str | None]] = {
                secrets.token_urlsafe(24): {"role": "auditor", "organisation": None}
            }
            for role, codes in organisations(terms).items():
                for code in sorted(codes):
                    made[secrets.token_urlsafe(24)] = {"role": role, "organisation": code}
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(made, handle, indent=2)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> Tokens:
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TokenFileError(f"{path}: not a readable tokens file ({exc})") from None
        by_token: dict[str, Principal] = {}
        for token, entry in raw.items():
            role = entry.get("role") if isinstance(entry, dict) else None
            if role not in ROLES or role == "public":
                raise TokenFileError(
                    f"{path}: token {token[:4]}… has role {role!r} (valid: commissioner, provider, prime, auditor; "
                    "the public needs no token)"
                )
            organisation = entry.get("organisation")
            if role in ORGANISATION_ROLES and not organisation:
                raise TokenFileError(f"{path}: a {role} token needs an organisation code")
            by_token[token] = Principal(role, organisation)
        return cls(by_token)

    def principal(self, token: str) -> Principal | None:
        """The token's principal, compared in constant time; None for an unknown token."""
        found = None
        for known, principal in self._by_token.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = principal
        return found

    def listing(self) -> list[tuple[str, Principal]]:
        return sorted(self._by_token.items(), key=lambda kv: (kv[1].role, kv[1].organisation or ""))


CHALLENGE = {"WWW-Authenticate": "Bearer"}
bearer = HTTPBearer(auto_error=False, description="An API token; without one you are the public.")


def get_tokens(request: Request) -> Tokens:
    """The app's tokens, set by ``create_app`` on ``app.state``."""
    return request.app.state.tokens


def principal(
    request: Request,
    tokens: Annotated[Tokens, Depends(get_tokens)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who is asking: the public with no ``Authorization`` header, the token's principal with a Bearer
    token; 401 for a forged token or any other scheme (``Basic …`` is a mistake, not the public).
    The principal is kept on the request for the access log."""
    if credentials is None:
        if "authorization" in request.headers:
            raise HTTPException(401, "send the API token as 'Authorization: Bearer <token>'", headers=CHALLENGE)
        request.state.principal = PUBLIC
        return PUBLIC
    found = tokens.principal(credentials.credentials)
    if found is None:
        raise HTTPException(401, "unknown API token", headers=CHALLENGE)
    request.state.principal = found
    return found


def allowed(name: str) -> Callable[..., Principal]:
    """A dependency giving the caller's principal if :data:`ACCESS` lets their role call ``name``, else 403."""
    roles = ACCESS[name]

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in roles:
            why = " (patient-level rows go only to the provider that recorded them)" if name in PATIENT_LEVEL else ""
            raise HTTPException(403, f"the {who.role} role may not see {name}{why}")
        return who

    return check
