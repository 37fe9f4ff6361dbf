"""Steps that share nothing but the artifact store and PostgreSQL (issue 15): every step runs in
a process of its own (the multiprocess executor) that starts in an empty work directory, as a
step pod would; a moto S3 server is the store, Vault (the fake KV v2 server) holds the keys."""

import dagster as dg
import yaml

from synth_assets.core import budget, pg
from synth_assets.core.artifacts import fetch_anchors, verify_refresh
from synth_assets.core.audit import AuditSigner, list_events, verify_chain
from synth_assets.core.generate import shard_key
from synth_assets.core.secrets import backend_from_config
from synth_assets.core.store import new_refresh_id, store_for
from synth_assets.defs.constants import REFRESH_TAG
from synth_assets_tests import shared_nothing
from synth_assets_tests.conftest import make_config
from synth_assets_tests.integration.conftest import BUCKET

MULTIPROCESS = {"execution": {"config": {"max_concurrent": 1}}}


def _run(job_fn, instance, rid: str, **kw):
    result = dg.execute_job(
        dg.reconstructable(job_fn),
        instance=instance,
        tags={REFRESH_TAG: rid, **kw.pop("tags", {})},
        run_config=MULTIPROCESS,
        raise_on_error=False,
        **kw,
    )
    failures = [e.message for e in result.all_events if e.is_failure]
    assert result.success, failures
    return sum(e.event_type_value == "STEP_START" for e in result.all_events)


def test_a_refresh_whose_steps_share_only_s3_and_postgres(
    tmp_path, demo_url, pg_workdir, vault, s3_endpoint, env
):
    target = pg.resolve_url("embedded:///sn_target", pg_workdir)  # a PostgreSQL URL: shared
    cfg = make_config(
        demo_url,
        target={"url": target, "schema": "sn_synth"},
        secrets={"backend": "vault", "vault": {"url": vault.url, "backoff_seconds": 0.0}},
        artifacts={
            "store": f"s3://{BUCKET}/shared-nothing",
            "endpoint_url": s3_endpoint,
            "region": "us-east-1",
        },
    )
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True, exclude_unset=True)))
    steps = tmp_path / "steps"
    env.setenv("SYNTH_CONFIG", str(path))
    env.setenv("SYNTH_TEST_STEPS", str(steps))
    rids = [new_refresh_id(), new_refresh_id()]
    with dg.instance_for_test() as instance:
        started = _run(shared_nothing.quarterly_refresh, instance, rids[0])
        keys = [shard_key(i) for i in range(cfg.generation.shards)]
        for key in keys:  # one run per shard: its shard step (and its check)
            started += _run(
                shared_nothing.generate_and_load,
                instance,
                rids[0],
                asset_selection=[dg.AssetKey("synthetic_shards")],
                tags={"dagster/partition": key},
            )
        started += _run(
            shared_nothing.generate_and_load,
            instance,
            rids[0],
            asset_selection=[
                dg.AssetKey("privacy_report"),
                dg.AssetKey("staging_schema"),
                dg.AssetKey("published_refresh"),
            ],
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
        )
        # A second refresh continues the ledger and the audit chain from other empty directories.
        started += _run(shared_nothing.quarterly_refresh, instance, rids[1])
    assert len(list(steps.iterdir())) == started  # every step had a directory of its own
    with pg.connect(target) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM sn_synth.customers").fetchone()
    assert rows > 0
    key, _ = budget.source_key(cfg.source.url, cfg.source.db_schema, cfg.privacy.budget_key)
    ledger = budget.standing(target, key, cfg.privacy.annual_epsilon_cap).entries
    assert {rids[0], rids[1]} <= {e["refresh_id"] for e in ledger}
    kinds = [(e.refresh_id, e.kind) for e in list_events(target)]
    for kind in ("reservation", "profile", "spec", "shards", "report", "load"):
        assert (rids[0], kind) in kinds, kind
    assert (rids[1], "spec") in kinds
    # A verifier in yet another empty directory finds the anchors in the store and the chain whole.
    fresh = tmp_path / "auditor"
    signer = AuditSigner.for_config(cfg, fresh)
    fetch_anchors(cfg, store_for(cfg, fresh), signer.anchor_dir)
    assert list(signer.anchor_dir.glob("anchor-*.json"))
    res = verify_chain(target, signer)
    assert res.ok, res.problems
    # Published by its own step, from the gates the instance recorded: the signed manifest in
    # S3 verifies, every artifact deeply, from that empty directory too.
    manifest, problems = verify_refresh(
        cfg, fresh, rids[0], backend_from_config(cfg.secrets, fresh)
    )
    assert manifest is not None and not problems, problems
    assert manifest["gates"]["passed"] and manifest["store"]["kind"] == "s3"
    assert {"report/privacy_report.json", "load.json", "summary.json"} <= {
        a["path"] for a in manifest["artifacts"]
    }
