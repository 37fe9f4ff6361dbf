"""``profile_source``: measure the source, table by table, and assemble the metrics pack.

Before anything is measured, every measurement is counted, so each share of the budget is
divided among what exists. Then each table is measured in order (references first: children
read their attribute domains), on its rows materialized once in a temp table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from synth_assets.core import dp
from synth_assets.core.config import SynthConfig
from synth_assets.core.errors import ConfigError
from synth_assets.core.kinds import ColumnKind, TableKind
from synth_assets.core.plan import TablePlan, build_plan
from synth_assets.core.schema import SchemaModel

from .budget import Budget
from .columns import column_models
from .context import Source
from .fanout import contribution_bound, unit_table
from .holdout import holdout_key
from .public import check_public_tables, public_attribute, public_table
from .shares import make_budget, share_counts
from .sql import table_sql
from .table import profile_table
from .temps import Temps

PACK_FORMAT = "synth_assets.metrics_pack/1"


def _open_session(conn: psycopg.Connection, cfg: SynthConfig) -> None:
    """UTC, and session memory for the aggregation (sorts and hashes in memory, temp tables in
    local buffers); set before the session touches any temp table."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute(f"SET work_mem = '{int(cfg.privacy.work_mem_mb)}MB'")
    conn.execute(f"SET temp_buffers = '{int(cfg.privacy.work_mem_mb)}MB'")


def _check_bounds(cfg: SynthConfig, model: SchemaModel) -> None:
    """Refuse ``bounds`` entries that name no modelled column."""
    for key in cfg.bounds:
        tname, cname = key.split(".")
        if tname not in model.tables or cname not in {c.name for c in model.tables[tname].columns}:
            raise ConfigError(f"bounds: {key!r} is not a column of the modelled tables")


def measuring_order(model: SchemaModel, plans: dict[str, TablePlan]) -> list[str]:
    """References first (children read their attribute domains), then the unit tree."""
    order, _ = model.generation_order()
    return [n for n in order if plans[n].kind == TableKind.REFERENCE] + [
        n for n in order if plans[n].kind != TableKind.REFERENCE
    ]


def _first_categorical(
    plans: dict[str, TablePlan], roles: dict[str, dict[str, str]]
) -> dict[str, str | None]:
    """The attribute of each reference table that children are conditioned on, until it is
    measured: its first categorical column (then the one with the most released values)."""
    return {
        n: next((c for c, r in roles[n].items() if r == "categorical"), None)
        for n, p in plans.items()
        if p.kind == TableKind.REFERENCE
    }


def _open_temps(src: Source, log: Callable[[str], None]) -> None:
    """Temp tables for the training units and each table's rows, unless the source is a
    read-only standby: then every aggregate re-reads the source (same results, slower)."""
    recovery, read_only = src.conn.execute(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
    ).fetchone()
    src.temps = None if (recovery or read_only) else Temps(src.conn, src.params)
    if src.temps is None:
        log("profile: source is read-only; aggregates re-read the source (no temp tables)")
    src.units = src.temps.units(src.model, src.plans[unit_table(src.plans)]) if src.temps else None


def _contribution_bounds(src: Source, budget: Budget, log: Callable[[str], None]) -> None:
    """Rows per unit of each child table without a configured bound, chosen with DP."""
    pcfg = src.cfg.privacy
    for n in src.order:
        if src.plans[n].kind == TableKind.CHILD and n not in pcfg.max_rows_per_unit_by_table:
            src.bounds_m[n], src.unit_rows[n] = contribution_bound(
                src.conn,
                src.model,
                src.plans[n],
                src.units,
                src.params,
                budget,
                pcfg.max_rows_per_unit,
            )
    if src.bounds_m:
        log(
            "profile: rows per unit bounds "
            + ", ".join(f"{t}={m}" for t, m in src.bounds_m.items())
        )


def _best_attribute(src: Source, n: str) -> str | None:
    """A measured reference table's attribute for children: the category column with the most
    released values (at least two); on a tie, the one it was conditioned on so far."""
    released = {
        c: len(e.get("values", []))
        for c, e in src.tables[n]["columns"].items()
        if e.get("kind") == ColumnKind.CATEGORICAL
    }
    best = max(released.items(), key=lambda kv: (kv[1], kv[0] == src.ref_attr_of[n]), default=None)
    return best[0] if best and best[1] >= 2 else None


def _measure_tables(
    src: Source, budgets: dict[str, tuple[Budget, float]], log: Callable[[str], None]
) -> None:
    """Each table in order: a public one copied, the others measured on their rows."""
    if src.public:
        log("profile: copied as declared public (no budget): " + ", ".join(sorted(src.public)))
    for n in src.order:
        t0 = time.monotonic()
        if n in src.public:
            src.tables[n] = public_table(src.conn, src.model, n, src.colmodels[n])
            src.ref_attr_of[n] = public_attribute(src.tables[n])
            continue
        ts = table_sql(
            src.model, src.plans, src.roles, n, src.rows_per_unit(n), src.ref_attr_of, src.units
        )
        if src.temps:
            ts = src.temps.materialize(ts)
        budget, delta_each = budgets[
            "reference" if src.plans[n].kind == TableKind.REFERENCE else "unit"
        ]
        src.tables[n] = profile_table(src, ts, src.colmodels[n], budget, delta_each)
        if src.plans[n].kind == TableKind.REFERENCE:
            src.ref_attr_of[n] = _best_attribute(src, n)
        log(f"profile: {n} measured in {time.monotonic() - t0:.1f}s")


def _pack(
    src: Source, acc: dp.Accountant, ref_acc: dp.Accountant, refresh_id: str, started: float
) -> dict[str, Any]:
    """The metrics pack: DP aggregates per table, the plan they follow, and both ledgers."""
    pcfg = src.cfg.privacy
    return {
        "format": PACK_FORMAT,
        "refresh_id": refresh_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": {"schema": src.model.schema},
        "privacy": {
            "unit_table": unit_table(src.plans),
            "holdout_fraction": pcfg.holdout_fraction,
            "rows_per_unit": {n: src.rows_per_unit(n) for n in src.order},
            "epsilon": acc.epsilon_spent(),
            "delta": pcfg.delta,
        },
        "schema": src.model.to_dict(),
        "roles": src.roles,
        "plan": {n: src.plans[n].to_dict() for n in src.order},
        "order": src.order,
        "tables": src.tables,
        "ledger": acc.to_dict(),
        "reference_ledger": ref_acc.to_dict(),
        "seconds": round(time.monotonic() - started, 2),
    }


def profile_source(
    conn: psycopg.Connection,
    model: SchemaModel,
    roles: dict[str, dict[str, str]],
    cfg: SynthConfig,
    hmac_key: bytes,
    *,
    refresh_id: str,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure the source and return the metrics pack (DP aggregates and the ledger).

    Count every measurement (to split each share of the budget), choose the contribution
    bounds, then measure table after table (:func:`profile_table`: domains, one-way marginals,
    the tree of pairs, fan-out). Inference from the noisy measurements is post-processing, in
    ``spec.calibrate``."""
    started = time.monotonic()
    pcfg = cfg.privacy
    _open_session(conn, cfg)
    plans = build_plan(model, roles, pcfg.unit_table)
    acc = dp.Accountant(pcfg.epsilon, pcfg.delta)
    hkey = holdout_key(hmac_key)
    params = {"hkey": hkey, "hcut": int(pcfg.holdout_fraction * 2**32), "hseed": int(hkey[:15], 16)}
    _check_bounds(cfg, model)
    src = Source(conn, model, plans, roles, cfg, params, _first_categorical(plans, roles))
    src.order = measuring_order(model, plans)
    src.public = check_public_tables(cfg, model, plans)
    src.colmodels = {n: column_models(model.tables[n], roles[n]) for n in src.order}
    counts_u, counts_r = share_counts(src)
    # Reference tables hold no unit's rows (no required path to the unit table): their row-level
    # measurements run under a separate accountant (privacy.reference_epsilon), reported apart.
    ref_acc = dp.Accountant(pcfg.reference_epsilon, pcfg.delta)
    budget_u, delta_u = make_budget(src, acc, counts_u, {TableKind.ROOT, TableKind.CHILD})
    budget_r, delta_r = make_budget(src, ref_acc, counts_r, {TableKind.REFERENCE})
    log(
        f"profile: {len(src.order)} tables, unit table {unit_table(plans)}, "
        f"rho budget {acc.rho_budget:.4g}"
    )
    _open_temps(src, log)
    _contribution_bounds(src, budget_u, log)
    _measure_tables(src, {"unit": (budget_u, delta_u), "reference": (budget_r, delta_r)}, log)
    return _pack(src, acc, ref_acc, refresh_id, started)
