"""The evaluator: measured privacy and fidelity of a refresh, computed inside the privacy boundary.

It reads three samples per table (and per parent-child join, one level deep): real training
rows (privacy units outside the holdout, by the same keyed-hash rule the sampler used), real
holdout rows, and synthetic rows from the Parquet shards. Privacy metrics compare "synthetic vs
training" with "holdout vs training", so a metric is judged against what unseen real data of
the same population scores. Fidelity metrics compare real with synthetic distributions.

Everything that leaves this module in the report is an aggregate: rates, distances summarised
as shares or percentiles, correlations, and binned proportions whose real cells below
``min_cell`` rows are suppressed. Category labels in plots are only the values the spec already
released through the DP threshold. No row, key or raw PII value is ever written.

Distances: numeric and datetime columns go through a quantile transform fitted on the real
sample (values in [0, 1], nulls at -0.5), categoricals are one-hot encoded and scaled by
1/sqrt(2), so a category mismatch adds exactly 1 to the squared Euclidean distance, like a
numeric column at opposite ends of its range (a Euclidean form of Gower's distance).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import psycopg
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neighbors import KDTree, NearestNeighbors
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer

from .achievable import achievable_shapes
from .errors import ConfigError, SynthError
from .gates import (  # noqa: F401 - the gate catalogue, re-exported for importers of evaluate
    CHANCE_SE,
    GATE_SPECS,
    GATES_BY_NAME,
    GateResult,
    GateSpec,
    calibrated_limits,
    calibrated_note,
    evaluate_gates,
    gate_items,
    gate_message,
    gate_thresholds,
)
from .plan import TablePlan, build_plan
from .profile import _unit_from, fanout_bins, holdout_key, holdout_sql
from .roles import DATETIME_TYPES, EPOCH_TYPES, INTEGER_TYPES, JSON_TYPES, json_shape_sql, qi
from .schema import ForeignKey, SchemaModel
from .secrets import keyed_hash
from .store import check_refresh_id

REPORT_FORMAT = "synth_assets.privacy_report/1"
NULL_TOKEN = "\x00null"  # categorical null inside the evaluator (never written to the report)
NUMERIC_NULL = -0.5  # encoded position of a numeric/datetime null (outside [0, 1])
ACF_LAGS = 14
FANOUT_PLOT_CAP = 4096
#: PII roles that act as quasi-identifiers (an attacker may know them), compared at full precision.
QI_PII_ROLES = frozenset({"birth_date", "postal_code", "city"})
#: Identifier and PII roles whose real values must never appear among synthetic ones.
OVERLAP_ROLES = frozenset({"email", "phone", "national_id", "card_number", "iban"})
_FLOAT_TYPES = frozenset({"numeric", "float4", "float8", "money"})
_TEXT_KEY_TYPES = frozenset({"text", "varchar", "bpchar", "citext", "uuid"})


class EvaluationError(SynthError):
    """The refresh cannot be evaluated (missing artifacts, shards or source tables)."""


def privacy_guarantee(pack: dict[str, Any]) -> dict[str, Any]:
    """What the refresh's DP measurements promise, from its metrics pack: epsilon and delta
    spent per unit, the unit, each table's contribution bound, and the reference tables' own
    budget (their unit is one reference row)."""
    led, priv = pack["ledger"], pack["privacy"]
    out: dict[str, Any] = {
        "epsilon": round(float(led["epsilon_spent"]), 4),
        "delta": float(led["delta"]),
        "unit_table": priv["unit_table"],
        "rows_per_unit": dict(priv.get("rows_per_unit", {})),
        "accounting": led.get("accounting"),
    }
    ref = pack.get("reference_ledger") or {}
    refs = [t for t, pl in pack.get("plan", {}).items() if pl.get("kind") == "reference"]
    if ref and float(ref.get("epsilon_spent", 0.0)) > 0:
        out["reference"] = {
            "epsilon": round(float(ref["epsilon_spent"]), 4),
            "delta": float(ref["delta"]),
            "tables": refs,
        }
    return out


# ------------------------------------------------------------------------------------------
# Options and views
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalOptions:
    """Sampling and reporting knobs of one evaluation."""

    sample_rows: int = 50_000  # holdout rows and synthetic query rows per table / join
    reference_rows: int = 200_000  # training and synthetic rows searched for neighbours
    quasi_identifiers: dict[str, list[str]] = field(default_factory=dict)  # table -> own columns
    max_categories: int = 30
    min_cell: int = 10  # real plot cells with fewer sampled rows are suppressed
    nndr_percentile: float = 5.0

    def __post_init__(self) -> None:
        if self.sample_rows < 100:
            raise ConfigError(
                f"evaluation sample_rows must be at least 100 (got {self.sample_rows})"
            )
        if self.reference_rows < self.sample_rows:
            raise ConfigError(
                f"evaluation reference_rows ({self.reference_rows}) must be at least "
                f"sample_rows ({self.sample_rows})"
            )
        if not 0 < self.nndr_percentile < 50:
            raise ConfigError(f"nndr_percentile must be in (0, 50) (got {self.nndr_percentile})")


@dataclass(frozen=True)
class Col:
    """An evaluated column of a view: where it comes from and how it is compared."""

    name: str  # name inside the view ("segment" or "customers.segment")
    table: str
    column: str
    kind: str  # categorical | numeric | datetime
    base_type: str
    date_only: bool = False
    parent: bool = False  # comes from the joined parent


@dataclass
class View:
    """A table, or a child table joined one level up to its primary parent."""

    name: str
    table: str
    kind: str  # root | child | reference
    cols: list[Col]
    fk: ForeignKey | None = None  # the join (child views only)
    qis: list[tuple[str, str, str]] = field(default_factory=list)  # (name in view, table, column)

    @property
    def is_join(self) -> bool:
        return self.fk is not None


def _eval_kind(role: str, base_type: str) -> str | None:
    if role in ("categorical", "boolean"):
        return "categorical"
    if role == "numeric":
        return "numeric"
    if role == "datetime" and base_type in DATETIME_TYPES:
        return "datetime"
    return None


def table_columns(
    model: SchemaModel, roles: dict[str, dict[str, str]], table: str, prefix: str = ""
) -> list[Col]:
    """The modelled (categorical, numeric, boolean, datetime) non-unique columns of ``table``."""
    t = model.tables[table]
    out = []
    for c in t.columns:
        kind = _eval_kind(roles[table][c.name], c.base_type)
        if kind is None or any(set(u) == {c.name} for u in t.unique_sets) or t.fk_for(c.name):
            continue
        out.append(
            Col(
                prefix + c.name,
                table,
                c.name,
                kind,
                c.base_type,
                c.base_type == "date",
                bool(prefix),
            )
        )
    return out


def _default_qis(model: SchemaModel, roles: dict[str, dict[str, str]], table: str) -> list[str]:
    """QI-role PII columns (birth date, postal code, city) and the categorical columns beside them."""
    t = model.tables[table]
    pii = [c.name for c in t.columns if roles[table][c.name] in QI_PII_ROLES]
    cats = [
        c.name
        for c in t.columns
        if roles[table][c.name] in ("categorical", "boolean")
        and not any(set(u) == {c.name} for u in t.unique_sets)
    ]
    return pii + cats


def _has_pii_qi(model: SchemaModel, roles: dict[str, dict[str, str]], table: str) -> bool:
    return any(roles[table][c.name] in QI_PII_ROLES for c in model.tables[table].columns)


def build_views(
    model: SchemaModel,
    roles: dict[str, dict[str, str]],
    plans: dict[str, TablePlan],
    order: Sequence[str],
    options: EvalOptions,
) -> list[View]:
    """One view per table, plus one per child table joined to its primary parent."""
    for t, cols in options.quasi_identifiers.items():
        if t not in model.tables:
            raise ConfigError(
                f"quasi_identifiers names unknown table {t!r}; tables: {', '.join(model.tables)}"
            )
        unknown = [c for c in cols if c not in {x.name for x in model.tables[t].columns}]
        if unknown:
            raise ConfigError(f"quasi_identifiers[{t!r}] names unknown column(s) {unknown}")

    def qis(table: str, with_defaults: bool) -> list[str]:
        if table in options.quasi_identifiers:
            return list(options.quasi_identifiers[table])
        return _default_qis(model, roles, table) if with_defaults else []

    # By default a view has quasi-identifiers only when it holds a QI-role PII column (its own or
    # its parent's): combinations of a few low-cardinality categories are rare through DP noise,
    # not memorisation, and the holdout of a small source cannot tell the two apart.
    views = []
    for name in order:
        plan = plans[name]
        own = table_columns(model, roles, name)
        own_pii = _has_pii_qi(model, roles, name)
        views.append(
            View(name, name, plan.kind, own, None, [(c, name, c) for c in qis(name, own_pii)])
        )
        if plan.kind == "child" and plan.parent_fk is not None and plan.parent != name:
            parent = plan.parent
            pcols = table_columns(model, roles, parent, prefix=f"{parent}.")
            if own and pcols:
                any_pii = own_pii or _has_pii_qi(model, roles, parent)
                vq = [(c, name, c) for c in qis(name, any_pii)] + [
                    (f"{parent}.{c}", parent, c) for c in qis(parent, any_pii)
                ]
                views.append(
                    View(f"{name}+{parent}", name, plan.kind, own + pcols, plan.parent_fk, vq)
                )
    return views


# ------------------------------------------------------------------------------------------
# Real samples (SQL pushdown, same holdout rule as the sampler)
# ------------------------------------------------------------------------------------------


def _sql_value(alias: str, col: Col) -> str:
    """SQL expression of a column as the evaluator reads it (numbers as float8, epochs, text)."""
    q = f"{alias}.{qi(col.column)}"
    if col.kind == "numeric":
        return (
            f"extract(epoch from {q})::float8" if col.base_type in EPOCH_TYPES else f"{q}::float8"
        )
    if col.base_type in JSON_TYPES:  # compared by shape, as it was measured and generated
        return json_shape_sql(q)
    if col.kind == "datetime":
        return (
            f"extract(epoch from {q}::timestamp)::float8"
            if col.date_only
            else f"extract(epoch from {q})::float8"
        )
    if col.base_type in INTEGER_TYPES:
        return f"{q}::int8"
    if col.base_type in _FLOAT_TYPES:
        return f"{q}::float8"
    if col.base_type == "bool":
        return q
    return f"{q}::text"


@dataclass
class _Source:
    """FROM clause of a view's real rows and the SQL of its privacy unit."""

    from_sql: str
    unit: str | None
    order: str  # row identity for the deterministic sample order


def _source(model: SchemaModel, plans: dict[str, TablePlan], view: View) -> _Source:
    t = model.tables[view.table]
    plan = plans[view.table]
    sch = qi(model.schema)
    if plan.kind == "reference":
        src, unit = f"{sch}.{qi(t.name)} t", None
    else:
        src, unit = _unit_from(model, plan)
    if view.fk is not None:
        src += (
            f" JOIN {sch}.{qi(view.fk.ref_table)} pp "
            f"ON t.{qi(view.fk.columns[0])} = pp.{qi(view.fk.ref_columns[0])}"
        )
    order = f"t.{qi(t.primary_key[0])}" if len(t.primary_key) == 1 else "t.ctid"
    return _Source(src, unit, order)


def _alias(col: Col) -> str:
    return "pp" if col.parent else "t"


def _where(src: _Source, side: str) -> str:
    """SQL predicate of one side of the holdout ("training" or "holdout") on the view's unit."""
    if src.unit is None:
        return "TRUE"
    pred = holdout_sql(src.unit)
    return pred if side == "holdout" else f"NOT {pred}"


def _fetch(conn: psycopg.Connection, sql: str, params: dict, names: list[str]) -> pl.DataFrame:
    cur = conn.execute(sql, params)
    rows = cur.fetchall()
    return (
        pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
        if rows
        else pl.DataFrame({n: [] for n in names})
    )


def real_sample(
    conn: psycopg.Connection,
    model: SchemaModel,
    plans: dict[str, TablePlan],
    view: View,
    n: int,
    params: dict,
) -> pl.DataFrame:
    """A deterministic random sample of ``n`` real rows of a view, holdout included (fidelity)."""
    src = _source(model, plans, view)
    exprs = [f"{_sql_value(_alias(c), c)} AS {qi(c.name)}" for c in view.cols]
    sql = (
        f"SELECT {', '.join(exprs)} FROM {src.from_sql} "
        f"ORDER BY md5(%(skey)s || ({src.order})::text) LIMIT {int(n)}"
    )
    return canonical(_fetch(conn, sql, params, [c.name for c in view.cols]), view.cols)


def unit_samples(
    conn: psycopg.Connection,
    model: SchemaModel,
    plans: dict[str, TablePlan],
    view: View,
    n: int,
    params: dict,
    reference_rows: int | None = None,
) -> tuple[list[pl.DataFrame], pl.DataFrame, dict[str, int]]:
    """Disjoint training samples and one holdout sample, each holding all rows of ``k`` privacy units.

    Rows of one unit resemble each other, so equal row counts are not enough: with more units
    on one side that side covers the space more densely and "wins" nearest-neighbour contests.
    Units are taken in keyed-hash order; ``k`` is as many as fit in ``n`` rows on the side with
    larger units, so every training part is exchangeable with the holdout. The training side,
    about nine times larger, yields as many parts as fit in ``reference_rows``: the DCR share
    averages over them, and their union is the training reference for the other metrics.
    """
    reference_rows = reference_rows or 4 * n
    src = _source(model, plans, view)
    if src.unit is None:
        raise EvaluationError(
            f"{view.name} is a reference table: it has no privacy units and no holdout"
        )
    per, sizes = {}, {}
    for side, limit in (("holdout", n), ("training", reference_rows)):
        per[side] = (
            f"SELECT {src.unit} AS u, count(*) AS n FROM {src.from_sql} "
            f"WHERE {_where(src, side)} GROUP BY 1"
        )
        sizes[side] = np.array(
            [
                r[0]
                for r in conn.execute(
                    f"SELECT n FROM ({per[side]}) p ORDER BY md5(%(skey)s || u::text), u LIMIT {int(limit)}",
                    params,
                )
            ],
            dtype=np.int64,
        )

    def fit(sz: np.ndarray, cap: int) -> int:
        return max(int(np.searchsorted(np.cumsum(sz), cap, side="right")), min(1, sz.size))

    k = min(fit(sizes["holdout"], n), fit(sizes["training"], n))
    names = [c.name for c in view.cols]
    if k == 0:  # no holdout (or no training) unit owns a row of this view: nothing to compare
        empty = canonical(pl.DataFrame({c: [] for c in names}), view.cols)
        return (
            [empty],
            empty,
            {
                "units": 0,
                "training_parts": 0,
                "training_rows": 0,
                "training_reference_rows": 0,
                "holdout_rows": 0,
            },
        )
    parts = max(
        1,
        min(
            sizes["training"].size // max(k, 1), fit(sizes["training"], reference_rows) // max(k, 1)
        ),
    )
    exprs = [f"{_sql_value(_alias(c), c)} AS {qi(c.name)}" for c in view.cols]
    out = {}
    for side, units in (("training", k * parts), ("holdout", k)):
        sql = (
            f"WITH top AS (SELECT u, (row_number() OVER (ORDER BY md5(%(skey)s || u::text), u) - 1) / {int(k)} "
            f"AS part FROM ({per[side]}) p ORDER BY md5(%(skey)s || u::text), u LIMIT {int(units)}) "
            f"SELECT {', '.join(exprs)}, top.part AS __part FROM {src.from_sql} JOIN top ON {src.unit} = top.u "
            f"WHERE {_where(src, side)}"
        )
        out[side] = _fetch(conn, sql, params, [*names, "__part"])
    train = [
        canonical(out["training"].filter(pl.col("__part") == i), view.cols) for i in range(parts)
    ]
    hold = canonical(out["holdout"], view.cols)
    return (
        train,
        hold,
        {
            "units": int(k),
            "training_parts": parts,
            "training_rows": train[0].height,
            "training_reference_rows": sum(t.height for t in train),
            "holdout_rows": hold.height,
        },
    )


# ------------------------------------------------------------------------------------------
# Synthetic samples (Parquet shards)
# ------------------------------------------------------------------------------------------


def shard_files(refresh_dir: Path, table: str) -> list[str]:
    """Parquet files of one table; fail closed when there are none."""
    files = sorted((Path(refresh_dir) / "shards" / table).glob("part-*.parquet"))
    if not files:
        raise EvaluationError(
            f"no synthetic shards for table {table} in {Path(refresh_dir) / 'shards'}: "
            "materialize synthetic_shards for this refresh first"
        )
    return [str(f) for f in files]


def scan_table(refresh_dir: Path, table: str) -> pl.LazyFrame:
    """Lazy scan of all shards of a table."""
    return pl.scan_parquet(shard_files(refresh_dir, table))


def _epoch_seconds(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        expr = expr.cast(pl.Datetime("us"))
    elif not isinstance(dtype, pl.Datetime):
        return expr.cast(pl.Float64)
    return expr.dt.epoch("us").cast(pl.Float64) / 1e6


def canonical(df: pl.DataFrame, cols: Sequence[Col]) -> pl.DataFrame:
    """Numbers and datetimes as Float64 (epoch seconds), categories as text, null as a token."""
    exprs = []
    for c in cols:
        s = pl.col(c.name)
        dtype = df.schema[c.name]
        if c.kind == "numeric":
            e = s.cast(pl.Float64)
        elif c.kind == "datetime":
            e = _epoch_seconds(s, dtype) if dtype != pl.Float64 else s
        else:
            if c.base_type in INTEGER_TYPES:
                s = s.cast(pl.Int64)
            elif c.base_type in _FLOAT_TYPES:
                s = s.cast(pl.Float64)
            e = s.cast(pl.Utf8).fill_null(NULL_TOKEN)
        exprs.append(e.alias(c.name))
    return df.select(exprs) if exprs else pl.DataFrame()


def canonical_qi(df: pl.DataFrame, names: Sequence[str], base_types: Sequence[str]) -> pl.DataFrame:
    """Quasi-identifier values as comparable text (dates ISO, numbers normalised)."""
    exprs = []
    for n, b in zip(names, base_types, strict=True):
        s = pl.col(n)
        if b in INTEGER_TYPES:
            s = s.cast(pl.Int64)
        elif b in _FLOAT_TYPES:
            s = s.cast(pl.Float64)
        elif b in ("timestamp", "timestamptz"):
            s = s.cast(pl.Datetime("us")) if df.schema[n] != pl.Datetime("us") else s
        exprs.append(s.cast(pl.Utf8).fill_null(NULL_TOKEN).alias(n))
    return df.select(exprs)


def _synthetic_view(
    refresh_dir: Path, view: View, extra: Sequence[tuple[str, str, str]] = ()
) -> tuple[pl.LazyFrame, int]:
    """Lazy frame of a view's synthetic rows with columns named as in the view, and its row count."""
    own = [c for c in view.cols if not c.parent]
    lf = scan_table(refresh_dir, view.table)
    total = int(lf.select(pl.len()).collect().item())
    own_cols = {c.column: c.name for c in own}
    own_cols.update({col: name for name, tbl, col in extra if tbl == view.table})
    sel = [pl.col(k).alias(v) for k, v in own_cols.items()]
    if view.fk is None:
        return lf.select(sel), total
    pt = view.fk.ref_table
    pk = view.fk.ref_columns[0]
    par_cols = {c.column: c.name for c in view.cols if c.parent}
    par_cols.update({col: name for name, tbl, col in extra if tbl == pt})
    plf = scan_table(refresh_dir, pt).select(
        [pl.col(pk).alias("__pk"), *[pl.col(k).alias(v) for k, v in par_cols.items()]]
    )
    joined = lf.select([*sel, pl.col(view.fk.columns[0]).alias("__fk")]).join(
        plf, left_on="__fk", right_on="__pk", how="left"
    )
    return joined.drop("__fk"), total


def synthetic_sample(
    refresh_dir: Path, view: View, n: int, rng: np.random.Generator
) -> tuple[pl.DataFrame, int]:
    """A uniform random sample of ``n`` synthetic rows of a view, in random order (only needed columns)."""
    lf, total = _synthetic_view(refresh_dir, view)
    k = min(n, total)
    idx = rng.choice(total, size=k, replace=False) if k < total else np.arange(total)
    df = (
        lf.with_row_index("__row")
        .filter(pl.col("__row").is_in(pl.Series(idx, dtype=pl.UInt32)))
        .collect()
    )
    df = (
        df.sort("__row").drop("__row")[rng.permutation(df.height)]
        if df.height
        else df.drop("__row")
    )
    return canonical(df, view.cols), total


# ------------------------------------------------------------------------------------------
# Encoding and nearest neighbours
# ------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """Rows encoded for distances: one-hot categorical block and continuous block."""

    cat: np.ndarray
    cont: np.ndarray
    codes: np.ndarray | None = None  # category index per categorical column (groups rows fast)
    cat_names: tuple[tuple[str, int, int], ...] = ()  # (column, first, last + 1) in ``cat``
    cont_names: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return self.cat.shape[0]

    def take(self, rows: np.ndarray) -> Encoded:
        """The rows ``rows`` (indices) of this encoding."""
        codes = self.codes[rows] if self.codes is not None else None
        return Encoded(self.cat[rows], self.cont[rows], codes, self.cat_names, self.cont_names)

    def select(self, names: Sequence[str]) -> Encoded:
        """The same rows restricted to the columns ``names``."""
        keep = [(i, c) for i, c in enumerate(self.cat_names) if c[0] in names]
        idx = [j for _, (_, a, b) in keep for j in range(a, b)]
        spans, pos = [], 0
        for _, (name, a, b) in keep:
            spans.append((name, pos, pos + b - a))
            pos += b - a
        ci = [i for i, c in enumerate(self.cont_names) if c in names]
        codes = self.codes[:, [i for i, _ in keep]] if self.codes is not None else None
        return Encoded(
            np.ascontiguousarray(self.cat[:, idx]),
            np.ascontiguousarray(self.cont[:, ci]),
            codes,
            tuple(spans),
            tuple(self.cont_names[i] for i in ci),
        )


class MixedEncoder:
    """Quantile-scaled numbers and 1/sqrt(2)-scaled one-hot categories, fitted on real rows."""

    def __init__(self, cols: Sequence[Col], real: pl.DataFrame, max_categories: int = 30):
        self.cols = list(cols)
        self.fitted: dict[str, Any] = {}
        for c in self.cols:
            if c.kind == "categorical":
                enc = OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=max_categories,
                    sparse_output=False,
                    dtype=np.float64,
                )
                enc.fit(real[c.name].to_numpy().reshape(-1, 1).astype(object))
                self.fitted[c.name] = enc
            else:
                x = real[c.name].drop_nulls().to_numpy().astype(np.float64).reshape(-1, 1)
                if x.size == 0:
                    x = np.zeros((1, 1))
                qt = QuantileTransformer(
                    n_quantiles=int(min(1000, max(10, x.shape[0]))), subsample=None
                )
                qt.fit(x)
                self.fitted[c.name] = qt

    def transform(self, df: pl.DataFrame, names: Sequence[str] | None = None) -> Encoded:
        """Encoded rows of ``df`` restricted to the columns ``names`` (all by default)."""
        cat, cont, codes, cat_names, cont_names = [], [], [], [], []
        width = 0
        for c in self.cols:
            if names is not None and c.name not in names:
                continue
            if c.kind == "categorical":
                v = df[c.name].to_numpy().reshape(-1, 1).astype(object)
                onehot = self.fitted[c.name].transform(v)
                codes.append(np.where(onehot.any(axis=1), onehot.argmax(axis=1), onehot.shape[1]))
                cat.append(onehot * (1 / math.sqrt(2)))
                cat_names.append((c.name, width, width + onehot.shape[1]))
                width += onehot.shape[1]
            else:
                v = df[c.name].to_numpy().astype(np.float64)
                null = np.isnan(v)
                out = np.full(v.shape, NUMERIC_NULL)
                if (~null).any():
                    out[~null] = self.fitted[c.name].transform(v[~null].reshape(-1, 1)).ravel()
                cont.append(out.reshape(-1, 1))
                cont_names.append(c.name)

        def block(parts: list[np.ndarray]) -> np.ndarray:
            return np.ascontiguousarray(np.hstack(parts)) if parts else np.zeros((df.height, 0))

        return Encoded(
            block(cat),
            block(cont),
            np.column_stack(codes).astype(np.int64)
            if codes
            else np.zeros((df.height, 0), np.int64),
            tuple(cat_names),
            tuple(cont_names),
        )


def _thin(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Indices of ``m`` of ``n`` rows at random (all when ``m >= n``), in order."""
    return np.arange(n) if m >= n else np.sort(rng.choice(n, size=m, replace=False))


def _groups(enc: Encoded) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct category combinations of ``enc`` (as one-hot rows) and the row indices of each."""
    n = enc.n
    if enc.cat.shape[1] == 0:
        return np.zeros((1, 0)), [np.arange(n)]
    codes = enc.codes if enc.codes is not None and enc.codes.shape[0] == n else None
    if codes is None:
        _, inv = np.unique(enc.cat, axis=0, return_inverse=True)
        key = inv.ravel()
    else:
        key = np.zeros(n, dtype=np.int64)
        for j in range(codes.shape[1]):  # mixed radix, re-compressed after every column
            key = key * (int(codes[:, j].max()) + 1) + codes[:, j]
            key = np.unique(key, return_inverse=True)[1].ravel()
    order = np.argsort(key, kind="stable")
    sk = key[order]
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    bounds = np.r_[starts, n]
    members = [order[bounds[i] : bounds[i + 1]] for i in range(len(starts))]
    return enc.cat[order[starts]], members


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


MAX_BLOCKS = 2000  # above this many category combinations, one KD-tree over all columns


def knn_distances(ref: Encoded, query: Encoded, k: int) -> np.ndarray:
    """Exact Euclidean distances from every query row to its ``k`` (1 or 2) nearest reference rows.

    Rows are blocked by their category combination: the squared distance between two blocks is
    the number of differing categories, so a query searches its own block's KD-tree (on the
    continuous columns) first and visits other blocks only while they could still be closer.
    """
    if k not in (1, 2):
        raise ValueError("k must be 1 or 2")
    nq = query.n
    if ref.n == 0 or nq == 0:
        return np.full((nq, k), np.inf)
    ru, rmembers = _groups(ref)
    qu, qmembers = _groups(query)
    if len(ru) > MAX_BLOCKS or len(qu) > MAX_BLOCKS:
        full_r, full_q = np.hstack([ref.cat, ref.cont]), np.hstack([query.cat, query.cont])
        kk = min(k, ref.n)
        d, _ = NearestNeighbors(n_neighbors=kk).fit(full_r).kneighbors(full_q)
        out = np.hstack([d, np.full((nq, k - kk), np.inf)]) if kk < k else d
        return np.round(out, 9)
    best = np.full((nq, k), np.inf)  # squared distances, ascending
    trees: dict[int, KDTree] = {}
    has_cont = ref.cont.shape[1] > 0
    for qi_, rows in enumerate(qmembers):
        m = ((ru - qu[qi_]) ** 2).sum(axis=1)
        for j in np.argsort(m, kind="stable"):
            open_ = best[rows, k - 1] > m[j] + 1e-12
            if not open_.any():
                break
            r = rows[open_]
            members = rmembers[j]
            kk = min(k, members.size)
            if has_cont:
                if j not in trees:
                    trees[j] = KDTree(ref.cont[members])
                dist, _ = trees[j].query(query.cont[r], k=kk)
                cand = m[j] + dist**2
            else:
                cand = np.full((r.size, kk), m[j])
            merged = np.sort(np.hstack([best[r], cand]), axis=1)[:, :k]
            best[r] = merged
    return np.round(np.sqrt(best), 9)


# ------------------------------------------------------------------------------------------
# Privacy metrics
# ------------------------------------------------------------------------------------------


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
    cat = [c.name for c in view.cols if c.kind == "categorical"]
    cont = [c.name for c in view.cols if c.kind != "categorical"]
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
    rng = rng or np.random.default_rng(0)
    out: dict[str, Any] = {}
    query = synth_ref.head(n_query)
    reference = pl.concat(list(train_parts))
    e_parts = [enc.transform(p) for p in train_parts]
    e_hold, e_ref_s = enc.transform(holdout), enc.transform(synth_ref)
    m = min(holdout.height, *(p.height for p in train_parts))
    thin_hold = e_hold.take(_thin(rng, holdout.height, m))
    thin_parts = [
        e.take(_thin(rng, p.height, m)) for e, p in zip(e_parts, train_parts, strict=True)
    ]
    e_query = (
        e_ref_s.select([c.name for c in view.cols])
        if synth_ref.height == query.height
        else enc.transform(query)
    )
    groups = column_groups(view)
    xr = enc.transform(reference)
    # Every neighbour search is independent: run them on all usable cores (KD-tree queries
    # release the GIL).
    tasks: dict[Any, tuple[Encoded, Encoded, int]] = {}
    for g, names in groups.items():
        xs = e_query.select(names)
        tasks[(g, "holdout")] = (thin_hold.select(names), xs, 1)
        for i, p in enumerate(thin_parts):
            tasks[(g, i)] = (p.select(names), xs, 1)
    tasks["nndr_synthetic"] = (xr, e_query, 2)
    tasks["nndr_holdout"] = (xr, e_hold, 2)
    tasks["mia_members"] = (e_ref_s, e_parts[0], 1)
    tasks["mia_nonmembers"] = (e_ref_s, e_hold, 1)
    with ThreadPoolExecutor(max_workers=_cpus()) as pool:
        done = dict(zip(tasks, pool.map(lambda t: knn_distances(*t), tasks.values()), strict=True))
    dcr: dict[str, float] = {}
    spread: dict[str, float] = {}
    noise: dict[str, float] = {}
    for g in groups:
        dh = done[(g, "holdout")][:, 0]
        dp = [done[(g, i)][:, 0] for i in range(len(e_parts))]
        shares = [dcr_share(d, dh) for d in dp]
        dcr[g] = float(np.mean(shares))
        spread[g] = (
            float(np.std(shares, ddof=1) / math.sqrt(len(shares)))
            if len(shares) > 1
            else float("nan")
        )
        # The same contest between two training parts (no memorisation can separate them): its
        # spread is the noise floor a single holdout of this size puts on the share.
        pairs = [dcr_share(dp[i], dp[j]) for i in range(len(dp)) for j in range(i + 1, len(dp))]
        noise[g] = float(np.std(pairs)) if len(pairs) > 1 else float("nan")
    worst = max(dcr, key=lambda g: dcr[g])
    out["dcr_share"] = {
        "value": dcr[worst],
        "worst_group": worst,
        "groups": dcr,
        "baseline": 0.5,
        "training_parts": len(train_parts),
        "rows_per_side": m,
        "standard_error": spread[worst],
        # Every group is contested with the same holdout: their spreads pooled (root mean
        # square) are a steadier estimate of its noise than one group's 28 correlated contests.
        "noise_sd": float(np.sqrt(np.mean([x * x for x in noise.values()]))),
        "group_noise_sd": noise,
    }
    ds, dho = done["nndr_synthetic"], done["nndr_holdout"]
    r, ps, ph = nndr_ratio(nndr(ds), nndr(dho), percentile)
    out["nndr"] = {
        "value": r,
        "synthetic_percentile": ps,
        "holdout_percentile": ph,
        "percentile": percentile,
    }
    scale = math.sqrt(max(1, len(view.cols)))
    out["dcr"] = {
        "synthetic_to_training_median": float(np.median(ds[:, 0]) / scale) if ds.size else None,
        "holdout_to_training_median": float(np.median(dho[:, 0]) / scale) if dho.size else None,
        "histogram": distance_histogram(ds[:, 0] / scale, dho[:, 0] / scale),
    }
    out["nndr"]["histogram"] = distance_histogram(
        nndr(ds), nndr(dho), edges=np.linspace(0.0, 1.0, 21)
    )
    out["mia"] = {
        **membership_inference(done["mia_members"][:, 0], done["mia_nonmembers"][:, 0]),
        "members": int(done["mia_members"].shape[0]),
        "nonmembers": int(done["mia_nonmembers"].shape[0]),
        "baseline_auc": 0.5,
        "baseline_tpr": 0.01,
    }
    s_rate = exact_match_rate(query, reference)
    h_rate = exact_match_rate(holdout, reference)
    out["exact_match"] = {"synthetic": s_rate, "holdout": h_rate, "excess": s_rate - h_rate}
    return out


# ------------------------------------------------------------------------------------------
# Rare combinations (full data, not samples: a handful of copied outliers must show)
# ------------------------------------------------------------------------------------------


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
    if not view.qis or plans[view.table].kind == "reference":
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


# ------------------------------------------------------------------------------------------
# Identifier overlap (keyed hashes)
# ------------------------------------------------------------------------------------------


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
    return {keyed_hash(key, f"{group}\x1f{v}") for v in values.to_list()}


def identifier_overlap(
    conn: psycopg.Connection,
    model: SchemaModel,
    roles: dict[str, dict[str, str]],
    refresh_dir: Path,
    hmac_key: bytes,
) -> dict[str, Any]:
    """Real identifier/PII values found among synthetic ones, compared as HMAC-SHA256 hashes, per role."""
    cols = overlap_columns(model, roles)
    real: dict[str, set[str]] = {}
    synth: dict[str, set[str]] = {}
    columns: dict[str, str] = {}
    for t, c, group in cols:
        rows = conn.execute(
            f"SELECT DISTINCT {qi(c)}::text FROM {qi(model.schema)}.{qi(t)} "
            f"WHERE {qi(c)} IS NOT NULL"
        ).fetchall()
        real.setdefault(group, set()).update(
            _hashes(
                hmac_key,
                group,
                normalize_identifier(pl.Series([r[0] for r in rows], dtype=pl.Utf8), group),
            )
        )
        s = scan_table(refresh_dir, t).select(pl.col(c).drop_nulls()).collect().to_series()
        synth.setdefault(group, set()).update(
            _hashes(hmac_key, group, normalize_identifier(s, group))
        )
        columns[f"{t}.{c}"] = group
    groups = {
        g: {
            "real_values": len(real[g]),
            "synthetic_values": len(synth[g]),
            "overlap": len(real[g] & synth[g]),
        }
        for g in real
    }
    return {
        "columns": columns,
        "groups": groups,
        "value": sum(g["overlap"] for g in groups.values()),
    }


# ------------------------------------------------------------------------------------------
# Fidelity metrics
# ------------------------------------------------------------------------------------------


def tv_complement(real: pl.Series, synth: pl.Series) -> float:
    """1 - total variation distance between two categorical distributions."""
    if real.len() == 0 or synth.len() == 0:
        return 1.0 if real.len() == synth.len() else 0.0
    r = real.value_counts(normalize=True, name="p").rename({real.name: "v"})
    s = synth.value_counts(normalize=True, name="q").rename({synth.name: "v"})
    j = r.join(s, on="v", how="full", coalesce=True, nulls_equal=True).fill_null(0.0)
    return float(1.0 - 0.5 * (j["p"] - j["q"]).abs().sum())


def ks_complement(real: np.ndarray, synth: np.ndarray) -> float:
    """1 - two-sample Kolmogorov-Smirnov statistic (scipy)."""
    real, synth = real[~np.isnan(real)], synth[~np.isnan(synth)]
    if real.size == 0 or synth.size == 0:
        return 1.0 if real.size == synth.size else 0.0
    return float(1.0 - stats.ks_2samp(real, synth).statistic)


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
        if c.kind != "categorical" or values is None:
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
        if c.kind == "categorical":
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
    if a.kind != "categorical" and b.kind != "categorical":

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
        if c.kind == "categorical":
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
    out = np.zeros(len(edges))
    np.add.at(out, np.searchsorted(np.asarray(edges), values, side="right") - 1, counts)
    return out


def _bin_labels(edges: Sequence[int]) -> list[str]:
    labels = []
    for i, e in enumerate(edges):
        nxt = edges[i + 1] if i + 1 < len(edges) else None
        labels.append(str(e) if nxt == e + 1 else (f"{e}-{nxt - 1}" if nxt else f"{e}+"))
    return labels


def fanout_similarity(
    conn: psycopg.Connection,
    model: SchemaModel,
    refresh_dir: Path,
    child: str,
    fk: ForeignKey,
    min_cell: int,
    relative: bool = False,
) -> dict[str, Any]:
    """KS complement of children per parent (parents without children count as 0), real vs synthetic.

    ``relative`` compares children per parent divided by its mean: for a unit-owned child of a
    reference table, whose size does not follow generation.scale while the child's does.
    """
    sch = qi(model.schema)
    fkc, pk = fk.columns[0], fk.ref_columns[0]
    rows = conn.execute(
        f"SELECT coalesce(c.n, 0) AS k, count(*) FROM {sch}.{qi(fk.ref_table)} p LEFT JOIN "
        f"(SELECT {qi(fkc)} AS key, count(*) AS n FROM {sch}.{qi(child)} WHERE {qi(fkc)} IS NOT NULL GROUP BY 1) c "
        f"ON c.key = p.{qi(pk)} GROUP BY 1"
    ).fetchall()
    vr = np.array([r[0] for r in rows], dtype=np.int64)
    cr = np.array([r[1] for r in rows], dtype=np.float64)
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
    vs = hist["k"].to_numpy().astype(np.int64)
    cs = hist["len"].to_numpy().astype(np.float64)
    mean_r = float(np.dot(vr, cr) / max(1.0, cr.sum()))
    mean_s = float(np.dot(vs, cs) / max(1.0, cs.sum()))
    if relative and mean_r > 0 and mean_s > 0:
        d = ks_from_histograms(vr / mean_r, cr, vs / mean_s, cs)
    else:
        d = ks_from_histograms(vr, cr, vs, cs)
    # Fixed bins (the sampler's), trimmed where synthetic is empty and real under the minimum
    # cell: the plot's extent must not reveal the largest real fan-out.
    edges = fanout_bins(FANOUT_PLOT_CAP)
    br, bs = _binned(vr, cr, edges), _binned(vs, cs, edges)
    keep = int(np.max(np.flatnonzero((bs > 0) | (br >= min_cell)), initial=1)) + 1
    labels, br, bs = _bin_labels(edges)[:keep], br[:keep], bs[:keep]
    return {
        "child": child,
        "parent": fk.ref_table,
        "column": fkc,
        "value": 1.0 - d,
        "relative": relative,
        "real_mean": mean_r,
        "synthetic_mean": mean_s,
        "plot": {
            "labels": labels,
            "real": _shares(br, min_cell),
            "synthetic": _shares(bs, 0),
        },
    }


def _shares(counts: np.ndarray, min_cell: int) -> list[float | None]:
    """Proportions of a histogram; real cells under ``min_cell`` rows are suppressed (None)."""
    total = counts.sum()
    return [None if (0 < c < min_cell) else (float(c / total) if total else 0.0) for c in counts]


def _acf(series: np.ndarray, lags: int = ACF_LAGS) -> list[float]:
    s = pd.Series(series, dtype=float)
    out = []
    for k in range(1, lags + 1):
        v = s.autocorr(lag=k) if s.size > k + 2 else float("nan")
        out.append(0.0 if v != v else float(v))
    return out


def _daily(days: np.ndarray, counts: np.ndarray) -> np.ndarray:
    if days.size == 0:
        return np.zeros(0)
    full = np.zeros(int(days.max() - days.min()) + 1)
    np.add.at(full, days - days.min(), counts)
    return full


def temporal_profile(
    conn: psycopg.Connection,
    model: SchemaModel,
    refresh_dir: Path,
    table: str,
    col: Col,
    min_cell: int,
) -> dict[str, Any]:
    """Hour-of-week correlation and daily-count autocorrelation (lags 1..14), real vs synthetic."""
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
    if how_r.std() > 0 and how_s.std() > 0:
        corr = float(stats.pearsonr(how_r, how_s).statistic)
    else:
        corr = 1.0 if how_r.std() == how_s.std() == 0 else 0.0
    acf_r, acf_s = _acf(_daily(dr, cr)), _acf(_daily(ds, cs))
    diff = np.abs(np.array(acf_r) - np.array(acf_s))
    return {
        "table": table,
        "column": col.column,
        "hour_of_week_corr": corr,
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


# ------------------------------------------------------------------------------------------
# Plot data (binned on released domains; small real cells suppressed)
# ------------------------------------------------------------------------------------------

MAX_PLOT_CATEGORIES = 12


def _month_index(epoch_seconds: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of the non-null epoch seconds (nulls dropped)."""
    x = epoch_seconds[~np.isnan(epoch_seconds)]
    return x.astype(np.int64).astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)


def marginal_plot(
    col: Col, spec_col: dict[str, Any] | None, real: pl.Series, synth: pl.Series, min_cell: int
) -> dict[str, Any] | None:
    """Real and synthetic proportions of one column on bins the spec already released."""
    spec_col = spec_col or {}
    if col.kind == "categorical":
        released = [str(v) for v in spec_col.get("values", [])]
        rc = real.value_counts().rename({real.name: "v"})
        freq = dict(zip(rc["v"].to_list(), rc["count"].to_list(), strict=True))
        top = sorted(released, key=lambda v: (-freq.get(v, 0), v))[:MAX_PLOT_CATEGORIES]
        labels = [*top, "(other)", "(null)"]

        def counts(s: pl.Series) -> np.ndarray:
            vals = s.to_numpy()
            out = np.array(
                [np.count_nonzero(vals == v) for v in top]
                + [0, np.count_nonzero(vals == NULL_TOKEN)],
                dtype=np.float64,
            )
            out[-2] = len(vals) - out.sum()
            return out

        r, s = counts(real), counts(synth)
    else:
        x_r = real.to_numpy().astype(np.float64)
        x_s = synth.to_numpy().astype(np.float64)
        if col.kind == "numeric":
            edges = spec_col.get("edges")
            if not edges:
                return None
            e = np.asarray(edges, dtype=np.float64)
            labels = (
                [f"< {_fmt(e[0])}"]
                + [f"{_fmt(a)}-{_fmt(b)}" for a, b in zip(e[:-1], e[1:], strict=True)]
                + [f"> {_fmt(e[-1])}"]
            )

            def counts(x: np.ndarray) -> np.ndarray:
                x = x[~np.isnan(x)]
                idx = np.searchsorted(e, x, side="right")
                idx = np.where(x == e[-1], len(e) - 1, idx)
                return np.bincount(idx, minlength=len(e) + 1).astype(np.float64)
        else:
            if "start" not in spec_col:
                return None
            start = np.datetime64(spec_col["start"], "D")
            end = (
                np.datetime64(spec_col["end"], "D")
                if "end" in spec_col
                else start + max(1, int(spec_col.get("days", 1))) - 1
            )
            m0 = start.astype("datetime64[M]").astype(np.int64)
            m1 = end.astype("datetime64[M]").astype(np.int64)
            step = max(1, int(math.ceil((m1 - m0 + 1) / 48)))
            nb = int((m1 - m0) // step) + 1
            labels = (
                ["before"]
                + [str(np.datetime64(int(m0 + i * step), "M")) for i in range(nb)]
                + ["after"]
            )

            def counts(x: np.ndarray) -> np.ndarray:
                m = _month_index(x)
                idx = np.clip(np.where(m < m0, -1, (m - m0) // step) + 1, 0, nb + 1)
                idx = np.where(m > m1, nb + 1, idx)
                return np.bincount(idx, minlength=nb + 2).astype(np.float64)

        r, s = counts(x_r), counts(x_s)
    return {
        "kind": col.kind,
        "labels": labels,
        "real": _shares(r, min_cell),
        "synthetic": _shares(s, 0),
    }


def _fmt(x: float) -> str:
    if abs(x) >= 1000 or x == int(x):
        return f"{x:,.0f}"
    return f"{x:.3g}"


def markdown_summary(report: dict[str, Any]) -> str:
    """The verdict, then a Markdown table of every gate for the asset's metadata: failing gates
    first, and a threshold that differs from its default marked with the default."""
    gates = report["gates"]
    failing = [n for n, g in gates.items() if g["gated"] and not g["passed"]]
    head = (
        f"**BLOCKED**: {len(failing)} of {sum(1 for g in gates.values() if g['gated'])} gates "
        f"failed ({', '.join(failing)})"
        if failing
        else "**PASSED**: every gated check passed"
    )
    lines = [head, ""]
    if dp_promise := report.get("guarantee"):
        ref = dp_promise.get("reference")
        lines += [
            f"Privacy: epsilon {dp_promise['epsilon']:g}, delta {dp_promise['delta']:.0e} per "
            f"`{dp_promise['unit_table']}` unit"
            + (f"; reference tables epsilon {ref['epsilon']:g} per row" if ref else ""),
            "",
        ]
    lines += [
        "| gate | result | value | threshold | worst item |",
        "|---|---|---|---|---|",
    ]
    for name in failing + [n for n in gates if n not in failing]:
        g = gates[name]
        val = "n/a" if g["value"] is None else f"{g['value']:.4g}"
        thr = "not gated" if g["threshold"] is None else f"{g['op']} {g['threshold']:g}"
        default = GATES_BY_NAME[name].default if name in GATES_BY_NAME else None
        if default is not None and g["threshold"] != default:
            thr += f" (default {default:g})"
        thr += calibrated_note(g)
        verdict = ("pass" if g["passed"] else "**FAIL**") if g["gated"] else "reported"
        lines.append(f"| {name} | {verdict} | {val} | {thr} | {g['worst'] or ''} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# The whole evaluation
# ------------------------------------------------------------------------------------------

SAMPLE_CONTEXT = "synth_assets/evaluation/sample/v1"


def evaluate_refresh(
    conn: psycopg.Connection,
    refresh_dir: Path,
    hmac_key: bytes,
    *,
    key_version: str | None = None,
    gates_cfg: dict[str, float] | None = None,
    options: EvalOptions | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure privacy and fidelity of one refresh and judge its gates; returns the report (aggregates only)."""
    started = time.monotonic()
    options = options or EvalOptions()
    refresh_dir = Path(refresh_dir)
    thresholds = gate_thresholds(gates_cfg)
    spec, pack = read_refresh(refresh_dir)
    pk_version = pack.get("privacy", {}).get("hmac_key_version")
    if key_version is not None and pk_version is not None and pk_version != key_version:
        raise EvaluationError(
            f"the refresh was profiled with HMAC key version {pk_version} but the secrets backend holds "
            f"{key_version}: the holdout cannot be reproduced, so privacy cannot be measured"
        )
    model = SchemaModel.from_dict(pack["schema"])
    roles = pack["roles"]
    plans = build_plan(model, roles, pack["privacy"]["unit_table"])
    order = [n for n in pack.get("order", list(model.tables)) if n in model.tables]
    rid = str(spec.get("refresh_id") or pack.get("refresh_id"))
    params = {
        "hkey": holdout_key(hmac_key),
        "hcut": int(pack["privacy"]["holdout_fraction"] * 2**32),
        "skey": keyed_hash(hmac_key, SAMPLE_CONTEXT),
    }
    rng = np.random.default_rng(
        int(keyed_hash(hmac_key, f"{SAMPLE_CONTEXT}/synthetic/{rid}")[:32], 16)
    )
    conn.execute("SET TIME ZONE 'UTC'")
    views = build_views(model, roles, plans, order, options)
    n = options.sample_rows
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "refresh_id": rid,
        "spec_hash": spec.get("content_hash"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit_table": pack["privacy"]["unit_table"],
        "holdout_fraction": pack["privacy"]["holdout_fraction"],
        "guarantee": privacy_guarantee(pack),
        "options": {
            "sample_rows": n,
            "reference_rows": options.reference_rows,
            "max_categories": options.max_categories,
            "min_cell": options.min_cell,
            "nndr_percentile": options.nndr_percentile,
        },
        "thresholds": {g.key: thresholds[g.name] for g in GATE_SPECS},
        "gate_descriptions": {g.name: g.description for g in GATE_SPECS},
        "views": {},
        "fanout": {},
        "temporal": {},
        "null_rates": {},
        "marginals": {},
        "timings": {},
    }
    try:
        for view in views:
            t0 = time.monotonic()
            report["views"][view.name] = _evaluate_view(
                conn,
                model,
                plans,
                spec,
                view,
                refresh_dir,
                params,
                rng,
                options,
                report["marginals"],
            )
            report["timings"][view.name] = round(time.monotonic() - t0, 2)
            log(f"evaluate: {view.name} in {report['timings'][view.name]:.1f}s")
        t0 = time.monotonic()
        for name in order:
            tab = model.tables[name]
            for fk in tab.foreign_keys:
                if fk.ref_table in model.tables:
                    rel = (
                        plans[fk.ref_table].kind == "reference" and plans[name].kind != "reference"
                    )
                    report["fanout"][f"{name}.{fk.columns[0]}->{fk.ref_table}"] = fanout_similarity(
                        conn, model, refresh_dir, name, fk, options.min_cell, relative=rel
                    )
            for c in table_columns(model, roles, name):
                if c.kind == "datetime" and not c.date_only:
                    report["temporal"][f"{name}.{c.column}"] = temporal_profile(
                        conn, model, refresh_dir, name, c, options.min_cell
                    )
            report["null_rates"][name] = null_rates(conn, model, refresh_dir, name)
        report["timings"]["fanout_temporal_nulls"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        report["identifier_overlap"] = identifier_overlap(conn, model, roles, refresh_dir, hmac_key)
        report["timings"]["identifier_overlap"] = round(time.monotonic() - t0, 2)
    except psycopg.Error as exc:
        raise EvaluationError(
            f"reading the source for evaluation failed: {str(exc).strip().splitlines()[0]}"
        ) from exc
    results = evaluate_gates(report, thresholds)
    report["gates"] = {r.name: r.to_dict() for r in results}
    report["passed"] = all(r.passed for r in results)
    report["message"] = gate_message(results)
    report["seconds"] = round(time.monotonic() - started, 2)
    return report


def _read(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def read_refresh(refresh_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec, metrics pack) of a refresh; a regeneration reads the pack of the refresh it was calibrated from."""
    refresh_dir = Path(refresh_dir)
    try:
        spec = _read(refresh_dir / "spec.json")
        pack_path = refresh_dir / "metrics_pack.json"
        if not pack_path.exists() and spec.get("pack_refresh_id"):
            pack_path = (
                refresh_dir.parent
                / check_refresh_id(str(spec["pack_refresh_id"]))
                / "metrics_pack.json"
            )
        pack = _read(pack_path)
    except FileNotFoundError as exc:
        raise EvaluationError(
            f"{exc.filename} is missing: the refresh was not profiled and calibrated"
        ) from None
    return spec, pack


def _evaluate_view(
    conn: psycopg.Connection,
    model: SchemaModel,
    plans: dict[str, TablePlan],
    spec: dict[str, Any],
    view: View,
    refresh_dir: Path,
    params: dict,
    rng: np.random.Generator,
    options: EvalOptions,
    marginals: dict[str, Any],
) -> dict[str, Any]:
    n = options.sample_rows
    out: dict[str, Any] = {
        "table": view.table,
        "kind": view.kind,
        "parent": view.fk.ref_table if view.fk else None,
        "columns": [c.name for c in view.cols],
    }
    released = {
        c.name: _released_values(spec, c.table, c.column)
        for c in view.cols
        if c.kind == "categorical"
    }
    if view.cols:
        unit_owned = plans[view.table].kind != "reference"
        synth_ref, s_total = synthetic_sample(
            refresh_dir, view, options.reference_rows if unit_owned else n, rng
        )
        synth = synth_ref.head(n)
        out["rows"] = {
            "synthetic_total": s_total,
            "synthetic_sample": synth.height,
            "synthetic_reference_rows": synth_ref.height,
        }
        if not view.is_join:
            real = real_sample(conn, model, plans, view, n, params)
            out["rows"]["real_sample"] = real.height
            out["column_shapes"] = column_shapes(view.cols, real, synth, released)
            real_dom = released_domain(real, view.cols, released)
            tspec = spec["tables"].get(view.table, {}).get("columns", {})
            achievable = achievable_shapes(
                view.cols, real_dom, tspec, synth.height, rng, OTHER, NULL_TOKEN
            )
            if achievable is not None:
                out["column_shapes"]["achievable"] = achievable
            out["pair_trends"] = pair_trends(
                view, real_dom, released_domain(synth, view.cols, released)
            )
            for c in view.cols:
                m = marginal_plot(
                    c, tspec.get(c.column), real[c.name], synth[c.name], options.min_cell
                )
                if m is not None:
                    marginals[f"{view.table}.{c.column}"] = m
        if unit_owned:
            parts, hold, info = unit_samples(
                conn, model, plans, view, n, params, options.reference_rows
            )
            out["rows"].update(info)
            if view.is_join:
                out["pair_trends"] = pair_trends(
                    view,
                    released_domain(pl.concat([parts[0], hold]), view.cols, released),
                    released_domain(synth, view.cols, released),
                )
            parts = [p for p in parts if p.height]  # small sources can leave later samples empty
            if hold.height and parts and synth_ref.height:
                enc = MixedEncoder(view.cols, pl.concat([parts[0], hold]), options.max_categories)
                out["privacy"] = privacy_metrics(
                    view, parts, hold, synth_ref, n, enc, options.nndr_percentile, rng
                )
            else:
                empty = [
                    side
                    for side, rows in (
                        ("holdout", hold.height),
                        ("training", len(parts)),
                        ("synthetic", synth_ref.height),
                    )
                    if not rows
                ]
                out["privacy"] = _unmeasurable(empty)
    out["rare_combinations"] = rare_combinations(conn, model, plans, view, refresh_dir, params)
    return out


def _released_values(spec: dict[str, Any], table: str, column: str) -> list[str] | None:
    """Category values of a column as the spec released them (None: the spec does not say)."""
    col = spec.get("tables", {}).get(table, {}).get("columns", {}).get(column, {})
    values = col.get("values")
    return [str(v) for v in values] if isinstance(values, list) else None


def _unmeasurable(empty: Sequence[str]) -> dict[str, Any]:
    nan = float("nan")
    return {
        "dcr_share": {"value": nan, "groups": {}, "baseline": 0.5},
        "nndr": {"value": nan},
        "mia": {"auc": nan, "tpr_at_1pct_fpr": nan},
        "exact_match": {"synthetic": nan, "holdout": nan, "excess": nan},
        "note": f"no {' / '.join(empty)} rows: privacy cannot be measured (fails closed)",
    }
