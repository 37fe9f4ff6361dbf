"""Jobs, the quarterly schedule and the sensors that keep staging fresh and gated.

A refresh is two steps: `quarterly_refresh` (inside the boundary: reflect, profile, spec), then
the spec's shard partitions, the report and the load, started by `spec_ready` for every new
spec. Locally that is one run of `generate_and_load` over the whole shard range (one single-run
backfill); in a Kubernetes deployment (``per_shard_runs``) an asset backfill: one run, so one
pod, per shard, then the report and the load in one run once every shard is materialized.
`regenerate_from_spec` makes a new spec (new seed, no measurement, no budget) from the latest
metrics pack; `spec_ready` then generates it.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

from synth_assets.core.audit import default_actor, record_event
from synth_assets.core.config import SynthConfig
from synth_assets.core.generate import shard_key
from synth_assets.defs.resources import REFRESH_TAG, SHARDS

PROFILE = dg.AssetSelection.assets("source_schema", "production_shape", "calibrated_spec")
GENERATE = dg.AssetSelection.assets("synthetic_shards", "privacy_report", "staging_schema")

# Runs that measure the source carry this tag: a deployment's run queue admits one at a time
# (deploy/dagster.yaml), while the shard runs of a refresh run side by side.
MEASURE_TAG = {"synth/stage": "measure"}

quarterly_refresh = dg.define_asset_job(
    "quarterly_refresh",
    selection=PROFILE,
    tags=MEASURE_TAG,
    description="Reflect and profile the source (spends privacy budget), then calibrate a spec; "
    "the spec_ready sensor generates, checks and loads it.",
)
regenerate_from_spec = dg.define_asset_job(
    "regenerate_from_spec",
    selection=dg.AssetSelection.assets("calibrated_spec"),
    description="A new spec and seed from the latest metrics pack: no query to the source, no budget spent.",
)
generate_and_load = dg.define_asset_job(
    "generate_and_load",
    selection=GENERATE,
    partitions_def=SHARDS,
    description="Every shard of the latest spec (one single-run backfill), the privacy report and the load.",
)


def quarterly_schedule(cfg: SynthConfig) -> dg.ScheduleDefinition:
    """The quarterly refresh (cron and timezone from synth.yaml `automation`)."""
    return dg.ScheduleDefinition(
        name="quarterly_refresh_schedule",
        job=quarterly_refresh,
        cron_schedule=cfg.automation.cron,
        execution_timezone=cfg.automation.timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def generation_request(refresh_id: str, spec_hash: str, shards: int) -> dg.RunRequest:
    """Run request for all shards of one spec (run keys are de-duplicated forever: hash inside)."""
    return dg.RunRequest(
        run_key=f"generate:{refresh_id}:{spec_hash}",
        tags={
            REFRESH_TAG: refresh_id,
            "dagster/asset_partition_range_start": shard_key(0),
            "dagster/asset_partition_range_end": shard_key(shards - 1),
        },
    )


SPEC_HASH_TAG = "synth/spec_hash"
# Each backfill run is retried (a shard's run: that partition only) when its run pod died
# outside any step (evicted, node lost), never after a failed step: a privacy gate must not be
# re-measured until it passes. A shard step's own failures are retried by its retry policy.
RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_on_asset_or_op_failure": "false"}


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
            dg.AssetKey("synthetic_shards"): SHARDS.empty_subset().with_partition_keys(
                [shard_key(i) for i in range(shards)]
            )
        },
        non_partitioned_asset_keys={
            dg.AssetKey("privacy_report"),
            dg.AssetKey("staging_schema"),
            dg.AssetKey("published_refresh"),
        },
    )
    tags = {REFRESH_TAG: refresh_id, SPEC_HASH_TAG: spec_hash, **RETRY_TAGS}
    return dg.RunRequest.for_asset_graph_subset(subset, tags=tags)


SPEC = dg.AssetKey("calibrated_spec")
STARTED = (
    "started: specs materialized before now are not regenerated (run generate_and_load "
    "for one by hand); every new spec will be"
)


def new_specs(context: dg.SensorEvaluationContext) -> list[tuple[str, str, int]] | None:
    """(refresh id, spec hash, shards) of each spec materialized since the cursor, with their
    shard partitions added; None on the first evaluation, which only sets the cursor."""
    if context.cursor is None:
        latest = context.instance.fetch_materializations(SPEC, limit=1).records
        context.update_cursor(str(latest[0].storage_id if latest else 0))
        return None
    after = int(context.cursor)
    new = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SPEC, after_storage_id=after), limit=100, ascending=True
    ).records
    specs = []
    for rec in new:
        meta = rec.event_log_entry.asset_materialization.metadata
        rid, shards = meta["refresh_id"].value, int(meta["shards"].value)
        context.instance.add_dynamic_partitions(SHARDS.name, [shard_key(i) for i in range(shards)])
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
        {"asset_selection": GENERATE | dg.AssetSelection.assets("published_refresh")}
        if per_shard_runs
        else {"job": generate_and_load}
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


def _last_materialized(instance: dg.DagsterInstance, key: str) -> datetime | None:
    ev = instance.get_latest_materialization_event(dg.AssetKey(key))
    return datetime.fromtimestamp(ev.timestamp, UTC) if ev else None


def staleness_sensor(cfg: SynthConfig, now=lambda: datetime.now(UTC)) -> dg.SensorDefinition:
    """Staging older than `automation.stale_after_days` requests a full refresh (once per staleness)."""

    @dg.sensor(
        name="staging_staleness",
        job=quarterly_refresh,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        last = _last_materialized(context.instance, "staging_schema")
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

    @dg.sensor(
        name="spec_overrides_changed",
        job=regenerate_from_spec,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
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
        return dg.RunRequest(run_key=f"overrides:{digest}", tags={"synth/overrides_sha256": digest})

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
            run.tags.get("synth/actor") or default_actor(),
        )

    return _sensor


publish_refresh = dg.define_asset_job(
    "publish_refresh",
    selection=dg.AssetSelection.assets("published_refresh"),
    description="Publish a loaded refresh: every artifact to the store, the signed manifest last.",
)


def automation_defs(cfg: SynthConfig, meta_url, per_shard_runs: bool = False) -> dg.Definitions:
    """Jobs, schedule and sensors for one configuration (``per_shard_runs``: a Kubernetes
    deployment, see `spec_ready_sensor`)."""
    return dg.Definitions(
        jobs=[quarterly_refresh, regenerate_from_spec, generate_and_load, publish_refresh],
        schedules=[quarterly_schedule(cfg)],
        sensors=[
            spec_ready_sensor(per_shard_runs),
            staleness_sensor(cfg),
            overrides_sensor(cfg),
            gate_failure_sensor(meta_url),
        ],
    )
