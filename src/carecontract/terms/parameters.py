"""Dated parameters: values that change over a contract's life, resolved for any date.

As in OpenFisca and PolicyEngine, a parameter is a timeline of (date, value) entries and its
value on a date is the latest entry on or before it. Keys may be ISO dates or bare years; a bare
year means the contract year that starts in it (so ``2027`` on an April contract is 1 April 2027).
The registry names every parameter the system understands, so a typo is an error with a
suggestion rather than a silently ignored number. A parameter may name the clause of the contract
that sets it (``vat_rate: {2017: 0.2, clause: "Sch 5, 6.1"}``), which every payment trace quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ParameterSpec:
    description: str
    unit: str
    low: float
    high: float


PARAMETERS: dict[str, ParameterSpec] = {
    "demand_growth": ParameterSpec("annual growth in activity (patients, referrals)", "share per year", -0.5, 1.0),
    "tariff_inflation": ParameterSpec("annual uplift in the price the commissioners pay", "share per year", -0.5, 1.0),
    "cost_inflation": ParameterSpec("annual growth in providers' unit costs", "share per year", -0.5, 1.0),
    "vat_rate": ParameterSpec("standard rate of VAT", "share", 0.0, 1.0),
    "management_share": ParameterSpec("share of contract value kept by the prime for management", "share", 0.0, 1.0),
    "efficiency_savings": ParameterSpec(
        "annual saving assumed from the new model of care", "share per year", -1.0, 1.0
    ),
    "mobilisation_cost_gbp": ParameterSpec("one-off cost of setting the contract up", "pounds", 0.0, 1e10),
}


@dataclass(frozen=True)
class Timeline:
    """A parameter's entries, sorted by date, and the contract clause that sets them (if the terms say)."""

    name: str
    entries: tuple[tuple[date, float], ...]
    clause: str | None = None

    def at(self, when: date) -> float:
        """The latest entry on or before ``when``."""
        value = None
        for start, entry in self.entries:
            if start <= when:
                value = entry
            else:
                break
        if value is None:
            first = self.entries[0][0].isoformat() if self.entries else "never"
            raise KeyError(f"parameter {self.name} has no value on {when.isoformat()} (first set {first})")
        return value
