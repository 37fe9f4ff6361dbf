"""Publication: every artifact of a refresh to the store, hashed and signed, manifest last.

An asset, not a CLI afterthought: a deployment publishes in its own step (pod) like every other
stage. The manifest states the gates the refresh passed; a headless refresh has written its
summary by then, a refresh run only in Dagster gets one built from the asset check evaluations
the instance recorded for the refresh's runs.
"""

import dagster as dg

from synth_assets.core.artifacts import publish_refresh, summary_path
from synth_assets.core.store import read_json, write_json_atomic
from synth_assets.defs.conventions import RELEASE, owners
from synth_assets.defs.lineage import refresh_of_run
from synth_assets.defs.resources import REFRESH_TAG, SynthResource


def recorded_gates(instance: dg.DagsterInstance, rid: str) -> dict[str, dict]:
    """The latest evaluation of every asset check in the runs of refresh ``rid`` (a check of a
    shard partition per partition: a shard re-run replaces only its own)."""
    records = instance.get_run_records(dg.RunsFilter(tags={REFRESH_TAG: rid}))
    checks: dict[str, dict] = {}
    for rec in sorted(records, key=lambda r: r.create_timestamp):
        run = rec.dagster_run
        part = run.tags.get("dagster/partition")
        for ev in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            data = ev.dagster_event.event_specific_data
            name = data.check_name + (f"[{part}]" if part else "")
            checks[name] = {"passed": bool(data.passed), "asset": data.asset_key.to_user_string()}
    return checks


@dg.asset(
    group_name=RELEASE,
    owners=owners(),
    deps=["staging_schema"],
    kinds={"s3"},
    description="The refresh published: every artifact hashed and uploaded to the store (S3 with "
    "server-side encryption, or the local directory), then a manifest signed with the secrets "
    "backend's key, written last and only once. Refused for a refresh whose gates did not all "
    "pass or whose privacy report is not its own.",
)
def published_refresh(
    context: dg.AssetExecutionContext, synth: SynthResource
) -> dg.MaterializeResult:
    rid = refresh_of_run(context, "staging_schema")
    cfg = synth.settings()
    store = synth.fetch(rid, "")  # the whole refresh: a manifest covers every artifact
    spath = summary_path(synth.work, rid)
    if not spath.is_file():
        load = store.path(rid, "load.json")
        rows = read_json(load)["rows"] if load.is_file() else {}
        checks = recorded_gates(context.instance, rid)
        write_json_atomic(
            spath,
            {
                "refresh_id": rid,
                "checks": checks,
                "passed": bool(checks) and all(c["passed"] for c in checks.values()),
                "tables": {t: {"rows": n} for t, n in rows.items()},
                "written_by": "published_refresh",
            },
        )
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
