"""Thin Dagster wiring around synth_assets.core."""

import warnings

from dagster import BetaWarning

# Single-run backfills of the shard partitions are a beta parameter in Dagster 1.13.
warnings.filterwarnings("ignore", category=BetaWarning)
