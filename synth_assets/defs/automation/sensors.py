"""Sensors that keep staging fresh and gated, and record every failed run.

`spec_ready` generates every new spec: locally one ranged `generate_and_load` run over the whole
shard range (a single-run backfill); in a Kubernetes deployment (``per_shard_runs``) an asset
backfill: one run, so one pod, per shard, then the report, the load and the publication in one
run once every shard is materialized. `staging_staleness` and `spec_overrides_changed` request a
refresh or a regeneration; `gate_failure_audit` writes each failed run to the audit log.
"""

import functools
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

from synth_assets.core.audit import default_actor, record_event
from synth_assets.core.config import SynthConfig
from synth_assets.defs.constants import (
    ACTOR_TAG,
    CALIBRATED_SPEC,
    OVERRIDES_TAG,
    PRIVACY_REPORT,
    PUBLISHED_REFRESH,
    REFRESH_TAG,
    RETRY_TAGS,
    SHARDS,
    SPEC_HASH_TAG,
    STAGING_SCHEMA,
    SYNTHETIC_SHARDS,
)
from synth_assets.defs.shards.assets import shard_keys, shard_range_tags

from .jobs import GENERATE, PUBLISH, generate_and_load, quarterly_refresh, regenerate_from_spec


def generation_request(refresh_id: str, spec_hash: str, shards: int) -> dg.RunRequest:
    """Run request for all shards of one spec (run keys are de-duplicated forever: hash inside)."""
    return dg.RunRequest(
        run_key=f"generate:{refresh_id}:{spec_hash}",
        tags={REFRESH_TAG: refresh_id, **shard_range_tags(shards)},
    )


def generation_backfill(refresh_id: str, spec_hash: str, shards: int) -> dg.RunRequest:
    """Asset backfill over every shard partition of one spec plus the report and the load.

    With the shards' one-partition-per-run backfill policy, the daemon launches one run per
    shard and the report and load run once they are all materialized; "re-execute failed" on
    the backfill re-runs only the failed partitions. Its tags go on every run it launches: the
    refresh id (what `refresh_of_run` reads), the spec hash and `RETRY_TAGS`. A backfill has
    no run key: the sensor's cursor is what requests each spec once.
    """
    subset = AssetGraphSubset(
        partitions_subsets_by_asset_key={
            SYNTHETIC_SHARDS: SHARDS.empty_subset().with_partition_keys(shard_keys(shards))
        },
        non_partitioned_asset_keys={PRIVACY_REPORT, STAGING_SCHEMA, PUBLISHED_REFRESH},
    )
    tags = {REFRESH_TAG: refresh_id, SPEC_HASH_TAG: spec_hash, **RETRY_TAGS}
    return dg.RunRequest.for_asset_graph_subset(subset, tags=tags)


STARTED = (
    "started: specs materialized before now are not regenerated (run generate_and_load "
    "for one by hand); every new spec will be"
)


def new_specs(context: dg.SensorEvaluationContext) -> list[tuple[str, str, int]] | None:
    """(refresh id, spec hash, shards) of each spec materialized since the cursor, with their
    shard partitions added; None on the first evaluation, which only sets the cursor."""
    if context.cursor is None:
        latest = context.instance.fetch_materializations(CALIBRATED_SPEC, limit=1).records
        context.update_cursor(str(latest[0].storage_id if latest else 0))
        return None
    after = int(context.cursor)
    new = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CALIBRATED_SPEC, after_storage_id=after),
        limit=100,
        ascending=True,
    ).records
    specs = []
    for rec in new:
        meta = rec.event_log_entry.asset_materialization.metadata
        rid, shards = meta["refresh_id"].value, int(meta["shards"].value)
        context.instance.add_dynamic_partitions(SHARDS.name, shard_keys(shards))
        specs.append((rid, meta["spec_hash"].value, shards))
        after = max(after, rec.storage_id)
    context.update_cursor(str(after))
    return specs


def spec_ready_sensor(per_shard_runs: bool = False) -> dg.SensorDefinition:
    """`spec_ready` for one deployment: one ranged `generate_and_load` run per spec (local), or
    one asset backfill per spec (``per_shard_runs``; a sensor launches backfills only when it
    targets an asset selection, not a job)."""
    # In Kubernetes the backfill ends with the publication (locally the CLI publishes after its
    # summary, and a UI user materializes published_refresh).
    target = (
        {"asset_selection": GENERATE | PUBLISH} if per_shard_runs else {"job": generate_and_load}
    )
    request = generation_backfill if per_shard_runs else generation_request

    @dg.sensor(
        name="spec_ready",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Generates, checks and loads every spec materialized after the sensor "
        "started. Its first evaluation only records where the spec history stands: starting the "
        "UI never re-runs (or re-fails) an existing refresh.",
        **target,
    )
    def spec_ready(context: dg.SensorEvaluationContext):
        """A new spec was materialized (and passed its checks): generate, check and load it."""
        specs = new_specs(context)
        if specs is None:
            return dg.SkipReason(STARTED)
        return [request(*s) for s in specs] or dg.SkipReason("no new spec")

    return spec_ready


spec_ready = spec_ready_sensor()


def _last_materialized(instance: dg.DagsterInstance, key: dg.AssetKey) -> datetime | None:
    """When ``key`` was last materialized (None: never)."""
    ev = instance.get_latest_materialization_event(key)
    return datetime.fromtimestamp(ev.timestamp, UTC) if ev else None


# The sensors that request whole refreshes or regenerations from the config: off until switched on.
_opt_in_sensor = functools.partial(dg.sensor, default_status=dg.DefaultSensorStatus.STOPPED)


def staleness_sensor(cfg: SynthConfig, now=lambda: datetime.now(UTC)) -> dg.SensorDefinition:
    """Staging older than `automation.stale_after_days` requests a full refresh (once per staleness)."""

    @_opt_in_sensor(name="staging_staleness", job=quarterly_refresh, minimum_interval_seconds=3600)
    def _sensor(context: dg.SensorEvaluationContext):
        last = _last_materialized(context.instance, STAGING_SCHEMA)
        if last is None:
            return dg.SkipReason(
                "staging has never been loaded: start with a manual refresh or the schedule"
            )
        age = now() - last
        if age < timedelta(days=cfg.automation.stale_after_days):
            return dg.SkipReason(
                f"staging is {age.days} days old (limit {cfg.automation.stale_after_days})"
            )
        return dg.RunRequest(run_key=f"stale:{last.isoformat()}")

    return _sensor


def overrides_sensor(cfg: SynthConfig) -> dg.SensorDefinition:
    """A changed overrides file requests `regenerate_from_spec` once per distinct content."""

    @_opt_in_sensor(
        name="spec_overrides_changed", job=regenerate_from_spec, minimum_interval_seconds=60
    )
    def _sensor(context: dg.SensorEvaluationContext):
        path = cfg.automation.overrides_file
        if not path or not Path(path).is_file():
            return dg.SkipReason(f"no overrides file at {path!r}")
        data = Path(path).read_bytes()
        yaml.safe_load(data)  # a malformed file raises here, visibly, instead of regenerating
        digest = hashlib.sha256(data).hexdigest()
        if context.cursor == digest:
            return dg.SkipReason("overrides unchanged")
        context.update_cursor(digest)
        return dg.RunRequest(run_key=f"overrides:{digest}", tags={OVERRIDES_TAG: digest})

    return _sensor


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[dict]:
    """Failed asset check evaluations of a run, with their metadata."""
    out = []
    for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        ev = rec.dagster_event.event_specific_data
        if not ev.passed:
            out.append(
                {
                    "check": ev.check_name,
                    "asset": ev.asset_key.to_user_string(),
                    "metadata": {
                        k: str(getattr(v, "value", v))[:500] for k, v in ev.metadata.items()
                    },
                }
            )
    return out


def gate_failure_sensor(meta_url) -> dg.SensorDefinition:
    """Every failed run is recorded in the audit log, with the failing gates and their values."""

    @dg.run_failure_sensor(
        name="gate_failure_audit",
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
    )
    def _sensor(context: dg.RunFailureSensorContext):
        run = context.dagster_run
        payload = {
            "run_id": run.run_id,
            "job": run.job_name,
            "failed_checks": failed_checks(context.instance, run.run_id),
            "error": (context.failure_event.message or "")[:1000],
        }
        record_event(
            meta_url(),
            "gate_failed" if payload["failed_checks"] else "run_failed",
            run.tags.get(REFRESH_TAG),
            payload,
            run.tags.get(ACTOR_TAG) or default_actor(),
        )

    return _sensor
