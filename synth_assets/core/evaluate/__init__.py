"""The evaluator: measured privacy and fidelity of a refresh, computed inside the privacy boundary.

It reads three samples per table (and per parent-child join, one level deep): real training
rows (privacy units outside the holdout, by the same keyed-hash rule the profile used), real
holdout rows, and synthetic rows from the Parquet shards. Privacy metrics compare "synthetic vs
training" with "holdout vs training", so a metric is judged against what unseen real data of
the same population scores. Fidelity metrics compare real with synthetic distributions.

Everything that leaves this package in the report is an aggregate: rates, distances summarised
as shares or percentiles, correlations, and binned proportions whose real cells below
``min_cell`` rows are suppressed. Category labels in plots are only the values the spec already
released through the DP threshold. No row, key or raw PII value is ever written.

The data flow, one module per step: ``views`` (what is compared) -> ``samples`` (real and
synthetic rows) -> ``encode`` and ``distance`` (rows as vectors, nearest neighbours) ->
``privacy`` and ``fidelity`` (the metrics) and ``plots`` -> ``report`` (the whole evaluation).
The gates that judge the report live with the other release gates in :mod:`synth_assets.core.gates`, and are
re-exported here for the importers of the evaluator.
"""

from synth_assets.core.gates import (
    CHANCE_SE,
    GATE_SPECS,
    GATES_BY_NAME,
    GateSpec,
    calibrated_limits,
    evaluate_gates,
    gate_items,
    gate_message,
    gate_thresholds,
)

from .distance import MAX_BLOCKS, knn_distances
from .encode import NUMERIC_NULL, Encoded, MixedEncoder
from .errors import EvaluationError
from .fidelity import (
    ACF_LAGS,
    FANOUT_PLOT_CAP,
    OTHER,
    column_shapes,
    fanout_similarity,
    ks_complement,
    ks_from_histograms,
    null_rates,
    pair_trend,
    pair_trends,
    released_domain,
    temporal_profile,
    tv_complement,
)
from .plots import MAX_PLOT_CATEGORIES, marginal_plot
from .privacy import (
    OVERLAP_ROLES,
    column_groups,
    dcr_share,
    distance_histogram,
    exact_match_rate,
    identifier_overlap,
    membership_inference,
    nndr,
    nndr_ratio,
    normalize_identifier,
    overlap_columns,
    privacy_metrics,
    rare_combination_ratio,
    rare_combinations,
)
from .report import (
    REPORT_FORMAT,
    SAMPLE_CONTEXT,
    evaluate_refresh,
    markdown_summary,
    privacy_guarantee,
    read_refresh,
)
from .samples import (
    NULL_TOKEN,
    canonical,
    canonical_qi,
    real_sample,
    scan_table,
    shard_files,
    synthetic_sample,
    unit_samples,
)
from .views import QI_PII_ROLES, Col, EvalOptions, View, build_views, table_columns

__all__ = [
    "ACF_LAGS",
    "CHANCE_SE",
    "FANOUT_PLOT_CAP",
    "GATES_BY_NAME",
    "GATE_SPECS",
    "MAX_BLOCKS",
    "MAX_PLOT_CATEGORIES",
    "NULL_TOKEN",
    "NUMERIC_NULL",
    "OTHER",
    "OVERLAP_ROLES",
    "QI_PII_ROLES",
    "REPORT_FORMAT",
    "SAMPLE_CONTEXT",
    "Col",
    "Encoded",
    "EvalOptions",
    "EvaluationError",
    "GateSpec",
    "MixedEncoder",
    "View",
    "build_views",
    "calibrated_limits",
    "canonical",
    "canonical_qi",
    "column_groups",
    "column_shapes",
    "dcr_share",
    "distance_histogram",
    "evaluate_gates",
    "evaluate_refresh",
    "exact_match_rate",
    "fanout_similarity",
    "gate_items",
    "gate_message",
    "gate_thresholds",
    "identifier_overlap",
    "knn_distances",
    "ks_complement",
    "ks_from_histograms",
    "markdown_summary",
    "marginal_plot",
    "membership_inference",
    "nndr",
    "nndr_ratio",
    "normalize_identifier",
    "null_rates",
    "overlap_columns",
    "pair_trend",
    "pair_trends",
    "privacy_guarantee",
    "privacy_metrics",
    "rare_combination_ratio",
    "rare_combinations",
    "read_refresh",
    "real_sample",
    "released_domain",
    "scan_table",
    "shard_files",
    "synthetic_sample",
    "table_columns",
    "temporal_profile",
    "tv_complement",
    "unit_samples",
]
