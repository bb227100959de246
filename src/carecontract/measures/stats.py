"""Uncertainty for outcome measures: Wilson intervals, Newcombe differences, funnel limits.

Why Wilson: payments will hang on these rates, often for small providers and tumour sites where
the textbook normal interval goes below 0 or above 1. Wilson's score interval stays in [0, 1] and
keeps its coverage at small counts (Brown, Cai & DasGupta 2001).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054
Z998 = 3.090232306167813  # two-sided 99.8%: the outer funnel limit used by NHS comparisons


def wilson(numerator: int, denominator: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval for numerator/denominator; (None, None) when there is no denominator."""
    if denominator <= 0:
        return None, None
    p = numerator / denominator
    z2 = z * z
    centre = (p + z2 / (2 * denominator)) / (1 + z2 / denominator)
    half = z * math.sqrt(p * (1 - p) / denominator + z2 / (4 * denominator * denominator)) / (1 + z2 / denominator)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # exact at the ends: rounding must not put an observed 0% or 100% outside its own interval
    return (0.0 if numerator == 0 else low), (1.0 if numerator == denominator else high)


def newcombe(n1: int, d1: int, n2: int, d2: int) -> tuple[float | None, float | None]:
    """Interval for p1 − p2 from the two Wilson intervals (Newcombe's method 10)."""
    if d1 <= 0 or d2 <= 0:
        return None, None
    p1, p2 = n1 / d1, n2 / d2
    l1, u1 = wilson(n1, d1)
    l2, u2 = wilson(n2, d2)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)  # type: ignore[operator]
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)  # type: ignore[operator]
    return low, high


def mean_interval(total: float, total_sq: float, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Normal interval for a mean from its sum and sum of squares."""
    if n <= 1:
        return (total / n, total / n) if n == 1 else (None, None)
    mean = total / n
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return mean - half, mean + half


def funnel_limits(overall: float, denominator: int, z: float) -> tuple[float, float]:
    """Control limits around the overall rate for a unit of this size (binomial, normal approx.)."""
    if denominator <= 0:
        return 0.0, 1.0
    half = z * math.sqrt(overall * (1 - overall) / denominator)
    return max(0.0, overall - half), min(1.0, overall + half)
