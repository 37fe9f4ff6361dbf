"""Reference DP synthesizers for the real-data benchmark, all at a zCDP budget ``rho``.

* ``run_mst`` / ``run_aim``: OpenDP 0.16's own MST and AIM (``dp.mbi``, Private-PGM + JAX),
  driven through ``dp.Context`` -> ``.contingency_table(...)`` -> ``.release()`` ->
  ``.synthesize(rows=len(df), method="sample")``. Two work-arounds for OpenDP/mbi defects, both
  explained where they are applied: MST's selection step is handed a budget 1e-9 smaller (an
  OpenDP float-rounding bug aborts it otherwise), and records are drawn with ``"sample"``, not the
  default ``"round"`` (mbi 1.1's rounding invents associations between sibling columns). AIM
  runs with a pairwise workload and n_columns rounds instead of OpenDP's defaults (3-way,
  16 x n_columns), which take tens of minutes even on 27k x 10; see ``run_aim``.
* ``run_independent``: every column sampled independently from its own Gaussian-noised 1-way
  histogram (the weakest sensible DP baseline).

All three share one public domain, a ``Discretization`` derived from the data itself. That domain
is NOT private (quantile cut points, the most frequent categories and the column min/max are read
off the real table); the benchmark states this, and it flatters the references (an actual
deployment would have to spend budget on it or know it in advance): the cut points are the
data's own deciles, exactly the bins the benchmark's metric scores on.

DP-domain variant of MST/AIM (``delta`` set): the domain is released with DP out of the same
budget, as a user of OpenDP with no public domain would, and as the product does. The numeric and
datetime deciles are released by OpenDP's exponential-mechanism quantile over a public 257-point
grid per column (``dp_cuts``, ``cut_share`` = 20 % of rho by default); the category keys by its own
stable-key threshold inside the contingency-table release, at the remaining rho and ``delta``.
Only the column min/max (the grid's bounds and the outer edges of the in-bin draws) and the row
count are still read off the data without privacy.

Encoding given to OpenDP (and the reason it does not use OpenDP's ``cuts=``): every column is
recoded here, row by row, to an ``Int64`` code -- categories to their index in the key list
(values outside the top-100 to the index of ``"__other__"``), numerics and datetimes (epoch
seconds) to their quantile-bin index -- nulls stay null, and every column is passed with
``keys=range(K)``. OpenDP appends a null cell to every keyed column, so nulls are a value of
their own. A column passed through ``cuts=`` instead gets NO null cell in OpenDP 0.16: its nulls
are dropped from the 1-way marginals and folded into the top bin ``(last_cut, inf]`` of the
multi-way marginals the model is fitted on, so the synthetic column never contains a null and its
top bin is inflated (checked on a toy frame). Recoding is a per-row public map, so the privacy
guarantee is the same as OpenDP doing the binning itself.

Binning convention (as polars/OpenDP ``cut``): bins are left-open, right-closed,
``(-inf, c0], (c0, c1], ..., (c_last, inf)``. A synthetic bin is turned back into a number by a
uniform draw between the bin edges, with the column's real min / max as the two outer edges
(non-private and optimistic); integer columns draw uniformly among the integers of the bin.

Randomness: the DP noise is OpenDP's (its own CSPRNG, not reproducible by design).
``ContingencyTable.synthesize`` samples records with numpy's *global* legacy RNG inside Private-PGM
(``mbi.MarkovRandomField.synthetic_data``); we do not seed it (the project bans touching the global
RNG), so MST/AIM outputs are not reproducible. In-bin draws use the ``rng`` argument.

Total row count: every reference emits ``len(df)`` rows, i.e. the row count is treated as public.

Timing: each function stores wall-clock seconds in ``result.attrs`` (``seconds`` in total,
plus ``release_seconds`` / ``synthesize_seconds`` and ``rows_used`` for MST/AIM). Measured on 2
cores at rho = 0.1 for a 300k x 15 mixed-type table (text, bool, int, float, datetime, nulls):
MST 54 s, AIM (queries=2, rounds=15) 125 s, independent < 1 s.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

TOP_K = 100
N_BINS = 10
GRID = 256  # intervals of the public candidate grid of a DP cut release (``dp_cuts``)
# Share of a DP-domain reference's rho spent on its cut points (``dp_cuts``); the model gets the
# rest. Chosen by MST's k-marginal, mean of wage / hmda / credit_data / diamonds (bench split,
# 3 runs each): 5 % 829, 10 % 829, 20 % 837 (30 %, one run: 822; data-derived domain: 899).
CUT_SHARE = 0.2
OTHER = "__other__"

# column kinds
CAT, FLOAT, INT, DATETIME = "categorical", "float", "int", "datetime"


@dataclass
class Discretization:
    """Public (data-derived, non-private) domain shared by the reference synthesizers."""

    keys: dict[str, list]
    """categorical/boolean column -> values, most frequent first (top-100; when the column has
    more distinct values, ``"__other__"`` is appended and stands for all the rarer ones)."""
    cuts: dict[str, list[float]]
    """numeric/datetime column -> strictly increasing cut points (deduplicated 10-quantile cuts;
    datetimes in epoch seconds). Bins are left-open: (-inf, c0], (c0, c1], ..., (c_last, inf)."""
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    """numeric/datetime column -> (min, max) of the data: outer edges of the two open-ended bins."""
    kinds: dict[str, str] = field(default_factory=dict)
    """column -> "categorical" | "float" | "int" | "datetime"."""
    dtypes: dict[str, Any] = field(default_factory=dict)
    """column -> original pandas dtype (used to restore it on the synthetic output)."""

    def __post_init__(self):
        # a hand-built Discretization(keys, cuts): keyed columns are categorical, cut columns
        # float, and the outer edges of the open-ended bins default to the outermost cuts
        for col in self.keys:
            self.kinds.setdefault(col, CAT)
            self.dtypes.setdefault(col, object)
        for col, cutset in self.cuts.items():
            self.kinds.setdefault(col, FLOAT)
            self.dtypes.setdefault(col, np.dtype("float64"))
            if col not in self.bounds:
                self.bounds[col] = (cutset[0], cutset[-1]) if cutset else (0.0, 0.0)

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    def cardinality(self, col: str) -> int:
        """Number of non-null cells of a column's domain."""
        if self.kinds[col] == CAT:
            return len(self.keys[col])
        return len(self.cuts[col]) + 1


# --------------------------------------------------------------------------------------------
# column helpers


def _kind(s: pd.Series) -> str:
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return CAT
    if pd.api.types.is_datetime64_any_dtype(dt):
        return DATETIME
    if pd.api.types.is_integer_dtype(dt):
        return INT
    if pd.api.types.is_numeric_dtype(dt):
        return FLOAT
    return CAT


def _to_float(s: pd.Series, kind: str) -> np.ndarray:
    """Numeric / datetime column as float64 (datetimes: epoch seconds), nulls as NaN."""
    if kind == DATETIME:
        if getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        secs = (s - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
        return secs.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _bin_codes(x: np.ndarray, cuts: list[float]) -> np.ndarray:
    """Left-open bin index (-1 for null) of float values."""
    codes = np.searchsorted(np.asarray(cuts, dtype="float64"), x, side="left").astype(np.int64)
    codes[np.isnan(x)] = -1
    return codes


def _cat_codes(s: pd.Series, keys: list) -> np.ndarray:
    """Index of each value in ``keys``; -1 for null. A value not in ``keys`` goes to
    ``"__other__"`` when that key exists, else it is treated as null (as OpenDP does)."""
    lookup = {k: i for i, k in enumerate(keys) if not (isinstance(k, str) and k == OTHER)}
    other = len(keys) - 1 if keys and isinstance(keys[-1], str) and keys[-1] == OTHER else -1
    obj = s.astype(object)
    null = obj.isna().to_numpy()
    codes = obj.map(lookup).to_numpy(dtype="float64", na_value=np.nan)
    codes = np.where(np.isnan(codes), other, codes).astype(np.int64)
    codes[null] = -1
    return codes


def _encode(df: pd.DataFrame, disc: Discretization) -> dict[str, np.ndarray]:
    """Every column as int64 codes in [0, cardinality) with -1 for null."""
    missing = [c for c in df.columns if c not in disc.kinds]
    if missing:
        raise ValueError(f"columns not in the Discretization: {missing}")
    out = {}
    for col in df.columns:
        kind = disc.kinds[col]
        if kind == CAT:
            out[col] = _cat_codes(df[col], disc.keys[col])
        else:
            out[col] = _bin_codes(_to_float(df[col], kind), disc.cuts[col])
    return out


def _decode(
    codes: dict[str, np.ndarray], disc: Discretization, rng: np.random.Generator
) -> pd.DataFrame:
    """Synthetic codes (-1 = null) back to values: keys for categoricals, a uniform draw inside
    the bin for numerics (integers among the bin's integers), datetimes converted back."""
    data = {}
    for col in codes:
        c = np.asarray(codes[col], dtype=np.int64)
        null = c < 0
        kind = disc.kinds[col]
        if kind == CAT:
            keys = np.empty(len(disc.keys[col]), dtype=object)
            keys[:] = disc.keys[col]
            vals = np.empty(len(c), dtype=object)
            vals[~null] = keys[c[~null]]
            vals[null] = None
            data[col] = _restore(pd.Series(vals, dtype=object), disc.dtypes[col], kind)
            continue
        cuts = np.asarray(disc.cuts[col], dtype="float64")
        lo_b, hi_b = disc.bounds[col]
        lo_edge = np.concatenate([[lo_b], cuts])
        hi_edge = np.concatenate([cuts, [hi_b]])
        cc = np.clip(c, 0, len(cuts))
        lo, hi = lo_edge[cc], hi_edge[cc]
        if kind == INT:
            # integers in (lo, hi]; the first bin is closed at the min: [min, c0]
            lo_i = np.where(cc == 0, np.ceil(lo), np.floor(lo) + 1)
            hi_i = np.floor(hi)
            empty = hi_i < lo_i  # a bin with no integer in it (fractional cuts): nearest integer
            lo_i = np.where(empty, np.round(hi), lo_i)
            hi_i = np.where(empty, np.round(hi), hi_i)
            x = np.floor(lo_i + rng.random(len(c)) * (hi_i - lo_i + 1))
            x = np.minimum(x, hi_i)
        else:
            x = lo + rng.random(len(c)) * (hi - lo)
        x[null] = np.nan
        data[col] = _restore(pd.Series(x), disc.dtypes[col], kind)
    return pd.DataFrame(data)


def _restore(s: pd.Series, dtype, kind: str) -> pd.Series:
    """Best-effort cast back to the original dtype (nullable variants when nulls appear)."""
    has_null = bool(s.isna().any())
    try:
        if kind == DATETIME:
            tz = getattr(dtype, "tz", None)
            out = pd.to_datetime(s.astype("float64"), unit="s")
            if tz is not None:
                out = out.dt.tz_localize("UTC").dt.tz_convert(tz)
            return out.astype(dtype)
        if kind == INT:
            if has_null and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
                return s.astype("Int64")
            return s.astype(dtype)
        if kind == FLOAT:
            return s.astype(dtype)
        if pd.api.types.is_bool_dtype(dtype):
            if has_null and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
                return s.astype("boolean")
            return s.astype(dtype)
        if isinstance(dtype, pd.CategoricalDtype):
            return s.astype(object)  # "__other__" may not be among the categories
        return s.astype(dtype)
    except (TypeError, ValueError):
        return s


# --------------------------------------------------------------------------------------------
# public API


def discretization(df: pd.DataFrame) -> Discretization:
    """Derive the (non-private) public domain from the data: top-100 keys for categorical and
    boolean columns, deduplicated 10-quantile cuts and (min, max) for numeric/datetime ones."""
    keys: dict[str, list] = {}
    cuts: dict[str, list[float]] = {}
    bounds: dict[str, tuple[float, float]] = {}
    kinds: dict[str, str] = {}
    dtypes: dict[str, Any] = {}
    qs = np.arange(1, N_BINS) / N_BINS
    for col in df.columns:
        s = df[col]
        kind = _kind(s)
        kinds[col] = kind
        dtypes[col] = s.dtype
        if kind == CAT:
            vc = s.astype(object).value_counts(dropna=True, sort=True)
            top = list(vc.index[:TOP_K])
            if len(vc) > TOP_K:
                top.append(OTHER)
            keys[col] = top
        else:
            x = _to_float(s, kind)
            x = x[~np.isnan(x)]
            if len(x):
                cuts[col] = [float(v) for v in np.unique(np.quantile(x, qs))]
                bounds[col] = (float(x.min()), float(x.max()))
            else:
                cuts[col] = []
                bounds[col] = (0.0, 0.0)
    return Discretization(keys=keys, cuts=cuts, bounds=bounds, kinds=kinds, dtypes=dtypes)


def _candidates(lo: float, hi: float, kind: str) -> list[float]:
    """Public candidate cut points of a numeric/datetime column between its (min, max): every
    integer of [lo, hi] for an integer column with at most ``GRID`` of them, else the
    ``GRID + 1`` edges of ``GRID`` evenly spaced buckets, lo and hi included."""
    if kind == INT and hi - lo + 1 <= GRID:
        return [float(v) for v in np.arange(lo, hi + 1)]
    return [float(v) for v in np.linspace(lo, hi, GRID + 1)]


def _cut_columns(df: pd.DataFrame, disc: Discretization) -> list[str]:
    """The numeric/datetime columns whose cut points :func:`dp_cuts` releases: those whose
    (real) min is below their max; a constant or all-null column has nothing to release."""
    return [c for c in df.columns if disc.kinds[c] != CAT and disc.bounds[c][1] > disc.bounds[c][0]]


def dp_cuts(
    df: pd.DataFrame, rho: float, contributions: int, disc: Discretization
) -> dict[str, list[float]]:
    """Decile cut points of every numeric/datetime column released with DP, at rho-zCDP in all.

    What a user of OpenDP with no public cut points would do, with OpenDP's own mechanism: per
    column, a public candidate grid (:func:`_candidates`: 257 evenly spaced points from the
    column's real min to its real max -- the outer edges the references already take from the
    data without privacy, so this stays optimistic -- or every integer for an integer column with
    at most 256 integers in its range), and each of the 9 deciles released by OpenDP's
    exponential-mechanism quantile over that grid, ``dp.m.make_private_quantile(vector_domain,
    symmetric_distance, zero_concentrated_divergence, candidates, alpha, scale)``, the scale found
    by ``dp.binary_search_param`` for d_in = ``contributions`` (one unit adds or removes up to
    that many rows) and d_out = rho / (9 x released columns): ``rho`` split evenly over the
    columns, a column's share evenly over its 9 deciles (zCDP composes by addition). Nulls are
    not part of the input (dropped first: a per-row public filter). The released values,
    deduplicated, are the cuts. A constant or all-null column costs nothing (as
    :func:`discretization` has it).

    Why the quantile and not one Gaussian histogram per column on the same grid (256 buckets or
    one per integer; ``then_count_by_categories >> then_gaussian``, deciles of the noisy counts
    clipped at 0, cumulated, interpolated inside buckets): measured with an ideal model (the
    source's values binned on the released cuts and drawn uniformly in-bin as ``_decode`` does,
    1-way score against the evaluation half, mean over the numeric columns, 5 releases each),
    mean of wage / hmda / credit_data / diamonds at 5 / 10 / 20 % of the product's rho:
    quantile 899 / 902 / 911, histogram 866 / 873 / 884 (the data's own deciles: 957). The
    histogram wins on wage's smooth columns (``wage`` 936 vs 839 at 10 %), but its clipped noise
    spreads mass over the whole [min, max] and its interpolation cannot put a cut exactly on a
    point mass; the quantile's candidates include the min itself, so zero-inflated columns keep
    their zero bin (credit_data's ``debt``: 990 vs 206, ``assets`` 845 vs 511). A signed
    cumulative sum of the histogram (no clipping) scored in between (877 / 884 / 897).
    """
    import opendp.prelude as dp

    dp.enable_features("contrib")
    released = _cut_columns(df, disc)
    cuts: dict[str, list[float]] = {}
    for col in df.columns:
        if disc.kinds[col] != CAT and col not in released:
            cuts[col] = [float(disc.bounds[col][0])] if df[col].notna().any() else []
    if not released:
        return cuts
    rho_each = rho / (len(released) * (N_BINS - 1))
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance())
    measure = dp.zero_concentrated_divergence()
    for col in released:
        x = _to_float(df[col], disc.kinds[col])
        x = [float(v) for v in x[~np.isnan(x)]]
        candidates = _candidates(*disc.bounds[col], disc.kinds[col])
        out = []
        for alpha in np.arange(1, N_BINS) / N_BINS:

            def quantile(scale: float, alpha: float = float(alpha), candidates=candidates):
                return dp.m.make_private_quantile(*space, measure, candidates, alpha, scale)

            scale = dp.binary_search_param(quantile, d_in=contributions, d_out=rho_each)
            out.append(quantile(scale)(x))
        cuts[col] = [float(v) for v in np.unique(out)]
    return cuts


def _discovered(df: pd.DataFrame, disc: Discretization) -> list[str]:
    """Columns whose keys OpenDP discovers itself in ``keys="dp"`` mode: every categorical
    column except booleans (their two values are public from the type, as in the product)."""
    return [
        c
        for c in df.columns
        if disc.kinds[c] == CAT and not pd.api.types.is_bool_dtype(disc.dtypes[c])
    ]


def _run_opendp(
    df: pd.DataFrame,
    rho: float,
    contributions: int,
    disc,
    algorithm,
    rng,
    rows: int,
    delta: float | None = None,
    cut_share: float = CUT_SHARE,
):
    """One OpenDP contingency-table release and synthesis. ``delta`` None: every column keyed
    from ``disc`` (pure rho-zCDP, category lists and cut points from the data). ``delta`` set,
    the whole domain is released with DP -- what a user of OpenDP without a public domain does,
    and what the product does for its own columns: the numeric/datetime cut points by
    :func:`dp_cuts` at ``cut_share * rho`` (``disc``'s data deciles are replaced; its real
    min/max stay the outer edges), then the categorical columns are passed unkeyed and OpenDP
    releases their keys itself with its stable-key threshold (values below it become null) within
    the contingency-table release at (rho - cut_share * rho, delta). zCDP composes by addition:
    rho in all. ``cut_share`` is ignored without ``delta``."""
    import opendp.prelude as dp
    import polars as pl

    dp.enable_features("contrib")
    t0 = time.perf_counter()
    if delta and _cut_columns(df, disc):
        rho_cuts = cut_share * rho
        disc = replace(disc, cuts={**disc.cuts, **dp_cuts(df, rho_cuts, contributions, disc)})
        rho -= rho_cuts
    codes = _encode(df, disc)
    discover = set(_discovered(df, disc)) if delta else set()
    # positional names: avoids OpenDP's reserved "len" and any awkward column name
    names = {col: f"c{i}" for i, col in enumerate(codes)}
    series = {}
    for col, c in codes.items():
        if col in discover:
            raw = df[col].astype(object)
            vals = [None if pd.isna(v) else str(v) for v in raw]
            series[names[col]] = pl.Series(names[col], vals, dtype=pl.String)
        else:
            series[names[col]] = pl.Series(names[col], c, dtype=pl.Int64).set(
                pl.Series(c < 0), None
            )
    frame = pl.DataFrame(series)
    keys = {names[col]: list(range(disc.cardinality(col))) for col in codes if col not in discover}
    # With every column keyed, OpenDP needs no key discovery and delta must be absent (or 0):
    # pure rho-zCDP. Passing delta > 0 then raises "delta ... must be zero because keys and
    # cuts span all columns"; an unkeyed column instead *requires* delta > 0.
    loss = dp.loss_of(rho=rho, delta=delta) if discover else dp.loss_of(rho=rho)
    context = dp.Context.compositor(
        data=frame.lazy(),
        privacy_unit=dp.unit_of(contributions=contributions),
        privacy_loss=loss,
    )
    query = context.query(rho=rho, delta=delta) if discover else context.query(rho=rho)
    with _mst_select_rounding_fix():
        table = (
            query.select(*names.values())
            .contingency_table(keys=keys, algorithm=algorithm)
            .release()
        )
    t1 = time.perf_counter()
    # method="sample" (i.i.d. draws from the fitted model), not the default "round": mbi 1.1's
    # randomized rounding gives each row a uniform that grows with the row's position inside its
    # parent group, so all children of one parent are assigned comonotonically and come out
    # strongly (and falsely) associated: on diamonds, (color, clarity) scored 446/1000 on the
    # 2-way metric with "round" even at rho = 10, vs 922 for the independent baseline.
    synth = table.synthesize(rows=rows, method="sample")  # numpy global RNG (see module doc)
    out_codes = {}
    for col in codes:
        s = synth[names[col]]
        if col in discover:  # values as OpenDP released them (below its threshold: null)
            out_codes[col] = _cat_codes(s.to_pandas(), disc.keys[col])
        else:
            out_codes[col] = s.fill_null(-1).to_numpy().astype(np.int64)
    out = _decode(out_codes, disc, rng)
    t2 = time.perf_counter()
    out.attrs.update(
        seconds=t2 - t0,
        release_seconds=t1 - t0,
        synthesize_seconds=t2 - t1,
        rows_used=len(df),
    )
    return out


@contextmanager
def _mst_select_rounding_fix():
    """Work around an OpenDP 0.16 float-rounding bug in MST's selection step.

    ``_make_mst_select`` splits its budget ``d_out`` into ``num_selections`` (= columns - 1)
    equal parts ``prior(d_out / num_selections)`` and composes them; the composed loss is summed
    with upward rounding and can exceed ``d_out`` by a few ulps, so the release aborts, e.g. with
    10 columns at rho = 0.1: ``insufficient budget for query: 0.004999999999999997 >
    0.004999999999999996``. It depends only on rho and the column count (retrying a hair below
    rho did not help). We hand the selection step ``d_out * (1 - 1e-9)`` instead: strictly less
    budget, so the guarantee is unchanged and the utility loss is nil. Restored on exit.
    """
    from opendp.extras.mbi import _mst

    original = _mst._make_mst_select

    def patched(*args, d_out, **kwargs):
        return original(*args, d_out=d_out * (1.0 - 1e-9), **kwargs)

    _mst._make_mst_select = patched
    try:
        yield
    finally:
        _mst._make_mst_select = original


def run_mst(
    df: pd.DataFrame,
    rho: float,
    contributions: int,
    disc: Discretization,
    rng: np.random.Generator | None = None,
    delta: float | None = None,
    cut_share: float = CUT_SHARE,
) -> pd.DataFrame:
    """OpenDP's MST at rho-zCDP (default split: half the budget on 1-way marginals, of the rest
    10 % selects the spanning tree, 90 % measures its 2-way marginals). ``rng`` is used only for
    the in-bin numeric draws. ``delta``: None takes the whole domain from ``disc`` (the data);
    set, the domain is released with DP at (rho, delta): ``cut_share * rho`` for the numeric cut
    points (:func:`dp_cuts`), the rest for the category keys (OpenDP's own threshold) and the
    model (see ``_run_opendp``)."""
    import opendp.prelude as dp

    rng = rng if rng is not None else np.random.default_rng()
    algorithm = dp.mbi.MST()
    return _run_opendp(df, rho, contributions, disc, algorithm, rng, len(df), delta, cut_share)


def run_aim(
    df: pd.DataFrame,
    rho: float,
    contributions: int,
    disc: Discretization,
    rng: np.random.Generator | None = None,
    max_rows: int | None = None,
    queries: int = 2,
    rounds: int | None = None,
    delta: float | None = None,
    cut_share: float = CUT_SHARE,
) -> pd.DataFrame:
    """OpenDP's AIM at rho-zCDP, configured to finish in minutes: ``dp.mbi.AIM(queries=queries,
    rounds=rounds or n_columns)``; everything else is OpenDP's default (half the budget on the
    1-way marginals; per round 10 % selects a marginal, 90 % measures it; a round's budget is
    multiplied by 4 when its update is insignificant).

    Why not OpenDP's defaults (``queries=3``: every 3-way marginal is a candidate;
    ``rounds=16 x n_columns``): AIM's time is almost all JAX/XLA compilation while scoring the
    candidates against each round's model (``MarkovRandomField.project`` -> variable elimination
    compiles anew for every new clique shape), plus one mirror-descent fit per round. It grows
    with rounds x candidates and does not depend on the row count (the exact marginals are one
    polars pass). Measured on 2 cores, rho = 0.1: diamonds half (26,970 x 10) with the defaults
    ran > 14 min without finishing (~10 s/round, 160 rounds planned); queries=3, rounds=20:
    740 s; queries=2, rounds=10: 54 s; 300k x 15 mixed-type table with queries=2, rounds=15:
    125 s. ``queries=2`` also matches the benchmark's 2-way fidelity metric.

    ``max_rows``: if set and ``len(df)`` exceeds it, AIM is fitted on a uniform subsample of
    ``max_rows`` rows drawn without replacement with ``rng`` (output still ``len(df)`` rows);
    the guarantee stays rho-zCDP w.r.t. ``df`` (no amplification claimed). Kept for callers that
    want it, but it does not buy time (see above), so the default is None.

    ``delta``, ``cut_share`` (as for :func:`run_mst`): the domain released with DP; the cut
    points are released from the rows AIM is fitted on.
    """
    import opendp.prelude as dp

    rng = rng if rng is not None else np.random.default_rng()
    used = df
    if max_rows is not None and len(df) > max_rows:
        idx = np.sort(rng.choice(len(df), size=max_rows, replace=False))
        used = df.iloc[idx]
    algorithm = dp.mbi.AIM(queries=queries, rounds=rounds or len(df.columns))
    out = _run_opendp(used, rho, contributions, disc, algorithm, rng, len(df), delta, cut_share)
    out.attrs["rows_used"] = len(used)
    return out


def run_independent(
    df: pd.DataFrame,
    rho: float,
    contributions: int,
    disc: Discretization,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Independent DP 1-way marginals: per column, the histogram over the Discretization domain
    plus a null cell, Gaussian noise with sigma = contributions / sqrt(2 * rho / n_columns)
    (L2 sensitivity ``contributions`` under add/remove of one unit; rho split evenly, zCDP
    composition), clipped at 0, normalised, then every column sampled independently with
    ``rng`` (only that generator is used)."""
    t0 = time.perf_counter()
    codes = _encode(df, disc)
    n = len(df)
    rho_col = rho / max(len(codes), 1)
    sigma = contributions / math.sqrt(2.0 * rho_col)
    out_codes = {}
    for col in codes:
        k = disc.cardinality(col)
        c = codes[col]
        c = np.where(c < 0, k, c)  # null cell is the last one
        counts = np.bincount(c, minlength=k + 1).astype("float64")
        noisy = np.clip(counts + rng.normal(0.0, sigma, size=k + 1), 0.0, None)
        total = noisy.sum()
        p = noisy / total if total > 0 else np.full(k + 1, 1.0 / (k + 1))
        draw = rng.choice(k + 1, size=n, p=p)
        out_codes[col] = np.where(draw == k, -1, draw)
    out = _decode(out_codes, disc, rng)
    out.attrs.update(seconds=time.perf_counter() - t0, sigma=sigma)
    return out
