"""Customer accounts: size decides the segment, industry carries part of the latent fit.

Each account gets a latent ``fit`` to the ideal customer profile (industry fit plus noise).
Deals inherit it as a driver of their health, so industry is a real but noisy predictor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spm_ml.data.simulate import catalog

logger = logging.getLogger(__name__)

SEGMENT_SHARES = (0.55, 0.33, 0.12)
EMPLOYEE_RANGES = ((10, 250), (250, 2_500), (2_500, 60_000))


@dataclass(frozen=True)
class AccountPool:
    """Accounts as arrays, plus the index of accounts per (region, segment)."""

    region: np.ndarray
    segment: np.ndarray
    industry: np.ndarray
    employees: np.ndarray
    annual_revenue: np.ndarray
    fit: np.ndarray
    name: np.ndarray
    domain: np.ndarray
    by_region_segment: dict[tuple[int, int], np.ndarray]

    def __len__(self) -> int:
        return len(self.region)


def make_accounts(n: int, n_regions: int, rng: np.random.Generator) -> AccountPool:
    """Draw ``n`` accounts spread over ``n_regions`` regions and the three segments.

    Every (region, segment) pool is guaranteed non-empty so any rep can always find an account.
    """
    n = max(n, 3 * n_regions * 4)
    region = np.arange(n) % n_regions
    rng.shuffle(region)
    segment = rng.choice(3, size=n, p=SEGMENT_SHARES)
    # guarantee non-empty pools: the first 3 * n_regions accounts cover every combination
    k = 3 * n_regions
    region[:k] = np.repeat(np.arange(n_regions), 3)
    segment[:k] = np.tile(np.arange(3), n_regions)
    lo = np.array([r[0] for r in EMPLOYEE_RANGES], dtype=float)[segment]
    hi = np.array([r[1] for r in EMPLOYEE_RANGES], dtype=float)[segment]
    employees = np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi)))).astype(np.int64)
    industry = rng.choice(len(catalog.INDUSTRIES), size=n, p=catalog.INDUSTRY_WEIGHT)
    revenue_per_employee = np.exp(rng.normal(np.log(180_000), 0.45, size=n))
    annual_revenue = np.round(employees * revenue_per_employee, -3)
    fit = np.asarray(catalog.INDUSTRY_FIT)[industry] + rng.normal(0.0, 0.45, size=n)
    first = np.asarray(catalog.COMPANY_FIRST, dtype=object)
    second = np.asarray(catalog.COMPANY_SECOND, dtype=object)
    suffix = np.asarray(catalog.COMPANY_SUFFIX, dtype=object)
    i1 = rng.integers(len(first), size=n)
    i2 = rng.integers(len(second), size=n)
    i3 = rng.integers(len(suffix), size=n)
    name = first[i1] + " " + second[i2] + suffix[i3]
    lower_first = np.array([s.lower() for s in first], dtype=object)
    lower_second = np.array([s.lower() for s in second], dtype=object)
    domain = lower_first[i1] + lower_second[i2] + ".com"
    pools = {
        (r, s): np.flatnonzero((region == r) & (segment == s))
        for r in range(n_regions)
        for s in range(3)
    }
    return AccountPool(
        region=region,
        segment=segment,
        industry=industry,
        employees=employees,
        annual_revenue=annual_revenue,
        fit=fit,
        name=name,
        domain=domain,
        by_region_segment=pools,
    )
