"""The refresh budget split into shares, and the rho one measurement of a share gets."""

from __future__ import annotations

from dataclasses import dataclass

from synth_assets.core import dp

# Relative budget of a measurement within its share (1.0 unless listed): null-rate vectors and
# row counts need little, the hour-of-week profile needs more (168 cells, a fidelity gate).
WEIGHT = {
    "nulls": 0.3,
    "rows": 0.5,
    "length": 0.5,
    "day": 1.0,
    "how": 1.5,
    "after": 0.2,
    "range": 2.0,  # numeric and datetime ranges: without one a column cannot be generated
    "refine": 2.0,  # a numeric range narrowed inside its powers of two
    "values": 3.0,  # category values: a value not released is never generated
    "point_masses": 2.0,  # a refinement of the numeric marginal
}


@dataclass
class Budget:
    """rho per measurement, by share of the refresh budget and number of measurements."""

    acc: dp.Accountant
    per: dict[str, float]

    def __call__(self, share: str, weight: float = 1.0) -> float:
        return self.per[share] * weight


def share_rho(rho: float, split: dict[str, float], counts: dict[str, float]) -> dict[str, float]:
    """rho per unit-weight measurement of each share. A share with nothing to measure (no
    datetime, no foreign key) gives its fraction to the others in proportion: budget follows
    signal, and the whole refresh budget is spent on what exists."""
    used = {share: frac for share, frac in split.items() if counts.get(share)}
    total = sum(used.values())
    return {
        share: (rho * used[share] / total / counts[share]) if share in used else 0.0
        for share in split
    }
