"""Who is asking: API tokens, the four roles, and what each may see.

The seeds' commissioners could not see subcontractors, and the public could not see the deal.
The service answers each caller with what they are entitled to and no more:

- ``public`` (no token): aggregates with small numbers suppressed;
- ``commissioner``: its own patients' figures, at every subcontractor, unsuppressed;
- ``provider``: its own figures, and its own patient-level rows (the records it submitted and the
  rows quarantined from them, which it needs to correct) — the only role with any patient-level rows;
- ``auditor``: every aggregate, unsuppressed, and the decision log.

Tokens live in a JSON file (mode 600) mapping each token to a role and an organisation code. If
the file does not exist, one token per organisation named in the terms is made on first use.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from carecontract.errors import UserError
from carecontract.terms.loader import Terms

Role = Literal["public", "commissioner", "provider", "auditor"]
ROLES: tuple[Role, ...] = ("public", "commissioner", "provider", "auditor")


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
    """Commissioner and provider codes named in the terms (a prime is a provider too)."""
    out: dict[str, set[str]] = {"commissioner": set(), "provider": set()}
    for t in terms:
        out["commissioner"] |= {c.code for c in t.contract.commissioners}
        out["provider"] |= {t.contract.prime.code} | {s.code for s in t.contract.subcontractors}
    return out


class Tokens:
    def __init__(self, by_token: dict[str, Principal]) -> None:
        self._by_token = by_token

    @classmethod
    def load_or_create(cls, path: Path, terms: list[Terms]) -> Tokens:
        if not path.exists():
            made: dict[str, dict[str, str | None]] = {secrets.token_urlsafe(24): {"role": "auditor",
                                                                                "organisation": None}}  # fmt: skip
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
                raise TokenFileError(f"{path}: token {token[:4]}… has role {role!r} (valid: commissioner, provider, "
                                     "auditor; the public needs no token)")  # fmt: skip
            organisation = entry.get("organisation")
            if role in ("commissioner", "provider") and not organisation:
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
