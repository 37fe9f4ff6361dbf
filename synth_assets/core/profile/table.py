"""One table's measurement, in the order of the algorithm: release the domains, then measure
the one-way marginals, select and measure the tree's pairs, and the fan-out."""

from __future__ import annotations

from typing import Any

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
from .pairs import measure_tree
from .ranges import datetime_ranges, numeric_ranges, range_counts, refine_ranges
from .sql import TableSQL


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
    atoms = point_masses(run, run.cols("numeric"), scales)
    refine_ranges(run, found.sens, atoms, scales)
    numeric_bins(run, atoms)
    datetime_ranges(run, found)


def profile_table(
    src: Source, ts: TableSQL, cms: dict[str, ColumnModel], budget: Budget, delta_each: float
) -> dict[str, Any]:
    """The metrics pack entry of one table, from its measured rows ``ts``."""
    out = {"kind": ts.plan.kind, "rows_per_unit": ts.m, "columns": {}, "pairs": [], "fanout": {}}
    run = TableRun(src, ts, cms, budget, delta_each, out)
    release_domains(run)
    # Pass 2: one scan counts every code and every pair of modelled codes (for selection).
    codes = table_codes(run)
    one, pairs = count_codes(run, codes)
    measure_rows(run)
    marg, sig = one_way_marginals(run, codes, one)
    synth_measurements(run, codes, one)
    temporal_histograms(run, one)
    if len(codes.modelled) > 1:
        measure_tree(run, codes, one, pairs, marg, sig)
    measure_fanouts(run)
    return out
