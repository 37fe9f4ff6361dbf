"""Draws from the spec's distributions: inverse CDFs, conditionals along the dependency tree,
and reference popularity."""

from __future__ import annotations

from typing import Any

import numpy as np

from synth_assets.core import copula
from synth_assets.core.kinds import ColumnKind


def _inverse_cdf(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(p) - 1)


def _groups(keys: np.ndarray):
    """(value, row indices) for each distinct value of ``keys`` — one sort, no per-value scans."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    cuts = np.flatnonzero(np.diff(sk)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(sk)]))
    for a, b in zip(starts, ends, strict=True):
        if b > a:
            yield sk[a], order[a:b]


def _conditional(cond: np.ndarray, parent: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from P(child | parent) for every row in one vectorized search.

    Row v of the conditional CDF is shifted by v, so the flattened CDFs increase monotonically
    and ``searchsorted(flat, v + u)`` lands inside row v: no sort, no per-parent loop.
    """
    p = np.clip(np.asarray(cond, dtype=np.float64), 0, None)
    sums = p.sum(axis=1, keepdims=True)
    p = np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), 1.0 / p.shape[1])
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = 1.0
    k = cdf.shape[1]
    flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()
    idx = np.searchsorted(flat, parent + u, side="right") - parent * k
    return np.clip(idx, 0, k - 1)


def _sample_tree(
    tspec: dict[str, Any], n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Codes of every modelled column, sampled ancestrally along the table's dependency tree,
    and for numeric columns where each row sits inside its code (a fraction in [0, 1]).

    A numeric child linked to its numeric parent (``tree.links``, see :mod:`.copula`) keeps the
    group the measured pair gives it and takes its place inside that group from the parent's."""
    cols = tspec["columns"]
    tree = tspec["tree"]
    links = tree.get("links") or {}
    # Only linked columns and their parents need a place inside their codes; every other
    # numeric column draws its own inside its bin when decoded.
    placed = set(links) | {tree["parent"][k] for k in links}
    codes: dict[str, np.ndarray] = {}
    scales: dict[str, copula.ValueScale] = {}
    positions: dict[str, np.ndarray] = {}
    for node in tree["order"]:
        par = tree["parent"][node]
        if par is None:
            codes[node] = _inverse_cdf(np.asarray(cols[node]["p"]), rng.random(n))
        else:
            cond = np.asarray(tree["cond"][node])
            codes[node] = _conditional(cond, codes[par], rng.random(n))
        c = cols[node]
        if c["kind"] != ColumnKind.NUMERIC or node not in placed:
            continue
        scale = scales[node] = copula.ValueScale(c.get("atoms") or [], c["edges"], c["p"])
        link = links.get(node)
        bounds = scale.group_bounds(link["groups"]) if link and par in positions else None
        if bounds is not None:
            ppos = np.where(codes[par] == scales[par].null, np.nan, positions[par])
            codes[node], positions[node] = copula.linked_positions(
                scale, codes[node], bounds, link["groups"], link["rho"], ppos, rng
            )
        else:
            positions[node] = scale.position(codes[node], rng.random(n))
    within = {k: scales[k].within(codes[k], pos) for k, pos in positions.items()}
    return codes, within


def _popularity(f: dict[str, Any], m: int, rng: np.random.Generator) -> np.ndarray:
    """Weights of ``m`` reference rows from a histogram of sampled children per row.

    The histogram counts a sample of the children (one per unit), so it is popularity plus
    Poisson sampling noise. Moments deconvolve it: CV^2 of popularity = (Var - Mean) / Mean^2;
    weights are log-normal with that CV (uniform when there is no overdispersion). Rows with
    no sampled child beyond what that log-normal explains are idle: a share ``pi0`` of the rows
    gets weight 0 and the log-normal carries the moments of the rest. Without it, 1,400
    airports of which ~100 see flights all got flights (fan-out score 0.09).
    """
    bins = np.asarray(f["bins"], dtype=np.float64)
    hi = np.append(bins[1:], bins[-1] * 2 if bins[-1] > 0 else 1.0)
    mid = np.where(hi - bins > 1, (bins + hi - 1) / 2, bins)
    p = np.asarray(f["p"], dtype=np.float64)
    # Noise spreads mass into far bins where it would dominate the variance: estimate the mean
    # on the near bins, then keep bins up to 8x that mean. The mean of rows with a sampled
    # child: counted with the idle rows, 1,300 idle airports of 1,400 set the cut at 16 and
    # dropped every busy one.
    near = (mid <= 64) & (mid > 0)
    mean0 = float(p[near] @ mid[near] / max(p[near].sum(), 1e-12))
    keep = mid <= max(8.0 * mean0, 16.0)
    p = np.where(keep, p, 0.0)
    p = p / max(p.sum(), 1e-12)
    mean = float(p @ mid)
    var = float(p @ (mid - mean) ** 2)
    if mean <= 0 or var <= mean:
        return np.ones(m)
    pi0 = _idle_share(mean, var, float(p[0]) if bins[0] == 0 else 0.0)
    cv2 = (var + mean**2 - mean) / (1.0 - pi0) / (mean / (1.0 - pi0)) ** 2 - 1.0
    s2 = np.log1p(max(cv2, 0.0))
    w = np.exp(rng.normal(-s2 / 2, np.sqrt(s2), size=m))
    idle = min(m - 1, int(round(pi0 * m)))  # at least one row stays busy
    if idle > 0:
        w[rng.permutation(m)[:idle]] = 0.0
    return w


def _lognormal_zeros(mean: float, var: float, pi0: float) -> float:
    """Share of rows with no sampled child when a share ``pi0`` is idle and the rest has
    log-normal rates with the histogram's moments (Gauss-Hermite over the log-normal)."""
    l1 = mean / (1.0 - pi0)
    cv2 = (var + mean**2 - mean) / (1.0 - pi0) / l1**2 - 1.0
    s2 = float(np.log1p(max(cv2, 0.0)))
    x, wq = np.polynomial.hermite_e.hermegauss(40)
    lam = l1 * np.exp(np.sqrt(s2) * x - s2 / 2)
    return pi0 + (1.0 - pi0) * float(wq @ np.exp(-lam) / wq.sum())


def _idle_share(mean: float, var: float, zeros: float) -> float:
    """The idle share that makes the predicted rows without a sampled child match the
    measured ones (0 when the log-normal alone explains them); bisection, both monotone."""
    if zeros <= _lognormal_zeros(mean, var, 0.0):
        return 0.0
    lo, hi = 0.0, min(zeros, 0.999)
    for _ in range(40):
        mid = (lo + hi) / 2
        if _lognormal_zeros(mean, var, mid) < zeros:
            lo = mid
        else:
            hi = mid
    return lo
