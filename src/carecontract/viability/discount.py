"""Present values the HM Treasury Green Book way: the social time preference rate and optimism bias.

The Green Book (HM Treasury, 2022 edition, Annex A6 "Discounting") discounts real costs and
benefits at the social time preference rate (STPR), 3.5% a year, declining for the long term:
3.5% for years 0–30, 3.0% for 31–75, 2.5% for 76–125, 2.0% for 126–200, 1.5% for 201–300 and
1.0% beyond. Year 0 is the first contract year, undiscounted; the factor for year *t* is the
product of 1/(1 + r_k) over years k = 1 … t, so the rate steps down without a jump in the
factor.

Optimism bias (Green Book supplementary guidance: optimism bias, HM Treasury 2003, from Mott
MacDonald's *Review of Large Public Procurement in the UK*, 2002): appraisers should uplift cost
estimates by an empirically based percentage; for outsourcing projects the guidance gives
operating-expenditure uplifts from 0% (lower bound) to 41% (upper bound). Here it is a parameter
applied to the first-year care-cost estimate (:func:`carecontract.viability.options.compare`).
"""

from __future__ import annotations

import numpy as np

#: (first year, rate): the Green Book's declining long-term STPR schedule
STPR_SCHEDULE = ((0, 0.035), (31, 0.030), (76, 0.025), (126, 0.020), (201, 0.015), (301, 0.010))
#: the supplementary guidance's optimism-bias range for outsourcing projects' operating costs
OUTSOURCING_OPTIMISM_BIAS = (0.0, 0.41)


def rate(year: int) -> float:
    """The STPR that applies to discounting into ``year`` (year 0 is the present)."""
    current = STPR_SCHEDULE[0][1]
    for first, r in STPR_SCHEDULE:
        if year >= first:
            current = r
    return current


def discount_factors(years: int) -> np.ndarray:
    """Discount factors for years 0 … years − 1 on the declining schedule."""
    factors = np.ones(years)
    for t in range(1, years):
        factors[t] = factors[t - 1] / (1.0 + rate(t))
    return factors


def present_value(values: np.ndarray) -> np.ndarray:
    """Present value over the last axis (years) of real values."""
    values = np.asarray(values, dtype=float)
    return values @ discount_factors(values.shape[-1])
