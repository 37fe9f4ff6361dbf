"""Fidelity and privacy metrics of a synthetic table against real data (real-data benchmark).

Fidelity
  ``kmarginal`` / ``oneway``: 1000 x mean over all k-column subsets of (1 - total variation
  distance) between the real and synthetic joint distributions of the subset, on a
  discretization fixed by the *real* table: numeric and datetime columns -> 10 quantile bins of
  the real values (deduplicated edges, shared by both tables, values outside the real range fall
  into the end bins); other columns -> the 100 most frequent real values, everything else one
  "other" bucket; NULL is a value of its own. 1000 = identical distributions.
  ``fanout_ks``: 1 - two-sample KS statistic between children-per-parent counts.

Privacy (distance-based; both use ``_encoder``)
  Records are encoded as: numerics/datetimes scaled to [0, 1] by the real 1st-99th percentiles
  (clipped) plus a null indicator (a null takes the real median's position), other columns one-hot
  over the real top-50 values + "other" + null, scaled by 1/sqrt(2) so that a mismatch costs a
  distance of 1 like a full-range numeric difference. Scalings are fitted on train + holdout.
  ``dcr_share``: share of synthetic records closer to train than to holdout (ties 1/2); 0.5 = no
  evidence of memorisation, 1.0 = copies of train.
  ``dcr_noise``: the DCR share's spread under no memorisation (two halves of the holdout
  contest for the synthetic records): the share's noise where synthetic records concentrate.
  ``membership_auc``: AUC of the attack "score = -distance to the nearest synthetic record" for
  train (1) vs holdout (0) records; 0.5 = no evidence.

Subsampling: ``n`` caps every set (train and holdout are cut to the same size m = min(n, len(train),
len(holdout)); the synthetic table to min(n, len(synth))), drawn without replacement with the
passed ``rng`` only. When train is larger than n, a memorised record is present in the train
subsample only with probability m / len(train), so even synth = train scores well below 1.0 / far
below a perfect AUC; compare figures at the same n and table size.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

N_BINS = 10
TOP_K_MARGINAL = 100
TOP_K_ONEHOT = 50
_TIE_TOL = 1e-6  # distances are float32 encodings through sklearn's euclidean path


# --------------------------------------------------------------------------------------------
# column helpers


def _is_numeric_like(s: pd.Series) -> bool:
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return False
    return pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_datetime64_any_dtype(dt)


def _as_float(s: pd.Series, datetime: bool) -> np.ndarray:
    """Float view of a numeric column (datetimes as epoch seconds), nulls as NaN."""
    if datetime:
        if not pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.to_datetime(s, errors="coerce")
        if getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        secs = (s - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
        return secs.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _top_values(s: pd.Series, k: int) -> list:
    return list(s.astype(object).value_counts(dropna=True, sort=True).index[:k])


def _cat_codes(s: pd.Series, top: list) -> np.ndarray:
    """Index in ``top``; len(top) for any other value; len(top) + 1 for null."""
    obj = s.astype(object)
    codes = obj.map({v: i for i, v in enumerate(top)}).to_numpy(dtype="float64", na_value=np.nan)
    codes = np.where(np.isnan(codes), len(top), codes).astype(np.int64)
    codes[obj.isna().to_numpy()] = len(top) + 1
    return codes


def _quantile_edges(x: np.ndarray) -> np.ndarray:
    x = x[~np.isnan(x)]
    if not len(x):
        return np.array([], dtype="float64")
    return np.unique(np.quantile(x, np.arange(1, N_BINS) / N_BINS))


def _marginal_codes(
    real: pd.DataFrame, frames: list[pd.DataFrame], columns: list[str]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per frame an (rows, columns) int64 code matrix; and each column's cardinality."""
    out = [np.empty((len(f), len(columns)), dtype=np.int64) for f in frames]
    cards = np.empty(len(columns), dtype=np.int64)
    for j, col in enumerate(columns):
        s = real[col]
        if _is_numeric_like(s):
            dt = pd.api.types.is_datetime64_any_dtype(s.dtype)
            edges = _quantile_edges(_as_float(s, dt))
            null_code = len(edges) + 1
            for f, m in zip(frames, out, strict=True):
                x = _as_float(f[col], dt)
                c = np.searchsorted(edges, x, side="left")  # left-open bins, as polars ``cut``
                c[np.isnan(x)] = null_code
                m[:, j] = c
            cards[j] = len(edges) + 2
        else:
            top = _top_values(s, TOP_K_MARGINAL)
            for f, m in zip(frames, out, strict=True):
                m[:, j] = _cat_codes(f[col], top)
            cards[j] = len(top) + 2
    return out, cards


def _tvd(a: np.ndarray, b: np.ndarray, cards: np.ndarray) -> float:
    """Total variation distance between the joint code distributions of two code matrices."""
    if np.prod(cards.astype(float)) <= 4e6:
        size = int(np.prod(cards))
        fa = np.ravel_multi_index(a.T, cards) if len(a) else np.empty(0, dtype=np.int64)
        fb = np.ravel_multi_index(b.T, cards) if len(b) else np.empty(0, dtype=np.int64)
        pa = np.bincount(fa, minlength=size) / max(len(a), 1)
        pb = np.bincount(fb, minlength=size) / max(len(b), 1)
        return 0.5 * float(np.abs(pa - pb).sum())
    both = np.concatenate([a, b])
    _, inv = np.unique(both, axis=0, return_inverse=True)
    inv = inv.ravel()
    size = int(inv.max()) + 1 if len(inv) else 0
    pa = np.bincount(inv[: len(a)], minlength=size) / max(len(a), 1)
    pb = np.bincount(inv[len(a) :], minlength=size) / max(len(b), 1)
    return 0.5 * float(np.abs(pa - pb).sum())


# --------------------------------------------------------------------------------------------
# fidelity


def kmarginal(
    real: pd.DataFrame, synth: pd.DataFrame, k: int = 2, columns: list[str] | None = None
) -> float:
    """1000 x mean over all k-column subsets of (1 - TVD) between real and synthetic joints."""
    cols = list(columns) if columns is not None else [c for c in real.columns if c in synth]
    if len(cols) < k or k < 1:
        raise ValueError(f"need at least k={k} >= 1 shared columns, got {len(cols)}")
    (cr, cs), cards = _marginal_codes(real, [real, synth], cols)
    scores = [
        1.0 - _tvd(cr[:, list(sub)], cs[:, list(sub)], cards[list(sub)])
        for sub in combinations(range(len(cols)), k)
    ]
    return 1000.0 * float(np.mean(scores))


def oneway(real: pd.DataFrame, synth: pd.DataFrame, columns: list[str] | None = None) -> float:
    """``kmarginal`` with k = 1."""
    return kmarginal(real, synth, k=1, columns=columns)


def fanout_ks(real_child_counts: np.ndarray, synth_child_counts: np.ndarray) -> float:
    """1 - KS statistic between the children-per-parent distributions (1 = identical)."""
    r = np.asarray(real_child_counts, dtype="float64")
    s = np.asarray(synth_child_counts, dtype="float64")
    return 1.0 - float(ks_2samp(r, s).statistic)


# --------------------------------------------------------------------------------------------
# privacy


def _encoder(real: pd.DataFrame, columns: list[str]):
    """Fit the distance encoding on ``real``; returns ``encode(frame) -> float32 matrix``."""
    specs = []
    width = 0
    for col in columns:
        s = real[col]
        if _is_numeric_like(s):
            dt = pd.api.types.is_datetime64_any_dtype(s.dtype)
            x = _as_float(s, dt)
            x = x[~np.isnan(x)]
            lo, hi = np.percentile(x, [1, 99]) if len(x) else (0.0, 0.0)
            span = hi - lo if hi > lo else 1.0
            fill = float(np.clip((np.median(x) - lo) / span, 0, 1)) if len(x) else 0.0
            specs.append(("num", col, width, (dt, lo, span, fill)))
            width += 2  # value, null indicator
        else:
            top = _top_values(s, TOP_K_ONEHOT)
            specs.append(("cat", col, width, top))
            width += len(top) + 2  # top values, other, null

    w = np.float32(1.0 / np.sqrt(2.0))

    def encode(frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        m = np.zeros((n, width), dtype=np.float32)
        rows = np.arange(n)
        for kind, col, off, spec in specs:
            if kind == "num":
                dt, lo, span, fill = spec
                x = _as_float(frame[col], dt)
                null = np.isnan(x)
                v = np.clip((x - lo) / span, 0.0, 1.0)
                v[null] = fill
                m[:, off] = v
                m[:, off + 1] = null
            else:
                m[rows, off + _cat_codes(frame[col], spec)] = w
        return m

    return encode


def _sample(df: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    if size >= len(df):
        return df
    return df.iloc[np.sort(rng.choice(len(df), size=size, replace=False))]


def _prepare(train, holdout, synth, rng, n):
    cols = [c for c in train.columns if c in holdout.columns and c in synth.columns]
    m = min(n, len(train), len(holdout))
    tr = _sample(train, m, rng)
    ho = _sample(holdout, m, rng)
    sy = _sample(synth, min(n, len(synth)), rng)
    encode = _encoder(pd.concat([train[cols], holdout[cols]], ignore_index=True), cols)
    return encode(tr[cols]), encode(ho[cols]), encode(sy[cols])


def _nearest(ref: np.ndarray, query: np.ndarray) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=1).fit(ref)
    return nn.kneighbors(query, return_distance=True)[0][:, 0]


def dcr_share(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    rng: np.random.Generator,
    n: int = 5000,
) -> float:
    """Share of synthetic records whose nearest train record is closer than their nearest
    holdout record (ties count 1/2). 0.5 = no evidence of memorisation."""
    xtr, xho, xsy = _prepare(train, holdout, synth, rng, n)
    d_tr = _nearest(xtr, xsy)
    d_ho = _nearest(xho, xsy)
    tie = np.abs(d_tr - d_ho) <= _TIE_TOL
    return float(np.mean(np.where(tie, 0.5, (d_tr < d_ho).astype("float64"))))


def dcr_noise(
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    rng: np.random.Generator,
    n: int = 5000,
    reps: int = 8,
) -> float:
    """Standard deviation of the DCR share under no memorisation at all: the same contest
    between two disjoint random halves of the holdout (neither was seen), over ``reps``
    splits. Where the synthetic rows concentrate on a few archetypes (a category released with
    one value), a few real records win most contests and the share swings far from 0.5 by
    chance; this says how far. Each side holds half the rows the real contest has, so the
    figure is an upper bound of that contest's noise."""
    cols = list(holdout.columns.intersection(synth.columns))
    h = min(n, len(holdout) // 2)
    if h < 2 or len(synth) == 0:
        return float("nan")
    encode = _encoder(holdout[cols], cols)
    xsy = encode(_sample(synth[cols], min(n, len(synth)), rng))
    shares = []
    for _ in range(reps):
        order = rng.permutation(len(holdout))
        a = encode(holdout[cols].iloc[np.sort(order[:h])])
        b = encode(holdout[cols].iloc[np.sort(order[h : 2 * h])])
        d_a, d_b = _nearest(a, xsy), _nearest(b, xsy)
        tie = np.abs(d_a - d_b) <= _TIE_TOL
        shares.append(float(np.mean(np.where(tie, 0.5, (d_a < d_b).astype("float64")))))
    return float(np.std(shares, ddof=1))


def membership_auc(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    rng: np.random.Generator,
    n: int = 5000,
) -> float:
    """AUC of the distance-to-closest-synthetic-record attack telling train (label 1) from
    holdout (label 0) records, equal sizes. 0.5 = no evidence."""
    xtr, xho, xsy = _prepare(train, holdout, synth, rng, n)
    d = _nearest(xsy, np.concatenate([xtr, xho]))
    labels = np.concatenate([np.ones(len(xtr)), np.zeros(len(xho))])
    return float(roc_auc_score(labels, -d))
