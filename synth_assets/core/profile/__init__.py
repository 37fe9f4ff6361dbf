"""The sampler: differentially private aggregates of the source, computed by SQL pushdown.

Every number that leaves this module went through an OpenDP mechanism in ``dp.py`` and is
recorded in the ledger. Raw rows never leave PostgreSQL: the queries return counts only
(value counts of categorical columns are thresholded before release).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import psycopg

from synth_assets.core import dp
from synth_assets.core.config import SynthConfig
from synth_assets.core.copula import value_order
from synth_assets.core.errors import ConfigError
from synth_assets.core.plan import TablePlan, build_plan
from synth_assets.core.roles import (
    DATETIME_TYPES,
    INTEGER_TYPES,
    LENGTH_ROLES,
    SYNTHESIZED_ROLES,
    qi,
)
from synth_assets.core.schema import SchemaModel
from synth_assets.core.spec import check_rules

from .budget import WEIGHT, Budget, share_rho
from .columns import ColumnModel
from .holdout import holdout_key, holdout_sql
from .holdout import in_holdout as in_holdout
from .public import check_public_tables as _check_public_tables
from .public import public_attribute as _public_attribute
from .public import public_domain as _public_domain
from .public import public_table as _public_table
from .sql import TableSQL, grouping_counts, table_sql
from .sql import deferred_fks as _deferred_fks
from .sql import lit as _lit
from .sql import one_way_counts as _one_way_counts
from .sql import per_unit as _per_unit
from .sql import text_array as _text_array
from .sql import unit_from as _unit_from
from .sql import vec as _vec
from .temps import Temps

PACK_FORMAT = "synth_assets.metrics_pack/1"
LOG_OFFSET = 20  # log2 buckets cover 2^-20 .. 2^63
LOG_BUCKETS = 84
YEAR0 = 1900
YEARS = 201
DAY_BUCKETS = (
    1,
    7,
    14,
    28,
    91,
)  # days per bucket of the daily histogram, coarsened to beat the noise
FANOUT_EXACT = 16
TEXT_LENGTH_BINS = 40
HOW = 168


def fanout_bins(cap: int) -> list[int]:
    """Lower edges of fan-out bins: 0..15 exactly, then powers of two up to ``cap``."""
    edges = list(range(FANOUT_EXACT))
    b = FANOUT_EXACT
    while b < cap:
        edges.append(b)
        b *= 2
    return edges


def _log_bucket_sql(x: str) -> str:
    lg = f"greatest(0, least({LOG_BUCKETS - 1}, floor(ln(abs({x})::float8) / ln(2.0))::int + {LOG_OFFSET}))"
    return (
        f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} = 0 THEN {LOG_BUCKETS} "
        f"WHEN {x} > 0 THEN {LOG_BUCKETS} + 1 + {lg} ELSE {LOG_BUCKETS} - 1 - {lg} END"
    )


def _log_bucket_edges(b: int) -> tuple[float, float]:
    """[low, high) of log bucket index b in 0..2*LOG_BUCKETS."""
    if b == LOG_BUCKETS:
        return 0.0, 0.0
    if b > LOG_BUCKETS:
        k = b - LOG_BUCKETS - 1 - LOG_OFFSET
        return 2.0**k, 2.0 ** (k + 1)
    k = LOG_BUCKETS - 1 - b - LOG_OFFSET
    return -(2.0 ** (k + 1)), -(2.0**k)


def _year_sql(x: str) -> str:
    return f"greatest(0, least({YEARS - 1}, extract(year from {x})::int - {YEAR0}))"


def day_bucket_width(expected_rows: float, days: int, sigma: float, snr: float = 5.0) -> int:
    """Fewest days per bucket such that an average bucket holds ``snr`` times the noise."""
    for w in DAY_BUCKETS:
        if expected_rows / max(1.0, days / w) >= snr * sigma:
            return w
    return DAY_BUCKETS[-1]


RANGE_WINDOWS = (1, 2, 4, 8, 16, 32, 64)  # adjacent buckets pooled when no single one clears
# A bucket next to a released range holds a tail when its noisy count clears this many sigma
# (an empty one does so 7 % of the time; the projection then mostly empties its bin again).
OUTER_SIGMAS = 1.5


# Pooled noise deviations a window of buckets outside the range found first must clear to
# widen it: over ~1,200 candidate windows per column, a false one about once in 3,000 columns.
APART_SIGMAS = 5.0


def _released_range(noisy: np.ndarray, sigma: float) -> tuple[int, int] | None:
    """First and last index of the windows of adjacent buckets whose pooled noisy count clears
    4.5 sigma of its noise (no false windows in practice).

    The narrowest window width that finds signal sets the range: a large table gets its range
    to the bucket; a small one, spread thinly over many buckets, still gets a coarser range from
    the same noisy counts (post-processing) instead of none. Wider windows then look for data
    apart from it (windows wholly outside the range, ``APART_SIGMAS``): a debt column that is 0
    for 82 % of rows and spread over 1,000-30,000 for the rest was released as [0, 1] when the
    zero bucket alone set the range, and every debt came out as 0 or 1.
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
    # A neighbouring bucket that clears 2 sigma is data too: without it a tenth of a small
    # table's rows piles on the bound (a range one power of two wider costs less).
    while lo > 0 and v[lo - 1] > 2 * sigma:
        lo -= 1
    while hi < v.size - 1 and v[hi + 1] > 2 * sigma:
        hi += 1
    return lo, hi


def _outer_range(
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
        out_lo = _log_bucket_edges(below)[0]
    if hi_b != LOG_BUCKETS and above < noisy.size and above != LOG_BUCKETS and noisy[above] > seen:
        out_hi = _log_bucket_edges(above)[1]
    if rules.get("min") is not None:
        out_lo = max(out_lo, float(rules["min"]))
    if rules.get("max") is not None:
        out_hi = min(out_hi, float(rules["max"]))
    return [min(out_lo, lo), max(out_hi, hi)]


def numeric_edges(
    lo: float, hi: float, nbins: int, integer: bool, per_value_up_to: int = 0
) -> list[float]:
    """Bin edges on [lo, hi]: one per integer for integer ranges of at most
    ``max(nbins, per_value_up_to)`` values, else asinh-spaced.

    An integer column's edges sit on half-integers, so every bin holds whole values: bins of
    width 0.86 over the years 2003-2009 would hold one year or two, and the values drawn inside
    them (then rounded) would favour some years for no reason in the data."""
    if integer:
        lo, hi = float(math.ceil(lo - 1e-9)), float(math.floor(hi + 1e-9))
        hi = max(hi, lo)
        if hi - lo + 1 <= max(nbins, per_value_up_to):
            return [float(v) - 0.5 for v in range(int(lo), int(hi) + 2)]
    if hi - lo < 10:
        e = np.linspace(lo, hi, nbins + 1)
    else:
        e = np.sinh(np.linspace(np.arcsinh(lo), np.arcsinh(hi), nbins + 1))
        e[0], e[-1] = lo, hi
    if integer:  # snap to half-integers; bins that collapse to nothing are merged away
        e = np.unique(np.concatenate([[lo - 0.5], np.floor(e[1:-1]) + 0.5, [hi + 0.5]]))
    return [float(v) for v in e]


def with_outer_bins(edges: list[float], outer: list[float] | None) -> list[float]:
    """Fine edges of a refined range plus one bin on each side up to the range it was refined
    from. A refinement is a decision on noisy counts; when it wrongly drops a thinly spread
    part of the column, the marginal still finds that mass in the outer bin (and where there
    is none, the marginal's projection empties it)."""
    if not outer:
        return edges
    lo, hi = float(outer[0]), float(outer[1])
    edges = [float(e) for e in edges]
    return ([lo] if lo < edges[0] else []) + edges + ([hi] if hi > edges[-1] else [])


def contribution_bound(
    conn,
    model: SchemaModel,
    plan: TablePlan,
    units: str | None,
    params: dict,
    budget: Budget,
    cap: int,
    coverage: float = 0.95,
) -> int:
    """Rows per unit to keep for ``plan``'s table: the smallest bound covering ``coverage`` of the
    units, from a DP histogram of rows per unit (each unit adds one count: sensitivity 1).

    A bound far above what units hold only adds noise (sensitivity = bound); one far below
    biases towards light units. Capped at ``privacy.max_rows_per_unit``.
    """
    src, unit = _unit_from(model, plan)
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
        return cap
    cum = np.cumsum(c) / c.sum()
    return int(min(cap, np.searchsorted(cum, coverage) + 1))


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
    """Measure the source and return the metrics pack (DP aggregates and the ledger)."""
    started = time.monotonic()
    pcfg = cfg.privacy
    conn.execute("SET TIME ZONE 'UTC'")
    # Session memory for the aggregation (sorts and hashes in memory, temp tables in local
    # buffers); set before the session touches any temp table.
    conn.execute(f"SET work_mem = '{int(pcfg.work_mem_mb)}MB'")
    conn.execute(f"SET temp_buffers = '{int(pcfg.work_mem_mb)}MB'")
    plans = build_plan(model, roles, pcfg.unit_table)
    acc = dp.Accountant(pcfg.epsilon, pcfg.delta)
    hkey = holdout_key(hmac_key)
    params = {"hkey": hkey, "hcut": int(pcfg.holdout_fraction * 2**32), "hseed": int(hkey[:15], 16)}
    for key in cfg.bounds:
        tname, cname = key.split(".")
        if tname not in model.tables or cname not in {c.name for c in model.tables[tname].columns}:
            raise ConfigError(f"bounds: {key!r} is not a column of the modelled tables")

    # Order: references first (children read their attribute domains), then the unit tree.
    order, _ = model.generation_order()
    order = [n for n in order if plans[n].kind == "reference"] + [
        n for n in order if plans[n].kind != "reference"
    ]

    bounds_m: dict[str, int] = {}  # contribution bounds chosen with DP (see contribution_bound)

    def m_of(name: str) -> int:
        kind = plans[name].kind
        if kind in ("root", "reference"):
            return 1
        return bounds_m.get(name, pcfg.rows_per_unit(name))

    # The attribute of a reference table that children are conditioned on: a categorical column
    # (chosen after the table is measured: the one with the most released values).
    ref_attr_of: dict[str, str | None] = {}
    for n, p in plans.items():
        if p.kind == "reference":
            ref_attr_of[n] = next((c for c, r in roles[n].items() if r == "categorical"), None)

    public = _check_public_tables(cfg, model, plans)
    deferred = _deferred_fks(model)

    # --- column models and the number of measurements per share (to split the budget) ---
    colmodels: dict[str, dict[str, ColumnModel]] = {}
    counts_u = dict.fromkeys(pcfg.split, 0.0)  # measurements on unit-owned tables (the unit budget)
    counts_r = dict.fromkeys(pcfg.split, 0.0)  # row-level measurements of reference tables
    for n in order:
        t = model.tables[n]
        counts = counts_r if plans[n].kind == "reference" else counts_u
        if n in public:
            counts = dict.fromkeys(pcfg.split, 0.0)  # copied: measures nothing
        cms: dict[str, ColumnModel] = {}
        for c in t.columns:
            r = roles[n][c.name]
            fk = t.fk_for(c.name)
            if r == "key":
                cms[c.name] = ColumnModel(c.name, r, "key")
            elif r == "foreign_key" or fk is not None:
                cms[c.name] = ColumnModel(c.name, "foreign_key", "fk")
                if fk is not plans[n].parent_fk:
                    counts["one_way"] += WEIGHT["nulls"]  # null rate
            elif r in SYNTHESIZED_ROLES:
                cms[c.name] = ColumnModel(c.name, r, "synth")
                counts["one_way"] += WEIGHT["length"] if r in LENGTH_ROLES else WEIGHT["nulls"]
            elif r == "categorical":
                cms[c.name] = ColumnModel(c.name, r, "categorical")
                counts["one_way"] += 1
                if not _public_domain(cfg, t, c.name):
                    counts["bounds"] += WEIGHT["values"]
            elif r == "numeric":
                cms[c.name] = ColumnModel(c.name, r, "numeric")
                counts["one_way"] += 1
                counts["bounds"] += WEIGHT["point_masses"]  # released like category values
                if f"{n}.{c.name}" not in cfg.bounds:
                    counts["bounds"] += WEIGHT["range"] + WEIGHT["refine"]
            elif r == "boolean":
                cms[c.name] = ColumnModel(c.name, r, "boolean")
                counts["one_way"] += 1
            elif r == "datetime" and c.base_type in DATETIME_TYPES:
                cms[c.name] = ColumnModel(c.name, r, "datetime")
                if f"{n}.{c.name}" not in cfg.bounds:
                    counts["bounds"] += WEIGHT["range"]
                counts["temporal"] += WEIGHT["day"] + (
                    WEIGHT["how"] if c.base_type != "date" else 0.0
                )
                counts["temporal"] += WEIGHT["after"] if plans[n].kind == "child" else 0.0
            else:
                cms[c.name] = ColumnModel(c.name, "ignore", "ignore")
        colmodels[n] = cms
        pseudo = sum(
            1
            for fk in t.foreign_keys
            if plans[fk.ref_table].kind == "reference"
            and ref_attr_of.get(fk.ref_table)
            and fk.ref_table != n
            and (n, fk.name) not in deferred
        )
        counts["one_way"] += pseudo  # marginal of the referenced row's attribute
        modelled = (
            sum(cm.kind in ("categorical", "numeric", "boolean") for cm in cms.values()) + pseudo
        )
        if modelled > 1:
            counts["select"] += modelled - 1
            counts["pairs"] += modelled - 1
        if plans[n].kind in ("root", "reference"):
            counts["one_way"] += WEIGHT["rows"]  # row count
        elif n not in pcfg.max_rows_per_unit_by_table:
            counts["bounds"] += 1  # rows-per-unit histogram for the contribution bound
        counts["fanout"] += sum(
            1
            for fk in t.foreign_keys
            if fk.ref_table != n
            and (fk is plans[n].parent_fk or plans[fk.ref_table].kind == "reference")
        )
    # Reference tables hold no unit's rows (no required path to the unit table): their row-level
    # measurements run under a separate accountant (privacy.reference_epsilon), reported apart.
    ref_acc = dp.Accountant(pcfg.reference_epsilon, pcfg.delta)

    def make_budget(
        a: dp.Accountant, counts: dict[str, float], kinds: set[str]
    ) -> tuple[Budget, float]:
        per = share_rho(a.rho_budget, pcfg.split, counts)
        # Threshold releases: one per numeric column (point masses), one per private category
        # column, and a second look at the categories of a table whose units own one row each
        # (see _second_look).
        n_thr = sum(
            1 + (cm.kind == "categorical" and plans[n].kind in SECOND_LOOK_KINDS)
            for n in order
            if plans[n].kind in kinds and n not in public
            for cm in colmodels[n].values()
            if cm.kind == "numeric"
            or (cm.kind == "categorical" and not _public_domain(cfg, model.tables[n], cm.name))
        )
        return Budget(a, per), a.delta_threshold / max(1, n_thr)

    budget_u, delta_u = make_budget(acc, counts_u, {"root", "child"})
    budget_r, delta_r = make_budget(ref_acc, counts_r, {"reference"})
    root = _unit_table(plans)
    log(f"profile: {len(order)} tables, unit table {root}, rho budget {acc.rho_budget:.4g}")

    # Materialize each table's measured rows once (temp tables), unless the source is a read-only
    # standby: then every aggregate re-reads the source (same results, slower).
    recovery, read_only = conn.execute(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
    ).fetchone()
    temps: Temps | None = None if (recovery or read_only) else Temps(conn, params)
    if temps is None:
        log("profile: source is read-only; aggregates re-read the source (no temp tables)")
    units = temps.units(model, plans[root]) if temps else None
    for n in order:
        if plans[n].kind == "child" and n not in pcfg.max_rows_per_unit_by_table:
            bounds_m[n] = contribution_bound(
                conn, model, plans[n], units, params, budget_u, pcfg.max_rows_per_unit
            )
    if bounds_m:
        log("profile: rows per unit bounds " + ", ".join(f"{t}={m}" for t, m in bounds_m.items()))
    pack_tables: dict[str, Any] = {}
    if public:
        log("profile: copied as declared public (no budget): " + ", ".join(sorted(public)))
    for n in order:
        t0 = time.monotonic()
        if n in public:
            pack_tables[n] = _public_table(conn, model, n, colmodels[n])
            ref_attr_of[n] = _public_attribute(pack_tables[n])
            continue
        ts = table_sql(model, plans, roles, n, m_of(n), ref_attr_of, units)
        if temps:
            ts = temps.materialize(ts)
        is_ref = plans[n].kind == "reference"
        pack_tables[n] = _profile_table(
            conn,
            model,
            plans,
            roles,
            cfg,
            ts,
            colmodels[n],
            budget_r if is_ref else budget_u,
            params,
            delta_r if is_ref else delta_u,
            pack_tables,
            ref_attr_of,
            temps,
            units,
        )
        if plans[n].kind == "reference":
            released = {
                c: len(e.get("values", []))
                for c, e in pack_tables[n]["columns"].items()
                if e.get("kind") == "categorical"
            }
            best = max(
                released.items(), key=lambda kv: (kv[1], kv[0] == ref_attr_of[n]), default=None
            )
            ref_attr_of[n] = best[0] if best and best[1] >= 2 else None
        log(f"profile: {n} measured in {time.monotonic() - t0:.1f}s")

    return {
        "format": PACK_FORMAT,
        "refresh_id": refresh_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": {"schema": model.schema},
        "privacy": {
            "unit_table": root,
            "holdout_fraction": pcfg.holdout_fraction,
            "rows_per_unit": {n: m_of(n) for n in order},
            "epsilon": acc.epsilon_spent(),
            "delta": pcfg.delta,
        },
        "schema": model.to_dict(),
        "roles": roles,
        "plan": {n: plans[n].to_dict() for n in order},
        "order": order,
        "tables": pack_tables,
        "ledger": acc.to_dict(),
        "reference_ledger": ref_acc.to_dict(),
        "seconds": round(time.monotonic() - started, 2),
    }


def _profile_table(
    conn,
    model: SchemaModel,
    plans,
    roles,
    cfg: SynthConfig,
    ts: TableSQL,
    cms: dict[str, ColumnModel],
    budget: Budget,
    params: dict,
    delta_each: float,
    done: dict[str, Any],
    ref_attr_of: dict[str, str | None],
    temps: Temps | None,
    units: str | None,
) -> dict[str, Any]:
    t, plan, m = ts.table, ts.plan, ts.m
    acc = budget.acc
    pcfg = cfg.privacy
    n = t.name
    out: dict[str, Any] = {
        "kind": plan.kind,
        "rows_per_unit": m,
        "columns": {},
        "pairs": [],
        "fanout": {},
    }
    sens = m  # L2 sensitivity of any histogram of this table's measured rows

    # ---- pass 1: domains (category values, numeric and datetime bounds) ----
    cat_cols = [
        c for c, cm in cms.items() if cm.kind == "categorical" and not _public_domain(cfg, t, c)
    ]
    # Where a unit owns one row, the released value counts are the column's one-way marginal
    # too: one release with both budgets (a lower threshold, so rarer values clear it) instead
    # of a threshold release and a second histogram of the same counts.
    merged = ts.m == 1
    scales: dict[str, float] = {}
    released = _released_values(
        conn,
        ts,
        params,
        cat_cols,
        budget,
        delta_each,
        "values",
        extra_rho=budget("one_way") if merged else 0.0,
        with_null=merged,
        scales=scales,
    )
    for c in cat_cols:
        counts = {v: x for v, x in released[c].items() if v != NULL_KEY}
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: pcfg.max_categories]
        cms[c].info = {"values": sorted(v for v, _ in top)}
        if merged:
            cms[c].released = released[c]
            cms[c].released_sigma = scales[c]
    for c, cm in cms.items():
        if cm.kind == "categorical" and (public := _public_domain(cfg, t, c)):
            cm.info = {"values": public, "schema_values": True}

    num_cols = [c for c, cm in cms.items() if cm.kind == "numeric"]
    dt_cols = [c for c, cm in cms.items() if cm.kind == "datetime"]
    need_bounds = [c for c in num_cols if f"{n}.{c}" not in cfg.bounds]
    dt_given = {c: cfg.bounds[f"{n}.{c}"] for c in dt_cols if f"{n}.{c}" in cfg.bounds}
    dt_measured = [c for c in dt_cols if c not in dt_given]
    exprs = [_log_bucket_sql(qi(c)) for c in need_bounds] + [_year_sql(qi(c)) for c in dt_measured]
    # Ranges count distinct units per bucket (a unit moves each bucket by at most 1: L2
    # sensitivity ceil(sqrt(m)) instead of m) and weigh more than other domain releases: a
    # column without a range cannot be generated at all.
    res = _one_way_counts(conn, ts, params, exprs)
    sens_range = math.ceil(math.sqrt(m)) if _per_unit(ts) else sens
    rho_range = budget("bounds", WEIGHT["range"])
    sigma = sens_range / math.sqrt(2 * rho_range) if rho_range else 0.0
    for i, c in enumerate(need_bounds):
        vec = np.zeros(2 * LOG_BUCKETS + 1, dtype=np.int64)
        for (b,), v in res[i].items():
            if b is not None:
                vec[int(b)] += v
        noisy = dp.noisy_counts(
            acc, f"{n}.{c}:bounds", vec, sens_range, rho_range, table=n, column=c
        )
        rng_ = _released_range(noisy, sigma)
        if rng_ is None:  # no signal: the schema's CHECK bounds if it states both, else none
            rules = check_rules(t, c)
            lo, hi = rules.get("min"), rules.get("max")
            found = "schema_check" if lo is not None and hi is not None else "unreleased"
            lo, hi = (float(lo), float(hi)) if found == "schema_check" else (0.0, 1.0)
            cms[c].info = {"low": lo, "high": hi, "bounds_from": found}
            continue
        lo, hi = _log_bucket_edges(rng_[0])[0], _log_bucket_edges(rng_[1])[1]
        if rng_[0] == LOG_BUCKETS:
            lo = 0.0
        if rng_[1] == LOG_BUCKETS:
            hi = 0.0
        if hi <= lo:
            hi = lo + 1.0
        cms[c].info = {
            "low": lo,
            "high": hi,
            "bounds_from": "dp_log_histogram",
            "rows_estimate": float(np.clip(noisy[rng_[0] : rng_[1] + 1], 0, None).sum()),
        }
        outer = _outer_range(noisy, rng_, sigma, check_rules(t, c), lo, hi)
        if outer != [lo, hi]:
            cms[c].info["outer"] = outer
    # Point masses before the refinement (every numeric column has their budget): a range is
    # refined on the rest of the column, so a spike holding 40 % of the rows (an unemployment
    # rate of 3.2) no longer narrows the range onto itself and leaves the body to the outer bins.
    atoms = _point_masses(conn, ts, params, num_cols, budget, delta_each, pcfg.max_point_masses)
    refine = [c for c in need_bounds if cms[c].info["bounds_from"] == "dp_log_histogram"]
    _refine_ranges(conn, ts, params, refine, cms, budget, sens_range, atoms)
    rho_marginal = budget("one_way")
    sigma_marginal = sens / math.sqrt(2 * rho_marginal) if rho_marginal else 0.0
    for c in num_cols:
        if f"{n}.{c}" in cfg.bounds:
            lo, hi = cfg.bounds[f"{n}.{c}"]
            cms[c].info = {"low": float(lo), "high": float(hi), "bounds_from": "config"}
        col = t.column(c)
        integer = col.base_type in INTEGER_TYPES
        info = cms[c].info
        info["integer"] = integer
        info["decimals"] = _decimals(col.pg_type)
        # The bins serve the rows the point masses do not hold.
        rows = info.pop("rows_estimate", None)
        if rows is not None:
            rows = max(0.0, rows - sum(atoms.get(c, {}).values()))
        nbins = numeric_resolution(rows, sigma_marginal, pcfg.numeric_bins)
        # A few integer values keep a bin each, however noisy: inside a wider bin they would be
        # drawn evenly (a column of years 2003-2009 in bins of two favoured some years).
        inner = numeric_edges(info["low"], info["high"], nbins, integer, pcfg.numeric_bins)
        info["edges"] = with_outer_bins(inner, info.pop("outer", None))
        # Which end bins are outer ones: the spec keeps them only where the marginal shows data.
        info["outer_bins"] = [info["edges"][0] < inner[0], info["edges"][-1] > inner[-1]]
    # Point masses are their own cells, generated exactly, inside the range or not (a year the
    # refinement of the rest left out); one bin per integer already holds those inside it.
    for c in num_cols:
        e, per_value = cms[c].info["edges"], _one_bin_per_value(cms[c].info)
        cms[c].info["atoms"] = [
            a for a in atoms.get(c, {}) if not (per_value and e[0] <= float(a) <= e[-1])
        ]
    for c in dt_cols:
        if c in dt_given:  # declared in bounds: public, no budget
            start, end = (date.fromisoformat(str(d)[:10]) for d in dt_given[c])
            rng_, expected = (0, 0), 0.0
        else:
            vec = np.zeros(YEARS, dtype=np.int64)
            for (b,), v in res[len(need_bounds) + dt_measured.index(c)].items():
                if b is not None:
                    vec[int(b)] += v
            noisy = dp.noisy_counts(
                acc, f"{n}.{c}:bounds", vec, sens_range, rho_range, table=n, column=c
            )
            rng_ = _released_range(noisy, sigma)
            if rng_ is None:  # no signal: the spec refuses unless the column is all NULL
                start, end, expected = date(2020, 1, 1), date(2020, 12, 31), 0.0
            else:
                start, end = date(YEAR0 + rng_[0], 1, 1), date(YEAR0 + rng_[1], 12, 31)
                expected = float(np.clip(noisy[rng_[0] : rng_[1] + 1], 0, None).sum())
        days = (end - start).days + 1
        sigma_t = sens / math.sqrt(2 * budget("temporal")) if budget("temporal") else 1.0
        cms[c].info = {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "date_only": t.column(c).base_type == "date",
            "bucket_days": day_bucket_width(expected, days, sigma_t),
            "range_found": rng_ is not None,
        }

    # ---- pass 2: one-way marginals over codes, temporal histograms, pairs (for selection) ----
    exprs: list[str] = []
    eidx: dict[str, int] = {}

    def add(key: str, sql: str) -> int:
        eidx[key] = len(exprs)
        exprs.append(sql)
        return eidx[key]

    modelled: list[tuple[str, str, int]] = []  # (key, label, domain)
    for c, cm in cms.items():
        q = qi(c)
        if cm.kind == "categorical":
            vals = cm.info["values"]
            arr = _text_array(vals)
            k = len(vals)
            add(
                c,
                f"CASE WHEN {q} IS NULL THEN {k + 1} ELSE coalesce(array_position({arr}, {q}::text) - 1, {k}) END",
            )
            cm.domain = k + 2  # values, other, null
            modelled.append((c, c, cm.domain))
        elif cm.kind == "numeric":
            inner = cm.info["edges"][1:-1]
            arr = (
                "ARRAY[" + ", ".join(repr(float(e)) for e in inner) + "]::float8[]"
                if inner
                else None
            )
            nb = len(cm.info["edges"]) - 1
            lo, hi = float(cm.info["edges"][0]), float(cm.info["edges"][-1])
            clip = f"least(greatest({q}::float8, {lo!r}), {hi!r})"
            k = len(cm.info["atoms"])
            code = f"{k} + width_bucket({clip}, {arr})" if arr else str(k)
            atom = ""
            if k:
                aarr = _text_array(cm.info["atoms"])
                atom = f"WHEN {q}::text = ANY({aarr}) THEN array_position({aarr}, {q}::text) - 1 "
            add(c, f"CASE WHEN {q} IS NULL THEN {k + nb} {atom}ELSE {code} END")
            cm.domain = k + nb + 1  # point masses, bins, null
            modelled.append((c, c, cm.domain))
        elif cm.kind == "boolean":
            add(c, f"CASE WHEN {q} IS NULL THEN 2 WHEN {q} THEN 1 ELSE 0 END")
            cm.domain = 3
            modelled.append((c, c, cm.domain))
    for fk in t.foreign_keys:
        alias = ts.ref_attrs.get(fk.name)
        if not alias:
            continue
        ref = fk.ref_table
        attr = ref_attr_of[ref]
        vals = done[ref]["columns"][attr]["values"]
        arr = _text_array(vals)
        k = len(vals)
        key = f"^{fk.columns[0]}"
        add(
            key,
            f"CASE WHEN {alias} IS NULL THEN {k + 1} ELSE coalesce(array_position({arr}, {alias}) - 1, {k}) END",
        )
        modelled.append((key, key, k + 2))
        out["columns"][key] = {
            "kind": "ref_attribute",
            "fk": fk.name,
            "ref_table": ref,
            "attribute": attr,
            "values": vals,
        }
    synth_cols = [
        c
        for c, cm in cms.items()
        if cm.kind == "synth" or (cm.kind == "fk" and t.fk_for(c) is not plan.parent_fk)
    ]
    for c in synth_cols:
        q = qi(c)
        if cms[c].role in LENGTH_ROLES:
            add(c, f"CASE WHEN {q} IS NULL THEN 0 ELSE least({TEXT_LENGTH_BINS - 1}, {q}) + 1 END")
        else:
            add(c, f"CASE WHEN {q} IS NULL THEN 1 ELSE 0 END")
    for c in dt_cols:
        q = qi(c)
        info = cms[c].info
        ndays = (date.fromisoformat(info["end"]) - date.fromisoformat(info["start"])).days + 1
        info["days"] = ndays
        w = info["bucket_days"]
        nb = -(-ndays // w)
        info["buckets"] = nb
        add(
            f"{c}:day",
            f"CASE WHEN {q} IS NULL THEN {nb} ELSE greatest(0, least({nb - 1}, "
            f"({q}::date - DATE {_lit(info['start'])}) / {w})) END",
        )
        if not info["date_only"]:
            add(
                f"{c}:how",
                f"CASE WHEN {q} IS NULL THEN NULL ELSE "
                f"(extract(isodow from {q})::int - 1) * 24 + extract(hour from {q})::int END",
            )
        if ts.parent_cols and plan.kind == "child":
            pc, alias = next(iter(ts.parent_cols.items()))
            info["after_parent_column"] = pc
            add(
                f"{c}:after",
                f"CASE WHEN {q} IS NULL OR {alias} IS NULL THEN 2 "
                f"WHEN {q} >= {alias} THEN 1 ELSE 0 END",
            )
    sets = [(i,) for i in range(len(exprs))]
    pair_keys = []
    for a in range(len(modelled)):
        for b in range(a + 1, len(modelled)):
            pair_keys.append((modelled[a][0], modelled[b][0]))
            sets.append((eidx[modelled[a][0]], eidx[modelled[b][0]]))
    res = grouping_counts(conn, ts.cte, params, exprs, sets) if exprs else []
    one = {key: res[i] for key, i in eidx.items()}

    # Row counts: noisy for the unit table and references; children follow from fan-out.
    if plan.kind in ("root", "reference"):
        true_rows = int(conn.execute(f"{ts.cte} SELECT count(*) FROM c", params).fetchone()[0])
        noisy = dp.noisy_counts(
            acc, f"{n}:rows", np.array([true_rows]), 1, budget("one_way", WEIGHT["rows"]), table=n
        )
        out["rows"] = max(1, int(noisy[0]))
        if plan.kind == "root":
            out["rows_total_estimate"] = int(round(out["rows"] / (1 - pcfg.holdout_fraction)))

    marg: dict[str, np.ndarray] = {}
    sig: dict[str, float] = {}
    for key, _, dom in modelled:
        cm = cms.get(key)
        if cm is not None and cm.released is not None:
            marg[key] = _released_marginal(cm.released, cm.info["values"], dom)
            sig[key] = cm.released_sigma
            continue
        vec = _vec(one[key], dom)
        noisy = dp.noisy_counts(
            acc, f"{n}.{key}:marginal", vec, sens, budget("one_way"), table=n, column=key
        )
        marg[key] = noisy
        sig[key] = acc.entries[-1].scale
    for c, cm in cms.items():
        if cm.kind in ("categorical", "numeric", "boolean"):
            out["columns"][c] = {
                "kind": cm.kind,
                "role": cm.role,
                **(cm.info or {}),
                "counts": marg[c].tolist(),
                "sigma": sig[c],
            }
    for key in [k for k, _, _ in modelled if k.startswith("^")]:
        out["columns"][key]["counts"] = marg[key].tolist()
        out["columns"][key]["sigma"] = sig[key]
    for c in synth_cols:
        cm = cms[c]
        if cm.role in LENGTH_ROLES:
            vec = _vec(one[c], TEXT_LENGTH_BINS + 1)
            noisy = dp.noisy_counts(
                acc,
                f"{n}.{c}:length",
                vec,
                sens,
                budget("one_way", WEIGHT["length"]),
                table=n,
                column=c,
            )
            out["columns"][c] = {
                "kind": "synth",
                "role": cm.role,
                # free text: words; binary: log2 length buckets (byte_length_bucket_sql)
                "null_and_words" if cm.role == "free_text" else "null_and_log2_bytes": (
                    noisy.tolist()
                ),
                "sigma": acc.entries[-1].scale,
            }
        else:
            vec = _vec(one[c], 2)
            noisy = dp.noisy_counts(
                acc,
                f"{n}.{c}:nulls",
                vec,
                sens,
                budget("one_way", WEIGHT["nulls"]),
                table=n,
                column=c,
            )
            kind = "fk" if cm.kind == "fk" else "synth"
            out["columns"][c] = {
                "kind": kind,
                "role": cm.role,
                "present_null": noisy.tolist(),
                "sigma": acc.entries[-1].scale,
            }
    for c, cm in cms.items():
        if c not in out["columns"]:
            out["columns"][c] = {"kind": cm.kind, "role": cm.role}
    for c in dt_cols:
        info = cms[c].info
        day = _vec(one[f"{c}:day"], info["buckets"] + 1)
        noisy_day = dp.noisy_counts(
            acc, f"{n}.{c}:day", day, sens, budget("temporal"), table=n, column=c
        )
        col = {
            "kind": "datetime",
            "role": "datetime",
            **info,
            "day_counts": noisy_day[:-1].tolist(),
            "null": int(noisy_day[-1]),
            "sigma": acc.entries[-1].scale,
        }
        if not info["date_only"]:
            how = _vec(one[f"{c}:how"], HOW)
            col["how_counts"] = dp.noisy_counts(
                acc,
                f"{n}.{c}:hour_of_week",
                how,
                sens,
                budget("temporal", WEIGHT["how"]),
                table=n,
                column=c,
            ).tolist()
            col["how_sigma"] = acc.entries[-1].scale
        if f"{c}:after" in one:
            after = _vec(one[f"{c}:after"], 3)
            col["after_counts"] = dp.noisy_counts(
                acc,
                f"{n}.{c}:after_parent",
                after,
                sens,
                budget("temporal", WEIGHT["after"]),
                table=n,
                column=c,
            ).tolist()
        out["columns"][c] = col

    # ---- MST: choose pairs with the exponential mechanism, then measure them ----
    if len(modelled) > 1:
        # Pairs are measured on coarser codes where the table is too small for the fine ones to
        # clear the noise (post-processing of the released one-way counts: spends nothing).
        rho_pair = budget("pairs")
        sigma_pair = sens / math.sqrt(2 * rho_pair) if rho_pair else 0.0
        n_est = float(np.median([max(0.0, float(marg[k].sum())) for k, _, _ in modelled]))
        groups = {
            k: coarse_groups(
                marg[k],
                pair_resolution(n_est, sigma_pair),
                numeric=kind == "numeric",
                order=value_order(cms[k].info["atoms"], cms[k].info["edges"])
                if kind == "numeric"
                else None,
            )
            for k, kind in ((k, cms[k].kind if k in cms else "categorical") for k, _, _ in modelled)
        }
        # AIM's quality: how far the pair is from the independence its released one-way
        # marginals imply, minus the L1 error its own noise would add; a pair that cannot beat
        # its noise scores < 0. The independent estimate is public (post-processing of released
        # counts), so one unit moves the score by at most its row bound: selection noise
        # scales with ``sens``, not with the 6 x ``sens`` of an independence taken from the
        # pair's own sums. What the one-ways' noise adds to the distance under independence
        # (at most the L1 of their noise) is a public constant, subtracted like the penalty.
        grouped = {k: _group_sums(marg[k], groups[k], sig[k]) for k, _, _ in modelled}
        scores = {}
        for i, (a, b) in enumerate(pair_keys):
            ga, gb = groups[a], groups[b]
            joint = np.zeros((max(ga) + 1, max(gb) + 1), dtype=np.float64)
            for (x, y), v in res[len(exprs) + i].items():
                joint[ga[int(x)], gb[int(y)]] += v
            (pa, ea), (pb, eb) = grouped[a], grouped[b]
            indep = np.outer(pa, pb) * n_est
            penalty = math.sqrt(2 / math.pi) * sigma_pair * joint.size + ea + eb
            scores[(a, b)] = (float(np.abs(joint - indep).sum()) - penalty, joint)
        comp = {k: k for k, _, _ in modelled}

        def find(x: str) -> str:
            while comp[x] != x:
                comp[x] = comp[comp[x]]
                x = comp[x]
            return x

        # The last candidate is "stop": once no pair is likely to beat its noise, the budget
        # left for selecting and measuring pairs re-measures the one-way marginals. Its score is
        # 0 plus the selection's noise scale x ln(candidates), so that it holds its own against
        # the largest of many noisy scores below 0 (a public constant: spends nothing).
        chosen = []
        steps = len(modelled) - 1
        rho_select = budget("select")
        scale_select = sens / math.sqrt(2 * rho_select) if rho_select else 0.0
        for _ in range(steps):
            cands = [p for p in pair_keys if find(p[0]) != find(p[1])]
            stop = scale_select * math.log(len(cands))
            idx = dp.select(
                acc,
                f"{n}:select_pair",
                np.array([scores[p][0] for p in cands] + [stop]),
                sens,
                rho_select,
                table=n,
                candidates=len(cands) + 1,
            )
            if idx == len(cands):
                break
            a, b = cands[idx]
            comp[find(a)] = find(b)
            chosen.append((a, b))
        unused = (steps - len(chosen)) * budget("pairs") + max(0, steps - len(chosen) - 1) * budget(
            "select"
        )
        for a, b in chosen:
            joint = scores[(a, b)][1].astype(np.int64)
            noisy = dp.noisy_counts(
                acc, f"{n}.{a}x{b}:pair", joint, sens, budget("pairs"), table=n, pair=[a, b]
            )
            out["pairs"].append(
                {
                    "a": a,
                    "b": b,
                    "counts": noisy.tolist(),
                    "sigma": acc.entries[-1].scale,
                    "groups": [groups[a], groups[b]],
                }
            )
        if unused > 0:
            rho_each = unused / len(modelled)
            again = (
                [k for k, _, _ in modelled if k in cms and cms[k].released is not None]
                if plan.kind in SECOND_LOOK_KINDS
                else []
            )
            if again:
                _second_look(
                    conn,
                    ts,
                    params,
                    again,
                    out,
                    groups,
                    budget,
                    rho_each,
                    delta_each,
                    pcfg.max_categories,
                )
            rest = [m for m in modelled if m[0] not in again]
            _remeasure_marginals(acc, n, rest, one, out, cms, sens, rho_each)

    # ---- fan-out: children per parent for the primary parent and every reference FK ----
    for fk in t.foreign_keys:
        if fk.ref_table == n:
            continue
        is_parent = fk is plan.parent_fk
        if not (is_parent or plans[fk.ref_table].kind == "reference"):
            continue
        bins = fanout_bins(pcfg.max_fanout)
        unique_fk = any(set(s) == {fk.columns[0]} for s in t.unique_sets)
        if is_parent:
            parent_plan = plans[fk.ref_table]
            pm = (
                1
                if parent_plan.kind == "root"
                else fanout_parents_bound(
                    min(pcfg.fanout_parents_per_unit, pcfg.rows_per_unit(fk.ref_table)),
                    _released_units(done, plans),
                    budget("fanout"),
                )
            )
            pts = (
                temps.subset(fk.ref_table, pm)
                if temps and temps.has(fk.ref_table)
                else table_sql(model, plans, roles, fk.ref_table, pm, ref_attr_of, units)
            )
            child_counts = f"SELECT {qi(fk.columns[0])} AS k, count(*) AS n FROM {qi(model.schema)}.{qi(n)} GROUP BY 1"
            fsens = pm
        else:
            # Popularity of reference rows from one row per unit: one unit moves one reference
            # row between two bins (L2 sensitivity sqrt 2, rounded up to 2) instead of 2m.
            first = " WHERE __rn <= 1" if plan.kind == "child" else ""
            child_counts = (
                f"SELECT {qi(fk.columns[0])} AS k, count(*) AS n FROM c{first} GROUP BY 1"
            )
            fsens = 2
        bucket = _fanout_bucket_sql("coalesce(cc.n, 0)", bins, pcfg.max_fanout)
        parent_key = qi(fk.ref_columns[0])
        if is_parent:
            sql = (
                f"{pts.cte} SELECT {bucket} AS b, count(*) FROM c LEFT JOIN ({child_counts}) cc "
                f"ON cc.k = c.{parent_key} GROUP BY 1"
            )
        else:
            sql = (
                f"{ts.cte}, cc AS ({child_counts}) SELECT {bucket} AS b, count(*) FROM "
                f"{qi(model.schema)}.{qi(fk.ref_table)} p LEFT JOIN cc ON cc.k = p.{parent_key} GROUP BY 1"
            )
        vec = np.zeros(len(bins), dtype=np.int64)
        for b, v in conn.execute(sql, params):
            vec[int(b)] += int(v)
        noisy = dp.noisy_counts(
            acc, f"{n}.{fk.name}:fanout", vec, fsens, budget("fanout"), table=n, fk=fk.name
        )
        out["fanout"][fk.name] = {
            "parent": fk.ref_table,
            "column": fk.columns[0],
            "primary": is_parent,
            "bins": bins,
            "counts": noisy.tolist(),
            "max": 1 if unique_fk else pcfg.max_fanout,
            "sigma": acc.entries[-1].scale,
            "parents_per_unit": fsens if is_parent else None,
        }
    return out


# Rows per numeric bin, in noise deviations of the one-way marginal: fewer rows per bin and
# the noise outweighs the resolution, more and the shape inside a bin (drawn uniformly) does.
# Simulated on 9 real columns of 1,200-2,200 rows at sigma 22.5 and 45 (decile scores): 12-16
# bins were best at 22.5 and 6-12 at 45, where a fixed 24 lost 10-80 points.
BIN_SNR = 4.5
MIN_NUMERIC_BINS = 6
MAX_NUMERIC_BINS = 64


def numeric_resolution(rows: float | None, sigma: float, fallback: int) -> int:
    """Bins of a numeric column's binned rows: as many as hold ``BIN_SNR`` noise deviations
    each, within [``MIN_NUMERIC_BINS``, ``MAX_NUMERIC_BINS``] (a 1,200-row table at sigma 22.5
    gets 12, a 27k-row one 64); ``privacy.numeric_bins`` where the rows are not estimated
    (bounds declared in the config) or it asks for more than the cap."""
    if sigma <= 0 or rows is None:
        return fallback
    fit = int(min(MAX_NUMERIC_BINS, max(MIN_NUMERIC_BINS, rows / (BIN_SNR * sigma))))
    return max(fit, fallback) if fallback > MAX_NUMERIC_BINS else fit


# Rows per cell of a measured pair, in noise standard deviations, below which codes are pooled.
PAIR_CELL_SNR = 2.0


def pair_resolution(rows: float, sigma: float) -> int:
    """Codes per column in a pair measurement: the largest count ``g`` such that a g x g table of
    ``rows`` rows holds ``PAIR_CELL_SNR`` noise deviations per cell on average."""
    if sigma <= 0:
        return 1 << 16
    return max(2, int(math.sqrt(max(rows, 0.0) / (PAIR_CELL_SNR * sigma))))


def _group_sums(noisy: np.ndarray, groups: list[int], sigma: float) -> tuple[np.ndarray, float]:
    """A column's released one-way shares per coarse group, and the expected L1 error their
    noise puts into an independent estimate of a pair (sqrt(2/pi) sigma per code, summed)."""
    g = np.asarray(groups, dtype=np.int64)
    v = np.bincount(g, weights=np.clip(np.asarray(noisy, dtype=np.float64), 0, None))
    share = v / v.sum() if v.sum() > 0 else np.full(v.size, 1.0 / max(1, v.size))
    err = math.sqrt(2 / math.pi) * sigma * float(np.sqrt(np.bincount(g)).sum())
    return share, err


def coarse_groups(
    noisy: np.ndarray, g: int, numeric: bool, order: np.ndarray | None = None
) -> list[int]:
    """Map each code of a column to one of at most ``g`` groups, from its released (noisy)
    one-way counts. Numeric codes are cut into runs of about equal mass in ``order`` (the
    codes by value: point masses among the bins, null last; code order when not given), so
    neighbouring values pool; category codes keep their ``g - 1`` largest values apart and
    pool the rest."""
    v = np.clip(np.asarray(noisy, dtype=np.float64), 0, None)
    k = v.size
    if k <= g:
        return list(range(k))
    if numeric and order is not None and len(order) == k:
        runs = np.asarray(coarse_groups(v[order], g, numeric=True), dtype=np.int64)
        out = np.empty(k, dtype=np.int64)
        out[order] = runs
        return out.tolist()
    if not numeric:
        order = np.argsort(-v, kind="stable")
        out = np.full(k, g - 1, dtype=np.int64)
        out[order[: g - 1]] = np.arange(g - 1)
        return out.tolist()
    total = v.sum()
    if total <= 0:
        return (np.arange(k) * g // k).tolist()
    before = np.cumsum(v) - v  # mass before each code
    out = np.minimum((before / total * g).astype(np.int64), g - 1)
    _, dense = np.unique(out, return_inverse=True)
    return dense.ravel().tolist()


REFINE_BUCKETS = 16
REFINE_ROUNDS = 2


def _significant_span(
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


# Share of a column's rows that a refined range may leave out (piled on its bounds), and the
# noise deviations of the pooled outside counts allowed above it.
REFINE_LOSS = 0.02
REFINE_SLACK = 1.0


def _conclusive_span(v: np.ndarray, span: tuple[int, int], sigma: float) -> bool:
    """Whether the noisy counts are consistent with the buckets outside ``span`` holding at most
    ``REFINE_LOSS`` of what lies inside: False when their pooled sum exceeds that by more than
    ``REFINE_SLACK`` sigma of its noise (the data spreads beyond the span).

    At 2 sigma the test could not tell 40 % of 1,200 rows outside from none, and a column of
    many repeated values (unemployment rates 1.8 ... 10.6, 12 % of them 3.1) narrowed onto one
    of them, leaving three quarters of its rows to the outer bins, drawn evenly. At 1 sigma a
    range whose outside is pure noise is kept about one time in seven, and the second round
    looks again (:func:`_refine_ranges`)."""
    v = np.asarray(v, dtype=np.float64)
    inside = float(v[span[0] : span[1] + 1].sum())
    n_out = v.size - (span[1] - span[0] + 1)
    outside = float(v.sum()) - inside
    return outside - REFINE_SLACK * sigma * math.sqrt(max(n_out, 1)) <= REFINE_LOSS * inside


def _refine_ranges(
    conn,
    ts: TableSQL,
    params: dict,
    cols: list[str],
    cms: dict[str, ColumnModel],
    budget: Budget,
    sens: int,
    atoms: dict[str, dict[str, int]],
) -> None:
    """Narrow each numeric range found on powers of two, in two rounds: a DP histogram on 16
    sub-buckets of the range, trimmed to its significant span, then the same inside the result.
    Years 2003-2009 sit in [1024, 2048); without this they would be drawn over 1990-2048. Each
    round spends half of the ``refine`` weight. Rows holding a released point mass are left
    out: they are generated exactly, and the bins serve the rest.

    A range the first round could not narrow is looked at again with fresh noise in the second
    (its budget is planned either way): on 1,500 rows of years, a tail of pure noise walked the
    first round's span out about one time in eight, and the years were then drawn over
    1024-2048."""
    for level in range(REFINE_ROUNDS):
        _refine_once(conn, ts, params, cols, cms, budget, sens, level, atoms)


def _refine_once(
    conn,
    ts: TableSQL,
    params: dict,
    cols: list[str],
    cms: dict[str, ColumnModel],
    budget: Budget,
    sens: int,
    level: int,
    atoms: dict[str, dict[str, int]],
) -> None:
    """One refinement round: each range narrowed to the span its noisy histogram shows."""
    if not cols:
        return
    edges = {
        c: numeric_edges(cms[c].info["low"], cms[c].info["high"], REFINE_BUCKETS, False)
        for c in cols
    }
    exprs = []
    for c in cols:
        inner = ", ".join(repr(float(e)) for e in edges[c][1:-1])
        lo, hi = float(edges[c][0]), float(edges[c][-1])
        # Rows outside the range are left out, not clipped: clipped, they pile into the end
        # buckets as a peak that the span would then narrow onto.
        x = f"{qi(c)}::float8"
        rest = f" AND NOT ({qi(c)}::text = ANY({_text_array(atoms[c])}))" if atoms.get(c) else ""
        exprs.append(
            f"CASE WHEN {x} >= {lo!r} AND {x} <= {hi!r}{rest} "
            f"THEN width_bucket({x}, ARRAY[{inner}]::float8[]) END"
        )
    res = _one_way_counts(conn, ts, params, exprs)
    rho = budget("bounds", WEIGHT["refine"] / REFINE_ROUNDS)
    sigma = sens / math.sqrt(2 * rho)
    n = ts.table.name
    for c, counts in zip(cols, res, strict=True):
        vec = np.zeros(REFINE_BUCKETS, dtype=np.int64)
        for (b,), v in counts.items():
            if b is not None:
                vec[min(int(b), REFINE_BUCKETS - 1)] += v
        noisy = dp.noisy_counts(
            budget.acc, f"{n}.{c}:range_refine_{level}", vec, sens, rho, table=n, column=c
        )
        span = _significant_span(noisy, sigma)
        if span is None or span[1] - span[0] + 1 > REFINE_BUCKETS // 4:
            continue  # no signal, or the data fills the range: keep it (never clip a body)
        if not _conclusive_span(noisy, span, sigma):
            continue  # too noisy to tell that the rest of the range is empty: keep it
        lo, hi = float(edges[c][span[0]]), float(edges[c][span[1] + 1])
        if ts.table.column(c).base_type in INTEGER_TYPES:
            lo, hi = float(math.floor(lo)), float(math.ceil(hi))
        if hi > lo:
            info = cms[c].info
            # The outer bins keep what a wrong narrowing would drop (rows, not resolution):
            # out to the range it was narrowed from. Capping them nearer lost a column whose
            # refinement locked onto a spike (a ratio narrowed to [0.254, 0.261]).
            info.setdefault("outer", [info["low"], info["high"]])
            info.update(low=lo, high=hi, bounds_from="dp_log_histogram_refined")


def _one_bin_per_value(info: dict[str, Any]) -> bool:
    return bool(info["integer"]) and bool(np.allclose(np.diff(info["edges"]), 1.0))


def _point_masses(
    conn,
    ts: TableSQL,
    params: dict,
    cols: list[str],
    budget: Budget,
    delta_each: float,
    limit: int,
) -> dict[str, dict[str, int]]:
    """Exact values (with their noisy counts) that hold a large share of a numeric column (0 for
    80 % of rows, a price of 9.99, 40 hours a week), released like category values: a value
    appears only if its noisy count clears the DP threshold, so a value held by one unit is
    released with probability below its delta share. They are generated exactly; the rest of
    the column stays binned."""
    released = _released_values(conn, ts, params, cols, budget, delta_each, "point_masses")
    out: dict[str, dict[str, int]] = {}
    for c in cols:
        top = sorted(released[c].items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        out[c] = {v: x for v, x in sorted(top, key=lambda kv: float(kv[0]))}
    return out


def _released_values(
    conn,
    ts: TableSQL,
    params: dict,
    cols: list[str],
    budget: Budget,
    delta_each: float,
    what: str,
    extra_rho: float = 0.0,
    with_null: bool = False,
    scales: dict[str, float] | None = None,
    rho: float | None = None,
) -> dict[str, dict[str, int]]:
    """Values of each column that clear the DP threshold, with their noisy counts.

    Counted as distinct units per value where a unit owns several rows (a unit moves each
    value's count by at most 1: L2 sensitivity sqrt(m) instead of m), so values shared by many
    units are found in small child tables too. Every value goes to the mechanism: a pre-filter
    on true counts would change what one unit can move, outside OpenDP's accounting.
    """
    if not cols:
        return {}
    res = _one_way_counts(conn, ts, params, [f"{qi(c)}::text" for c in cols])
    n = ts.table.name
    out: dict[str, dict[str, int]] = {}
    for c, counts in zip(cols, res, strict=True):
        vc = {k[0]: v for k, v in counts.items() if k[0] is not None}
        if with_null and (None,) in counts:
            vc[NULL_KEY] = counts[(None,)]
        out[c] = dp.noisy_category_counts(
            budget.acc,
            f"{n}.{c}:{what}",
            vc,
            ts.m,
            rho if rho is not None else budget("bounds", WEIGHT.get(what, 1.0)) + extra_rho,
            delta_each,
            distinct_units=_per_unit(ts),
            table=n,
            column=c,
        )
        if scales is not None:
            scales[c] = budget.acc.entries[-1].scale
    return out


# Units per (noise scale x parents per unit) below which one more parent per unit adds more noise
# than signal to a fan-out histogram. Simulated on the demo's shape at 1,500-40,000 units: 1 was
# best at 5,000, 2 at 12,000, 4 at 40,000; at epsilon = 1 this constant gives 1 parent below
# ~7,500 units, 2 up to ~11,000, 3 up to ~15,000, then the configured 4.
FANOUT_UNITS_PER_NOISE = 150.0


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


def _unit_table(plans: dict[str, TablePlan]) -> str:
    return next(n for n, p in plans.items() if p.kind == "root")


def _released_units(done: dict[str, Any], plans: dict[str, TablePlan]) -> int | None:
    return done.get(_unit_table(plans), {}).get("rows")


def _fanout_bucket_sql(x: str, bins: list[int], cap: int) -> str:
    return (
        f"CASE WHEN {x} < {FANOUT_EXACT} THEN {x} ELSE least({len(bins) - 1}, "
        f"{FANOUT_EXACT} + floor(ln(least({x}, {cap - 1})::float8 / {FANOUT_EXACT}) / ln(2.0))::int) END"
    )


# Tables whose category releases are their one-way marginals (a unit owns one row): where pair
# selection stops early, the budget left gives every category column a second threshold release.
SECOND_LOOK_KINDS = ("root", "reference")


def _second_look(
    conn,
    ts: TableSQL,
    params: dict,
    cols: list[str],
    out: dict[str, Any],
    groups: dict[str, list[int]],
    budget: Budget,
    rho: float,
    delta_each: float,
    limit: int,
) -> None:
    """A second, independent threshold release of each category column with the budget pair
    selection did not need: a value either release clears is generated, and a value both clear
    keeps the inverse-variance average of its two counts.

    On 1,200 rows at epsilon 1 the threshold sits near 120 rows, so a category of 10-15 % (a
    yes/no column's minority, a race code) was dropped in about one refresh in ten per column,
    and with it a tenth of the column's rows (1-way scores of 0.82-0.88 where 0.97 was in
    reach). Two looks drop it about one time in a hundred. The pairs were measured on codes
    where every unreleased value was "other": a value found now joins the group of "other"
    there, and shares that group's pair counts in proportion to its own marginal (as every code
    of a pooled group does)."""
    scales: dict[str, float] = {}
    released = _released_values(
        conn,
        ts,
        params,
        cols,
        budget,
        delta_each,
        "values_again",
        with_null=True,
        scales=scales,
        rho=rho,
    )
    for c in cols:
        k = len(out["columns"][c]["values"])
        if merge_looks(out["columns"][c], released[c], scales[c], limit):
            g = groups[c]  # new codes sit between the old values and "other": in its group
            groups[c] = g[:k] + [g[k]] * (len(out["columns"][c]["values"]) - k) + g[k:]
            for p in out["pairs"]:
                if p["a"] == c:
                    p["groups"][0] = groups[c]
                if p["b"] == c:
                    p["groups"][1] = groups[c]


def merge_looks(entry: dict[str, Any], got: dict[str, int], scale: float, limit: int) -> list[str]:
    """Fold a second threshold release (``got`` at noise ``scale``) into a category column's
    pack entry (values, then "other", then null): values both releases hold get the
    inverse-variance average, values only the second holds are appended (up to ``limit``
    values in all), and the entry's sigma becomes the combined one. Returns the new values."""
    vals, first = list(entry["values"]), list(entry["counts"])
    k = len(vals)
    w1, w2 = 1.0 / float(entry["sigma"]) ** 2, 1.0 / scale**2
    known = set(vals)
    new = sorted((v for v in got if v != NULL_KEY and v not in known), key=lambda v: -got[v])
    new = sorted(new[: max(0, limit - k)])
    old = [*zip(vals, first[:k], strict=True), (NULL_KEY, first[k + 1])]
    avg = {v: (w1 * x + w2 * got[v]) / (w1 + w2) if v in got else x for v, x in old}
    counts = [avg[v] for v in vals] + [float(got[v]) for v in new] + [first[k], avg[NULL_KEY]]
    entry.update(values=vals + new, counts=counts, sigma=1.0 / math.sqrt(w1 + w2))
    return new


def _remeasure_marginals(
    acc: dp.Accountant,
    n: str,
    modelled: list[tuple[str, str, int]],
    one: dict[str, dict[tuple, int]],
    out: dict[str, Any],
    cms: dict[str, ColumnModel],
    sens: int,
    rho: float,
) -> None:
    """Measure every modelled one-way marginal again with ``rho`` and keep the inverse-variance
    average of both measurements (the budget pair selection did not need)."""
    for key, _, dom in modelled:
        entry = out["columns"][key]
        noisy = dp.noisy_counts(
            acc, f"{n}.{key}:marginal_2", _vec(one[key], dom), sens, rho, table=n, column=key
        )
        s1, s2 = float(entry["sigma"]), acc.entries[-1].scale
        w1, w2 = 1 / s1**2, 1 / s2**2
        first = np.asarray(entry["counts"], dtype=np.float64)
        both = (w1 * first + w2 * noisy) / (w1 + w2)
        cm = cms.get(key)
        if cm is not None and cm.released is not None:
            both[dom - 2] = 0.0  # values under the threshold stay unknown (never generated)
        entry["counts"] = both.tolist()
        entry["sigma"] = 1 / math.sqrt(w1 + w2)


NULL_KEY = "\x00null"  # NULL's key in a threshold release (PostgreSQL text never holds NUL)


def _released_marginal(released: dict[str, int], values: list[str], dom: int) -> np.ndarray:
    """Marginal codes (values, other, null) from a threshold release: values below the
    threshold are unknown, so they add nothing (not even to "other", which is never generated)."""
    vec = np.zeros(dom, dtype=np.int64)
    pos = {v: i for i, v in enumerate(values)}
    for v, x in released.items():
        if v == NULL_KEY:
            vec[dom - 1] += x
        else:
            vec[pos.get(v, dom - 2)] += x
    return vec


def _decimals(pg_type: str) -> int | None:
    if pg_type.startswith("numeric(") and "," in pg_type:
        return int(pg_type.split(",")[1].rstrip(")"))
    if pg_type == "money":
        return 2
    return None
