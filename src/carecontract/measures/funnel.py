"""Funnel plots with overdispersion: proportions and indirectly standardised ratios.

Why: a funnel plot compares each unit with the whole against limits that widen as the unit gets
smaller, so a small hospice is not called an outlier for noise. With many large units the
between-unit spread is often far wider than chance allows (overdispersion), and plain binomial or
Poisson limits then call nearly every unit an outlier (the report's place-of-death funnel did).

The method (docs/measures.md, "Fair comparisons"):

- Spiegelhalter DJ, *Funnel plots for comparing institutional performance*, Stat Med 2005;24:1185–202
  and *Handling over-dispersion of performance indicators*, Qual Saf Health Care 2005;14:347–51
  (and its appendix): each unit's z-score ``z_i = (y_i − θ0) / s_i``; Winsorise the z-scores at the
  10th and 90th percentiles; ``φ = Σ z_w² / I``; if ``I·φ > I − 1`` the additive random-effects
  variance ``τ² = (I·φ − (I − 1)) / (Σ w_i − Σ w_i² / Σ w_i)`` with ``w_i = 1/s_i²``; the limits are
  ``θ0 ± z_α √(s_i² + τ²)``.
- Proportions: ``y = O/n``, ``s = √(θ0(1 − θ0)/n)`` (Spiegelhalter 2005, table I).
- Standardised ratios: NHS Digital, *Summary Hospital-level Mortality Indicator (SHMI) methodology
  specification* (the overdispersion steps), as implemented by the NHS-R FunnelPlotR package
  (``method = "SHMI"``): on the log scale ``y = ln(O/E)``, ``s = 1/√E``, target 0, limits
  ``exp(± z_α √(1/E + τ²))``. The SHMI method truncates rather than Winsorises: the units are
  put in ten groups by the rank of their z-score (``floor(rank × 10 / (I + 1))``, ties at their
  average rank) and the bottom and top groups are left out of φ and τ², as FunnelPlotR's
  ``truncation`` (0.5+, "Truncation function for NHSD method") does; both are offered (``trim``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.stats import rankdata

from carecontract.measures.stats import Z95, Z998

Kind = Literal["proportion", "ratio"]
Trim = Literal["winsorise", "truncate"]

#: Share of z-scores Winsorised (or truncated) at each end before φ is estimated (Spiegelhalter 2005; SHMI).
TRIM_SHARE = 0.1


@dataclass(frozen=True)
class Limits:
    """Control limits for one unit, on the scale of the plotted value (a rate or an O/E ratio)."""

    low95: float | None
    high95: float | None
    low998: float | None
    high998: float | None


@dataclass
class FunnelPoint:
    """One unit on the plot: its value, z-score, limits and whether it lies outside them."""

    unit: str
    numerator: float
    denominator: float  # cases for a proportion, the expected count for a ratio
    value: float | None
    z: float | None
    limits: Limits
    outlier: Literal["high", "low"] | None  # outside the 99.8% limits
    alert: Literal["high", "low"] | None  # outside the 95% limits


@dataclass
class Funnel:
    """A funnel plot's data: the target, the dispersion estimates and every unit."""

    kind: Kind
    target: float
    phi: float
    tau2: float
    overdispersed: bool
    points: list[FunnelPoint] = field(default_factory=list)

    def outliers(self) -> list[str]:
        """The units outside the 99.8% limits, by name."""
        return [p.unit for p in self.points if p.outlier]

    def limits_at(self, size: float) -> Limits:
        """The limits for a unit of this size (for drawing the funnel)."""
        return _limits(self.kind, self.target, size, self.tau2)


def _s(kind: Kind, target: float, size: float) -> float:
    if kind == "proportion":
        return math.sqrt(target * (1 - target) / size)
    return 1 / math.sqrt(size)


def _limits(kind: Kind, target: float, size: float, tau2: float) -> Limits:
    if size <= 0:  # no cases (or nothing expected): the whole range for a rate, none for a ratio
        return Limits(0.0, 1.0, 0.0, 1.0) if kind == "proportion" else Limits(None, None, None, None)
    sd = math.sqrt(_s(kind, target, size) ** 2 + tau2)
    if kind == "proportion":
        return Limits(
            max(0.0, target - Z95 * sd),
            min(1.0, target + Z95 * sd),
            max(0.0, target - Z998 * sd),
            min(1.0, target + Z998 * sd),
        )
    return Limits(math.exp(-Z95 * sd), math.exp(Z95 * sd), math.exp(-Z998 * sd), math.exp(Z998 * sd))


def proportion_limits(target: float, size: float, z: float, tau2: float = 0.0) -> tuple[float, float]:
    """One pair of limits for a proportion around ``target`` for a unit of ``size`` (for drawing)."""
    if size <= 0:
        return 0.0, 1.0
    half = z * math.sqrt(target * (1 - target) / size + tau2)
    return max(0.0, target - half), min(1.0, target + half)


def _z(kind: Kind, target: float, numerator: float, denominator: float) -> float | None:
    if denominator <= 0:
        return None
    if kind == "proportion":
        s = _s(kind, target, denominator)
        return (numerator / denominator - target) / s if s > 0 else None
    if numerator <= 0:
        return None  # ln 0: no z-score on the log scale (such a unit still gets its limits)
    return math.sqrt(denominator) * math.log(numerator / denominator)


def dispersion(z: Sequence[float], weights: Sequence[float], trim: Trim = "winsorise") -> tuple[float, float]:
    """φ and τ² from the units' z-scores and their weights ``1/s_i²`` (Spiegelhalter 2005, appendix).

    Winsorising sets the z-scores below the 10th percentile to it and those above the 90th to it,
    keeping every unit (percentiles are R's and numpy's default, linear interpolation, R type 7).
    Truncating (the SHMI method, as FunnelPlotR's ``truncation``) drops the units whose rank puts
    them in the bottom or top tenth: ``floor(rank × 10 / (I + 1))`` is 0 or 9 — none when I < 9.
    """
    zs, ws = np.asarray(z, dtype=float), np.asarray(weights, dtype=float)
    if len(zs) == 0:
        return 1.0, 0.0
    if trim == "winsorise":
        low, high = np.quantile(zs, [TRIM_SHARE, 1 - TRIM_SHARE])
        kept_z, kept_w = np.clip(zs, low, high), ws
    else:
        groups = round(1 / TRIM_SHARE)
        group = np.floor(rankdata(zs, method="average") * groups / (len(zs) + 1))
        inside = (group > 0) & (group < groups - 1)
        kept_z, kept_w = zs[inside], ws[inside]
    n = len(kept_z)
    if n == 0:
        return 1.0, 0.0
    phi = float(np.sum(kept_z**2) / n)
    if n * phi <= n - 1:
        return phi, 0.0
    spread = float(np.sum(kept_w) - np.sum(kept_w**2) / np.sum(kept_w))
    tau2 = max(0.0, (n * phi - (n - 1)) / spread) if spread > 0 else 0.0
    return phi, tau2


def funnel(
    units: Sequence[tuple[str, float, float]],
    kind: Kind = "proportion",
    target: float | None = None,
    overdispersion: bool = True,
    trim: Trim = "winsorise",
) -> Funnel:
    """Funnel-plot data for ``(unit, numerator, denominator)`` rows.

    For a proportion the denominator is the unit's cases and the target defaults to the pooled rate;
    for a standardised ratio the numerator is observed, the denominator expected and the target is 1.
    With ``overdispersion`` the limits widen by the random-effects τ² when φ shows overdispersion.
    """
    rows = [(str(u), float(n), float(d)) for u, n, d in units]
    if kind == "ratio":
        theta = 1.0
    elif target is not None:
        theta = float(target)
    else:
        total = sum(d for _, _, d in rows)
        theta = sum(n for _, n, _ in rows) / total if total else 0.0
    scored = [(u, n, d, _z(kind, theta, n, d)) for u, n, d in rows]
    z_ok = [(z, 1 / _s(kind, theta, d) ** 2) for _, _, d, z in scored if z is not None]
    phi, tau2 = dispersion([z for z, _ in z_ok], [w for _, w in z_ok], trim) if z_ok else (1.0, 0.0)
    if not overdispersion:
        tau2 = 0.0
    result = Funnel(kind=kind, target=theta, phi=phi, tau2=tau2, overdispersed=tau2 > 0)
    for unit, n, d, z in scored:
        value = n / d if d > 0 else None
        limits = _limits(kind, theta, d, tau2)
        outlier, alert = _side(value, limits.low998, limits.high998), _side(value, limits.low95, limits.high95)
        if kind == "ratio" and n == 0 and d > 0:
            # ln 0 has no place on the log scale: judge none observed by the exact Poisson chance of
            # it, exp(-E), against each limit's one-sided tail (so 2 expected and none seen is no signal)
            outlier = "low" if math.exp(-d) < (1 - 0.998) / 2 else None
            alert = "low" if math.exp(-d) < (1 - 0.95) / 2 else None
        result.points.append(
            FunnelPoint(
                unit=unit,
                numerator=n,
                denominator=d,
                value=value,
                z=z,
                limits=limits,
                outlier=outlier,
                alert=alert,
            )
        )
    return result


def _side(value: float | None, low: float | None, high: float | None) -> Literal["high", "low"] | None:
    if value is None or low is None or high is None:
        return None
    if value > high:
        return "high"
    if value < low:
        return "low"
    return None
