"""Table sizes from released quantities only, kept within the stated size bound."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from synth_assets.core.config import SynthConfig
from synth_assets.core.errors import ConfigError

from .denoise import tail_support

# The stated size bound: every generated table's expected rows lie within [N s / F, N s F], N its
# released (noisy) source count, s the generation scale actually used (scale, a rows override of
# the unit table or a band's rescale), F = SIZE_FACTOR. A child table whose fan-out breaks it is
# calibrated (see :func:`tilt_fanout`); the spec records what was done per table under "size".
SIZE_FACTOR = 2.0
# N below this many standard deviations of its own noise is not a reliable size: the upper bound
# then uses the noise floor instead and the lower bound is not applied.
SIZE_FLOOR_SIGMAS = 4.0


def fanout_mids(f: dict[str, Any]) -> np.ndarray:
    """Children per parent each fan-out bin stands for (its mid, capped at the FK's maximum)."""
    lo = np.asarray(f["bins"], dtype=np.float64)
    hi = np.append(lo[1:], max(lo[-1] * 2, lo[-1] + 1))
    return np.minimum(np.where(hi - lo > 1, (lo + hi - 1) / 2, lo), f["max"])


def released_rows(tp: dict[str, Any], holdout: float) -> tuple[float, float] | None:
    """A child table's rows as its 1-way marginals release them, over all units, and that
    count's noise (standard deviation); None when no marginal was measured.

    These are clipped rows: each unit's first ``rows_per_unit`` only, so a lower estimate when
    units hold more (the demo's transactions: a quarter of the real rows at 8 per customer).
    """
    cols = [m for m in tp["columns"].values() if "counts" in m and m.get("sigma") is not None]
    if not cols:
        return None
    total = float(np.median([float(np.sum(m["counts"])) for m in cols]))
    sd = float(np.median([float(m["sigma"]) * math.sqrt(len(m["counts"])) for m in cols]))
    return total / (1 - holdout), sd / (1 - holdout)


def child_source_rows(
    tp: dict[str, Any], f: dict[str, Any], parent_rows: float, holdout: float
) -> tuple[float, float] | None:
    """A child table's source rows estimated from released quantities only, and their noise.

    The pack has no noisy row count for a child (its size follows the fan-out): the rows its
    marginals release (each unit's first ``m``) plus, for the rows past the clip, the fan-out's
    excess over ``m`` per parent within :func:`tail_support`, scaled from the measured parents
    to the parent table's rows. Counting the excess per parent rather than per unit can only
    undercount (``(a+b-m)+ >= (a-m)+ + (b-m)+``), so this is the size the release demonstrates,
    not an upper bound (the demo's transactions: 0.8 of the real rows); no budget is spent.
    """
    clipped = released_rows(tp, holdout)
    if clipped is None:
        return None
    rows, sd = clipped
    sigma = f.get("sigma")
    v = np.asarray(f["counts"], dtype=np.float64)
    if sigma:
        last = tail_support(v, f["bins"], float(sigma))
        excess = np.clip(fanout_mids(f)[: last + 1] - float(tp["rows_per_unit"]), 0, None)
        per_parent = parent_rows / max(1.0, float(v.sum()))
        rows += per_parent * float(np.clip(v[: last + 1], 0, None) @ excess)
        sd = math.hypot(sd, per_parent * float(sigma) * float(np.sqrt(excess @ excess)))
    return rows, sd


def size_bounds(source: float, sd: float, scale: float) -> tuple[float, float]:
    """[low, high] expected rows of a table of ``source`` noisy rows (noise ``sd``) at ``scale``.

    A count within ``SIZE_FLOOR_SIGMAS`` of its noise says little: the high end is then taken
    from the noise floor and there is no low end, so a tiny table never trips the bound.
    """
    reliable = source >= SIZE_FLOOR_SIGMAS * sd
    high = SIZE_FACTOR * scale * max(source, SIZE_FLOOR_SIGMAS * sd)
    return (scale * source / SIZE_FACTOR if reliable else 0.0), high


def tilt_fanout(p: np.ndarray, mids: np.ndarray, target_mean: float) -> tuple[np.ndarray, float]:
    """Fan-out probabilities exponentially tilted, ``p_i exp(-lam mid_i)``, to mean ``target_mean``.

    The tilt is the distribution closest to ``p`` (least Kullback-Leibler divergence) with that
    mean: it keeps the support and the shape inside it and moves mass off the noisy tail, whose
    large mids it weights down the most, rather than cutting bins or rescaling every count.
    ``lam`` by bisection (the mean is monotone in it); a target outside the support's range
    ends at its nearest end. Returns the probabilities and ``lam``.
    """
    p = np.asarray(p, dtype=np.float64)
    sup = p > 0
    logp = np.log(np.where(sup, p, 1.0))

    def tilted(lam: float) -> np.ndarray:
        w = np.where(sup, logp - lam * mids, -np.inf)
        q = np.exp(w - w.max())
        return q / q.sum()

    def mean(lam: float) -> float:
        return float(tilted(lam) @ mids)

    step = 1.0 / max(1.0, float(mids[sup].max()))
    sign = 1.0 if mean(0.0) > target_mean else -1.0
    a, b = 0.0, sign * step
    while (mean(b) - target_mean) * sign > 0 and abs(b) < 1e6:
        a, b = b, b * 2
    for _ in range(200):
        mid = (a + b) / 2
        if (mean(mid) - target_mean) * sign > 0:
            a = mid
        else:
            b = mid
    lam = (a + b) / 2
    return tilted(lam), lam


class _Sizing:
    """Table sizes as calibration walks the tables parents-first: per table its expected rows,
    per unit-owned table its source rows from released quantities and their noise, and what
    sizing it did; ``scale`` is the unit table's generated rows over its released count."""

    def __init__(self, gen_scale: float, rows_override: dict[str, int], holdout: float) -> None:
        self.gen_scale = gen_scale
        self.rows_override = rows_override
        self.holdout = holdout
        self.expected: dict[str, float] = {}
        self.source: dict[str, tuple[float, float]] = {}
        self.sizes: dict[str, dict[str, Any]] = {}
        self.scale = 1.0

    def root(self, name: str, tp: dict[str, Any], entry: dict[str, Any]) -> None:
        """The unit table: its override, or its released rows times the generation scale."""
        n = self.rows_override.get(name) or max(
            1, round(tp["rows_total_estimate"] * self.gen_scale)
        )
        entry["rows"] = int(n)
        self.expected[name] = n
        self.source[name] = (float(tp["rows_total_estimate"]), 0.0)
        self.scale = n / max(1.0, self.source[name][0])
        self.sizes[name] = _size_record(self.source[name], self.scale, n)

    def reference(self, name: str, tp: dict[str, Any], entry: dict[str, Any]) -> None:
        """A reference table keeps its rows (or its override); a public one is copied as it is."""
        if tp.get("public"):
            if name in self.rows_override:
                raise ConfigError(
                    f"rows override for {name!r}: it is declared public and copied as it "
                    "is; remove the override or the table from public.tables"
                )
            entry["copy"] = tp["copy"]
        entry["rows"] = int(self.rows_override.get(name) or tp["rows"])
        self.expected[name] = entry["rows"]

    def child(
        self, name: str, plan: dict[str, Any], tp: dict[str, Any], fanout: dict[str, Any]
    ) -> None:
        """A unit-owned child: its parent's rows through the primary fan-out, kept in bounds."""
        parent = plan["parent"]
        found = child_source_rows(
            tp, tp["fanout"][plan["parent_fk"]], self.source[parent][0], self.holdout
        )
        self.expected[name], self.sizes[name] = _sized_child(
            fanout[plan["parent_fk"]], self.expected[parent], found, self.scale
        )
        self.source[name] = found or (self.expected[name] / self.scale, 0.0)

    def to_band(self, root_entry: dict[str, Any], owned: list[str], band_rows: int) -> None:
        """Size the largest unit-owned table to the band: everything owned scales with the root."""
        largest = max(self.expected[t] for t in owned)
        factor = band_rows / max(1.0, largest)
        root_entry["rows"] = max(1, round(root_entry["rows"] * factor))
        for t in owned:
            self.expected[t] *= factor
            self.sizes[t] = {
                k: v * factor if k in _SIZE_SCALED and v is not None else v
                for k, v in self.sizes[t].items()
            }


def _shard_count(cfg: SynthConfig, unit_rows: float, root_rows: int) -> int:
    """Shards as configured, else one per ``rows_per_shard`` of a band, else 4; never more than
    the unit table's rows."""
    gen = cfg.generation
    if gen.shards is not None:
        shards = gen.shards
    elif gen.band:
        shards = max(1, math.ceil(unit_rows / gen.rows_per_shard))
    else:
        shards = 4
    return max(1, min(shards, root_rows))


_SIZE_SCALED = ("scale", "low", "high", "expected_before", "expected")


def _size_record(
    source: tuple[float, float] | None,
    scale: float,
    expected: float,
    before: float | None = None,
    lam: float | None = None,
) -> dict[str, Any]:
    """What the spec states about a table's size (``size`` in its entry)."""
    low, high = size_bounds(*source, scale) if source else (None, None)
    return {
        "source_noisy": source[0] if source else None,
        "source_sd": source[1] if source else None,
        "scale": scale,
        "factor": SIZE_FACTOR,
        "low": low,
        "high": high,
        "expected_before": expected if before is None else before,
        "expected": expected,
        "calibrated": lam is not None,
        "tilt": lam,
    }


def _sized_child(
    f: dict[str, Any], parent_rows: float, source: tuple[float, float] | None, scale: float
) -> tuple[float, dict[str, Any]]:
    """A child table's expected rows from its primary fan-out ``f``, tilted in place when they
    leave the size bound (target: its source rows at ``scale``), and its ``size`` record."""
    mids = fanout_mids(f)
    p = np.asarray(f["p"], dtype=np.float64)
    before = parent_rows * float(p @ mids)
    if source is None or parent_rows <= 0:
        return before, _size_record(source, scale, before)
    low, high = size_bounds(*source, scale)
    if low <= before <= high:
        return before, _size_record(source, scale, before)
    target = scale * (source[0] if before < low else max(source[0], SIZE_FLOOR_SIGMAS * source[1]))
    q, lam = tilt_fanout(p, mids, target / parent_rows)
    f["p"] = q.tolist()
    after = parent_rows * float(q @ mids)
    return after, _size_record(source, scale, after, before, lam)
