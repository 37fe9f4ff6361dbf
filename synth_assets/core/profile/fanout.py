"""Rows per unit and children per parent: the contribution bound of each child table, and the
fan-out histograms of its primary parent and of every reference it points at."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import psycopg

from synth_assets.core import dp
from synth_assets.core.kinds import TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.roles import qi
from synth_assets.core.schema import ForeignKey, SchemaModel, Table

from .budget import Budget
from .context import TableRun
from .holdout import holdout_sql
from .sql import TableSQL, table_sql, unit_from

FANOUT_EXACT = 16
# Units per (noise scale x parents per unit) below which one more parent per unit adds more noise
# than signal to a fan-out histogram. Simulated on the demo's shape at 1,500-40,000 units: 1 was
# best at 5,000, 2 at 12,000, 4 at 40,000; at epsilon = 1 this constant gives 1 parent below
# ~7,500 units, 2 up to ~11,000, 3 up to ~15,000, then the configured 4.
FANOUT_UNITS_PER_NOISE = 150.0


def fanout_bins(cap: int) -> list[int]:
    """Lower edges of fan-out bins: 0..15 exactly, then powers of two up to ``cap``."""
    edges = list(range(FANOUT_EXACT))
    b = FANOUT_EXACT
    while b < cap:
        edges.append(b)
        b *= 2
    return edges


def fanout_bucket_sql(x: str, bins: list[int], cap: int) -> str:
    """The bin of :func:`fanout_bins` a child count ``x`` falls in."""
    return (
        f"CASE WHEN {x} < {FANOUT_EXACT} THEN {x} ELSE least({len(bins) - 1}, "
        f"{FANOUT_EXACT} + floor(ln(least({x}, {cap - 1})::float8 / {FANOUT_EXACT}) / ln(2.0))::int) END"
    )


def fanout_fks(plans: dict[str, TablePlan], t: Table) -> list[ForeignKey]:
    """The foreign keys measured by fan-out: the primary parent's and every reference's."""
    return [
        fk
        for fk in t.foreign_keys
        if fk.ref_table != t.name
        and (fk is plans[t.name].parent_fk or plans[fk.ref_table].kind == TableKind.REFERENCE)
    ]


def fanout_parents_bound(configured: int, units: int | None, rho: float) -> int:
    """Parents per unit in a fan-out histogram: as many as configured, while the signal allows.

    A unit's ``k`` parents enter the histogram, so its sensitivity is ``k``: more parents per unit
    estimate the per-parent distribution with less bias (heavy units are not down-weighted) but
    multiply the noise. ``units`` is the released (noisy) unit count, so the choice is
    post-processing and spends nothing.
    """
    if units is None or rho <= 0:
        return max(1, configured)
    per_noise = units * math.sqrt(2.0 * rho)  # units / (noise scale at sensitivity 1)
    return int(max(1, min(configured, per_noise // FANOUT_UNITS_PER_NOISE)))


def unit_table(plans: dict[str, TablePlan]) -> str:
    """The root table: one row per privacy unit."""
    return next(n for n, p in plans.items() if p.kind == TableKind.ROOT)


def released_units(done: dict[str, Any], plans: dict[str, TablePlan]) -> int | None:
    """The unit table's released (noisy) row count, once it is measured."""
    return done.get(unit_table(plans), {}).get("rows")


def contribution_bound(
    conn: psycopg.Connection,
    model: SchemaModel,
    plan: TablePlan,
    units: str | None,
    params: dict,
    budget: Budget,
    cap: int,
    coverage: float = 0.95,
) -> tuple[int, float]:
    """(Rows per unit to keep for ``plan``'s table, mean rows a unit keeps under it): the
    smallest bound covering ``coverage`` of the units, from a DP histogram of rows per unit
    (each unit adds one count: sensitivity 1); the mean is post-processing of the same counts.

    A bound far above what units hold only adds noise (sensitivity = bound); one far below
    biases towards light units. Capped at ``privacy.max_rows_per_unit``.
    """
    src, unit = unit_from(model, plan)
    join = f"JOIN {units} hu ON hu.u = {unit}" if units else ""
    where = "" if units else f"WHERE NOT {holdout_sql(unit)}"
    sql = (
        f"SELECT least(n, {cap + 1}) AS b, count(*) FROM (SELECT {unit} AS u, count(*) AS n "
        f"FROM {src} {join} {where} GROUP BY 1) x GROUP BY 1"
    )
    vec = np.zeros(cap + 2, dtype=np.int64)
    for b, v in conn.execute(sql, params):
        vec[int(b)] += int(v)
    noisy = dp.noisy_counts(
        budget.acc, f"{plan.name}:rows_per_unit", vec, 1, budget("bounds"), table=plan.name
    )
    c = np.clip(noisy[1:], 0, None).astype(np.float64)
    if c.sum() <= 0:
        return cap, 1.0
    cum = np.cumsum(c) / c.sum()
    bound = int(min(cap, np.searchsorted(cum, coverage) + 1))
    kept = np.minimum(np.arange(1, c.size + 1), bound)
    return bound, float((kept * c).sum() / c.sum())


def _parent_fanout_sql(run: TableRun, fk: ForeignKey, bucket: str) -> tuple[str, int]:
    """(SQL of children per parent row, sensitivity): parent rows of up to ``pm`` per unit
    (one for the unit table), each with its count of children in the whole table."""
    src, pcfg = run.src, run.pcfg
    if src.plans[fk.ref_table].kind == TableKind.ROOT:
        pm = 1
    else:
        pm = fanout_parents_bound(
            min(pcfg.fanout_parents_per_unit, pcfg.rows_per_unit(fk.ref_table)),
            released_units(src.tables, src.plans),
            run.budget("fanout"),
        )
    pts: TableSQL = (
        src.temps.subset(fk.ref_table, pm)
        if src.temps and src.temps.has(fk.ref_table)
        else table_sql(
            src.model, src.plans, src.roles, fk.ref_table, pm, src.ref_attr_of, src.units
        )
    )
    child_counts = f"SELECT {qi(fk.columns[0])} AS k, count(*) AS n FROM {qi(src.model.schema)}.{qi(run.name)} GROUP BY 1"
    sql = (
        f"{pts.cte} SELECT {bucket} AS b, count(*) FROM c LEFT JOIN ({child_counts}) cc "
        f"ON cc.k = c.{qi(fk.ref_columns[0])} GROUP BY 1"
    )
    return sql, pm


def _reference_fanout_sql(run: TableRun, fk: ForeignKey, bucket: str) -> tuple[str, int]:
    """(SQL of measured rows per reference row, sensitivity): popularity of reference rows from
    one row per unit, so one unit moves one reference row between two bins (L2 sensitivity
    sqrt 2, rounded up to 2) instead of 2m."""
    first = " WHERE __rn <= 1" if run.plan.kind == TableKind.CHILD else ""
    child_counts = f"SELECT {qi(fk.columns[0])} AS k, count(*) AS n FROM c{first} GROUP BY 1"
    sql = (
        f"{run.ts.cte}, cc AS ({child_counts}) SELECT {bucket} AS b, count(*) FROM "
        f"{qi(run.src.model.schema)}.{qi(fk.ref_table)} p LEFT JOIN cc ON cc.k = p.{qi(fk.ref_columns[0])} GROUP BY 1"
    )
    return sql, 2


def measure_fanouts(run: TableRun) -> None:
    """Children per parent for the primary parent and every reference foreign key."""
    pcfg = run.pcfg
    for fk in fanout_fks(run.src.plans, run.table):
        is_parent = fk is run.plan.parent_fk
        bins = fanout_bins(pcfg.max_fanout)
        unique_fk = any(set(s) == {fk.columns[0]} for s in run.table.unique_sets)
        bucket = fanout_bucket_sql("coalesce(cc.n, 0)", bins, pcfg.max_fanout)
        make_sql = _parent_fanout_sql if is_parent else _reference_fanout_sql
        sql, fsens = make_sql(run, fk, bucket)
        vec = np.zeros(len(bins), dtype=np.int64)
        for b, v in run.src.conn.execute(sql, run.src.params):
            vec[int(b)] += int(v)
        noisy = dp.noisy_counts(
            run.acc,
            f"{run.name}.{fk.name}:fanout",
            vec,
            fsens,
            run.budget("fanout"),
            table=run.name,
            fk=fk.name,
        )
        run.out["fanout"][fk.name] = {
            "parent": fk.ref_table,
            "column": fk.columns[0],
            "primary": is_parent,
            "bins": bins,
            "counts": noisy.tolist(),
            "max": 1 if unique_fk else pcfg.max_fanout,
            "sigma": run.acc.entries[-1].scale,
            "parents_per_unit": fsens if is_parent else None,
        }
