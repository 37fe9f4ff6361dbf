"""The profile: differentially private aggregates of the source, computed by SQL pushdown.

Every number that leaves this package went through an OpenDP mechanism in ``dp.py`` and is
recorded in the ledger. Raw rows never leave PostgreSQL: the queries return counts only
(value counts of categorical columns are thresholded before release).

The algorithm, one module per step (MST, McKenna et al. 2021, with AIM's pair quality):

- ``run``: :func:`profile_source` counts every measurement to split the budget (``shares``),
  materializes each table's measured rows (``sql``, ``temps``), chooses the contribution
  bounds (``fanout``), then measures table after table (``table``) into the metrics pack;
- ``table``: per table, release the domains (``domain``: category values and point masses;
  ``ranges``: numeric and datetime ranges; ``bins``), count every code and pair in one scan
  (``codes``), measure the one-way marginals (``marginals``), select and measure the tree of
  pairs (``pairs``), and the fan-out (``fanout``);
- ``public``: what spends nothing (declared-public tables and values, enums, CHECK lists);
- ``holdout``: the keyed-hash slice of units kept out for the evaluator.
"""

from .bins import numeric_edges, numeric_resolution, with_outer_bins
from .budget import WEIGHT, Budget, share_rho
from .columns import ColumnModel
from .domain import NULL_KEY, merge_looks, released_marginal
from .fanout import contribution_bound, fanout_bins, fanout_parents_bound
from .holdout import holdout_key, holdout_sql, in_holdout
from .pairs import coarse_groups, pair_resolution
from .ranges import (
    LOG_BUCKETS,
    conclusive_span,
    day_bucket_width,
    held_by_atoms,
    log_bucket_edges,
    outer_range,
    released_range,
    residual_bucket_edges,
    significant_span,
)
from .run import PACK_FORMAT, profile_source
from .sql import TableSQL, grouping_counts, table_sql, unit_from

# The names the evaluator and the tests imported before the split into steps.
_unit_from = unit_from
_conclusive_span = conclusive_span
_released_marginal = released_marginal
_released_range = released_range
_significant_span = significant_span
_log_bucket_edges = log_bucket_edges
_outer_range = outer_range

__all__ = [
    "LOG_BUCKETS",
    "NULL_KEY",
    "PACK_FORMAT",
    "WEIGHT",
    "Budget",
    "ColumnModel",
    "TableSQL",
    "coarse_groups",
    "conclusive_span",
    "contribution_bound",
    "day_bucket_width",
    "fanout_bins",
    "fanout_parents_bound",
    "grouping_counts",
    "held_by_atoms",
    "holdout_key",
    "holdout_sql",
    "in_holdout",
    "log_bucket_edges",
    "merge_looks",
    "numeric_edges",
    "numeric_resolution",
    "outer_range",
    "pair_resolution",
    "profile_source",
    "released_marginal",
    "released_range",
    "residual_bucket_edges",
    "share_rho",
    "significant_span",
    "table_sql",
    "unit_from",
    "with_outer_bins",
]
