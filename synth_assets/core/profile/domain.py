"""Values released by threshold: category values and numeric point masses.

A value is data too: it appears in the metrics pack only if its noisy count clears a threshold
set so that a value held by one unit is released with probability below its delta share.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from synth_assets.core import dp
from synth_assets.core.kinds import ColumnKind, TableKind
from synth_assets.core.roles import qi

from .budget import WEIGHT
from .context import TableRun
from .public import public_domain
from .sql import per_unit

NULL_KEY = "\x00null"  # NULL's key in a threshold release (PostgreSQL text never holds NUL)

# Tables whose category releases are their one-way marginals (a unit owns one row): where pair
# selection stops early, the budget left gives every category column a second threshold release.
SECOND_LOOK_KINDS = (TableKind.ROOT, TableKind.REFERENCE)


def released_values(
    run: TableRun,
    cols: list[str],
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
    res = run.counts([f"{qi(c)}::text" for c in cols])
    n, budget = run.name, run.budget
    out: dict[str, dict[str, int]] = {}
    for c, counts in zip(cols, res, strict=True):
        vc = {k[0]: v for k, v in counts.items() if k[0] is not None}
        if with_null and (None,) in counts:
            vc[NULL_KEY] = counts[(None,)]
        out[c] = dp.noisy_category_counts(
            budget.acc,
            f"{n}.{c}:{what}",
            vc,
            run.ts.m,
            rho if rho is not None else budget("bounds", WEIGHT.get(what, 1.0)) + extra_rho,
            run.delta_each,
            distinct_units=per_unit(run.ts),
            table=n,
            column=c,
        )
        if scales is not None:
            scales[c] = budget.acc.entries[-1].scale
    return out


def release_categories(run: TableRun) -> None:
    """Each category column's domain: its public values, else the values that clear the
    threshold (the ``max_categories`` most frequent of them)."""
    t, cfg = run.table, run.src.cfg
    cat_cols = [c for c in run.cols(ColumnKind.CATEGORICAL) if not public_domain(cfg, t, c)]
    # Where a unit owns one row, the released value counts are the column's one-way marginal
    # too: one release with both budgets (a lower threshold, so rarer values clear it) instead
    # of a threshold release and a second histogram of the same counts.
    merged = run.ts.m == 1
    scales: dict[str, float] = {}
    released = released_values(
        run,
        cat_cols,
        "values",
        extra_rho=run.budget("one_way") if merged else 0.0,
        with_null=merged,
        scales=scales,
    )
    rescue_empty(run, cat_cols, released, scales, with_null=merged)
    for c in cat_cols:
        counts = {v: x for v, x in released[c].items() if v != NULL_KEY}
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: run.pcfg.max_categories]
        run.cms[c].info = {"values": sorted(v for v, _ in top)}
        if merged:
            run.cms[c].released = released[c]
            run.cms[c].released_sigma = scales[c]
        elif inherited := inherited_values(run, c):
            ref, values = inherited
            own = [v for v, _ in top]
            seen = set(own)
            more = [v for v in values if v not in seen]
            run.cms[c].info = {
                "values": sorted((own + more)[: run.pcfg.max_categories]),
                "values_from": ref,
            }
    for c, cm in run.cms.items():
        if cm.kind == ColumnKind.CATEGORICAL and (public := public_domain(cfg, t, c)):
            cm.info = {"values": public, "schema_values": True}


def rescue_empty(
    run: TableRun,
    cols: list[str],
    released: dict[str, dict[str, int]],
    scales: dict[str, float],
    with_null: bool,
) -> None:
    """A second threshold release, with the table's reserve (``run.reserve``) shared among
    them, of the category columns whose first release found no value: without one the column
    cannot be generated and the refresh stops. The second release replaces the first (its
    null count too: a first look that found nothing holds nothing else worth averaging)."""
    empty = [
        c
        for c in cols
        if not any(v != NULL_KEY for v in released[c])
        and (with_null or inherited_values(run, c) is None)  # a copied code takes its values
    ]
    if not empty or run.reserve <= 0:
        return
    # A numeric column may need a rescue of its range too (ranges.rescue_ranges): one share
    # more is kept for them, if the table has any to range.
    ranged = [
        c for c in run.cols(ColumnKind.NUMERIC) if f"{run.name}.{c}" not in run.src.cfg.bounds
    ]
    spend = run.reserve * len(empty) / (len(empty) + (1 if ranged else 0))
    rho, run.reserve = spend / len(empty), run.reserve - spend
    again: dict[str, float] = {}
    found = released_values(run, empty, "values_rescue", with_null=with_null, scales=again, rho=rho)
    for c in empty:
        released[c], scales[c] = found[c], again[c]
        run.cms[c].rescued = True


def inherited_values(run: TableRun, col: str) -> tuple[str, list[str]] | None:
    """The values of the same-named category column of a table this one references, already
    released (or public): ``(that table, its values)``, else None.

    A child table's category value is counted in distinct units, at a threshold of thousands
    of units in a wide schema at epsilon 1 (2,173 on lahman's batting), so a team code that
    batting, fielding and salaries all copy from ``teams`` was never released there. The
    referenced table's release of it is DP output (or public), and a list of values fixed in
    advance needs no threshold: the child's one-way marginal counts rows over it, and a value
    outside it goes to "other", which is never generated. Used only where the one-way
    marginal is measured over the codes (not where the threshold release is the marginal)."""
    t = run.table
    for fk in t.foreign_keys:
        entry = run.src.tables.get(fk.ref_table, {}).get("columns", {}).get(col)
        ref = run.src.model.tables.get(fk.ref_table)
        if not entry or not entry.get("values") or ref is None:
            continue
        if col not in {c.name for c in ref.columns}:
            continue
        if ref.column(col).base_type != t.column(col).base_type:
            continue
        return f"{fk.ref_table}.{col}", [str(v) for v in entry["values"]]
    return None


def point_masses(
    run: TableRun, cols: list[str], scales: dict[str, float] | None = None
) -> dict[str, dict[str, int]]:
    """Exact values (with their noisy counts) that hold a large share of a numeric column (0 for
    80 % of rows, a price of 9.99, 40 hours a week), released like category values: a value
    appears only if its noisy count clears the DP threshold, so a value held by one unit is
    released with probability below its delta share. They are generated exactly; the rest of
    the column stays binned. ``scales`` receives each release's noise deviation."""
    released = released_values(run, cols, "point_masses", scales=scales)
    limit = run.pcfg.max_point_masses
    out: dict[str, dict[str, int]] = {}
    for c in cols:
        top = sorted(released[c].items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        out[c] = {v: x for v, x in sorted(top, key=lambda kv: float(kv[0]))}
    return out


def released_marginal(released: dict[str, int], values: list[str], dom: int) -> np.ndarray:
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


def second_look(run: TableRun, cols: list[str], groups: dict[str, list[int]], rho: float) -> None:
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
    released = released_values(run, cols, "values_again", with_null=True, scales=scales, rho=rho)
    out = run.out
    for c in cols:
        k = len(out["columns"][c]["values"])
        if merge_looks(out["columns"][c], released[c], scales[c], run.pcfg.max_categories):
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
