"""The refresh's asset jobs and the selections they run (the CLI runs the same jobs).

A refresh is two steps: `quarterly_refresh` (inside the boundary: reflect, profile, spec), then
the spec's shard partitions, the report and the load, started by the `spec_ready` sensor for
every new spec (`generate_and_load`, or in Kubernetes an asset backfill of `GENERATE` and the
publication). `regenerate_from_spec` makes a new spec (new seed, no measurement, no budget)
from the latest metrics pack; `spec_ready` then generates it. `publish_refresh` publishes.
"""

import dagster as dg

from synth_assets.defs.constants import (
    CALIBRATED_SPEC,
    MEASURE_TAG,
    METRICS_PACK,
    PRIVACY_REPORT,
    PUBLISHED_REFRESH,
    SHARDS,
    SOURCE_SCHEMA,
    STAGING_SCHEMA,
    SYNTHETIC_SHARDS,
)

PROFILE = dg.AssetSelection.assets(SOURCE_SCHEMA, METRICS_PACK, CALIBRATED_SPEC)
REGENERATE = dg.AssetSelection.assets(CALIBRATED_SPEC)
GENERATE = dg.AssetSelection.assets(SYNTHETIC_SHARDS, PRIVACY_REPORT, STAGING_SCHEMA)
PUBLISH = dg.AssetSelection.assets(PUBLISHED_REFRESH)

quarterly_refresh = dg.define_asset_job(
    "quarterly_refresh",
    selection=PROFILE,
    tags=MEASURE_TAG,
    description="Reflect and profile the source (spends privacy budget), then calibrate a spec; "
    "the spec_ready sensor generates, checks and loads it.",
)
regenerate_from_spec = dg.define_asset_job(
    "regenerate_from_spec",
    selection=REGENERATE,
    description="A new spec and seed from the latest metrics pack: no query to the source, no budget spent.",
)
generate_and_load = dg.define_asset_job(
    "generate_and_load",
    selection=GENERATE,
    partitions_def=SHARDS,
    description="Every shard of the latest spec (one single-run backfill), the privacy report and the load.",
)
publish_refresh = dg.define_asset_job(
    "publish_refresh",
    selection=PUBLISH,
    description="Publish a loaded refresh: every artifact to the store, the signed manifest last.",
)

defs = dg.Definitions(
    jobs=[quarterly_refresh, regenerate_from_spec, generate_and_load, publish_refresh]
)
