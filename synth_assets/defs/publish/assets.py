"""Publication: every artifact of a refresh to the store, hashed and signed, manifest last.

An asset, not a CLI afterthought: a deployment publishes in its own step (pod) like every other
stage. The manifest states the gates the refresh passed; a headless refresh has written its
summary by then, a refresh run only in Dagster gets one built from the asset check evaluations
the instance recorded for the refresh's runs.
"""

import dagster as dg

from synth_assets.core.artifacts import publish_refresh, summary_path, write_checks_summary
from synth_assets.core.summary import CheckResult
from synth_assets.defs.constants import (
    PARTITION_TAG,
    PUBLISHED_REFRESH,
    REFRESH_TAG,
    STAGING_SCHEMA,
)
from synth_assets.defs.conventions import stage_asset
from synth_assets.defs.lineage import refresh_of_run
from synth_assets.defs.resources import SynthResource


def recorded_gates(instance: dg.DagsterInstance, rid: str) -> dict[str, CheckResult]:
    """The latest evaluation of every asset check in the runs of refresh ``rid`` (a check of a
    shard partition per partition: a shard re-run replaces only its own)."""
    records = instance.get_run_records(dg.RunsFilter(tags={REFRESH_TAG: rid}))
    checks: dict[str, CheckResult] = {}
    for rec in sorted(records, key=lambda r: r.create_timestamp):
        run = rec.dagster_run
        part = run.tags.get(PARTITION_TAG)
        for ev in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            data = ev.dagster_event.event_specific_data
            name = data.check_name + (f"[{part}]" if part else "")
            checks[name] = CheckResult(bool(data.passed), data.asset_key.to_user_string())
    return checks


@stage_asset(
    PUBLISHED_REFRESH,
    kinds={"s3"},
    description="The refresh published: every artifact hashed and uploaded to the store (S3 with "
    "server-side encryption, or the local directory), then a manifest signed with the secrets "
    "backend's key, written last and only once. Refused for a refresh whose gates did not all "
    "pass or whose privacy report is not its own.",
)
def published_refresh(
    context: dg.AssetExecutionContext, synth: SynthResource
) -> dg.MaterializeResult:
    rid = refresh_of_run(context, STAGING_SCHEMA)
    cfg = synth.settings()
    store = synth.fetch(rid, "")  # the whole refresh: a manifest covers every artifact
    if not summary_path(synth.work, rid).is_file():
        write_checks_summary(synth.work, store, rid, recorded_gates(context.instance, rid))
    manifest = publish_refresh(cfg, synth.work, rid, synth.secrets())
    context.log.info(f"refresh {rid} published: {manifest['store']['location']}")
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "location": manifest["store"]["location"],
            "artifacts": len(manifest["artifacts"]),
            "gates_passed": bool(manifest["gates"]["passed"]),
        }
    )


defs = dg.Definitions(assets=[published_refresh])
