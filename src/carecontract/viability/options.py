"""Options side by side: several sets of terms, one table of what each would cost and risk.

An option is a set of terms: the file as written, the file with ``--set`` what-ifs stacked on it
(as PolicyEngine's users compare a reform with current law, period by period), or another terms
file. Every option is simulated on the same seed, so its draws are the same wherever its risks
are the same (common random numbers): differences between options are the terms', not noise.

For each option, and for each contract year (current against reform, period by period): the
mean payment, mean surplus and chance of a cumulative deficit so far; over the whole life: the
deficit probability (with its Wilson interval), the expected and 90th-percentile funding gap,
and the net present cost to the commissioners at the Green Book discount rate (:mod:`.discount`):

- **payments**: what the commissioners pay the prime each year (the price with any contingency
  and funded demand growth, less outcome payments not earned, plus or minus the risk corridor's
  transfers), discounted;
- **with bail-out**: payments plus the funding gap, paid as it opens (each year the run's
  deepest shortfall so far grows) — what UnitingCare's commissioners faced when the provider
  asked for £34.3m more.

``optimism_bias`` uplifts the first-year care-cost estimate by that share before simulating, as
the Green Book's supplementary guidance asks of cost estimates (0–41% for outsourcing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from carecontract.measures.stats import wilson
from carecontract.terms.loader import Terms
from carecontract.viability.discount import discount_factors
from carecontract.viability.simulate import (
    StressError,
    deficit_and_gap,
    draw,
    resolve_inputs,
    simulate,
    terms_levers,
)


@dataclass
class OptionResult:
    """One option's row of the table."""

    label: str
    fingerprint: str
    overrides: list[str]
    deficit_probability: float
    deficit_probability_low: float | None
    deficit_probability_high: float | None
    expected_gap_gbp: float
    gap_p90_gbp: float
    npc_payments_gbp: float
    npc_with_bailout_gbp: float
    optimism_bias: float
    years: int
    by_year: list[dict[str, Any]]  # each contract year: mean payment, mean surplus, P(cumulative deficit)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bailout(cumulative: np.ndarray) -> np.ndarray:
    """Per run and year, the money needed that year to keep the cumulative position from going below zero
    (the growth of the deepest shortfall so far); summed over years it is the run's funding gap."""
    deepest = np.maximum.accumulate(np.maximum(0.0, -cumulative), axis=1)
    return np.diff(deepest, axis=1, prepend=0.0)


def evaluate(
    label: str,
    terms: Terms,
    runs: int = 10_000,
    seed: int = 0,
    optimism_bias: float = 0.0,
    baseline_cost: float | None = None,
    scope_factor: list[float] | None = None,
) -> OptionResult:
    """One option's row: simulate its terms and summarise what it risks and costs."""
    if runs < 1:
        raise StressError("--runs must be at least 1")
    if not 0 <= optimism_bias <= 2:
        raise StressError(f"--optimism-bias must be between 0 and 2 (a share), got {optimism_bias}")
    contract = terms.contract
    inputs = resolve_inputs(contract, baseline_cost, scope_factor)
    draws = draw(inputs, runs, seed)
    draws["baseline_cost_gbp"] = draws["baseline_cost_gbp"] * (1.0 + optimism_bias)
    result = simulate(inputs, draws, levers=terms_levers(contract))
    deficit, gap = deficit_and_gap(result["cumulative"])
    factors = discount_factors(result["income"].shape[1])
    payments = float(result["income"].mean(axis=0) @ factors)
    rescue = float(bailout(result["cumulative"]).mean(axis=0) @ factors)
    low, high = wilson(int(deficit.sum()), runs)
    by_year = [
        {
            "year": d.year,
            "payments_mean_gbp": float(result["income"][:, i].mean()),
            "surplus_mean_gbp": float(result["surplus"][:, i].mean()),
            "deficit_probability": float((result["cumulative"][:, i] < 0).mean()),
        }
        for i, d in enumerate(inputs.years)
    ]
    return OptionResult(
        label=label,
        fingerprint=terms.fingerprint,
        overrides=list(terms.overrides),
        deficit_probability=float(deficit.mean()),
        deficit_probability_low=low,
        deficit_probability_high=high,
        expected_gap_gbp=float(gap.mean()),
        gap_p90_gbp=float(np.quantile(gap, 0.9)),
        npc_payments_gbp=payments,
        npc_with_bailout_gbp=payments + rescue,
        optimism_bias=optimism_bias,
        years=result["income"].shape[1],
        by_year=by_year,
    )


def compare(
    options: list[tuple[str, Terms]],
    runs: int = 10_000,
    seed: int = 0,
    optimism_bias: float = 0.0,
    calibration: dict[str, tuple[float, list[float] | None]] | None = None,
) -> list[OptionResult]:
    """Every option's row, on the same seed; ``calibration`` maps a label to its store-calibrated
    (first-year cost, scope factors), if any."""
    if not options:
        raise StressError("no options to compare")
    labels = [label for label, _ in options]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise StressError(f"option labels used twice: {', '.join(repeated)}")
    out = []
    for label, terms in options:
        base, factor = (calibration or {}).get(label, (None, None))
        out.append(evaluate(label, terms, runs, seed, optimism_bias, base, factor))
    return out


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``"LABEL: name=value; name=value"`` → (label, [what-ifs]); a variant with no label is named by its what-ifs."""
    label, sep, rest = text.partition(":")
    if not sep or "=" in label:
        label, rest = text.strip(), text
    sets = [s.strip() for s in rest.split(";") if s.strip()]
    if not sets:
        raise StressError(f"--variant {text!r}: give LABEL: name=value; name=value")
    return label.strip(), sets
