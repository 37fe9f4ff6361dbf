"""Ranges of numeric and datetime columns, from DP histograms on coarse public scales.

A numeric column is counted on powers of two (log2 buckets either side of zero), a datetime
on years; the range is where the noisy counts show data. A numeric range is then refined in
up to three rounds of 16 sub-buckets (two narrowings, and one retry), on the rows its point
masses do not hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from synth_assets.core import dp
from synth_assets.core.kinds import ColumnKind
from synth_assets.core.roles import INTEGER_TYPES, qi
from synth_assets.core.spec import check_rules

from .bins import numeric_edges
from .budget import WEIGHT
from .columns import ColumnModel
from .context import TableRun
from .sql import per_unit, text_array

LOG_OFFSET = 20  # log2 buckets cover 2^-20 .. 2^63
LOG_BUCKETS = 84
# The year axis of a datetime range: [YEAR0, YEAR0 + YEARS), earlier and later years clamped
# into the end buckets. It began at 1900: lahman's debuts of 1871-1899 (~1,000 rows), clamped
# into its first bucket, were the only years to clear the noise, and every debut was 1900.
YEAR0 = 1800
YEARS = 300
# Years per bucket of the nested year looks, coarse to fine (each divides YEARS). One look a
# year at sigma 131 found 2011-2026 of lahman's debuts of 1871-2019 (~66 a year): the few dense
# recent years, every debut drawn there (KS complement 0.11-0.22). A quarter century holds
# ~1,650 of them, clear of the noise; the finer looks narrow only where the rest tests empty.
YEAR_LEVELS = (25, 5, 1)
STRONG_SIGMAS = 4.0
TRIM_SLACK = 2.0
TRIM_RATIO = 0.25
# Days per bucket of the daily histogram, coarsened until an average bucket beats the noise:
# ~10,000 debuts over 150 years at sigma 70 need about six years a bucket.
DAY_BUCKETS = (1, 7, 14, 28, 91, 182, 365, 730, 1461)
RANGE_WINDOWS = (1, 2, 4, 8, 16, 32, 64)  # adjacent buckets pooled when no single one clears
# A bucket next to a released range holds a tail when its noisy count clears this many sigma
# (an empty one does so 7 % of the time; the projection then mostly empties its bin again).
OUTER_SIGMAS = 1.5
# Pooled noise deviations a window of buckets outside the range found first must clear to
# widen it: over ~1,200 candidate windows per column, a false one about once in 3,000 columns.
APART_SIGMAS = 5.0
REFINE_BUCKETS = 16
# Rounds of refinement, and the narrowings a column gets at most: each round is a fresh look,
# so a round that could not narrow (a noisy outside, one time in eight) is retried instead of
# ending the refinement. A column narrowed twice skips the last round (its share goes unspent).
REFINE_ROUNDS = 3
REFINE_DEPTH = 2
# Widest span (in sub-buckets) a round narrows to: wider, the data fills the range. 8 and 12
# were measured (20 refreshes each): k-marginal credit_data -10, diamonds -8, wage -4 to -13.
REFINE_SPAN_MAX = REFINE_BUCKETS // 4
# Share of a column's rows that a refined range may leave out (piled on its bounds), and the
# noise deviations of the pooled outside counts allowed above it.
REFINE_LOSS = 0.02
REFINE_SLACK = 1.0
# Sub-buckets out from a narrowed span whose edges are kept as edges of its outer bins (1, 3
# and 7 on each side: finer near the span, coarser away from it).
OUTER_STEPS = (1, 3, 7)
# Log2 buckets pooled into one bucket of the residual histogram (a factor of 256, aligned on
# 2^0: 1, 256, 65536 ...), and the noise deviations within which a range's rows beyond its
# point masses count as none (see :func:`residual_ranges`).
RESIDUAL_GROUP = 8
HELD_SIGMAS = 2.0


def log_bucket_sql(x: str) -> str:
    """Bucket of ``x`` on the signed log2 scale: LOG_BUCKETS is zero, above it the positive
    powers of two, below it the negative ones."""
    lg = f"greatest(0, least({LOG_BUCKETS - 1}, floor(ln(abs({x})::float8) / ln(2.0))::int + {LOG_OFFSET}))"
    return (
        f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} = 0 THEN {LOG_BUCKETS} "
        f"WHEN {x} > 0 THEN {LOG_BUCKETS} + 1 + {lg} ELSE {LOG_BUCKETS} - 1 - {lg} END"
    )


def log_bucket_edges(b: int) -> tuple[float, float]:
    """[low, high) of log bucket index b in 0..2*LOG_BUCKETS."""
    if b == LOG_BUCKETS:
        return 0.0, 0.0
    if b > LOG_BUCKETS:
        k = b - LOG_BUCKETS - 1 - LOG_OFFSET
        return 2.0**k, 2.0 ** (k + 1)
    k = LOG_BUCKETS - 1 - b - LOG_OFFSET
    return -(2.0 ** (k + 1)), -(2.0**k)


def _residual_groups() -> tuple[int, int]:
    """(lowest group, number of groups) of each side of the residual histogram."""
    g0 = -LOG_OFFSET // RESIDUAL_GROUP
    return g0, (LOG_BUCKETS - 1 - LOG_OFFSET) // RESIDUAL_GROUP - g0 + 1


def residual_bucket_sql(x: str) -> str:
    """Bucket of ``x`` on the residual histogram's scale: 2 * groups + 1 buckets, zero in the
    middle, each side ``RESIDUAL_GROUP`` powers of two per bucket."""
    g0, ng = _residual_groups()
    k = f"(greatest({-LOG_OFFSET}, least({LOG_BUCKETS - 1 - LOG_OFFSET}, floor(ln(abs({x})::float8) / ln(2.0))::int)))"
    g = f"(floor({k}::float8 / {RESIDUAL_GROUP})::int - ({g0}))"
    return (
        f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} = 0 THEN {ng} "
        f"WHEN {x} > 0 THEN {ng} + 1 + {g} ELSE {ng} - 1 - {g} END"
    )


def residual_bucket_edges(b: int) -> tuple[float, float]:
    """[low, high) of residual bucket index b."""
    g0, ng = _residual_groups()
    if b == ng:
        return 0.0, 0.0
    g = (b - ng - 1 if b > ng else ng - 1 - b) + g0
    lo, hi = 2.0 ** (g * RESIDUAL_GROUP), 2.0 ** ((g + 1) * RESIDUAL_GROUP)
    return (lo, hi) if b > ng else (-hi, -lo)


def year_sql(x: str) -> str:
    """Year bucket of a datetime: years since YEAR0, within YEARS."""
    return f"greatest(0, least({YEARS - 1}, extract(year from {x})::int - {YEAR0}))"


def day_bucket_width(expected_rows: float, days: int, sigma: float, snr: float = 5.0) -> int:
    """Fewest days per bucket such that an average bucket holds ``snr`` times the noise."""
    for w in DAY_BUCKETS:
        if expected_rows / max(1.0, days / w) >= snr * sigma:
            return w
    return DAY_BUCKETS[-1]


def released_range(
    noisy: np.ndarray, sigma: float, alone: int | None = None
) -> tuple[int, int] | None:
    """First and last index of the windows of adjacent buckets whose pooled noisy count clears
    4.5 sigma of its noise (no false windows in practice).

    The narrowest window width that finds signal sets the range: a large table gets its range
    to the bucket; a small one, spread thinly over many buckets, still gets a coarser range from
    the same noisy counts (post-processing) instead of none. Wider windows then look for data
    apart from it (windows wholly outside the range, ``APART_SIGMAS``): a debt column that is 0
    for 82 % of rows and spread over 1,000-30,000 for the rest was released as [0, 1] when the
    zero bucket alone set the range, and every debt came out as 0 or 1.

    A range that is bucket ``alone`` by itself (0 on the log scale) takes in no neighbour: next
    to it in index, not in value, sit all magnitudes below 2^-19, and a 2-sigma neighbour of
    pure noise (one column in twenty) made [0, 2^-19) the range of a column's non-zero rows.
    """
    v = np.asarray(noisy, dtype=np.float64)
    found: tuple[int, int] | None = None
    for w in RANGE_WINDOWS:
        if w > v.size:
            break
        sums = np.convolve(v, np.ones(w), mode="valid")  # sums[i] = v[i : i + w]
        if found is None:
            idx = np.nonzero(sums > 4.5 * sigma * math.sqrt(w))[0]
            if idx.size:
                found = (int(idx[0]), int(idx[-1] + w - 1))
            continue
        start = np.arange(sums.size)
        apart = (start + w - 1 < found[0]) | (start > found[1])
        idx = np.nonzero(apart & (sums > APART_SIGMAS * sigma * math.sqrt(w)))[0]
        if idx.size:
            found = (min(found[0], int(idx[0])), max(found[1], int(idx[-1] + w - 1)))
    if found is None:
        return None
    lo, hi = found
    if found == (alone, alone):
        return found
    # A neighbouring bucket that clears 2 sigma is data too: without it a tenth of a small
    # table's rows piles on the bound (a range one power of two wider costs less).
    while lo > 0 and v[lo - 1] > 2 * sigma:
        lo -= 1
    while hi < v.size - 1 and v[hi + 1] > 2 * sigma:
        hi += 1
    return lo, hi


def outer_range(
    noisy: np.ndarray,
    rng_: tuple[int, int],
    sigma: float,
    rules: dict[str, Any],
    lo: float,
    hi: float,
) -> list[float]:
    """The released range widened by the power of two beyond each end whose noisy count shows
    data (over ``OUTER_SIGMAS``), within the schema's CHECK bounds (post-processing: spends
    nothing).

    A range is released where buckets clear several sigma; a tail of a tenth of the rows often
    does not (loan-to-value ratios below 0.5, unemployment rates above 8) and, clipped onto the
    bound, it piled up in the end bin. In one outer bin it keeps its side of the range (see
    :func:`with_outer_bins`); where a noisy count passed for data, the projection mostly
    empties the bin again. Zero is never crossed: a range that starts at 0 stays there."""
    lo_b, hi_b = rng_
    out_lo, out_hi = lo, hi
    below, above = lo_b - 1, hi_b + 1
    seen = OUTER_SIGMAS * sigma
    if lo_b != LOG_BUCKETS and below >= 0 and below != LOG_BUCKETS and noisy[below] > seen:
        out_lo = log_bucket_edges(below)[0]
    if hi_b != LOG_BUCKETS and above < noisy.size and above != LOG_BUCKETS and noisy[above] > seen:
        out_hi = log_bucket_edges(above)[1]
    if rules.get("min") is not None:
        out_lo = max(out_lo, float(rules["min"]))
    if rules.get("max") is not None:
        out_hi = min(out_hi, float(rules["max"]))
    return [min(out_lo, lo), max(out_hi, hi)]


@dataclass
class RangeCounts:
    """One scan's bucket counts for every range of a table, and the noise they get."""

    numeric: dict[str, dict[tuple, int]]  # log2 buckets of each numeric column to bound
    years: dict[str, dict[tuple, int]]  # year buckets of each datetime column to bound
    sens: int
    rho: float
    sigma: float


def range_counts(run: TableRun) -> RangeCounts:
    """Bucket counts of every numeric and datetime column whose range is not declared in
    ``bounds``, in one scan."""
    n, bounds = run.name, run.src.cfg.bounds
    need_bounds = [c for c in run.cols(ColumnKind.NUMERIC) if f"{n}.{c}" not in bounds]
    dt_measured = [c for c in run.cols(ColumnKind.DATETIME) if f"{n}.{c}" not in bounds]
    exprs = [log_bucket_sql(qi(c)) for c in need_bounds] + [year_sql(qi(c)) for c in dt_measured]
    # Ranges count distinct units per bucket (a unit moves each bucket by at most 1: L2
    # sensitivity ceil(sqrt(m)) instead of m) and weigh more than other domain releases: a
    # column without a range cannot be generated at all.
    res = run.counts(exprs)
    sens_range = math.ceil(math.sqrt(run.ts.m)) if per_unit(run.ts) else run.sens
    rho_range = run.budget("bounds", WEIGHT["range"])
    sigma = sens_range / math.sqrt(2 * rho_range) if rho_range else 0.0
    k = len(need_bounds)
    return RangeCounts(
        dict(zip(need_bounds, res[:k], strict=True)),
        dict(zip(dt_measured, res[k:], strict=True)),
        sens_range,
        rho_range,
        sigma,
    )


def _noisy_buckets(run: TableRun, c: str, counts: dict[tuple, int], size: int, rc: RangeCounts):
    return _noisy_histogram(run, c, "bounds", counts, size, rc.sens, rc.rho)


def _noisy_histogram(
    run: TableRun, c: str, what: str, counts: dict[tuple, int], size: int, sens: int, rho: float
) -> np.ndarray:
    """One column's bucket counts (NULL bucket left out) as a vector of ``size``, released
    with DP under ``{table}.{column}:{what}``."""
    return dp.noisy_counts(
        run.acc,
        f"{run.name}.{c}:{what}",
        _bucket_vector(counts, size),
        sens,
        rho,
        table=run.name,
        column=c,
    )


def _bucket_vector(counts: dict[tuple, int], size: int) -> np.ndarray:
    """One column's bucket counts (NULL bucket left out) as a vector of ``size``."""
    vec = np.zeros(size, dtype=np.int64)
    for (b,), v in counts.items():
        if b is not None:
            vec[int(b)] += v
    return vec


def numeric_ranges(run: TableRun, rc: RangeCounts) -> None:
    """Each numeric column's range from its noisy log2 histogram, widened by an outer bin
    where a tail shows; with no signal, the schema's CHECK bounds if it states both."""
    t = run.table
    for c, counts in rc.numeric.items():
        noisy = _noisy_buckets(run, c, counts, 2 * LOG_BUCKETS + 1, rc)
        rng_ = released_range(noisy, rc.sigma, alone=LOG_BUCKETS)
        if rng_ is None:  # no signal: the schema's CHECK bounds if it states both, else none
            rules = check_rules(t, c)
            lo, hi = rules.get("min"), rules.get("max")
            found = "schema_check" if lo is not None and hi is not None else "unreleased"
            lo, hi = (float(lo), float(hi)) if found == "schema_check" else (0.0, 1.0)
            run.cms[c].info = {"low": lo, "high": hi, "bounds_from": found}
            continue
        lo, hi = log_bucket_edges(rng_[0])[0], log_bucket_edges(rng_[1])[1]
        if rng_[0] == LOG_BUCKETS:
            lo = 0.0
        if rng_[1] == LOG_BUCKETS:
            hi = 0.0
        run.cms[c].info = {
            "low": lo,
            "high": hi,
            "bounds_from": "dp_log_histogram",
            "rows_estimate": float(np.clip(noisy[rng_[0] : rng_[1] + 1], 0, None).sum()),
            "rows_sigma": rc.sigma * math.sqrt(rng_[1] - rng_[0] + 1),
        }
        outer = outer_range(noisy, rng_, rc.sigma, check_rules(t, c), lo, hi)
        if outer != [lo, hi]:
            run.cms[c].info["outer"] = outer


def nested_year_range(noisy: list[np.ndarray], sigma: float) -> tuple[int, int] | None:
    """First and last year index of a datetime's rows from its noisy year counts at each of
    ``YEAR_LEVELS`` (post-processing: spends nothing).

    The coarsest look that finds the body sets the range (:func:`released_range`); each finer
    one may trim the end blocks of the look before it (:func:`trim_ends`). A thin body is found
    whole, where one look a year found only its densest years, and a dense one still ends on
    its years. The looks are independent: a body the 25-year look misses is found by the next
    (the shop test's members, all joined in 2024, were refused once on the 25-year look alone)."""
    found_by = [released_range(v, sigma) for v in noisy]
    level = next((i for i, f in enumerate(found_by) if f is not None), None)
    if level is None:
        return None
    found, parent = found_by[level], YEAR_LEVELS[level]
    lo, hi = found[0] * parent, (found[1] + 1) * parent - 1
    for v, w in zip(noisy[level + 1 :], YEAR_LEVELS[level + 1 :], strict=True):
        a, b = lo // w, hi // w
        t0, t1 = trim_ends(np.asarray(v[a : b + 1], dtype=np.float64), parent // w, sigma)
        lo, hi, parent = (a + t0) * w, (a + t1 + 1) * w - 1, w
    return lo, hi


def trim_ends(v: np.ndarray, k: int, sigma: float) -> tuple[int, int]:
    """First and last bucket kept of ``v`` when fewer than ``k`` buckets at each end may go:
    those before the first (after the last) that clears ``STRONG_SIGMAS``, where the ones
    dropped pool to no more than ``TRIM_SLACK`` sigma of their noise over ``REFINE_LOSS`` of
    the rows and hold, a bucket, at most ``TRIM_RATIO`` of the edge bucket kept. Each side is
    tested alone: pooled over the whole range, the test let a thin body of 150 years narrow
    onto its last decades.

    Without a bucket clearing ``STRONG_SIGMAS`` near an end, that end stays: a thin body is
    kept whole. The ratio keeps a thin body's end (~1.4 sigma a bucket beside an edge that
    cleared 4 sigma by its noise); the slack lets a single busy year (nycflights13's 2013:
    1,650 units at sigma 210) drop its empty neighbours: at 0.5 sigma it kept 2000-2024 in
    three refreshes of four, the day histogram coarsened and hour-of-week failed. Simulated
    (2,000 draws each): 2013 found exactly 89 % (27 % before), a dense 2003-2009 94 %, and
    the thin body loses 1.4 % at the 90th percentile (its 1871-74, under the noise), 7 % at
    the 99th."""
    strong = np.flatnonzero(v > STRONG_SIGMAS * sigma)
    lo, hi = 0, v.size - 1
    if strong.size == 0:
        return lo, hi
    allow = REFINE_LOSS * float(np.clip(v, 0, None).sum())

    def empty(dropped: np.ndarray, edge: float) -> bool:
        j = dropped.size
        pooled = float(dropped.sum())
        return (
            pooled <= TRIM_SLACK * sigma * math.sqrt(j) + allow and pooled <= TRIM_RATIO * j * edge
        )

    first, last = int(strong[0]), int(strong[-1])
    if 0 < first < k and empty(v[:first], float(v[first])):
        lo = first
    out = v.size - 1 - last
    if 0 < out < k and empty(v[last + 1 :], float(v[last])):
        hi = last
    return lo, hi


def _year_looks(run: TableRun, c: str, counts: dict[tuple, int], sens: int, rho: float):
    """One column's year counts released at each of ``YEAR_LEVELS``, each with ``rho``."""
    years = _bucket_vector(counts, YEARS)
    out = []
    for w in YEAR_LEVELS:
        pooled = years.reshape(-1, w).sum(axis=1)
        out.append(
            dp.noisy_counts(
                run.acc,
                f"{run.name}.{c}:bounds_{w}y",
                pooled,
                sens,
                rho,
                table=run.name,
                column=c,
            )
        )
    return out


def datetime_ranges(run: TableRun, rc: RangeCounts) -> None:
    """Each datetime column's range in whole years (declared bounds spend nothing), and the
    days per bucket of its daily histogram that the expected rows can carry over the noise."""
    budget, sens = run.budget, run.sens
    bounds = run.src.cfg.bounds
    # The nested looks share the weight a numeric range gets for its look and refinement.
    rho = budget("bounds", (WEIGHT["range"] + WEIGHT["refine"]) / len(YEAR_LEVELS))
    sigma = rc.sens / math.sqrt(2 * rho) if rho else 0.0
    # The year looks count distinct units: rows expected are units times a unit's mean rows
    # (DP). Counted as rows, nycflights13's ~1,650 planes of 2013 asked for one day bucket a
    # year (168,000 flights drawn evenly over it, and over 2014 when the range held it).
    per_count = (run.src.unit_rows.get(run.name) or 1.0) if per_unit(run.ts) else 1.0
    for c in run.cols(ColumnKind.DATETIME):
        if f"{run.name}.{c}" in bounds:  # declared in bounds: public, no budget
            start, end = (date.fromisoformat(str(d)[:10]) for d in bounds[f"{run.name}.{c}"])
            rng_, expected = (0, 0), 0.0
        else:
            looks = _year_looks(run, c, rc.years[c], rc.sens, rho)
            rng_ = nested_year_range(looks, sigma)
            if rng_ is None:  # no signal: the spec refuses unless the column is all NULL
                start, end, expected = date(2020, 1, 1), date(2020, 12, 31), 0.0
            else:
                start, end = date(YEAR0 + rng_[0], 1, 1), date(YEAR0 + rng_[1], 12, 31)
                w0 = YEAR_LEVELS[0]
                body = looks[0][rng_[0] // w0 : rng_[1] // w0 + 1]
                expected = float(np.clip(body, 0, None).sum()) * per_count
        days = (end - start).days + 1
        sigma_t = sens / math.sqrt(2 * budget("temporal")) if budget("temporal") else 1.0
        run.cms[c].info = {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "date_only": run.table.column(c).base_type == "date",
            "bucket_days": day_bucket_width(expected, days, sigma_t),
            "range_found": rng_ is not None,
        }


def significant_span(
    v: np.ndarray, sigma: float, k: float = 3.0, k_tail: float = 2.0
) -> tuple[int, int] | None:
    """The buckets the data occupies: from the first to the last bucket that clears ``k`` sigma,
    widened on each side while the next bucket clears 1 sigma or what lies beyond still adds up
    to ``k_tail`` sigma of its pooled noise. Trimming real data would pile it on the bounds, so
    the bar to keep a thin neighbour is low; a pooled tail of pure noise must not walk the span
    out (at 1 sigma it did so for one narrow column in seven), and buckets of pure noise outside
    a narrow peak (years in [1024, 2048)) are dropped."""
    v = np.asarray(v, dtype=np.float64)
    strong = np.flatnonzero(v > k * sigma)
    if strong.size == 0:
        return None
    lo, hi = int(strong[0]), int(strong[-1])
    while lo > 0 and (v[lo - 1] > sigma or v[:lo].sum() > k_tail * sigma * math.sqrt(lo)):
        lo -= 1
    while hi < v.size - 1 and (
        v[hi + 1] > sigma or v[hi + 1 :].sum() > k_tail * sigma * math.sqrt(v.size - 1 - hi)
    ):
        hi += 1
    return lo, hi


def conclusive_span(v: np.ndarray, span: tuple[int, int], sigma: float) -> bool:
    """Whether the noisy counts are consistent with the buckets outside ``span`` holding at most
    ``REFINE_LOSS`` of what lies inside: False when their pooled sum exceeds that by more than
    ``REFINE_SLACK`` sigma of its noise (the data spreads beyond the span).

    At 2 sigma the test could not tell 40 % of 1,200 rows outside from none, and a column of
    many repeated values (unemployment rates 1.8 ... 10.6, 12 % of them 3.1) narrowed onto one
    of them, leaving three quarters of its rows to the outer bins, drawn evenly. At 1 sigma a
    range whose outside is pure noise is kept about one time in seven, and the second round
    looks again (:func:`refine_ranges`).

    The test has no power where the noise outweighs the rows: on attrition's 735 rows at sigma
    110, a job level of 1..5 narrowed onto its value 2. Asking the allowance to be a quarter of
    the span's rows at most stopped that, and stopped wage's years too (the rows of the years
    no point mass holds, ~640 at sigma 62): wage's k-marginal fell 858 -> 809 (12 refreshes
    each). Not kept."""
    v = np.asarray(v, dtype=np.float64)
    inside = float(v[span[0] : span[1] + 1].sum())
    n_out = v.size - (span[1] - span[0] + 1)
    outside = float(v.sum()) - inside
    return outside - REFINE_SLACK * sigma * math.sqrt(max(n_out, 1)) <= REFINE_LOSS * inside


def refine_ranges(
    run: TableRun,
    sens: int,
    atoms: dict[str, dict[str, int]],
    atom_sigma: dict[str, float] | None = None,
) -> None:
    """Narrow each numeric range found on powers of two: a DP histogram on 16 sub-buckets of
    the range, trimmed to its significant span, then the same inside the result. Years
    2003-2009 sit in [1024, 2048); without this they would be drawn over 1990-2048. Rows holding
    a released point mass are left out: they are generated exactly, and the bins serve the rest.

    Two narrowings take up to three rounds, each a third of the ``refine`` weight: a round that
    cannot narrow (a tail of pure noise walked its span out, or the outside did not test empty)
    is looked at again with fresh noise. With two rounds and no retry, one of the two failed in
    about a quarter of refreshes of wage's years (1,500 rows), which were then drawn over
    1961-2048 or 1878-2048 (8 in 20 refreshes; 1 in 20 with the retry, and wage's k-marginal
    836 -> 864). The retry's extra noise (sigma x 1.22) cost the columns that narrow at once
    nothing measurable: hmda, credit_data and diamonds moved by -1.1, -0.5 and -0.3 (standard
    errors 3-4, 2 and 0.5; 20 refreshes each).

    A range that is the single value 0 has nothing to refine: the rounds' budget goes to
    :func:`residual_ranges` instead. Any other range its point masses hold
    (:func:`held_by_atoms`) is refined as usual, and marked: where its bins then show no rows
    beyond the noise, the spec draws its point masses alone. (Measuring those rows on the
    residual histogram instead put the one year of 2003-2009 that was not a point mass in
    [256, 65536).)"""
    measured = [
        c for c in run.cols(ColumnKind.NUMERIC) if f"{run.name}.{c}" not in run.src.cfg.bounds
    ]
    unfound = [c for c in measured if run.cms[c].info["bounds_from"] == "unreleased"]
    # A column whose powers of two showed nothing looks again on the coarse scale with its
    # first round's budget; a range found there is refined by the other rounds.
    residual_ranges(run, unfound, sens, atoms, WEIGHT["refine"] / REFINE_ROUNDS)
    coarse = [c for c in unfound if run.cms[c].info["bounds_from"] == "dp_residual_histogram"]
    cols = [c for c in measured if run.cms[c].info["bounds_from"] == "dp_log_histogram"]
    sig = atom_sigma or {}
    for c in cols:
        info = run.cms[c].info
        if info["high"] > info["low"] and held_by_atoms(info, atoms.get(c, {}), sig.get(c, 0.0)):
            info["point_masses_hold"] = True  # the spec empties its bins if they show nothing
    single = [c for c in cols if run.cms[c].info["high"] <= run.cms[c].info["low"]]
    residual_ranges(run, single, sens, atoms)
    rest = [c for c in cols if c not in single]
    narrowed = dict.fromkeys(rest + coarse, 0)
    for level in range(REFINE_ROUNDS):
        todo = [c for c in rest if narrowed[c] < REFINE_DEPTH]
        todo += [c for c in coarse if level > 0 and narrowed[c] < REFINE_DEPTH]
        for c in _refine_once(run, todo, sens, level, atoms):
            narrowed[c] += 1


def held_by_atoms(info: dict[str, Any], atoms: dict[str, int], atom_sigma: float) -> bool:
    """Whether the rows of a released range are, within ``HELD_SIGMAS`` of the noise, all at
    its released point masses (or the range is the single value 0).

    Then the range says little or nothing about the column's other rows: a debt column that is
    0 in 83 % of 2,227 rows released the zero bucket alone (its 375 other rows, spread over six
    powers of two at sigma 44, cleared no window), and refining [0, 1] on the rows that are not
    0 found none of them: every debt came out as 0 or a fraction of 1."""
    lo, hi = float(info["low"]), float(info["high"])
    if hi <= lo:
        return True
    inside = [x for v, x in atoms.items() if lo <= float(v) <= hi]
    rest = float(info["rows_estimate"]) - float(sum(inside))
    noise = math.hypot(float(info["rows_sigma"]), atom_sigma * math.sqrt(len(inside)))
    return bool(inside) and rest <= HELD_SIGMAS * noise


def residual_ranges(
    run: TableRun,
    cols: list[str],
    sens: int,
    atoms: dict[str, dict[str, int]],
    weight: float = WEIGHT["refine"],
    rho: float | None = None,
    what: str = "range_residual",
) -> None:
    """The range of the rows no released point mass holds, for ranges that are the single
    value 0 (the bucket of 0 alone cleared the noise): one DP histogram of those rows on the
    whole signed scale in buckets of 2^8 (every refinement round's budget), released like the
    first range (:func:`released_range`).

    Pooled in the measurement, not after it, a thin body clears the noise: credit_data's ~300
    debts of 300..20,000 measured beside ~1,650 zeros sit in one bucket at about 6.5 sigma
    (found in 46 of 49 refreshes), where six log2 buckets of ~50 rows each cleared nothing.
    Over the 23 buckets a false window (4.5 sigma) is released about once in 3,000 columns.
    With nothing found, the column keeps its point masses only (``bounds_from =
    "point_masses_only"``): the spec generates them alone where the marginal shows no other
    rows, and refuses the column where it does (never an invented range)."""
    if not cols:
        return
    k = unit_shares(run)
    sens = k or sens
    exprs = []
    for c in cols:
        not_atom = f" OR {qi(c)}::text = ANY({text_array(atoms[c])})" if atoms.get(c) else ""
        x = qi(c)
        exprs.append(f"CASE WHEN {x} IS NULL{not_atom} THEN NULL ELSE {residual_bucket_sql(x)} END")
    res = run.counts(exprs, shares=k)
    rho = run.budget("bounds", weight) if rho is None else rho
    sigma = sens / math.sqrt(2 * rho)
    size = 2 * _residual_groups()[1] + 1
    for c, counts in zip(cols, res, strict=True):
        noisy = _noisy_histogram(run, c, what, counts, size, sens, rho)
        _set_residual_range(run, c, noisy, sigma, atoms.get(c, {}), rows_per_count(run))


def unit_shares(run: TableRun) -> int:
    """K where a range look counts each unit's share of its rows in K-ths (0: rows counted).

    A range says where units' values lie: each unit adds its rows' shares of one, so it adds at
    most 1 in all (L2 sensitivity K in K-ths), where counting distinct units has sensitivity
    sqrt(m) and counting a unit's rows per bucket up to k, sqrt(k m). A unit whose rows share
    a bucket adds the same 1 to it at a third of the noise (m = 8). lahman's catchers (~1,160
    units in 72k fielding rows, a quarter of their passed balls 0, the rest in [1, 256)) cleared
    a residual look at about 11 sigma, against about 5 counting rows up to 5 a unit."""
    return run.ts.m if per_unit(run.ts) else 0


def rows_per_count(run: TableRun) -> float:
    """Rows one count of a range look stands for: the mean rows a unit keeps (DP, from the
    histogram that chose its bound) per K-th share, else 1."""
    k = unit_shares(run)
    mean = run.src.unit_rows.get(run.name)
    return 1.0 if not k else (mean or 1.0) / k


def rescue_ranges(run: TableRun, sens: int, atoms: dict[str, dict[str, int]]) -> None:
    """The residual look again, with the table's rescue reserve (``run.reserve``) shared among
    them, for the numeric columns still without a range beyond their point masses: such a
    column stops the refresh where its marginal shows other rows. credit_data's debts (83 %
    zeros, ~340 others over 300..20,000) were not found in about one refresh in twelve."""
    cols = [
        c
        for c in run.cols(ColumnKind.NUMERIC)
        if f"{run.name}.{c}" not in run.src.cfg.bounds
        and run.cms[c].info["bounds_from"] in ("point_masses_only", "unreleased")
    ]
    if not cols or run.reserve <= 0:
        return
    rho, run.reserve = run.reserve / len(cols), 0.0
    residual_ranges(run, cols, sens, atoms, rho=rho, what="range_rescue")


def _set_residual_range(
    run: TableRun, c: str, noisy: np.ndarray, sigma: float, atoms: dict[str, int], scale: float
) -> None:
    """A column's range from its residual histogram, else its point masses only."""
    info = run.cms[c].info
    found = released_range(noisy, sigma, alone=_residual_groups()[1])
    lo, hi = (
        (0.0, 0.0)
        if found is None
        else (
            residual_bucket_edges(found[0])[0],
            residual_bucket_edges(found[1])[1],
        )
    )
    info.pop("outer", None)
    if hi > lo:
        if run.table.column(c).base_type in INTEGER_TYPES:
            lo, hi = float(math.floor(lo)), float(math.ceil(hi))
        rows = float(np.clip(noisy[found[0] : found[1] + 1], 0, None).sum()) * scale
        info.update(low=lo, high=hi, bounds_from="dp_residual_histogram", bin_rows=rows)
        return
    values = sorted(float(v) for v in atoms)
    if not values:  # nothing released at all: the spec refuses the column by name
        info.update(low=0.0, high=1.0, bounds_from="unreleased")
        return
    info.update(low=values[0], high=values[-1], bounds_from="point_masses_only", bin_rows=0.0)


def _refine_counts(
    run: TableRun, cols: list[str], edges: dict[str, list[float]], atoms: dict[str, dict[str, int]]
) -> list[dict[tuple, int]]:
    """Sub-bucket counts of each range, rows of a point mass and outside the range left out."""
    exprs = []
    for c in cols:
        inner = ", ".join(repr(float(e)) for e in edges[c][1:-1])
        lo, hi = float(edges[c][0]), float(edges[c][-1])
        # Rows outside the range are left out, not clipped: clipped, they pile into the end
        # buckets as a peak that the span would then narrow onto.
        x = f"{qi(c)}::float8"
        rest = f" AND NOT ({qi(c)}::text = ANY({text_array(atoms[c])}))" if atoms.get(c) else ""
        exprs.append(
            f"CASE WHEN {x} >= {lo!r} AND {x} <= {hi!r}{rest} "
            f"THEN width_bucket({x}, ARRAY[{inner}]::float8[]) END"
        )
    return run.counts(exprs, shares=unit_shares(run))


def outer_steps(edges: list[float], span: tuple[int, int]) -> list[float]:
    """Edges of a round's sub-buckets ``OUTER_STEPS`` out from the span it narrowed to, and
    the round's own ends, for the outer bins (see :func:`.bins.with_outer_bins`).

    One outer bin per side drew a wrongly narrowed column's tail evenly out to the old range:
    wage's wages narrowed to [79, 134] put their top tenth in [134, 512], and the column scored
    748 instead of ~875. A few outer bins, finer near the span, keep the tail near it: hmda's
    k-marginal 852 -> 862 (its ratios, narrowed in a third of refreshes, pirat 865 -> 902),
    wage, credit_data and diamonds within +-0.5 (20 refreshes each)."""
    s0, s1 = span
    below = [edges[s0 - k] for k in OUTER_STEPS if s0 - k >= 0]
    above = [edges[s1 + 1 + k] for k in OUTER_STEPS if s1 + 1 + k < len(edges)]
    return sorted({float(x) for x in [edges[0], *below, *above, edges[-1]]})


def _refine_once(
    run: TableRun, cols: list[str], sens: int, level: int, atoms: dict[str, dict[str, int]]
) -> list[str]:
    """One refinement round: each range narrowed to the span its noisy histogram shows. Returns
    the columns it narrowed."""
    if not cols:
        return []
    cms: dict[str, ColumnModel] = run.cms
    edges = {
        c: numeric_edges(cms[c].info["low"], cms[c].info["high"], REFINE_BUCKETS, False)
        for c in cols
    }
    res = _refine_counts(run, cols, edges, atoms)
    sens = unit_shares(run) or sens
    rho = run.budget("bounds", WEIGHT["refine"] / REFINE_ROUNDS)
    sigma = sens / math.sqrt(2 * rho)
    n = run.name
    narrowed = []
    for c, counts in zip(cols, res, strict=True):
        vec = np.zeros(REFINE_BUCKETS, dtype=np.int64)
        for (b,), v in counts.items():
            if b is not None:
                vec[min(int(b), REFINE_BUCKETS - 1)] += v
        noisy = dp.noisy_counts(
            run.acc, f"{n}.{c}:range_refine_{level}", vec, sens, rho, table=n, column=c
        )
        span = significant_span(noisy, sigma)
        if span is None or span[1] - span[0] + 1 > REFINE_SPAN_MAX:
            continue  # no signal, or the data fills the range: keep it (never clip a body)
        if not conclusive_span(noisy, span, sigma):
            continue  # too noisy to tell that the rest of the range is empty: keep it
        lo, hi = float(edges[c][span[0]]), float(edges[c][span[1] + 1])
        if run.table.column(c).base_type in INTEGER_TYPES:
            lo, hi = float(math.floor(lo)), float(math.ceil(hi))
        if hi > lo:
            info = cms[c].info
            # The outer bins keep what a wrong narrowing would drop (rows, not resolution):
            # out to the range it was narrowed from. Capping them nearer lost a column whose
            # refinement locked onto a spike (a ratio narrowed to [0.254, 0.261]).
            info.setdefault("outer", [info["low"], info["high"]])
            info.setdefault("outer_steps", []).extend(outer_steps(edges[c], span))
            info.update(low=lo, high=hi, bounds_from="dp_log_histogram_refined")
            narrowed.append(c)
    return narrowed
