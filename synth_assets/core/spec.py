"""The calibrated spec: the metrics pack after consistency post-processing, overrides and sizes.

Post-processing of DP output spends no budget. The spec is everything the generator sees.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import deque
from typing import Any

import numpy as np

from . import copula, digest
from .config import BANDS, SynthConfig
from .errors import ConfigError, DomainError, GenerationError
from .schema import SchemaModel

SPEC_FORMAT = "synth_assets.spec/1"
SPEC_VERSION = 1


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no whitespace) for hashing."""
    return digest.canonical_json(obj).encode()


def content_hash(obj: dict[str, Any]) -> str:
    """SHA-256 of an artifact's canonical JSON without its own ``content_hash`` field."""
    return hashlib.sha256(
        canonical_json({k: v for k, v in obj.items() if k != "content_hash"})
    ).hexdigest()


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
) -> np.ndarray:
    """A pair's joint counts from its noisy measurement: the product of the (much less noisy)
    one-way marginals plus the measured deviation from independence, shrunk by the share of its
    energy that the noise explains (James-Stein), then projected onto non-negative counts.

    A pair's cells are often far below the noise (1,500 rows over 24 x 25 cells at sigma 35):
    projecting that raw puts the table's mass on the few cells where the noise happened to be
    largest, a strong dependence that is not in the data. Shrinking keeps what clears the noise
    and falls back to independence where nothing does.
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
    # Consistent with the one-way marginals before expanding (a trace of independence keeps
    # IPF feasible where the projection emptied a whole row or column block).
    if t > 0:
        coarse = ipf(coarse + 1e-3 * indep, qa / max(qa.sum(), 1e-12), qb / max(qb.sum(), 1e-12))
        coarse *= t
    # Back to the fine codes: within a group, codes share its mass as the one-way marginal does.
    wa = np.divide(pa, qa[ga], out=np.zeros_like(pa), where=qa[ga] > 0)
    wb = np.divide(pb, qb[gb], out=np.zeros_like(pb), where=qb[gb] > 0)
    return coarse[np.ix_(ga, gb)] * wa[:, None] * wb[None, :]


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
    outer: tuple[bool, bool] = (False, False),
    k: float = 3.0,
    k_outer: float = 2.0,
) -> np.ndarray:
    """Probabilities of ordered bins (after ``lead`` unordered cells, before one null cell) from
    noisy counts: :func:`project`, then only the runs of adjacent non-empty bins that hold a bin
    clearing ``k`` sigma are kept, and an outer bin (``outer``: the first / the last bin widens
    the range to where a tail might be) only where its own count clears ``k_outer`` sigma.

    Real data is contiguous around its body; a bin that survives the projection far from it is
    noise, and so is an outer bin that the marginal cannot tell from empty: kept, they drew
    years 1168 and 2035 for a column of 2003-2009."""
    raw = np.asarray(counts, dtype=np.float64)
    v = project(raw).reshape(raw.shape)
    if not sigma or raw.size < lead + 2:
        return normalize(v)
    bins, braw = v[lead:-1], raw[lead:-1]
    if outer[0] and braw[0] < k_outer * sigma:
        bins[0] = 0.0
    if outer[-1] and braw[-1] < k_outer * sigma:
        bins[-1] = 0.0
    strong = (braw >= k * sigma) & (bins > 0)
    if strong.any():
        run = np.cumsum(np.concatenate([[1], (bins[1:] > 0) != (bins[:-1] > 0)]))
        bins[~np.isin(run, run[strong]) | (bins <= 0)] = 0.0
    return normalize(v)


def denoise_marginal(counts: list[float] | np.ndarray, col: dict[str, Any]) -> np.ndarray:
    """A one-way marginal's probabilities as the spec denoises it: numeric codes (point masses,
    ordered bins, null) by :func:`denoise_ordered`, any other by :func:`denoise`. ``col`` is a
    pack or spec column (``kind``, ``sigma``, ``atoms``, ``outer_bins``)."""
    if col["kind"] == "numeric":
        lead, outer = len(col.get("atoms") or []), tuple(col.get("outer_bins", (False, False)))
        return denoise_ordered(counts, col.get("sigma"), lead, outer)
    return denoise(counts, col.get("sigma"))


def significant(counts: list[float] | np.ndarray, sigma: float | None, k: float = 2.0) -> bool:
    """Whether any cell of a noisy count vector clears ``k`` sigma (signal, not noise)."""
    v = np.asarray(counts, dtype=np.float64)
    return bool(v.size) and bool((v >= k * (sigma or 0.0)).any()) and float(v.max()) > 0


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


def denoise_fanout(
    counts: list[float] | np.ndarray, sigma: float | None, k: float = 3.5
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
    """
    v = np.asarray(counts, dtype=np.float64)
    if not sigma or v.size == 0:
        return normalize(v)
    body = denoise_tail(v, sigma, k=k)
    tail = np.cumsum(v[::-1])[::-1]
    sd = sigma * np.sqrt(np.arange(v.size, 0, -1, dtype=np.float64))
    significant = np.flatnonzero(tail >= k * sd)
    if significant.size == 0:
        return body
    last = max(int(np.flatnonzero(body > 0)[-1]), int(significant[-1]))
    kept = np.clip(v, 0.0, None)
    kept[last + 1 :] = 0.0
    return normalize(kept)


# ---- table sizes -------------------------------------------------------------------------------
# The stated size bound: every generated table's expected rows lie within [N s / F, N s F], N its
# released (noisy) source count, s the generation scale actually used (scale, a rows override of
# the unit table or a band's rescale), F = SIZE_FACTOR. A child table whose fan-out breaks it is
# calibrated (see :func:`tilt_fanout`); the spec records what was done per table under "size".
SIZE_FACTOR = 2.0
# N below this many standard deviations of its own noise is not a reliable size: the upper bound
# then uses the noise floor instead and the lower bound is not applied.
SIZE_FLOOR_SIGMAS = 4.0
# An octave of fan-out bins continues the tail a child's count relies on when its pooled count
# clears this many standard deviations (see :func:`tail_support`).
SIZE_TAIL_SIGMAS = 2.0


def fanout_mids(f: dict[str, Any]) -> np.ndarray:
    """Children per parent each fan-out bin stands for (its mid, capped at the FK's maximum)."""
    lo = np.asarray(f["bins"], dtype=np.float64)
    hi = np.append(lo[1:], max(lo[-1] * 2, lo[-1] + 1))
    return np.minimum(np.where(hi - lo > 1, (lo + hi - 1) / 2, lo), f["max"])


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
    """
    v = np.asarray(counts, dtype=np.float64)
    octave = np.array([0 if b == 0 else int(b).bit_length() for b in bins])
    n_oct = int(octave.max()) + 1
    sums = np.bincount(octave, weights=v, minlength=n_oct)
    width = np.bincount(octave, minlength=n_oct)
    last = int(octave[int(np.argmax(v))])
    while last + 1 < n_oct and sums[last + 1] >= k * sigma * math.sqrt(max(1, width[last + 1])):
        last += 1
    return int(np.flatnonzero(octave == last)[-1])


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
        hours = r1.sum(axis=0)
        hours = 0.25 * np.roll(hours, 1) + 0.5 * hours + 0.25 * np.roll(hours, -1)
        days = r1.sum(axis=1)
        v = np.outer(days / max(days.sum(), 1e-12), hours).ravel()
    v = np.clip(v, 0, None)
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


def _tree(
    nodes: list[str], edges: list[tuple[str, str]]
) -> tuple[list[str], dict[str, str | None]]:
    """Sampling order (BFS) and parent of each node of the forest given by ``edges``."""
    adj: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    order: list[str] = []
    parent: dict[str, str | None] = {}
    for start in nodes:
        if start in parent:
            continue
        parent[start] = None
        q = deque([start])
        while q:
            x = q.popleft()
            order.append(x)
            for y in sorted(adj[x]):
                if y not in parent:
                    parent[y] = x
                    q.append(y)
    return order, parent


def calibrate(pack: dict[str, Any], cfg: SynthConfig) -> dict[str, Any]:
    """Turn the metrics pack into a generation spec (versioned, content-hashed)."""
    model = SchemaModel.from_dict(pack["schema"])
    gen = cfg.generation
    overrides = cfg.overrides
    rows_override = {**gen.rows, **overrides.get("rows", {})}
    _check_rows_override(pack, model, rows_override)
    _, deferred = model.generation_order()
    sizing = _Sizing(gen.scale, rows_override, float(pack["privacy"]["holdout_fraction"]))
    gen_order = _generation_order(pack["order"], pack["plan"], model)
    tables: dict[str, Any] = {}
    for name in gen_order:
        tables[name] = _table_entry(name, pack, model, overrides, sizing)
    _check_releasable(tables, pack)
    for key in (*overrides.get("categorical", {}), *overrides.get("null_rate", {})):
        tname, cname = key.split(".")
        if tname not in tables or cname not in tables[tname]["columns"]:
            raise ConfigError(f"override for {key!r}: no such column in the modelled tables")
    root = pack["privacy"]["unit_table"]
    owned = [t for t, e in tables.items() if e["kind"] != "reference"]
    if gen.band and root not in rows_override:
        sizing.to_band(tables[root], owned, BANDS[gen.band])
    for t, rec in sizing.sizes.items():
        tables[t]["size"] = {k: round(v, 6) if isinstance(v, float) else v for k, v in rec.items()}
    unit_rows = sum(sizing.expected[t] for t in owned)
    spec = {
        "format": SPEC_FORMAT,
        "version": SPEC_VERSION,
        "refresh_id": pack["refresh_id"],
        "pack_hash": hashlib.sha256(canonical_json(pack)).hexdigest(),
        "schema": pack["schema"],
        "roles": pack["roles"],
        "unit_table": root,
        "order": gen_order,
        "deferred": [[t, fk.name] for t, fk in deferred],
        "tables": tables,
        "shards": _shard_count(cfg, unit_rows, tables[root]["rows"]),
        "expected_rows": {k: int(round(v)) for k, v in sizing.expected.items()},
        "overrides": overrides,
        "scale": gen.scale,
        "band": gen.band,
        "size_factor": SIZE_FACTOR,
        "epsilon_spent": pack["ledger"]["epsilon_spent"],
        "delta": pack["ledger"]["delta"],
    }
    spec["content_hash"] = content_hash(spec)
    return spec


def _check_rows_override(
    pack: dict[str, Any], model: SchemaModel, rows_override: dict[str, int]
) -> None:
    """Rows can be set for the unit table and reference tables only, and only for known tables."""
    for name in rows_override:
        if name not in model.tables:
            raise ConfigError(
                f"rows override names unknown table {name!r}; tables: {', '.join(model.tables)}"
            )
        if pack["plan"][name]["kind"] == "child":
            raise ConfigError(
                f"rows override for {name!r}: it is owned by the unit table, so its size follows the "
                f"fan-out; set the rows of {pack['privacy']['unit_table']!r} (or generation.scale) instead"
            )


def _table_entry(
    name: str,
    pack: dict[str, Any],
    model: SchemaModel,
    overrides: dict[str, Any],
    sizing: _Sizing,
) -> dict[str, Any]:
    """One table's spec entry: columns, dependency tree, fan-out, and its size (via ``sizing``)."""
    tp = pack["tables"][name]
    plan = pack["plan"][name]
    cols = _table_columns(name, model.tables[name], tp, overrides)
    fanout = _fanout_spec(tp)
    entry = {
        "kind": plan["kind"],
        "parent": plan["parent"],
        "parent_fk": plan["parent_fk"],
        "columns": cols,
        "tree": _dependency_tree(tp, cols),
        "fanout": fanout,
    }
    if plan["kind"] == "root":
        sizing.root(name, tp, entry)
    elif plan["kind"] == "reference":
        sizing.reference(name, tp, entry)
    else:
        sizing.child(name, plan, tp, fanout)
    return entry


def _table_columns(
    name: str, t: Any, tp: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    """Every column's spec, then the reference attributes (``^fk``) its FKs are drawn by."""
    cols: dict[str, Any] = {}
    for c in t.columns:
        m = tp["columns"][c.name]
        cols[c.name] = _column_spec(name, c, m, t, overrides)
    for key, m in tp["columns"].items():
        if key.startswith("^"):
            cols[key] = {
                "kind": "ref_attribute",
                "fk": m["fk"],
                "ref_table": m["ref_table"],
                "attribute": m["attribute"],
                "values": m["values"],
                "p": denoise(m["counts"], m.get("sigma")).tolist(),
            }
    return cols


def _dependency_tree(tp: dict[str, Any], cols: dict[str, Any]) -> dict[str, Any]:
    """The dependency tree over modelled columns with each node's conditional given its parent
    (consistent conditionals), and the numeric links of the copula."""
    modelled = [
        k
        for k, v in cols.items()
        if v["kind"] in ("categorical", "numeric", "boolean", "ref_attribute")
    ]
    edges = [
        (p["a"], p["b"])
        for p in tp["pairs"]
        if not cols[p["a"]].get("independent") and not cols[p["b"]].get("independent")
    ]
    order, parent = _tree(modelled, edges)
    # Pairs are sparse relative to their noise: projected onto non-negative counts with the
    # table's total (the 1-way marginals estimate it far better than a pair's own noisy sum),
    # then IPF restores the one-way marginals.
    total = _table_total(tp)
    joints = {
        (p["a"], p["b"]): pair_joint(
            p["counts"],
            p.get("sigma"),
            cols[p["a"]]["p"],
            cols[p["b"]]["p"],
            total,
            p.get("groups"),
        )
        for p in tp["pairs"]
        if (p["a"], p["b"]) in edges
    }
    cond: dict[str, list[list[float]]] = {}
    links: dict[str, dict[str, Any]] = {}
    pair_groups = {(p["a"], p["b"]): p.get("groups") for p in tp["pairs"]}
    for node in order:
        par = parent[node]
        if par is None:
            continue
        pa, pb = np.asarray(cols[par]["p"]), np.asarray(cols[node]["p"])
        if (par, node) in joints:
            j = ipf(joints[(par, node)], pa, pb)
            groups = pair_groups.get((par, node))
        else:
            j = ipf(joints[(node, par)].T, pa, pb)
            groups = pair_groups.get((node, par))
            groups = groups[::-1] if groups else None
        rows = j.sum(axis=1, keepdims=True)
        cp = np.where(rows > 0, j / np.where(rows > 0, rows, 1), pb[None, :])
        cond[node] = cp.tolist()
        if link := _numeric_link(cols[par], cols[node], j, groups):
            links[node] = link
    return {"order": order, "parent": parent, "cond": cond, "links": links}


def _fanout_spec(tp: dict[str, Any]) -> dict[str, Any]:
    """Each FK's fan-out distribution, by FK name."""
    fanout = {}
    for fkname, f in tp["fanout"].items():
        # Primary fan-out: tails matter (one spurious far bin multiplies the row count), so
        # the support is cut where the pooled tail is noise. Reference popularity is deconvolved
        # from moments downstream, so it keeps the clipped noisy histogram.
        p = denoise_fanout(f["counts"], f.get("sigma")) if f["primary"] else normalize(f["counts"])
        fanout[fkname] = {
            "parent": f["parent"],
            "column": f["column"],
            "primary": f["primary"],
            "bins": f["bins"],
            "p": p.tolist(),
            "max": f["max"],
        }
        if not f["primary"]:  # the report simulates this measurement's noise (achievable)
            fanout[fkname]["sigma"] = f.get("sigma")
    return fanout


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


def _check_releasable(tables: dict[str, Any], pack: dict[str, Any]) -> None:
    """Refuse before generating when a column would need values no measurement released."""
    unreleasable = [
        problem
        for name, entry in tables.items()
        for col, c in entry["columns"].items()
        if (problem := _unreleasable(name, col, c, pack["tables"][name]["columns"].get(col, {})))
    ]
    if unreleasable:
        raise DomainError(
            "no value of these columns cleared the DP threshold, and the schema states no domain "
            f"for them (at epsilon {pack['ledger']['epsilon_target']:g}):\n  "
            + "\n  ".join(unreleasable)
            + "\nNothing was generated. Fix one per column: declare its values public "
            '(public: {values: {"table.column": [...]}} in synth.yaml), state them in the schema '
            "(a CHECK list or bounds, an enum), raise privacy.epsilon, or give the column a "
            'synthesized role (columns: {"table.column": free_text}); a reference table (a '
            "geography, a catalogue) can be copied as it is: public: {tables: [...]}."
        )


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


def _numeric_link(
    parent: dict[str, Any], child: dict[str, Any], joint: np.ndarray, groups: list | None
) -> dict[str, Any] | None:
    """How a numeric child sits inside its drawn group relative to its numeric parent (see
    :mod:`.copula`): the copula's rho fitted to the released joint of the pair's groups, and the
    child's groups; None when either column is not numeric, a column's groups are not runs of
    values, or there is no trend."""
    if parent["kind"] != "numeric" or child["kind"] != "numeric" or not groups:
        return None
    sa = copula.ValueScale(parent["atoms"], parent["edges"], parent["p"])
    sb = copula.ValueScale(child["atoms"], child["edges"], child["p"])
    ga, gb = np.asarray(groups[0], dtype=np.int64), np.asarray(groups[1], dtype=np.int64)
    ba, bb = sa.group_bounds(ga), sb.group_bounds(gb)
    if ba is None or bb is None:
        return None
    coarse = np.zeros((ba[0].size, bb[0].size))
    np.add.at(coarse, (ga[:, None], gb[None, :]), np.asarray(joint, dtype=np.float64))
    rho = copula.fit_rho(coarse, ba, bb)
    return {"rho": rho, "groups": gb.tolist()} if abs(rho) >= copula.RHO_MIN else None


def _table_total(tp: dict[str, Any]) -> float | None:
    """Rows of a table as its 1-way marginals measure them (median of their noisy totals)."""
    sums = [float(np.sum(m["counts"])) for m in tp["columns"].values() if "counts" in m]
    return float(np.median(sums)) if sums else None


def _generation_order(order: list[str], plan: dict[str, Any], model: SchemaModel) -> list[str]:
    """References first, then unit-owned tables parents-first."""
    gen_order, _ = model.generation_order()
    refs = [n for n in gen_order if plan[n]["kind"] == "reference"]
    rest = [n for n in gen_order if plan[n]["kind"] != "reference"]
    # A child must come after its primary parent even when the FK was deferred in a cycle.
    placed: list[str] = []
    pending = list(rest)
    while pending:
        progressed = False
        for n in list(pending):
            par = plan[n]["parent"]
            if par is None or par in placed or par == n:
                placed.append(n)
                pending.remove(n)
                progressed = True
        if not progressed:
            raise GenerationError(
                f"cannot order tables {pending}: their primary parents form a cycle"
            )
    return refs + placed


_CMP = re.compile(r"^(\w+)\s*(<>|>=|<=|>|<)\s*'?(-?[\d.]+)'?$")


def check_rules(t, col: str) -> dict[str, Any]:
    """What single-column CHECK constraints (schema, not data) say about a column's values:
    an allowed-values list (IN / = ANY(ARRAY[...])), bounds, and excluded values.

    The column's domains' CHECKs count as its own (``Table.column_checks``); a CHECK that is a
    conjunction (``VALUE >= 1901 AND VALUE <= 2155``, a BETWEEN) gives each of its comparisons."""
    rules: dict[str, Any] = {}
    for d in t.column_checks(col):
        if re.search(r"= ANY \(|\bIN \(", d):
            vals = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", d)]
            if vals:
                rules["allowed"] = (
                    sorted(set(vals) & set(rules["allowed"])) if "allowed" in rules else vals
                )
            continue
        for op, v in _comparisons(d, col):
            if op == "<>":
                rules.setdefault("exclude", []).append(v)
            elif op in (">", ">="):  # the tightest bound, strict if any CHECK says so at it
                if v > rules.get("min", -math.inf) or (v == rules["min"] and op == ">"):
                    rules["min"], rules["min_strict"] = v, op == ">"
            elif v < rules.get("max", math.inf) or (v == rules["max"] and op == "<"):
                rules["max"], rules["max_strict"] = v, op == "<"
    return rules


def _comparisons(definition: str, col: str) -> list[tuple[str, float]]:
    """(operator, number) of each ``col <op> number`` a CHECK requires: the CHECK itself, or
    every term of a conjunction (none when OR or NOT makes a term optional)."""
    body = definition.strip()
    body = body[len("CHECK") :].strip() if body.upper().startswith("CHECK") else body
    flat = re.sub(r"::[\w ]+?(?=[)\s]|$)", "", body.replace("NOT VALID", ""))
    flat = flat.replace("(", "").replace(")", "").replace(" IS NOT NULL", " IS_NOT_NULL").strip()
    if re.search(r"\b(OR|NOT)\b", flat):
        return []
    out = []
    for term in re.split(r"\s+AND\s+", flat):
        m = _CMP.match(term.strip())
        if m and m.group(1) == col:
            out.append((m.group(2), float(m.group(3))))
    return out


def _column_spec(
    table: str, col, m: dict[str, Any], t, overrides: dict[str, Any]
) -> dict[str, Any]:
    """One column's spec: its type and constraints, and its distribution by kind."""
    key = f"{table}.{col.name}"
    kind = m["kind"]
    unique = any(set(u) == {col.name} for u in t.unique_sets)
    base = {
        "kind": kind,
        "role": m["role"],
        "pg_type": col.pg_type,
        "base_type": col.base_type,
        "nullable": col.nullable,
        "generated": bool(getattr(col, "generated", None)),
        "unique": unique,
        "max_length": col.max_length,
    }
    null_override = overrides.get("null_rate", {}).get(key)
    if kind in ("categorical", "numeric") and m.get("sigma") is not None:
        # the measurement's noise and rows: the report simulates an ideal generator from them
        base["sigma"] = float(m["sigma"])
        base["measured_rows"] = float(
            np.clip(np.asarray(m["counts"], dtype=np.float64), 0, None).sum()
        )
    rules = check_rules(t, col.name)
    if rules:
        base["check"] = rules
    if kind == "categorical":
        weights = overrides.get("categorical", {}).get(key)
        _categorical_spec(base, m, col.nullable, weights, null_override)
    elif kind == "numeric":
        base.update(
            edges=m["edges"],
            outer_bins=list(m.get("outer_bins", (False, False))),
            atoms=[float(a) for a in m.get("atoms", [])],
            integer=m["integer"],
            decimals=m["decimals"],
            p=_null_fix(denoise_marginal(m["counts"], m), col.nullable, null_override).tolist(),
        )
    elif kind == "boolean":
        base.update(
            p=_null_fix(denoise(m["counts"], m.get("sigma")), col.nullable, null_override).tolist()
        )
    elif kind == "datetime":
        base.update(_datetime_spec(m, col.nullable, null_override))
    elif kind in ("synth", "fk"):  # ("public" is copied verbatim: public.tables)
        _lengths_spec(base, m)
        null_p = _lengths_null(m)
        if null_override is not None:
            null_p = float(null_override)
        base["null_p"] = float(null_p) if col.nullable else 0.0
    return base


def _categorical_spec(
    base: dict[str, Any],
    m: dict[str, Any],
    nullable: bool,
    weights: dict[str, float] | None,
    null_override: float | None,
) -> None:
    """Values and their probabilities (values..., other, null); the user's weights replace the
    measured domain, which is then sampled on its own."""
    values = list(m["values"])
    p = denoise(m["counts"], m.get("sigma"))  # values..., other, null
    if weights:
        values = [str(v) for v in weights]
        w = normalize([float(x) for x in weights.values()])
        null_p = p[-1]
        p = np.concatenate([w * (1 - null_p), [0.0, null_p]])
        base["independent"] = True
    base.update(values=values, p=_null_fix(p, nullable, null_override).tolist())


def _datetime_spec(
    m: dict[str, Any], nullable: bool, null_override: float | None
) -> dict[str, Any]:
    """Days and hours of the week, the NULL share, and whether values follow the parent's."""
    how = smooth_how(m["how_counts"], m.get("how_sigma")) if "how_counts" in m else None
    day = smooth_days(
        m["day_counts"], m.get("sigma"), how, m["start"], m.get("bucket_days", 1), m.get("days")
    )
    total = max(1.0, float(np.clip(m["day_counts"], 0, None).sum()) + max(0, m["null"]))
    null_p = 0.0 if not nullable else max(0, m["null"]) / total
    if null_override is not None:
        null_p = float(null_override) if nullable else 0.0
    enforce = False
    if "after_counts" in m:
        a = np.clip(m["after_counts"], 0, None)
        enforce = bool(a[1] >= 0.9 * max(1.0, a[0] + a[1]))
    return dict(
        start=m["start"],
        days=len(day),
        date_only=m["date_only"],
        day_p=day.tolist(),
        how_p=how.tolist() if how is not None else None,
        # the measurement's noise and rows: the report simulates an ideal generator from them
        how_sigma=float(m["how_sigma"]) if m.get("how_sigma") is not None else None,
        how_rows=float(np.clip(m["how_counts"], 0, None).sum()) if how is not None else None,
        null_p=null_p,
        after_parent_column=m.get("after_parent_column") if enforce else None,
    )


def _length_key(m: dict[str, Any]) -> str | None:
    """Which joint measurement of NULL and length a synthesized column has, if any."""
    return next((k for k in ("null_and_words", "null_and_log2_bytes") if k in m), None)


def _lengths_spec(base: dict[str, Any], m: dict[str, Any]) -> None:
    """A synthesized column's length distribution (words of text, log2 bytes of binary)."""
    lengths = _length_key(m)
    if lengths is None:
        return
    v = np.clip(np.asarray(m[lengths], dtype=np.float64), 0, None)
    if lengths == "null_and_words":
        p = normalize(v[1:]) if v[1:].sum() > 0 else None
        base["words_p"] = p.tolist() if p is not None else None
    else:  # a length 2^30 times too long is a memory fault: keep only the body's runs
        raw = np.append(np.asarray(m[lengths], dtype=np.float64)[1:], 0.0)
        p = denoise_ordered(raw, m.get("sigma"))[:-1] if v[1:].sum() > 0 else None
        base["log2_bytes_p"] = normalize(p).tolist() if p is not None else None


def _lengths_null(m: dict[str, Any]) -> float:
    """A synthesized or FK column's measured NULL share (0 when nothing measured it)."""
    lengths = _length_key(m)
    if lengths is not None:
        v = np.clip(np.asarray(m[lengths], dtype=np.float64), 0, None)
        return v[0] / v.sum() if v.sum() > 0 else 0.0
    if "present_null" in m:
        v = np.clip(np.asarray(m["present_null"], dtype=np.float64), 0, None)
        return v[1] / v.sum() if v.sum() > 0 else 0.0
    return 0.0


def _unreleasable(table: str, col: str, c: dict[str, Any], measured: dict[str, Any]) -> str | None:
    """Why a column cannot be generated without inventing values (None when it can).

    A column whose only surviving mass is NULL is generated as NULL: that is what was measured.
    """
    kind = c["kind"]
    if kind in ("categorical", "numeric"):
        no_domain = (
            not c["values"] and not (c.get("check") or {}).get("allowed")
            if kind == "categorical"
            else measured.get("bounds_from") == "unreleased"
        )
        counts = measured.get("counts") or [0.0]
        nonnull = (not c["nullable"]) or significant(counts[:-1], measured.get("sigma"))
    elif kind == "datetime":
        no_domain = measured.get("range_found") is False
        nonnull = c["null_p"] < 1.0
    else:
        return None
    if not no_domain or not nonnull:
        return None
    what = {"categorical": "values", "numeric": "range", "datetime": "date range"}[kind]
    return f"{table}.{col} ({kind}): no {what} released"


def _null_fix(p: np.ndarray, nullable: bool, override: float | None) -> np.ndarray:
    """The last code is NULL: zero it for NOT NULL columns, or set it from an override."""
    p = np.asarray(p, dtype=np.float64).copy()
    if override is not None and nullable:
        rest = p[:-1].sum()
        p[:-1] = p[:-1] / rest * (1 - override) if rest > 0 else (1 - override) / (len(p) - 1)
        p[-1] = override
    elif not nullable:
        p[-1] = 0.0
        if p.sum() <= 0:  # nothing but noise survived: spread over the non-null codes, never NULL
            p[:-1] = 1.0
    return normalize(p)
