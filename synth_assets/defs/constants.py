"""Names the Dagster layer shares: asset keys, groups, run tags and the shard partitions.

One home for each, so an asset, a job's selection, a sensor and the headless CLI cannot drift
apart on a spelling (run tags are read back by later runs and by the audit log).
"""

import dagster as dg

# Asset keys, in the order data flows through them.
PRODUCTION_DATABASE = dg.AssetKey("production_database")  # external: the source
SOURCE_SCHEMA = dg.AssetKey("source_schema")
METRICS_PACK = dg.AssetKey("metrics_pack")  # the profile of the source: metrics_pack.json
CALIBRATED_SPEC = dg.AssetKey("calibrated_spec")
SYNTHETIC_SHARDS = dg.AssetKey("synthetic_shards")
PRIVACY_REPORT = dg.AssetKey("privacy_report")
STAGING_SCHEMA = dg.AssetKey("staging_schema")
PUBLISHED_REFRESH = dg.AssetKey("published_refresh")

# Groups: the pipeline's three domains in the UI.
# Inside the privacy boundary: the source, its reflected schema, its DP aggregates.
MEASURE = "measure"
# Post-processing of DP output (no budget): the spec and the synthetic shards.
SYNTHESIZE = "synthesize"
# The gates and what they release: the privacy report, the staging schema, the publication.
RELEASE = "release"

# The data flow in one table: each pipeline asset's group and the assets it is computed from
# (its deps), read by ``conventions.stage_asset``.
FLOW: dict[dg.AssetKey, tuple[str, tuple[dg.AssetKey, ...]]] = {
    SOURCE_SCHEMA: (MEASURE, (PRODUCTION_DATABASE,)),
    METRICS_PACK: (MEASURE, (SOURCE_SCHEMA,)),
    CALIBRATED_SPEC: (SYNTHESIZE, (METRICS_PACK,)),
    SYNTHETIC_SHARDS: (SYNTHESIZE, (CALIBRATED_SPEC,)),
    PRIVACY_REPORT: (RELEASE, (SYNTHETIC_SHARDS,)),
    STAGING_SCHEMA: (RELEASE, (SYNTHETIC_SHARDS, PRIVACY_REPORT)),
    PUBLISHED_REFRESH: (RELEASE, (STAGING_SCHEMA,)),
}

# Asset tags.
BOUNDARY = {"synth/privacy_boundary": "inside"}

# Run tags of synth_assets.
REFRESH_TAG = "synth/refresh_id"
PACK_TAG = "synth/pack_refresh_id"  # a regeneration: the refresh whose metrics pack is reused
ACTOR_TAG = "synth/actor"
SPEC_HASH_TAG = "synth/spec_hash"
OVERRIDES_TAG = "synth/overrides_sha256"
# Runs that measure the source carry this tag: a deployment's run queue admits one at a time
# (deploy/dagster.yaml), while the shard runs of a refresh run side by side.
MEASURE_TAG = {"synth/stage": "measure"}

# Dagster's own run tags that synth_assets sets or reads.
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# Each backfill run is retried (a shard's run: that partition only) when its run pod died
# outside any step (evicted, node lost), never after a failed step: a privacy gate must not be
# re-measured until it passes. A shard step's own failures are retried by its retry policy.
RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_on_asset_or_op_failure": "false"}

# One partition per shard of the current spec ("00000", "00001", ...), added as specs need them.
SHARDS = dg.DynamicPartitionsDefinition(name="synth_shards")
