"""Privacy metrics: each compares "synthetic vs training" with "holdout vs training", so a
value is judged against what unseen real rows of the same population score.

Distance metrics (DCR share, NNDR, membership inference, exact matches) run on samples; rare
quasi-identifier combinations and identifier overlap run on all rows, because a generator that
copies a handful of outliers must show.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg
from sklearn.metrics import roc_auc_score, roc_curve

from synth_assets.core.generate import usable_cpus
from synth_assets.core.kinds import EvalKind, TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.roles import TEXT_TYPES, qi
from synth_assets.core.schema import SchemaModel
from synth_assets.core.secrets import keyed_hash

from .distance import _thin, knn_distances
from .encode import Encoded, MixedEncoder
from .samples import _fetch, _source, _synthetic_view, _where, canonical_qi, scan_table
from .views import View

#: Identifier and PII roles whose real values must never appear among synthetic ones.
OVERLAP_ROLES = frozenset({"email", "phone", "national_id", "card_number", "iban"})


_TEXT_KEY_TYPES = (TEXT_TYPES - {"name"}) | {"uuid"}


def dcr_share(d_train: np.ndarray, d_holdout: np.ndarray) -> float:
    """Share of rows closer to training than to holdout; ties count one half."""
    d_train, d_holdout = np.asarray(d_train), np.asarray(d_holdout)
    if d_train.size == 0:
        return float("nan")
    closer = np.count_nonzero(d_train < d_holdout)
    ties = np.count_nonzero(d_train == d_holdout)
    return float((closer + 0.5 * ties) / d_train.size)


def nndr(d: np.ndarray) -> np.ndarray:
    """Nearest / second-nearest distance ratio per row (1 when both are 0: not a unique match)."""
    d1, d2 = d[:, 0], d[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d2 > 0, d1 / d2, 1.0)
    return np.clip(r, 0.0, 1.0)


def distance_histogram(
    synthetic: np.ndarray, holdout: np.ndarray, edges: np.ndarray | None = None, bins: int = 20
) -> dict[str, list]:
    """Shares of synthetic and of holdout rows per distance bin (to their closest training
    rows), for the report's distribution plots. Bins are the holdout's quantiles unless given:
    a synthetic distribution piled in the first bins is one that sits closer to the training
    rows than unseen real rows do. Aggregates only."""
    s = np.asarray(synthetic, dtype=np.float64)
    h = np.asarray(holdout, dtype=np.float64)
    s, h = s[np.isfinite(s)], h[np.isfinite(h)]
    if edges is None:
        if not h.size:
            return {"edges": [], "synthetic": [], "holdout": []}
        edges = np.unique(np.quantile(h, np.linspace(0.0, 1.0, bins + 1)))
    e = np.asarray(edges, dtype=np.float64)
    if e.size < 2:
        e = np.array([e[0] if e.size else 0.0, (e[0] if e.size else 0.0) + 1.0])

    def shares(x: np.ndarray) -> list[float]:
        if not x.size:
            return [0.0] * (e.size - 1)
        idx = np.clip(np.searchsorted(e, x, side="right") - 1, 0, e.size - 2)
        return (np.bincount(idx, minlength=e.size - 1) / x.size).tolist()

    return {"edges": e.tolist(), "synthetic": shares(s), "holdout": shares(h)}


def nndr_ratio(
    synthetic: np.ndarray, holdout: np.ndarray, percentile: float = 5.0, eps: float = 1e-3
) -> tuple[float, float, float]:
    """(ratio, synthetic percentile, holdout percentile) of the NNDR low percentile."""
    ps = float(np.percentile(synthetic, percentile)) if synthetic.size else float("nan")
    ph = float(np.percentile(holdout, percentile)) if holdout.size else float("nan")
    return (
        float(min(1.0, (ps + eps) / (ph + eps)) if ph == ph and ps == ps else float("nan")),
        ps,
        ph,
    )


def membership_inference(d_members: np.ndarray, d_nonmembers: np.ndarray) -> dict[str, float]:
    """Distance-based attack: closer to a synthetic row means "member". ROC AUC and TPR at 1% FPR."""
    y = np.concatenate([np.ones(d_members.size), np.zeros(d_nonmembers.size)])
    score = -np.concatenate([d_members, d_nonmembers])
    if d_members.size == 0 or d_nonmembers.size == 0:
        return {"auc": float("nan"), "tpr_at_1pct_fpr": float("nan")}
    auc = float(roc_auc_score(y, score))
    fpr, tpr, _ = roc_curve(y, score)
    tpr1 = float(np.interp(0.01, fpr, tpr))
    return {"auc": auc, "tpr_at_1pct_fpr": tpr1}


def exact_match_rate(query: pl.DataFrame, ref: pl.DataFrame) -> float:
    """Share of ``query`` rows equal to some ``ref`` row on every column."""
    if query.height == 0 or query.width == 0:
        return 0.0

    def norm(
        df: pl.DataFrame,
    ) -> pl.DataFrame:  # floats from Parquet and from SQL may differ in ulps
        return df.with_columns(pl.col(pl.Float64).round(6))

    hits = norm(query).join(norm(ref).unique(), on=query.columns, how="semi", nulls_equal=True)
    return hits.height / query.height


def column_groups(view: View) -> dict[str, list[str]]:
    """The column sets DCR is measured on: all columns, the categorical ones, the continuous ones."""
    names = [c.name for c in view.cols]
    groups = {"all": names}
    cat = [c.name for c in view.cols if c.kind == EvalKind.CATEGORICAL]
    cont = [c.name for c in view.cols if c.kind != EvalKind.CATEGORICAL]
    if cat and cont:
        groups["categorical"] = cat
        groups["continuous"] = cont
    return groups


def privacy_metrics(
    view: View,
    train_parts: Sequence[pl.DataFrame],
    holdout: pl.DataFrame,
    synth_ref: pl.DataFrame,
    n_query: int,
    enc: MixedEncoder,
    percentile: float = 5.0,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """DCR share (max over column groups), NNDR, exact matches and membership inference for one view.

    ``train_parts`` are disjoint training samples, each exchangeable with ``holdout`` (same number
    of units). The DCR share compares the first ``n_query`` rows of ``synth_ref`` with each part
    and the holdout, both thinned at random to the same number of rows (units differ in size, and
    the denser side would win nearest-neighbour contests), and averages over the parts. NNDR and
    exact matches search all parts together (the training reference), so copies of any sampled
    training row count. The attack tells part 0 from the holdout by the distance to the nearest
    row of all of ``synth_ref``.
    """
    with ThreadPoolExecutor(max_workers=usable_cpus()) as pool:
        return start_privacy_search(
            view, train_parts, holdout, synth_ref, n_query, enc, pool, percentile, rng
        ).result()


@dataclass
class PrivacySearch:
    """A view's neighbour searches (and exact-match counts) under way on a pool of threads, and
    what the privacy summary needs of them; :meth:`result` waits for them and summarises."""

    view: View
    groups: dict[str, list[str]]
    searches: dict[Any, Future[np.ndarray]]
    matches: tuple[Future[float], Future[float]]
    n_parts: int
    rows_per_side: int
    n_query: int
    n_members: int
    percentile: float

    def result(self) -> dict[str, Any]:
        """The view's privacy metrics (see :func:`privacy_metrics`)."""
        return _privacy_summary(self, {k: f.result() for k, f in self.searches.items()})


def start_privacy_search(
    view: View,
    train_parts: Sequence[pl.DataFrame],
    holdout: pl.DataFrame,
    synth_ref: pl.DataFrame,
    n_query: int,
    enc: MixedEncoder,
    pool: ThreadPoolExecutor,
    percentile: float = 5.0,
    rng: np.random.Generator | None = None,
) -> PrivacySearch:
    """Encode and thin a view's samples (every random draw of its privacy metrics happens
    here), then queue its neighbour searches on ``pool``: they draw nothing, so the caller may
    go on drawing for the next view while they run."""
    rng = rng or np.random.default_rng(0)
    query = synth_ref.head(n_query)
    e_parts = [enc.transform(p) for p in train_parts]
    e_hold, e_ref_s = enc.transform(holdout), enc.transform(synth_ref)
    m = min(holdout.height, *(p.height for p in train_parts))
    thin_hold = e_hold.take(_thin(rng, holdout.height, m))
    thin_parts = [
        e.take(_thin(rng, p.height, m)) for e, p in zip(e_parts, train_parts, strict=True)
    ]
    # Every row is encoded on its own, so the query rows (the head of the synthetic reference)
    # and the training reference (the parts one after the other) reuse the parts' encodings.
    e_query = e_ref_s.head(query.height)
    groups = column_groups(view)
    tasks = _dcr_tasks(groups, e_query, thin_hold, thin_parts)
    # One search per reference: each query row's neighbours do not depend on the rows searched
    # with it, so NNDR's two query sets (and the attack's) are stacked and split afterwards.
    tasks["nndr"] = (Encoded.concat(e_parts), Encoded.concat([e_query, e_hold]), 2)
    tasks["mia"] = (e_ref_s, Encoded.concat([e_parts[0], e_hold]), 1)
    reference = pl.concat(list(train_parts))
    matches = (
        pool.submit(exact_match_rate, query, reference),
        pool.submit(exact_match_rate, holdout, reference),
    )
    return PrivacySearch(
        view,
        groups,
        _submit_searches(tasks, pool),
        matches,
        len(e_parts),
        m,
        e_query.n,
        e_parts[0].n,
        percentile,
    )


def _privacy_summary(search: PrivacySearch, done: dict[Any, np.ndarray]) -> dict[str, Any]:
    """DCR share, NNDR, membership inference and exact matches from a view's finished searches."""
    out: dict[str, Any] = {}
    out["dcr_share"] = _dcr_share_summary(search.groups, done, search.n_parts, search.rows_per_side)
    ds, dho = np.vsplit(done["nndr"], [search.n_query])
    percentile = search.percentile
    r, ps, ph = nndr_ratio(nndr(ds), nndr(dho), percentile)
    out["nndr"] = {
        "value": r,
        "synthetic_percentile": ps,
        "holdout_percentile": ph,
        "percentile": percentile,
    }
    scale = math.sqrt(max(1, len(search.view.cols)))
    out["dcr"] = {
        "synthetic_to_training_median": float(np.median(ds[:, 0]) / scale) if ds.size else None,
        "holdout_to_training_median": float(np.median(dho[:, 0]) / scale) if dho.size else None,
        "histogram": distance_histogram(ds[:, 0] / scale, dho[:, 0] / scale),
    }
    out["nndr"]["histogram"] = distance_histogram(
        nndr(ds), nndr(dho), edges=np.linspace(0.0, 1.0, 21)
    )
    out["mia"] = _mia_summary(*np.vsplit(done["mia"], [search.n_members]))
    s_rate, h_rate = (f.result() for f in search.matches)
    out["exact_match"] = {"synthetic": s_rate, "holdout": h_rate, "excess": s_rate - h_rate}
    return out


def _dcr_tasks(
    groups: dict[str, list[str]], e_query: Encoded, thin_hold: Encoded, thin_parts: list[Encoded]
) -> dict[Any, tuple[Encoded, Encoded, int]]:
    """The DCR contests' searches: per column group, the query rows against the holdout and
    against each training part."""
    tasks: dict[Any, tuple[Encoded, Encoded, int]] = {}
    for g, names in groups.items():
        xs = e_query.select(names)
        xs.blocks()  # found once here, not by each thread that searches with these rows
        tasks[(g, "holdout")] = (thin_hold.select(names), xs, 1)
        for i, p in enumerate(thin_parts):
            tasks[(g, i)] = (p.select(names), xs, 1)
    return tasks


def _submit_searches(
    tasks: dict[Any, tuple[Encoded, Encoded, int]], pool: ThreadPoolExecutor
) -> dict[Any, Future[np.ndarray]]:
    """Every neighbour search is independent: queue them on ``pool`` (KD-tree queries release
    the GIL), the largest first so that the last one running leaves no core idle."""
    keys = sorted(tasks, key=lambda key: -(tasks[key][0].n + tasks[key][1].n))
    return {key: pool.submit(knn_distances, *tasks[key]) for key in keys}


def _dcr_contest(done: dict[Any, np.ndarray], g: str, n_parts: int) -> tuple[float, float, float]:
    """Column group ``g``'s DCR share averaged over the training parts, its standard error, and
    the noise floor of a single holdout of this size."""
    dh = done[(g, "holdout")][:, 0]
    dp = [done[(g, i)][:, 0] for i in range(n_parts)]
    shares = [dcr_share(d, dh) for d in dp]
    spread = (
        float(np.std(shares, ddof=1) / math.sqrt(len(shares))) if len(shares) > 1 else float("nan")
    )
    # The same contest between two training parts (no memorisation can separate them): its
    # spread is the noise floor a single holdout of this size puts on the share.
    pairs = [dcr_share(dp[i], dp[j]) for i in range(len(dp)) for j in range(i + 1, len(dp))]
    noise = float(np.std(pairs)) if len(pairs) > 1 else float("nan")
    return float(np.mean(shares)), spread, noise


def _dcr_share_summary(
    groups: dict[str, list[str]], done: dict[Any, np.ndarray], n_parts: int, rows_per_side: int
) -> dict[str, Any]:
    """The DCR share of the worst column group, with every group's and the noise around it."""
    dcr: dict[str, float] = {}
    spread: dict[str, float] = {}
    noise: dict[str, float] = {}
    for g in groups:
        dcr[g], spread[g], noise[g] = _dcr_contest(done, g, n_parts)
    worst = max(dcr, key=lambda g: dcr[g])
    return {
        "value": dcr[worst],
        "worst_group": worst,
        "groups": dcr,
        "baseline": 0.5,
        "training_parts": n_parts,
        "rows_per_side": rows_per_side,
        "standard_error": spread[worst],
        # Every group is contested with the same holdout: their spreads pooled (root mean
        # square) are a steadier estimate of its noise than one group's 28 correlated contests.
        "noise_sd": float(np.sqrt(np.mean([x * x for x in noise.values()]))),
        "group_noise_sd": noise,
    }


def _mia_summary(d_members: np.ndarray, d_nonmembers: np.ndarray) -> dict[str, Any]:
    """The membership-inference attack's scores, sample sizes and chance baselines."""
    return {
        **membership_inference(d_members[:, 0], d_nonmembers[:, 0]),
        "members": int(d_members.shape[0]),
        "nonmembers": int(d_nonmembers.shape[0]),
        "baseline_auc": 0.5,
        "baseline_tpr": 0.01,
    }


def rare_combination_ratio(s_hits: int, s_rows: int, h_hits: int, h_rows: int) -> float:
    """Synthetic hit rate over the holdout's, the holdout's floored at one synthetic row."""
    if s_rows == 0:
        return 0.0
    base = max(h_hits / h_rows if h_rows else 0.0, 1.0 / s_rows)
    return (s_hits / s_rows) / base


def _qi_key_sql(exprs: Sequence[str]) -> str:
    """One text key per QI combination (hashable, so joins run as hash joins; NULL is a value)."""
    parts = ", ".join(f"coalesce(({e})::text, chr(1))" for e in exprs)
    return f"concat_ws(chr(31), {parts})"


def rare_combinations(
    conn: psycopg.Connection,
    model: SchemaModel,
    plans: dict[str, TablePlan],
    view: View,
    refresh_dir: Path,
    params: dict,
    max_count: int = 2,
) -> dict[str, Any] | None:
    """Real QI combinations seen at most ``max_count`` times in training, reproduced by synthetic vs holdout.

    Counted over all rows, not samples: a generator that copies a handful of outliers must show.
    """
    if not view.qis or plans[view.table].kind == TableKind.REFERENCE:
        return None
    src = _source(model, plans, view)
    names = [n for n, _, _ in view.qis]
    exprs = [
        f"{'pp' if (view.fk is not None and tbl != view.table) else 't'}.{qi(col)}"
        for _, tbl, col in view.qis
    ]
    key = _qi_key_sql(exprs)
    train_where = _where(src, "training")
    h_hits, h_rows = conn.execute(
        f"WITH rare AS (SELECT {key} AS k FROM {src.from_sql} WHERE {train_where} GROUP BY 1 "
        f"HAVING count(*) <= {int(max_count)}) "
        f"SELECT count(*) FILTER (WHERE {key} IN (SELECT k FROM rare)), count(*) FROM {src.from_sql} "
        f"WHERE {_where(src, 'holdout')}",
        params,
    ).fetchone()
    sel = ", ".join(f"{e} AS {qi(n)}" for e, n in zip(exprs, names, strict=True))
    gcols = ", ".join(str(i + 1) for i in range(len(names)))
    rare = _fetch(
        conn,
        f"SELECT {sel} FROM {src.from_sql} WHERE {train_where} GROUP BY {gcols} "
        f"HAVING count(*) <= {int(max_count)}",
        params,
        names,
    )
    base_types = [model.tables[tbl].column(col).base_type for _, tbl, col in view.qis]
    lf, total = _synthetic_view(
        refresh_dir, View(view.name, view.table, view.kind, [], view.fk, []), extra=view.qis
    )
    hits = 0
    if rare.height:
        synth = canonical_qi(lf.select(names).collect(), names, base_types)
        hits = synth.join(
            canonical_qi(rare, names, base_types).unique(), on=names, how="semi", nulls_equal=True
        ).height
    return {
        "quasi_identifiers": names,
        "max_count": max_count,
        "rare_combinations": rare.height,
        "holdout_hits": int(h_hits),
        "holdout_rows": int(h_rows),
        "synthetic_hits": int(hits),
        "synthetic_rows": total,
        "value": rare_combination_ratio(int(hits), total, int(h_hits), int(h_rows)),
    }


def overlap_columns(
    model: SchemaModel, roles: dict[str, dict[str, str]]
) -> list[tuple[str, str, str]]:
    """(table, column, group) of identifier and PII columns whose real values must not reappear."""
    out = []
    for t, tab in model.tables.items():
        for c in tab.columns:
            r = roles[t][c.name]
            if r in OVERLAP_ROLES:
                out.append((t, c.name, r))
            elif r == "key" and c.base_type in _TEXT_KEY_TYPES and not tab.fk_for(c.name):
                out.append((t, c.name, "identifier"))
    return out


def normalize_identifier(values: pl.Series, group: str) -> pl.Series:
    """Comparable form of identifier values: case and punctuation folded, phones by their last 10 digits."""
    s = values.cast(pl.Utf8).str.strip_chars()
    if group == "email":
        s = s.str.to_lowercase()
    elif group == "phone":
        s = s.str.replace_all(r"\D", "").str.slice(-10)
    elif group in ("national_id", "card_number", "iban"):
        s = s.str.to_uppercase().str.replace_all(r"[^0-9A-Z]", "")
    return s.filter(s.str.len_chars() > 0).unique()


def _hashes(key: bytes, group: str, values: pl.Series) -> set[str]:
    """Keyed hashes of normalised values; the group is part of the message (no cross-group match)."""
    return {keyed_hash(key, f"{group}\x1f{v}") for v in values.to_list()}


def _fast_keys(key: bytes, group: str, values: pl.Series) -> pl.Series:
    """A keyed 64-bit hash of each value: a candidate filter, never the comparison itself."""
    seed = int.from_bytes(hmac.digest(key, f"overlap-candidates/{group}".encode(), "sha256")[:8])
    return values.hash(seed=seed)


def _overlap(
    key: bytes, group: str, real: list[pl.Series], synth: list[pl.Series]
) -> tuple[int, int, int]:
    """(distinct real values, distinct synthetic values, values in both by HMAC) of one group."""
    r, s = pl.concat(real).unique(), pl.concat(synth).unique()
    fr, fs = _fast_keys(key, group, r), _fast_keys(key, group, s)
    r_cand, s_cand = r.filter(fr.is_in(fs.implode())), s.filter(fs.is_in(fr.implode()))
    both = _hashes(key, group, r_cand) & _hashes(key, group, s_cand)
    return r.len(), s.len(), len(both)


def identifier_overlap(
    conn: psycopg.Connection,
    model: SchemaModel,
    roles: dict[str, dict[str, str]],
    refresh_dir: Path,
    hmac_key: bytes,
) -> dict[str, Any]:
    """Real identifier/PII values found among synthetic ones, compared as HMAC-SHA256 hashes, per role.

    Every synthetic identifier of the band is compared, not a sample: a leak must be counted
    wherever it is. An HMAC per value cost 80 s at 113M rows, so a keyed 64-bit hash (seeded
    from the HMAC key) first keeps the candidates whose hash the other side also holds; only
    they are compared by HMAC. Equal values always share the fast hash, so the count is the
    HMAC comparison's, without its cost on values that cannot match."""
    cols = overlap_columns(model, roles)
    real: dict[str, list[pl.Series]] = {}
    synth: dict[str, list[pl.Series]] = {}
    columns: dict[str, str] = {}
    for t, c, group in cols:
        rows = conn.execute(
            f"SELECT DISTINCT {qi(c)}::text FROM {qi(model.schema)}.{qi(t)} "
            f"WHERE {qi(c)} IS NOT NULL"
        ).fetchall()
        values = pl.Series([r[0] for r in rows], dtype=pl.Utf8)
        real.setdefault(group, []).append(normalize_identifier(values, group))
        s = scan_table(refresh_dir, t).select(pl.col(c).drop_nulls()).collect().to_series()
        synth.setdefault(group, []).append(normalize_identifier(s, group))
        columns[f"{t}.{c}"] = group
    counts = {g: _overlap(hmac_key, g, real[g], synth[g]) for g in real}
    groups = {
        g: {"real_values": r, "synthetic_values": n, "overlap": o}
        for g, (r, n, o) in counts.items()
    }
    return {
        "columns": columns,
        "groups": groups,
        "value": sum(g["overlap"] for g in groups.values()),
    }
