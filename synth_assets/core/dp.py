"""Differential privacy: OpenDP mechanisms and a zCDP accountant with a budget ledger.

Every release of the metrics pack goes through one of three OpenDP measurements:
- ``noisy_counts``: the discrete Gaussian on an integer count vector over a known domain;
- ``noisy_category_counts``: propose-test-release on value counts (unknown domain): a value is
  released only if its noisy count clears a threshold set so that a value held by one unit
  leaks with probability below the delta share it is given;
- ``select``: the exponential mechanism (Gumbel noisy max) for choosing pairs.
Noise comes from OpenDP's own CSPRNG; nothing here takes a seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import numpy as np
import opendp.combinators
import opendp.domains
import opendp.measurements
import opendp.measures
import opendp.metrics
import opendp.mod

from .errors import BudgetError

# The prelude's names from the modules that hold them: `opendp.prelude` also imports OpenDP's
# scikit-learn extras (~2 s on each process start, every shard worker included).
dp = SimpleNamespace(
    atom_domain=opendp.domains.atom_domain,
    vector_domain=opendp.domains.vector_domain,
    map_domain=opendp.domains.map_domain,
    absolute_distance=opendp.metrics.absolute_distance,
    linf_distance=opendp.metrics.linf_distance,
    l2_distance=opendp.metrics.l2_distance,
    l02inf_distance=opendp.metrics.l02inf_distance,
    zero_concentrated_divergence=opendp.measures.zero_concentrated_divergence,
    m=opendp.measurements,
    c=opendp.combinators,
    enable_features=opendp.mod.enable_features,
)
dp.enable_features("contrib")


def rho_for_epsilon(epsilon: float, delta: float) -> float:
    """Largest zCDP rho whose standard conversion gives (epsilon, delta)-DP (Bun & Steinke 2016)."""
    log_term = math.log(1.0 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def epsilon_for_rho(rho: float, delta: float) -> float:
    """Epsilon of rho-zCDP at ``delta`` via OpenDP's conversion (tighter than the closed form)."""
    if rho <= 0:
        return 0.0
    meas = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float), scale=1.0
    )
    # scale 1, sensitivity s gives rho = s^2 / 2: pick s so that the map is exactly `rho`.
    profile = dp.c.make_zCDP_to_approxDP(meas).map(math.sqrt(2.0 * rho))
    return float(profile.epsilon(delta))


def rho_budget_for(epsilon: float, delta: float) -> float:
    """Largest rho whose OpenDP conversion stays within (epsilon, delta), by bisection."""
    lo = rho_for_epsilon(epsilon, delta)  # the closed form is conservative: a valid lower end
    hi = lo * 4.0
    while epsilon_for_rho(hi, delta) <= epsilon:
        hi *= 2.0
    for _ in range(40):
        mid = (lo + hi) / 2.0
        if epsilon_for_rho(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class LedgerEntry:
    name: str
    mechanism: str
    rho: float
    sensitivity: float
    scale: float
    delta: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


class Accountant:
    """zCDP accountant: refuses any measurement that would exceed the refresh's rho budget."""

    def __init__(self, epsilon: float, delta: float):
        self.epsilon_target = epsilon
        self.delta = delta
        # Half of delta converts zCDP to (eps, delta); the other half pays for thresholded
        # category releases.
        self.delta_conversion = delta / 2.0
        self.delta_threshold = delta / 2.0
        self.rho_budget = rho_budget_for(epsilon, self.delta_conversion)
        self.entries: list[LedgerEntry] = []

    @property
    def rho_spent(self) -> float:
        return float(sum(e.rho for e in self.entries))

    @property
    def delta_spent(self) -> float:
        return float(sum(e.delta for e in self.entries))

    def record(self, entry: LedgerEntry, requested: float | None = None) -> None:
        if requested is not None and entry.rho > requested * (1 + 1e-6):
            raise BudgetError(
                f"measurement {entry.name!r}: OpenDP charges rho={entry.rho:.4g}, more than the "
                f"{requested:.4g} planned for it (a calibration bug, not a data problem)"
            )
        if self.rho_spent + entry.rho > self.rho_budget * (1 + 1e-9):
            raise BudgetError(
                f"measurement {entry.name!r} needs rho={entry.rho:.3g} but only "
                f"{self.rho_budget - self.rho_spent:.3g} of the refresh budget rho={self.rho_budget:.3g} "
                "is left; raise privacy.epsilon or measure fewer columns"
            )
        if self.delta_spent + entry.delta > self.delta_threshold * (1 + 1e-9):
            raise BudgetError(f"measurement {entry.name!r} would exceed the threshold delta budget")
        self.entries.append(entry)

    def epsilon_spent(self) -> float:
        return epsilon_for_rho(self.rho_spent, self.delta_conversion)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounting": "zCDP (rho), reported as (epsilon, delta) via OpenDP make_zCDP_to_approxDP",
            "epsilon_target": self.epsilon_target,
            "delta": self.delta,
            "delta_conversion": self.delta_conversion,
            "delta_threshold_spent": self.delta_spent,
            "rho_budget": self.rho_budget,
            "rho_spent": self.rho_spent,
            "epsilon_spent": self.epsilon_spent(),
            "entries": [asdict(e) for e in self.entries],
        }


@lru_cache(maxsize=256)
def _gaussian(scale: float):
    return dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=scale
    )


def noisy_counts(
    acc: Accountant, name: str, counts: np.ndarray, sensitivity: int, rho: float, **detail: Any
) -> np.ndarray:
    """Discrete Gaussian noise on an integer count vector (L2 sensitivity ``sensitivity``)."""
    sensitivity = max(1, int(sensitivity))
    scale = sensitivity / math.sqrt(2.0 * rho)
    meas = _gaussian(float(scale))
    actual = float(meas.map(sensitivity))
    acc.record(
        LedgerEntry(name, "discrete_gaussian", actual, sensitivity, scale, detail=detail), rho
    )
    values = [int(v) for v in np.asarray(counts, dtype=np.int64).ravel()]
    if not values:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(meas(values), dtype=np.int64).reshape(np.shape(counts))


def noisy_category_counts(
    acc: Accountant,
    name: str,
    counts: dict[str, int],
    per_unit: int,
    rho: float,
    delta: float,
    *,
    distinct_units: bool = False,
    **detail: Any,
) -> dict[str, int]:
    """Release value counts, keeping only values whose noisy count clears a DP threshold.

    ``per_unit`` bounds how many rows (so how many keys, and how much per key) one unit adds.
    With ``distinct_units`` the counts are of distinct units per value: a unit still touches up
    to ``per_unit`` keys but moves each by at most 1, so the L2 sensitivity is sqrt(per_unit)
    instead of per_unit (the threshold can be far lower at the same rho).
    """
    per_unit = max(1, int(per_unit))
    per_key = 1 if distinct_units else per_unit
    scale = math.sqrt(per_unit * per_key) / math.sqrt(2.0 * rho)  # OpenDP: L2 = sqrt(L1 * Linf)
    dom = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l02inf_distance(dp.absolute_distance(T=int))
    d_in = (per_unit, per_unit, per_key)  # (keys touched, L1, L-infinity) of one unit
    threshold = _least_threshold(dom, metric, scale, d_in, delta, per_key)
    meas = dp.m.make_gaussian_threshold(dom, metric, scale=scale, threshold=threshold)
    r, d = meas.map(d_in)
    acc.record(
        LedgerEntry(
            name,
            "gaussian_threshold",
            float(r),
            per_unit,
            scale,
            delta=float(d),
            detail={**detail, "threshold": threshold, "distinct_units": distinct_units},
        ),
        rho,
    )
    # Keys cross into OpenDP as C strings, which end at the first NUL: the NULL key "\x00null"
    # came back as "" (a NULL released as an empty string, merged with a real ""). A key with
    # a NUL crosses as the hex of its bytes, tagged apart from every other key.
    names: dict[str, str] = {}
    clean: dict[str, int] = {}
    for k, v in counts.items():
        if v > 0:
            k = str(k)
            e = "=" + k if "\x00" not in k else "!" + k.encode().hex()
            names[e], clean[e] = k, int(min(v, 2**31 - 1))
    if not clean:
        return {}
    return {names[e]: int(v) for e, v in meas(clean).items()}


def _least_threshold(dom, metric, scale: float, d_in: tuple, delta: float, floor: int) -> int:
    """The smallest integer threshold whose delta (OpenDP's own privacy map) is within
    ``delta``: every count above it is a value released, and a threshold set a few steps too
    high (a geometric search overshot by up to 15 %) drops real values for nothing."""

    def delta_at(threshold: int) -> float:
        meas = dp.m.make_gaussian_threshold(dom, metric, scale=scale, threshold=threshold)
        return float(meas.map(d_in)[1])

    lo, hi = floor, floor + max(1, int(math.ceil(scale * 3)))
    while delta_at(hi) > delta:  # delta falls with the threshold: find one that suffices
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # invariant: delta_at(hi) <= delta < delta_at(lo) (or lo is the floor)
        mid = (lo + hi) // 2
        if delta_at(mid) <= delta:
            hi = mid
        else:
            lo = mid
    return hi


@lru_cache(maxsize=64)
def _noisy_max(scale: float):
    return dp.m.make_noisy_max(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.linf_distance(T=float),
        dp.zero_concentrated_divergence(),
        scale=scale,
    )


def select(
    acc: Accountant, name: str, scores: np.ndarray, sensitivity: float, rho: float, **detail: Any
) -> int:
    """Exponential mechanism (Gumbel noisy max): index of a high score, privately."""
    # OpenDP's map for Gumbel noisy max under zCDP is rho = (sensitivity / scale)^2 / 2.
    scale = float(sensitivity) / math.sqrt(2.0 * rho)
    meas = _noisy_max(scale)
    actual = float(meas.map(float(sensitivity)))
    acc.record(
        LedgerEntry(
            name, "exponential_noisy_max", actual, float(sensitivity), scale, detail=detail
        ),
        rho,
    )
    return int(meas([float(s) for s in scores]))
