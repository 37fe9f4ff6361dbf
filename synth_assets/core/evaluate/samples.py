"""The three samples of a view: real training and holdout rows (SQL pushdown, by the same
keyed-hash holdout rule the profile used) and synthetic rows (Parquet shards).

Both sides leave here in one canonical form (numbers and datetimes as Float64 epoch seconds,
categories as text with nulls as a token), so the metrics never see where a row came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import psycopg

from synth_assets.core.kinds import EvalKind, TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.profile import _unit_from, holdout_sql
from synth_assets.core.roles import EPOCH_TYPES, INTEGER_TYPES, JSON_TYPES, json_shape_sql, qi
from synth_assets.core.schema import SchemaModel
from synth_assets.core.store import RefreshPaths

from .errors import EvaluationError
from .views import Col, View

NULL_TOKEN = "\x00null"  # categorical null inside the evaluator (never written to the report)


_FLOAT_TYPES = frozenset({"numeric", "float4", "float8", "money"})


def _sql_value(alias: str, col: Col) -> str:
    """SQL expression of a column as the evaluator reads it (numbers as float8, epochs, text)."""
    q = f"{alias}.{qi(col.column)}"
    if col.kind == EvalKind.NUMERIC:
        return (
            f"extract(epoch from {q})::float8" if col.base_type in EPOCH_TYPES else f"{q}::float8"
        )
    if col.base_type in JSON_TYPES:  # compared by shape, as it was measured and generated
        return json_shape_sql(q)
    if col.kind == EvalKind.DATETIME:
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
    """Where a view's real rows come from: the table (joined to its parent) and its unit."""
    t = model.tables[view.table]
    plan = plans[view.table]
    sch = qi(model.schema)
    if plan.kind == TableKind.REFERENCE:
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
    """SQL alias of the table a view column comes from (``pp``: the joined parent)."""
    return "pp" if col.parent else "t"


def _where(src: _Source, side: str) -> str:
    """SQL predicate of one side of the holdout ("training" or "holdout") on the view's unit."""
    if src.unit is None:
        return "TRUE"
    pred = holdout_sql(src.unit)
    return pred if side == "holdout" else f"NOT {pred}"


def _fetch(conn: psycopg.Connection, sql: str, params: dict, names: list[str]) -> pl.DataFrame:
    """Rows of a query as a frame with the columns ``names`` (empty: no rows)."""
    cur = conn.execute(sql, params)
    rows = cur.fetchall()
    return (
        pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
        if rows
        else pl.DataFrame({n: [] for n in names})
    )


@dataclass(frozen=True)
class RealDB:
    """The real database the report samples: its connection, schema model and table plans, and
    the query parameters that key the samples (the sample and holdout hash keys)."""

    conn: psycopg.Connection
    model: SchemaModel
    plans: dict[str, TablePlan]
    params: dict


def real_sample(db: RealDB, view: View, n: int) -> pl.DataFrame:
    """A deterministic random sample of ``n`` real rows of a view, holdout included (fidelity)."""
    src = _source(db.model, db.plans, view)
    exprs = [f"{_sql_value(_alias(c), c)} AS {qi(c.name)}" for c in view.cols]
    sql = (
        f"SELECT {', '.join(exprs)} FROM {src.from_sql} "
        f"ORDER BY md5(%(skey)s || ({src.order})::text) LIMIT {int(n)}"
    )
    return canonical(_fetch(db.conn, sql, db.params, [c.name for c in view.cols]), view.cols)


def unit_samples(
    db: RealDB, view: View, n: int, reference_rows: int | None = None
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
    src = _source(db.model, db.plans, view)
    if src.unit is None:
        raise EvaluationError(
            f"{view.name} is a reference table: it has no privacy units and no holdout"
        )
    per = {side: _units_sql(src, side) for side in ("holdout", "training")}
    sizes = {
        side: _unit_sizes(db.conn, per[side], limit, db.params)
        for side, limit in (("holdout", n), ("training", reference_rows))
    }
    k = min(_units_fitting(sizes["holdout"], n), _units_fitting(sizes["training"], n))
    if k == 0:  # no holdout (or no training) unit owns a row of this view: nothing to compare
        return _no_unit_samples(view)
    parts = max(
        1,
        min(
            sizes["training"].size // max(k, 1),
            _units_fitting(sizes["training"], reference_rows) // max(k, 1),
        ),
    )
    out = {
        side: _part_rows(db.conn, src, view, per[side], side, k, units, db.params)
        for side, units in (("training", k * parts), ("holdout", k))
    }
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


def _units_sql(src: _Source, side: str) -> str:
    """SQL of one side's privacy units and the rows each owns in the view."""
    return (
        f"SELECT {src.unit} AS u, count(*) AS n FROM {src.from_sql} "
        f"WHERE {_where(src, side)} GROUP BY 1"
    )


def _unit_sizes(conn: psycopg.Connection, units_sql: str, limit: int, params: dict) -> np.ndarray:
    """Rows per unit of the first ``limit`` units in keyed-hash order."""
    return np.array(
        [
            r[0]
            for r in conn.execute(
                f"SELECT n FROM ({units_sql}) p ORDER BY md5(%(skey)s || u::text), u LIMIT {int(limit)}",
                params,
            )
        ],
        dtype=np.int64,
    )


def _units_fitting(sizes: np.ndarray, cap: int) -> int:
    """How many units, in order, fit in ``cap`` rows (at least one, when there is one)."""
    return max(int(np.searchsorted(np.cumsum(sizes), cap, side="right")), min(1, sizes.size))


def _no_unit_samples(view: View) -> tuple[list[pl.DataFrame], pl.DataFrame, dict[str, int]]:
    """Empty training and holdout samples of a view no unit on one side owns a row of."""
    empty = canonical(pl.DataFrame({c.name: [] for c in view.cols}), view.cols)
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


def _part_rows(
    conn: psycopg.Connection,
    src: _Source,
    view: View,
    units_sql: str,
    side: str,
    k: int,
    units: int,
    params: dict,
) -> pl.DataFrame:
    """All rows of the first ``units`` units of one side, each tagged ``__part`` (``k`` units a part)."""
    exprs = [f"{_sql_value(_alias(c), c)} AS {qi(c.name)}" for c in view.cols]
    sql = (
        f"WITH top AS (SELECT u, (row_number() OVER (ORDER BY md5(%(skey)s || u::text), u) - 1) / {int(k)} "
        f"AS part FROM ({units_sql}) p ORDER BY md5(%(skey)s || u::text), u LIMIT {int(units)}) "
        f"SELECT {', '.join(exprs)}, top.part AS __part FROM {src.from_sql} JOIN top ON {src.unit} = top.u "
        f"WHERE {_where(src, side)}"
    )
    return _fetch(conn, sql, params, [*[c.name for c in view.cols], "__part"])


def shard_files(refresh_dir: Path, table: str) -> list[str]:
    """Parquet files of one table; fail closed when there are none."""
    paths = RefreshPaths(Path(refresh_dir))
    files = paths.shard_files(table)
    if not files:
        raise EvaluationError(
            f"no synthetic shards for table {table} in {paths.shards_dir}: "
            "materialize synthetic_shards for this refresh first"
        )
    return [str(f) for f in files]


def scan_table(refresh_dir: Path, table: str) -> pl.LazyFrame:
    """Lazy scan of all shards of a table."""
    return pl.scan_parquet(shard_files(refresh_dir, table))


def _epoch_seconds(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Dates and datetimes as Float64 epoch seconds, as the SQL side reads them."""
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
        if c.kind == EvalKind.NUMERIC:
            e = s.cast(pl.Float64)
        elif c.kind == EvalKind.DATETIME:
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
