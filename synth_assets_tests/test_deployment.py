"""Deployed mode (issue 15): the executor follows the deployment, database URLs come from the
environment, and a container's CPU quota bounds the worker count."""

import dagster as dg
import pytest

from synth_assets.core.config import load_config
from synth_assets.core.errors import ConfigError
from synth_assets.core.generate import cgroup_cpu_limit
from synth_assets.definitions import build_definitions


def test_a_kubernetes_deployment_runs_steps_with_the_k8s_job_executor_and_its_run_config(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("SYNTH_DEPLOYMENT", "kubernetes")
    job = build_definitions(workdir=str(tmp_path)).resolve_job_def("generate_and_load")
    assert job.executor_def.name == "k8s"
    config = {
        "execution": {
            "config": {
                "max_concurrent": 3,
                "step_k8s_config": {"container_config": {"resources": {"limits": {"cpu": "1"}}}},
            }
        }
    }
    resolved = dg.validate_run_config(job, config)
    assert resolved["execution"]["k8s"]["max_concurrent"] == 3
    limits = resolved["execution"]["k8s"]["step_k8s_config"]["container_config"]
    assert limits["resources"]["limits"] == {"cpu": "1"}
    with pytest.raises(dg.DagsterInvalidConfigError):  # its config is read, not ignored
        dg.validate_run_config(job, {"execution": {"config": {"max_concurrent": "many"}}})
    monkeypatch.delenv("SYNTH_DEPLOYMENT")
    local = build_definitions(workdir=str(tmp_path)).resolve_job_def("generate_and_load")
    assert local.executor_def.name == "in_process"


def test_an_unknown_deployment_is_refused_naming_the_choices(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTH_DEPLOYMENT", "k8s")
    with pytest.raises(ConfigError, match="local, kubernetes"):
        build_definitions(workdir=str(tmp_path))


def test_database_urls_come_from_the_environment_over_the_file(monkeypatch, tmp_path):
    path = tmp_path / "synth.yaml"
    path.write_text(
        "source: {url: 'postgresql://reader@file-host/prod', schema: app}\n"
        "target: {url: 'postgresql://writer@file-host/staging'}\n"
    )
    monkeypatch.setenv("SYNTH_SOURCE_URL", "postgresql://reader:s3cret@db/prod")
    monkeypatch.setenv("SYNTH_AUDIT_URL", "postgresql://auditor@audit-host/audit")
    cfg = load_config(path)
    assert cfg.source.url == "postgresql://reader:s3cret@db/prod"
    assert cfg.source.db_schema == "app"  # the rest of the section stays the file's
    assert cfg.target.url == "postgresql://writer@file-host/staging"  # not set: the file's
    assert cfg.audit.url == "postgresql://auditor@audit-host/audit"
    monkeypatch.setenv("SYNTH_TARGET_URL", "postgresql://writer@env-host/staging")
    assert load_config(None).target.url == "postgresql://writer@env-host/staging"
    monkeypatch.setenv("SYNTH_AUDIT_URL", "mysql://nope")
    with pytest.raises(ConfigError, match="audit.url must be a PostgreSQL URL"):
        load_config(path)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs round up
        ({"cpu.max": "max 100000\n"}, None),  # no quota
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_a_container_cpu_quota_bounds_the_workers(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == expected


# --- one run (one pod) per shard in Kubernetes; one ranged run locally ----------------------

SPEC_RID = "r20260102T000000Z-bbbbbb"


def _spec_ready_tick(defs: dg.Definitions) -> list[dg.RunRequest]:
    """spec_ready's requests for a spec of 3 shards materialized after its first tick."""

    @dg.asset(name="calibrated_spec")
    def fake_spec() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata={"refresh_id": SPEC_RID, "shards": 3, "spec_hash": "h" * 64}
        )

    sensor = defs.resolve_sensor_def("spec_ready")
    with dg.DagsterInstance.ephemeral() as inst:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=inst, definitions=defs))
        assert dg.materialize([fake_spec], instance=inst).success
        ctx = dg.build_sensor_context(instance=inst, cursor=first.cursor, definitions=defs)
        return list(sensor.evaluate_tick(ctx).run_requests or [])


def test_in_kubernetes_each_shard_partition_is_its_own_run(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTH_DEPLOYMENT", "kubernetes")
    graph = build_definitions(workdir=str(tmp_path)).resolve_asset_graph()
    policy = graph.get(dg.AssetKey("synthetic_shards")).backfill_policy
    assert policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
    shards_def = build_definitions(workdir=str(tmp_path)).get_assets_def("synthetic_shards")
    assert shards_def.op.retry_policy.max_retries == 2  # a shard's step, retried alone
    monkeypatch.delenv("SYNTH_DEPLOYMENT")
    local = build_definitions(workdir=str(tmp_path)).resolve_asset_graph()
    assert local.get(dg.AssetKey("synthetic_shards")).backfill_policy == (
        dg.BackfillPolicy.single_run()
    )
    assert (
        build_definitions(workdir=str(tmp_path)).get_assets_def("synthetic_shards").op.retry_policy
        is None
    )


def test_in_kubernetes_a_new_spec_requests_a_backfill_of_its_shards_then_report_and_load(
    monkeypatch, tmp_path
):
    from synth_assets.defs.constants import REFRESH_TAG

    monkeypatch.setenv("SYNTH_DEPLOYMENT", "kubernetes")
    [req] = _spec_ready_tick(build_definitions(workdir=str(tmp_path)))
    assert req.requires_backfill_daemon()
    subset = req.asset_graph_subset
    shards = subset.get_partitions_subset(dg.AssetKey("synthetic_shards"))
    assert sorted(shards.get_partition_keys()) == ["00000", "00001", "00002"]
    assert subset.non_partitioned_asset_keys == {
        dg.AssetKey("privacy_report"),
        dg.AssetKey("staging_schema"),
        dg.AssetKey("published_refresh"),
    }
    assert req.tags[REFRESH_TAG] == SPEC_RID and req.tags["synth/spec_hash"] == "h" * 64
    assert req.tags["dagster/max_retries"] == "2"  # a shard's run is retried alone
    assert "dagster/asset_partition_range_start" not in req.tags


def test_locally_a_new_spec_still_requests_one_run_over_the_shard_range(monkeypatch, tmp_path):
    from synth_assets.defs.constants import REFRESH_TAG

    monkeypatch.delenv("SYNTH_DEPLOYMENT", raising=False)
    [req] = _spec_ready_tick(build_definitions(workdir=str(tmp_path)))
    assert not req.requires_backfill_daemon()
    assert req.tags[REFRESH_TAG] == SPEC_RID
    assert req.tags["dagster/asset_partition_range_start"] == "00000"
    assert req.tags["dagster/asset_partition_range_end"] == "00002"
    assert req.job_name in (None, "generate_and_load")
