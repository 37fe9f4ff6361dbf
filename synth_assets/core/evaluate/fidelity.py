"""Fidelity metrics: real against synthetic distributions (column shapes, pair trends,
fan-out, temporal profile, null rates).

Categories are compared on the values the spec released (the rest pooled), because a DP
generator never emits a category that failed the release threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import psycopg
from scipy import stats

from synth_assets.core.achievable import achievable_fanout, achievable_how, achievable_popularity
from synth_assets.core.kinds import EvalKind, TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.profile import fanout_bins
from synth_assets.core.profile.sql import unit_from
from synth_assets.core.roles import qi
from synth_assets.core.schema import ForeignKey, SchemaModel

from .plots import _shares
from .samples import NULL_TOKEN, scan_table
from .views import Col, View

ACF_LAGS = 14


FANOUT_PLOT_CAP = 4096


def tv_complement(real: pl.Series, synth: pl.Series) -> float:
    """1 - total variation distance between two categorical distributions."""
    if real.len() == 0 or synth.len() == 0:
        return 1.0 if real.len() == synth.len() else 0.0
    r = real.value_counts(normalize=True, name="p").rename({real.name: "v"})
    s = synth.value_counts(normalize=True, name="q").rename({synth.name: "v"})
    j = r.join(s, on="v", how="full", coalesce=True, nulls_equal=True).fill_null(0.0)
    return float(1.0 - 0.5 * (j["p"] - j["q"]).abs().sum())


def ks_complement(real: np.ndarray, synth: np.ndarray) -> float:
    """1 - two-sample Kolmogorov-Smirnov statistic (scipy's)."""
    real, synth = real[~np.isnan(real)], synth[~np.isnan(synth)]
    if real.size == 0 or synth.size == 0:
        return 1.0 if real.size == synth.size else 0.0
    return float(1.0 - ks_statistic(real, synth))


#: Up to this many rows a side scipy's ks_2samp is exact, and rounds the statistic to its lattice.
KS_EXACT_ROWS = 10_000


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample KS statistic as scipy's ks_2samp computes it, without the p-value nobody
    reads: above ``KS_EXACT_ROWS`` rows that p-value was two thirds of the test's time."""
    if max(a.size, b.size) <= KS_EXACT_ROWS:
        return float(stats.ks_2samp(a, b).statistic)
    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    diff = np.searchsorted(a, both, side="right") / a.size
    diff -= np.searchsorted(b, both, side="right") / b.size
    return float(max(np.clip(-diff.min(), 0, 1), diff.max()))


OTHER = "\x00other"  # categories the spec did not release, pooled (never written to the report)


def released_domain(
    df: pl.DataFrame, cols: Sequence[Col], released: dict[str, list[str] | None]
) -> pl.DataFrame:
    """Categorical columns mapped onto the values the spec released; the others pooled as one.

    A DP generator never emits a category that failed the release threshold (it draws its own
    labels for that mass), so fidelity compares the released categories and the pooled rest.
    """
    exprs = []
    for c in cols:
        values = released.get(c.name)
        if c.kind != EvalKind.CATEGORICAL or values is None:
            continue
        keep = pl.col(c.name).is_in([*values, NULL_TOKEN])
        exprs.append(pl.when(keep).then(pl.col(c.name)).otherwise(pl.lit(OTHER)).alias(c.name))
    return df.with_columns(exprs) if exprs else df


def column_shapes(
    cols: Sequence[Col],
    real: pl.DataFrame,
    synth: pl.DataFrame,
    released: dict[str, list[str] | None] | None = None,
) -> dict[str, Any]:
    """Per-column shape score (KS or TV complement, categories on the released domain) and their mean."""
    released = released or {}
    r_dom, s_dom = released_domain(real, cols, released), released_domain(synth, cols, released)
    scores = {}
    for c in cols:
        if c.kind == EvalKind.CATEGORICAL:
            scores[c.name] = {
                "metric": "tv_complement",
                "score": tv_complement(r_dom[c.name], s_dom[c.name]),
                # on the raw labels (suppressed real categories against the generator's own labels)
                "label_score": tv_complement(real[c.name], synth[c.name]),
            }
        else:
            scores[c.name] = {
                "metric": "ks_complement",
                "score": ks_complement(
                    real[c.name].to_numpy().astype(np.float64),
                    synth[c.name].to_numpy().astype(np.float64),
                ),
            }
    mean = float(np.mean([v["score"] for v in scores.values()])) if scores else float("nan")
    return {"score": mean, "columns": scores}


def _discretize(real: pl.Series, other: pl.Series, bins: int = 10) -> tuple[pl.Series, pl.Series]:
    """Continuous values as quantile-bin codes of the real values (null as -1)."""
    r = real.to_numpy().astype(np.float64)
    o = other.to_numpy().astype(np.float64)
    ok = r[~np.isnan(r)]
    edges = np.unique(np.quantile(ok, np.linspace(0, 1, bins + 1))) if ok.size else np.array([0.0])

    def code(x: np.ndarray) -> pl.Series:
        c = np.searchsorted(edges[1:-1], x, side="right").astype(np.int64)
        return pl.Series(np.where(np.isnan(x), -1, c)).cast(pl.Utf8)

    return code(r), code(o)


def pair_trend(a: Col, b: Col, real: pl.DataFrame, synth: pl.DataFrame) -> dict[str, Any]:
    """Correlation similarity (two continuous columns, Spearman) or contingency similarity."""
    if a.kind != EvalKind.CATEGORICAL and b.kind != EvalKind.CATEGORICAL:

        def rho(df: pl.DataFrame) -> float:
            x = df.select(a.name, b.name).drop_nulls().drop_nans()
            if x.height < 3:
                return 0.0
            r = stats.spearmanr(x[a.name].to_numpy(), x[b.name].to_numpy()).statistic
            return 0.0 if r != r else float(r)

        rr, rs = rho(real), rho(synth)
        return {
            "metric": "correlation_similarity",
            "score": 1.0 - abs(rr - rs) / 2,
            "real": rr,
            "synthetic": rs,
        }
    cols = []
    for c in (a, b):
        if c.kind == EvalKind.CATEGORICAL:
            cols.append((real[c.name], synth[c.name]))
        else:
            cols.append(_discretize(real[c.name], synth[c.name]))
    r = pl.DataFrame({"a": cols[0][0], "b": cols[1][0]})
    s = pl.DataFrame({"a": cols[0][1], "b": cols[1][1]})
    rc = r.group_by("a", "b").len().with_columns(p=pl.col("len") / r.height).drop("len")
    sc = s.group_by("a", "b").len().with_columns(q=pl.col("len") / max(1, s.height)).drop("len")
    j = rc.join(sc, on=["a", "b"], how="full", coalesce=True).fill_null(0.0)
    return {
        "metric": "contingency_similarity",
        "score": float(1.0 - 0.5 * (j["p"] - j["q"]).abs().sum()),
    }


def pair_trends(
    view: View, real: pl.DataFrame, synth: pl.DataFrame, max_pairs: int = 60
) -> dict[str, Any]:
    """Pair trend scores of a view (in a join: only pairs across child and parent) and their mean."""
    cols = view.cols
    pairs = [
        (a, b)
        for i, a in enumerate(cols)
        for b in cols[i + 1 :]
        if not view.is_join or a.parent != b.parent
    ]
    out = {f"{a.name}~{b.name}": pair_trend(a, b, real, synth) for a, b in pairs[:max_pairs]}
    mean = float(np.mean([v["score"] for v in out.values()])) if out else float("nan")
    return {"score": mean, "pairs": out}


def ks_from_histograms(
    values_r: np.ndarray, counts_r: np.ndarray, values_s: np.ndarray, counts_s: np.ndarray
) -> float:
    """Two-sample KS statistic of two discrete distributions given as (value, count) histograms."""
    support = np.union1d(values_r, values_s)
    if support.size == 0:
        return 0.0

    def cdf(v: np.ndarray, c: np.ndarray) -> np.ndarray:
        w = np.zeros(support.size)
        np.add.at(w, np.searchsorted(support, v), c)
        t = w.sum()
        return np.cumsum(w) / t if t > 0 else np.zeros(support.size)

    return float(np.max(np.abs(cdf(values_r, counts_r) - cdf(values_s, counts_s))))


def _binned(values: np.ndarray, counts: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """A (value, count) histogram summed into the bins that start at ``edges``."""
    out = np.zeros(len(edges))
    np.add.at(out, np.searchsorted(np.asarray(edges), values, side="right") - 1, counts)
    return out


def _bin_labels(edges: Sequence[int]) -> list[str]:
    """Labels of the bins starting at ``edges``: "3", "4-7", or "64+" for the last."""
    labels = []
    for i, e in enumerate(edges):
        nxt = edges[i + 1] if i + 1 < len(edges) else None
        labels.append(str(e) if nxt == e + 1 else (f"{e}-{nxt - 1}" if nxt else f"{e}+"))
    return labels


def sampled_share(
    conn: psycopg.Connection, model: SchemaModel, plan: TablePlan, column: str
) -> float | None:
    """Share of a unit-owned child's rows (``column`` not NULL) that the profile's popularity
    measurement saw: it counts one row per unit, so the share is units over rows. None for a
    table without units.

    Read off the noisy histogram instead, the share came out 1.0 where it is 0.18 (lahman's
    batting per team-year): noise in the far bins inflates the histogram's mean, and the
    ideal generator was simulated from a measurement five times sharper than the real one."""
    if plan.kind not in (TableKind.ROOT, TableKind.CHILD):
        return None
    src, unit = unit_from(model, plan)
    units, rows = conn.execute(
        f"SELECT count(DISTINCT {unit}), count(*) FROM {src} WHERE t.{qi(column)} IS NOT NULL"
    ).fetchone()
    return float(units) / float(rows) if rows else None


def _real_fanout(
    conn: psycopg.Connection, model: SchemaModel, child: str, fk: ForeignKey
) -> tuple[np.ndarray, np.ndarray]:
    """(children per parent, parents with that many) in the source, parents without children
    counted at 0."""
    sch = qi(model.schema)
    fkc, pk = fk.columns[0], fk.ref_columns[0]
    rows = conn.execute(
        f"SELECT coalesce(c.n, 0) AS k, count(*) FROM {sch}.{qi(fk.ref_table)} p LEFT JOIN "
        f"(SELECT {qi(fkc)} AS key, count(*) AS n FROM {sch}.{qi(child)} WHERE {qi(fkc)} IS NOT NULL GROUP BY 1) c "
        f"ON c.key = p.{qi(pk)} GROUP BY 1"
    ).fetchall()
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.float64),
    )


def _synthetic_fanout(
    refresh_dir: Path, child: str, fk: ForeignKey
) -> tuple[np.ndarray, np.ndarray]:
    """The same histogram over the synthetic shards."""
    fkc, pk = fk.columns[0], fk.ref_columns[0]
    kids = (
        scan_table(refresh_dir, child)
        .select(pl.col(fkc).alias("key"))
        .drop_nulls()
        .group_by("key")
        .len()
    )
    parents = scan_table(refresh_dir, fk.ref_table).select(pl.col(pk).alias("key"))
    hist = (
        parents.join(kids, on="key", how="left")
        .select(pl.col("len").fill_null(0).alias("k"))
        .group_by("k")
        .len()
        .collect()
    )
    return hist["k"].to_numpy().astype(np.int64), hist["len"].to_numpy().astype(np.float64)


@dataclass(frozen=True)
class FanoutCounts:
    """What a fan-out comparison reads: children per parent as (value, parents with that many),
    real and synthetic, and the share of the child's rows the profile's popularity measurement
    saw (None: not asked for). Reading draws no random number, so the report reads ahead."""

    real: tuple[np.ndarray, np.ndarray]
    synthetic: tuple[np.ndarray, np.ndarray]
    sampled_share: float | None = None


def fanout_counts(
    conn: psycopg.Connection,
    model: SchemaModel,
    refresh_dir: Path,
    child: str,
    fk: ForeignKey,
    share_of: TablePlan | None = None,
) -> FanoutCounts:
    """The histograms :func:`fanout_similarity` compares, with the sampled share of the child
    whose plan is ``share_of`` (see :func:`sampled_share`)."""
    share = sampled_share(conn, model, share_of, fk.columns[0]) if share_of is not None else None
    return FanoutCounts(
        _real_fanout(conn, model, child, fk), _synthetic_fanout(refresh_dir, child, fk), share
    )


def fanout_similarity(
    conn: psycopg.Connection,
    model: SchemaModel,
    refresh_dir: Path,
    child: str,
    fk: ForeignKey,
    min_cell: int,
    relative: bool = False,
    spec_fanout: dict[str, Any] | None = None,
    rng: np.random.Generator | None = None,
    plan: TablePlan | None = None,
    counts: FanoutCounts | None = None,
) -> dict[str, Any]:
    """KS complement of children per parent (parents without children count as 0), real vs synthetic.

    ``relative`` compares children per parent divided by its mean: for a unit-owned child of a
    reference table, whose size does not follow generation.scale while the child's does. There,
    with the spec's fan-out entry and ``rng``, the result also holds what a perfect generator
    scores from a measurement this noisy (:func:`achievable_popularity`), thinned as the
    profile thinned it when the child's ``plan`` is given (:func:`sampled_share`). ``counts``
    are the histograms read ahead (:func:`fanout_counts`); without them they are read here.
    """
    if counts is None:
        share_of = plan if relative and rng is not None else None
        counts = fanout_counts(conn, model, refresh_dir, child, fk, share_of)
    (vr, cr), (vs, cs) = counts.real, counts.synthetic
    mean_r = float(np.dot(vr, cr) / max(1.0, cr.sum()))
    mean_s = float(np.dot(vs, cs) / max(1.0, cs.sum()))
    if relative and mean_r > 0 and mean_s > 0:
        d = ks_from_histograms(vr / mean_r, cr, vs / mean_s, cs)
    else:
        d = ks_from_histograms(vr, cr, vs, cs)
    ach = None
    real = np.repeat(vr, cr.astype(np.int64)) if rng is not None else None
    if not relative and real is not None:
        ach = achievable_fanout(real, spec_fanout, int(cs.sum()), rng)
    elif real is not None:
        ach = achievable_popularity(
            real.astype(np.float64),
            spec_fanout,
            int(vs @ cs),
            int(cs.sum()),
            rng,
            sampled_share=counts.sampled_share,
        )
    return {
        "child": child,
        "parent": fk.ref_table,
        "column": fk.columns[0],
        "value": 1.0 - d,
        "relative": relative,
        **({"achievable": ach} if ach else {}),
        "real_mean": mean_r,
        "synthetic_mean": mean_s,
        "plot": _fanout_plot(counts, min_cell),
    }


def _fanout_plot(counts: FanoutCounts, min_cell: int) -> dict[str, Any]:
    """Fan-out shares on fixed bins (the profile's), trimmed where synthetic is empty and real
    under the minimum cell: the plot's extent must not reveal the largest real fan-out."""
    (vr, cr), (vs, cs) = counts.real, counts.synthetic
    edges = fanout_bins(FANOUT_PLOT_CAP)
    br, bs = _binned(vr, cr, edges), _binned(vs, cs, edges)
    keep = int(np.max(np.flatnonzero((bs > 0) | (br >= min_cell)), initial=1)) + 1
    return {
        "labels": _bin_labels(edges)[:keep],
        "real": _shares(br[:keep], min_cell),
        "synthetic": _shares(bs[:keep], 0),
    }


def _acf(series: np.ndarray, lags: int = ACF_LAGS) -> list[float]:
    """Autocorrelation at lags 1..``lags`` (0 where undefined: too short or constant)."""
    s = pd.Series(series, dtype=float)
    out = []
    for k in range(1, lags + 1):
        v = s.autocorr(lag=k) if s.size > k + 2 else float("nan")
        out.append(0.0 if v != v else float(v))
    return out


def _daily(days: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Counts per day on a gapless calendar (days without rows count 0)."""
    if days.size == 0:
        return np.zeros(0)
    full = np.zeros(int(days.max() - days.min()) + 1)
    np.add.at(full, days - days.min(), counts)
    return full


def hour_of_week_corr(real: np.ndarray, synth: np.ndarray) -> float:
    """Pearson correlation of two hour-of-week profiles (1 when both are flat, 0 when one is)."""
    if real.std() > 0 and synth.std() > 0:
        return float(stats.pearsonr(real, synth).statistic)
    return 1.0 if real.std() == synth.std() == 0 else 0.0


@dataclass(frozen=True)
class TemporalCounts:
    """What a temporal profile reads: rows per hour of the week, and (day, rows) per day, real
    and synthetic. Reading draws no random number, so the report reads ahead."""

    how_real: np.ndarray
    days_real: tuple[np.ndarray, np.ndarray]
    how_synthetic: np.ndarray
    days_synthetic: tuple[np.ndarray, np.ndarray]


def temporal_counts(
    conn: psycopg.Connection, model: SchemaModel, refresh_dir: Path, table: str, col: Col
) -> TemporalCounts:
    """The counts :func:`temporal_profile` compares: real ones in SQL, synthetic ones over the
    shards."""
    q = qi(col.column)
    src = f"{qi(model.schema)}.{qi(table)}"
    how_r = np.zeros(168)
    for h, n in conn.execute(
        f"SELECT (extract(isodow from {q})::int - 1) * 24 + extract(hour from {q})::int, "
        f"count(*) FROM {src} WHERE {q} IS NOT NULL GROUP BY 1"
    ):
        how_r[int(h)] += n
    day_rows = conn.execute(
        f"SELECT ({q}::date - DATE '1970-01-01'), count(*) FROM {src} "
        f"WHERE {q} IS NOT NULL GROUP BY 1"
    ).fetchall()
    dr = np.array([r[0] for r in day_rows], dtype=np.int64)
    cr = np.array([r[1] for r in day_rows], dtype=np.float64)
    s = scan_table(refresh_dir, table).select(pl.col(col.column).alias("t")).drop_nulls()
    dow, hour = pl.col("t").dt.weekday().cast(pl.Int64), pl.col("t").dt.hour().cast(pl.Int64)
    how = s.select(((dow - 1) * 24 + hour).alias("h")).group_by("h").len().collect()
    how_s = np.zeros(168)
    np.add.at(how_s, how["h"].to_numpy(), how["len"].to_numpy())
    days = s.select((pl.col("t").dt.date().cast(pl.Int64)).alias("d")).group_by("d").len().collect()
    ds, cs = days["d"].to_numpy().astype(np.int64), days["len"].to_numpy().astype(np.float64)
    return TemporalCounts(how_r, (dr, cr), how_s, (ds, cs))


def temporal_profile(
    conn: psycopg.Connection,
    model: SchemaModel,
    refresh_dir: Path,
    table: str,
    col: Col,
    min_cell: int,
    cspec: dict[str, Any] | None = None,
    rng: np.random.Generator | None = None,
    counts: TemporalCounts | None = None,
) -> dict[str, Any]:
    """Hour-of-week correlation and daily-count autocorrelation (lags 1..14), real vs synthetic;
    with the column's spec and a generator, also the correlation an ideal generator reaches from
    the hour-of-week measurement's noise (:func:`achievable_how`), which calibrates its gate.
    ``counts`` are read ahead (:func:`temporal_counts`); without them they are read here."""
    if counts is None:
        counts = temporal_counts(conn, model, refresh_dir, table, col)
    how_r, how_s = counts.how_real, counts.how_synthetic
    corr = hour_of_week_corr(how_r, how_s)
    acf_r, acf_s = _acf(_daily(*counts.days_real)), _acf(_daily(*counts.days_synthetic))
    diff = np.abs(np.array(acf_r) - np.array(acf_s))
    return {
        "table": table,
        "column": col.column,
        "hour_of_week_corr": corr,
        "achievable": achievable_how(how_r, cspec, int(how_s.sum()), rng) if rng else None,
        "acf_real": acf_r,
        "acf_synthetic": acf_s,
        "acf_max_diff": float(diff.max()) if diff.size else 0.0,
        "acf_mean_diff": float(diff.mean()) if diff.size else 0.0,
        "plot": {"real": _shares(how_r, min_cell), "synthetic": _shares(how_s, 0)},
    }


def null_rates(
    conn: psycopg.Connection, model: SchemaModel, refresh_dir: Path, table: str
) -> dict[str, Any]:
    """Null share of every column, real (all rows) vs synthetic (all shards)."""
    t = model.tables[table]
    cols = [c.name for c in t.columns]
    row = conn.execute(
        f"SELECT count(*), {', '.join(f'count({qi(c)})' for c in cols)} "
        f"FROM {qi(model.schema)}.{qi(table)}"
    ).fetchone()
    n = max(1, int(row[0]))
    lf = scan_table(refresh_dir, table)
    present = set(lf.collect_schema().names())
    srow = lf.select(
        [pl.len().alias("__n"), *[pl.col(c).null_count() for c in cols if c in present]]
    ).collect()
    sn = max(1, int(srow["__n"][0]))
    out = {}
    for i, c in enumerate(cols):
        r = 1.0 - int(row[i + 1]) / n
        s = float(srow[c][0]) / sn if c in present else 1.0
        out[c] = {"real": r, "synthetic": s, "diff": abs(r - s)}
    worst = max(out, key=lambda c: out[c]["diff"]) if out else None
    return {"max_diff": out[worst]["diff"] if worst else 0.0, "worst_column": worst, "columns": out}
