"""Noisy DP counts turned into probabilities (projection, shrinkage, IPF, smoothing).

Post-processing of DP output spends no budget; every distribution in the spec passes here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from synth_assets.core.errors import GenerationError
from synth_assets.core.kinds import ColumnKind

# An octave of fan-out bins continues the tail a child's count relies on when its pooled count
# clears this many standard deviations (see :func:`tail_support`).
SIZE_TAIL_SIGMAS = 2.0


def normalize(counts: list[float] | np.ndarray) -> np.ndarray:
    """Non-negative probabilities from noisy counts (uniform when nothing survives)."""
    v = np.clip(np.asarray(counts, dtype=np.float64), 0, None)
    s = v.sum()
    return v / s if s > 0 else np.full(len(v), 1.0 / max(1, len(v)))


def project(counts: list[float] | np.ndarray, total: float | None = None) -> np.ndarray:
    """Non-negative counts closest (Euclidean) to the noisy ones with the same total: every cell
    minus one common shift, floored at 0 (soft thresholding).

    Clipping alone keeps the positive half of the noise in every empty cell (a 40x40 pair at
    sigma 50 would gain ~30,000 phantom rows); a hard threshold at k sigma erases real small
    cells. The projection removes exactly the noise mass the negative cells reveal.
    """
    v = np.asarray(counts, dtype=np.float64).ravel()
    if v.size == 0:
        return v
    t = float(v.sum()) if total is None else float(total)
    if t <= 0:
        return np.where(v == v.max(), 1.0, 0.0)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - t
    idx = np.arange(1, v.size + 1)
    rho = int(np.nonzero(u - css / idx > 0)[0][-1])
    tau = css[rho] / (rho + 1)
    return np.maximum(v - tau, 0.0)


def pair_joint(
    counts: list[list[float]] | np.ndarray,
    sigma: float | None,
    pa: list[float] | np.ndarray,
    pb: list[float] | np.ndarray,
    total: float | None,
    groups: list[list[int]] | None = None,
    ordered: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> np.ndarray:
    """A pair's joint counts from its noisy measurement: the product of the (much less noisy)
    one-way marginals plus the measured deviation from independence, shrunk by the share of its
    energy that the noise explains (James-Stein), then projected onto non-negative counts.

    A pair's cells are often far below the noise (1,500 rows over 24 x 25 cells at sigma 35):
    projecting that raw puts the table's mass on the few cells where the noise happened to be
    largest, a strong dependence that is not in the data. Shrinking keeps what clears the noise
    and falls back to independence where nothing does. Along a numeric column's axis
    (``ordered``: its groups in value order, None for a category column), cells cut off from
    every cell that clears the noise are emptied (:func:`connected_to_signal`).
    """
    v = np.asarray(counts, dtype=np.float64)
    t = float(v.sum()) if total is None else float(total)
    pa, pb = np.asarray(pa, dtype=np.float64), np.asarray(pb, dtype=np.float64)
    ga = np.asarray(groups[0] if groups else range(pa.size), dtype=np.int64)
    gb = np.asarray(groups[1] if groups else range(pb.size), dtype=np.int64)
    if ga.size != pa.size or gb.size != pb.size or v.shape != (ga.max() + 1, gb.max() + 1):
        raise GenerationError(
            f"pair of shape {v.shape} does not match its columns' codes "
            f"({pa.size} and {pb.size} codes in {ga.max() + 1} and {gb.max() + 1} groups)"
        )
    qa = np.bincount(ga, pa, minlength=v.shape[0])
    qb = np.bincount(gb, pb, minlength=v.shape[1])
    indep = np.outer(qa, qb) * t
    d = v - indep
    energy = float((d * d).sum())
    noise = d.size * float(sigma or 0.0) ** 2
    keep = max(0.0, 1.0 - noise / energy) if energy > 0 else 0.0
    coarse = project(indep + keep * d, t).reshape(v.shape)
    if any(o is not None for o in ordered) and keep > 0:
        coarse = connected_to_signal(coarse, v, float(sigma or 0.0), ordered)
    # Consistent with the one-way marginals before expanding (a trace of independence keeps
    # IPF feasible where the projection emptied a whole row or column block).
    if t > 0:
        coarse = ipf(coarse + 1e-3 * indep, qa / max(qa.sum(), 1e-12), qb / max(qb.sum(), 1e-12))
        coarse *= t
    # Back to the fine codes: within a group, codes share its mass as the one-way marginal does.
    wa = np.divide(pa, qa[ga], out=np.zeros_like(pa), where=qa[ga] > 0)
    wb = np.divide(pb, qb[gb], out=np.zeros_like(pb), where=qb[gb] > 0)
    return coarse[np.ix_(ga, gb)] * wa[:, None] * wb[None, :]


def connected_to_signal(
    joint: np.ndarray,
    raw: np.ndarray,
    sigma: float,
    ordered: tuple[np.ndarray | None, np.ndarray | None],
    k: float = 3.0,
) -> np.ndarray:
    """``joint`` with the non-empty cells kept only where they connect, through non-empty
    cells next to each other in value along the ordered axes (``ordered``: an axis' indices in
    value order, None where it has no order), to a cell whose ``raw`` count clears ``k`` sigma.
    :func:`denoise_ordered` applies it to one column's bins (a single row).

    The projection leaves the noise that happened to be largest in cells far from the data: on
    diamonds' length x carat (99 % of rows near the diagonal) about 1-2 % of the rows of every
    row of deciles sat in far corners. Real data is contiguous along its values; an island of
    mass with no cell clearing the noise is noise. diamonds' k-marginal 916 -> 923 (20
    refreshes); wage, hmda and credit_data moved within their standard errors."""
    from scipy.ndimage import label

    if sigma <= 0 or joint.ndim != 2 or (ordered[0] is None and ordered[1] is None):
        return joint
    ia = np.arange(joint.shape[0]) if ordered[0] is None else np.asarray(ordered[0])
    ib = np.arange(joint.shape[1]) if ordered[1] is None else np.asarray(ordered[1])
    if ia.size != joint.shape[0] or ib.size != joint.shape[1]:
        return joint
    j = joint[np.ix_(ia, ib)]
    alive = j > 0
    strong = alive & (np.asarray(raw, dtype=np.float64)[np.ix_(ia, ib)] >= k * sigma)
    if not strong.any():
        return joint
    structure = np.zeros((3, 3), dtype=bool)
    structure[:, 1] = ordered[0] is not None
    structure[1, :] = ordered[1] is not None
    if ordered[0] is not None and ordered[1] is not None:
        structure[:, :] = True
    lab, _ = label(alive, structure=structure)
    kept = np.where(np.isin(lab, np.unique(lab[strong])), j, 0.0)
    out = np.empty_like(kept)
    out[np.ix_(ia, ib)] = kept
    return out


def denoise(counts: list[float] | np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Probabilities from noisy counts by :func:`project` (the noise is zero-mean: the noisy
    total is the unbiased estimate of the true one). ``sigma`` is kept for callers' clarity."""
    v = np.asarray(counts, dtype=np.float64)
    if v.size == 0:
        return v
    return normalize(project(v).reshape(v.shape))


def denoise_ordered(
    counts: list[float] | np.ndarray,
    sigma: float | None,
    lead: int = 0,
    outer: tuple[int, int] = (0, 0),
    k: float = 3.0,
    k_outer: float = 2.0,
) -> np.ndarray:
    """Probabilities of ordered bins (after ``lead`` unordered cells, before one null cell) from
    noisy counts: :func:`project`, then only the runs of adjacent non-empty bins that hold a bin
    clearing ``k`` sigma are kept, and the outer bins (``outer``: how many of the first / the
    last bins widen the range to where a tail might be; a bool counts as one) only out to
    where they stop showing data (:func:`_tail_from_body`).

    Real data is contiguous around its body; a bin that survives the projection far from it is
    noise, and so is an outer bin that the marginal cannot tell from empty: kept, they drew
    years 1168 and 2035 for a column of 2003-2009."""
    raw = np.asarray(counts, dtype=np.float64)
    v = project(raw).reshape(raw.shape)
    if not sigma or raw.size < lead + 2:
        return normalize(v)
    bins, braw = v[lead:-1], raw[lead:-1]
    n_lo, n_hi = int(outer[0]), int(outer[-1])
    if n_lo:
        bins[:n_lo] = _tail_from_body(bins[:n_lo][::-1], braw[:n_lo][::-1], sigma, k_outer)[::-1]
    if n_hi:
        bins[-n_hi:] = _tail_from_body(bins[-n_hi:], braw[-n_hi:], sigma, k_outer)
    order = (None, np.arange(bins.size))  # one row, ordered along its bins
    bins[:] = connected_to_signal(bins[None, :], braw[None, :], float(sigma), order, k)[0]
    return normalize(v)


def _tail_from_body(v: np.ndarray, raw: np.ndarray, sigma: float, k: float) -> np.ndarray:
    """One side's outer bins, ordered outward from the body: kept while a bin, or it and
    everything beyond it pooled, clears ``k`` sigma of its noise; from the first that does
    neither, emptied. A tail runs on from the body; noise beyond it does not (one outer bin is
    kept where its own count clears ``k`` sigma)."""
    out = v.copy()
    for i in range(raw.size):
        rest = raw[i:]
        if raw[i] < k * sigma and rest.sum() < k * sigma * np.sqrt(rest.size):
            out[i:] = 0.0
            break
    return out


def denoise_marginal(counts: list[float] | np.ndarray, col: dict[str, Any]) -> np.ndarray:
    """A one-way marginal's probabilities as the spec denoises it: numeric codes (point masses,
    ordered bins, null) by :func:`denoise_ordered`, any other by :func:`denoise`. ``col`` is a
    pack or spec column (``kind``, ``sigma``, ``atoms``, ``outer_bins``)."""
    if col["kind"] == ColumnKind.NUMERIC:
        lead, outer = len(col.get("atoms") or []), tuple(col.get("outer_bins", (False, False)))
        return denoise_ordered(counts, col.get("sigma"), lead, outer)
    return denoise(counts, col.get("sigma"))


def significant(counts: list[float] | np.ndarray, sigma: float | None, k: float = 3.0) -> bool:
    """Whether the cells of a noisy count vector together clear ``k`` sigma of their pooled
    noise (signal, not noise).

    Any single cell over 2 sigma was the test before: over a column's few cells, pure noise
    passed it about once in twenty, and lahman's fielding.zr (about 300 of 40,000 rows not
    NULL, no range releasable) stopped one refresh in three or four by name."""
    v = np.asarray(counts, dtype=np.float64)
    if not v.size:
        return False
    return float(v.sum()) >= k * (sigma or 0.0) * float(np.sqrt(v.size)) and float(v.sum()) > 0


def denoise_tail(
    counts: list[float] | np.ndarray, sigma: float | None, k: float = 3.5, k_extend: float = 2.0
) -> np.ndarray:
    """Zeroes cells below ``k`` sigma, but a bin just past the kept body survives at a lower bar, and so on
    outward: heavy tails are contiguous, isolated far bins are noise."""
    v = np.asarray(counts, dtype=np.float64)
    if not sigma or v.size == 0:
        return normalize(v)
    keep = v >= k * sigma
    if not keep.any():
        keep = v == v.max()
    last = int(np.flatnonzero(keep)[-1])
    while last + 1 < v.size and v[last + 1] >= k_extend * sigma:
        last += 1
        keep[last] = True
    return normalize(np.where(keep, v, 0.0))


def tail_support(
    counts: list[float] | np.ndarray, bins: list[int], sigma: float, k: float = SIZE_TAIL_SIGMAS
) -> int:
    """Last fan-out bin of the tail that hangs together with the body, walking up by octaves.

    From the octave holding the largest count, each next octave (1, 2-3, 4-7, ...: the exact bins
    pooled like the wide ones) continues the tail while its pooled count clears ``k`` sigma; the
    first octave that does not ends it. A real tail decays octave by octave (transactions per
    account: 8-15, 16-31, ... 64-127 all clear it), while noise that
    :func:`denoise_fanout` keeps far out (a few 2-sigma bins at 512-4095 whose pooled tail clears
    3.5 sigma: 40x the cards of a 1,500-customer demo) sits beyond an octave of nothing.
    One weak octave is bridged where the next clears on its own and the two together clear:
    lahman's salaries per player (4-7 at 232 against 280, 8-15 at 561 against 396) ended at 3,
    and the size calibration tilted the players without a salary row away (0.74 -> 0.60).
    """
    v = np.asarray(counts, dtype=np.float64)
    octave = np.array([0 if b == 0 else int(b).bit_length() for b in bins])
    n_oct = int(octave.max()) + 1
    sums = np.bincount(octave, weights=v, minlength=n_oct)
    width = np.bincount(octave, minlength=n_oct)

    def clears(a: int, b: int) -> bool:  # octaves a..b-1 pooled
        return sums[a:b].sum() >= k * sigma * math.sqrt(max(1, int(width[a:b].sum())))

    def bridged(i: int) -> bool:  # a weak octave the next one, clear on its own, carries on
        return i + 1 < n_oct and clears(i, i + 2) and clears(i + 1, i + 2)

    last = int(octave[int(np.argmax(v))])
    while last + 1 < n_oct and (clears(last + 1, last + 2) or bridged(last + 1)):
        last += 1
    return int(np.flatnonzero(octave == last)[-1])


def denoise_fanout(
    counts: list[float] | np.ndarray,
    sigma: float | None,
    k: float = 3.5,
    bins: list[int] | None = None,
) -> np.ndarray:
    """Fan-out probabilities from noisy per-bin parent counts.

    The support ends at the farther of :func:`denoise_tail`'s contiguous tail and the last bin
    whose *pooled* tail (that bin and every bin beyond) clears ``k`` sigma; inside it, every bin
    keeps its clipped count. Per-bin thresholds alone fail at low signal: with every bin near
    the noise only the largest survives, and a lone 0 (or 1) bin empties (or flattens) the child
    table. Pooling keeps a heavy tail spread thinly over many bins and still drops isolated far
    bins (noise that would multiply the row count). Simulated on the demo's shape from 1,500 to
    40,000 units: the child table's mean fan-out within 0.76-1.21 of the real one (5th-95th
    percentile; per-bin thresholds alone: 0.02-2.64, an empty table in 7 % of refreshes).

    With the ``bins``, the support also reaches as far as the tail hangs together octave by
    octave (:func:`tail_support`): the pooled tail counts the far bins' noise too, and lahman's
    pitchers per player (bins 7-15 at 2-3 sigma each, 16-4095 noise) lost everything past 6 by
    1,009 against 1,011; the spec then tilted half the players without a pitching row away
    to reach the table's size (children-per-parent score 0.78).
    """
    v = np.asarray(counts, dtype=np.float64)
    if not sigma or v.size == 0:
        return normalize(v)
    body = denoise_tail(v, sigma, k=k)
    tail = np.cumsum(v[::-1])[::-1]
    sd = sigma * np.sqrt(np.arange(v.size, 0, -1, dtype=np.float64))
    significant = np.flatnonzero(tail >= k * sd)
    nonzero = np.flatnonzero(body > 0)
    body_last = int(nonzero[-1]) if nonzero.size else -1
    last = max(body_last, int(significant[-1]) if significant.size else -1)
    if bins is not None:  # a tail that hangs together octave by octave is kept whole
        last = max(last, tail_support(v, bins, float(sigma)))
    if significant.size == 0 and last <= body_last:
        return body
    kept = np.clip(v, 0.0, None)
    kept[last + 1 :] = 0.0
    return normalize(kept)


def smooth_how(counts: list[float], sigma: float | None = None) -> np.ndarray:
    """Hour-of-week profile, denoised by its signal-to-noise ratio.

    Strong signal: clip and smooth over neighbouring hours (circular 1-2-1). Weak signal (an
    average cell under 5 sigma): the rank-1 approximation weekday x hour-of-day, each factor
    averaged over 24 or 7 cells, which keeps the diurnal and weekly cycles and drops the noise.
    """
    v = np.asarray(counts, dtype=np.float64)
    if sigma and v.size == 168 and v.mean() < 5 * sigma:
        m = np.clip(v.reshape(7, 24), 0, None)
        u, sv, vt = np.linalg.svd(m, full_matrices=False)
        r1 = np.abs(sv[0] * np.outer(u[:, 0], vt[0]))
        return separable_how(r1.sum(axis=0), r1.sum(axis=1))
    v = np.clip(v, 0, None)
    sm = 0.25 * np.roll(v, 1) + 0.5 * v + 0.25 * np.roll(v, -1)
    return normalize(sm)


def separable_how(
    hours: list[float] | np.ndarray, weekdays: list[float] | np.ndarray
) -> np.ndarray:
    """Hour-of-week profile (168, Monday 0h first) as weekday x hour-of-day from noisy counts
    of each (clipped; hours smoothed over their circular neighbours, 1-2-1, then the week)."""
    h = np.clip(np.asarray(hours, dtype=np.float64), 0, None)
    h = 0.25 * np.roll(h, 1) + 0.5 * h + 0.25 * np.roll(h, -1)
    d = np.clip(np.asarray(weekdays, dtype=np.float64), 0, None)
    if d.sum() <= 0:
        d = np.ones(7)
    v = np.outer(d / d.sum(), h).ravel()
    sm = 0.25 * np.roll(v, 1) + 0.5 * v + 0.25 * np.roll(v, -1)
    return normalize(sm)


def smooth_days(
    day_counts: list[float],
    sigma: float | None,
    how_p: np.ndarray | None,
    start: str,
    bucket_days: int = 1,
    days: int | None = None,
) -> np.ndarray:
    """Daily distribution: trend from (bucketed, denoised) counts, weekly cycle from hour-of-week."""
    b = np.asarray(day_counts, dtype=np.float64)
    if b.size == 0:
        return b
    b = (
        np.where(b >= 2.0 * sigma, b, 0.0)
        if sigma and (b >= 2.0 * sigma).any()
        else np.clip(b, 0, None)
    )
    if bucket_days > 1:  # spread each bucket evenly over its days
        v = np.repeat(b / bucket_days, bucket_days)[: days or b.size * bucket_days]
        trend = v
    else:
        v = b
        lead = np.flatnonzero(v > 0)
        window = min(7, v.size)
        kernel = np.ones(window) / window
        pad = np.pad(v, (window // 2, window - 1 - window // 2), mode="edge")
        trend = np.convolve(pad, kernel, mode="valid")
        if lead.size:  # keep the observed range: no mass before the first or after the last day
            trend[: lead[0]] = 0
            trend[lead[-1] + 1 :] = 0
    if how_p is not None and how_p.sum() > 0:
        from datetime import date

        wd = how_p.reshape(7, 24).sum(axis=1)
        wd = wd / wd.mean() if wd.mean() > 0 else np.ones(7)
        dow0 = date.fromisoformat(start).weekday()
        trend = trend * wd[(dow0 + np.arange(v.size)) % 7]
    return normalize(trend)


def ipf(joint: np.ndarray, pa: np.ndarray, pb: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Make a non-negative joint consistent with both one-way marginals (iterative proportional fitting)."""
    j = np.clip(joint.astype(np.float64), 0, None) + 1e-9
    j /= j.sum()
    for _ in range(rounds):
        rs = j.sum(axis=1)
        j *= np.divide(pa, rs, out=np.zeros_like(pa), where=rs > 0)[:, None]
        cs = j.sum(axis=0)
        j *= np.divide(pb, cs, out=np.zeros_like(pb), where=cs > 0)[None, :]
    return j
