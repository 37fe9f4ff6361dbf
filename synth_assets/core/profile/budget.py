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


# Most rho one measurement of a share gets, as a multiple of an even split over every
# measurement of the refresh (see :func:`share_rho`).
SHARE_CAP = 4.0


def share_rho(rho: float, split: dict[str, float], counts: dict[str, float]) -> dict[str, float]:
    """rho per unit-weight measurement of each share. A share with nothing to measure (no
    datetime, no foreign key) gives its fraction to the others in proportion: budget follows
    signal, and the whole refresh budget is spent on what exists.

    A share with few measurements would give each a large slice: in lahman only people has
    dates, and the temporal share's 18 % went to two day histograms (noise 15 rows, where its
    year ranges got 155 and found one year of 1871-2019). No measurement gets more than
    ``SHARE_CAP`` times an even split; what a capped share leaves goes to the others in
    proportion to their fractions (water-filling, at most one round per share).
    """
    used = {share: frac for share, frac in split.items() if counts.get(share)}
    if not used:
        return dict.fromkeys(split, 0.0)
    cap = SHARE_CAP * rho / sum(counts[s] for s in used)
    capped: set[str] = set()
    per: dict[str, float] = {}
    for _ in range(len(used)):
        free = {s: f for s, f in used.items() if s not in capped}
        left = rho - sum(cap * counts[s] for s in capped)
        total = sum(free.values())
        per = {s: cap if s in capped else left * free[s] / total / counts[s] for s in used}
        over = {s for s in free if per[s] > cap}
        if not over or len(over) == len(free):
            break
        capped |= over
    return {share: per.get(share, 0.0) for share in split}
