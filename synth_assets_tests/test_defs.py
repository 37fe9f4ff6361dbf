"""A snapshot of the Dagster definitions: every asset spec, check, job selection, schedule and
sensor target, written out. A change to the graph fails here until the snapshot is updated on
purpose (as dagster-open-platform's test_defs.py)."""

from pathlib import Path

import dagster as dg
import pytest

from synth_assets.definitions import build_definitions

SYNTH_YAML = str(Path(__file__).resolve().parents[1] / "synth.yaml")

# asset -> (group, deps, partitions definition)
ASSETS = {
    "production_database": ("measure", set(), None),
    "source_schema": ("measure", {"production_database"}, None),
    "metrics_pack": ("measure", {"source_schema"}, None),
    "calibrated_spec": ("synthesize", {"metrics_pack"}, None),
    "synthetic_shards": ("synthesize", {"calibrated_spec"}, "synth_shards"),
    "privacy_report": ("release", {"synthetic_shards"}, None),
    "staging_schema": ("release", {"synthetic_shards", "privacy_report"}, None),
    "published_refresh": ("release", {"staging_schema"}, None),
}

# (asset, check) -> blocking (the release gates per the repository's synth.yaml)
CHECKS = {
    ("metrics_pack", "metrics_pack_no_pii"): True,
    ("metrics_pack", "budget_within_cap"): True,
    ("synthetic_shards", "shards_valid"): True,
    ("privacy_report", "privacy_dcr_share"): True,
    ("privacy_report", "privacy_nndr"): True,
    ("privacy_report", "privacy_exact_match"): True,
    ("privacy_report", "privacy_membership_inference"): True,
    ("privacy_report", "privacy_rare_combinations"): True,
    ("privacy_report", "privacy_identifier_overlap"): True,
    ("privacy_report", "fidelity_column_shapes"): True,
    ("privacy_report", "fidelity_fanout"): True,
    ("privacy_report", "fidelity_hour_of_week"): True,
    ("privacy_report", "fidelity_pair_trends"): False,
    ("privacy_report", "fidelity_null_rates"): False,
    ("privacy_report", "fidelity_autocorrelation"): False,
    ("staging_schema", "staging_schema_intact"): False,
}

GATES = {name for asset, name in CHECKS if asset == "privacy_report"}

# job -> (selected assets, selected checks, partitions definition, tags)
JOBS = {
    "quarterly_refresh": (
        {"source_schema", "metrics_pack", "calibrated_spec"},
        {"metrics_pack_no_pii", "budget_within_cap"},
        None,
        {"synth/stage": "measure"},
    ),
    "regenerate_from_spec": ({"calibrated_spec"}, set(), None, {}),
    "generate_and_load": (
        {"synthetic_shards", "privacy_report", "staging_schema"},
        {"shards_valid", "staging_schema_intact", *GATES},
        "synth_shards",
        {},
    ),
    "publish_refresh": ({"published_refresh"}, set(), None, {}),
    "teardown_staging": (set(), set(), None, {}),
    "emergency_teardown": (set(), set(), None, {}),
}

SCHEDULES = {"quarterly_refresh_schedule": ("quarterly_refresh", "0 3 1 1,4,7,10 *", "UTC")}

ALL_ASSETS = {k for k in ASSETS if k != "production_database"}
# sensor -> (target: job names or selected asset keys, default status)
SENSORS = {
    "spec_ready": ({"generate_and_load"}, dg.DefaultSensorStatus.RUNNING),
    "staging_staleness": ({"quarterly_refresh"}, dg.DefaultSensorStatus.STOPPED),
    "spec_overrides_changed": ({"regenerate_from_spec"}, dg.DefaultSensorStatus.STOPPED),
    "gate_failure_audit": (set(), dg.DefaultSensorStatus.RUNNING),
    "default_automation_condition_sensor": (ALL_ASSETS, dg.DefaultSensorStatus.STOPPED),
}
# In Kubernetes (one run per shard) spec_ready launches an asset backfill ending with publication.
K8S_SPEC_READY = {"synthetic_shards", "privacy_report", "staging_schema", "published_refresh"}


@pytest.fixture(scope="module", params=[False, True], ids=["local", "per_shard_runs"])
def per_shard_runs(request) -> bool:
    """Both deployments: local (one run holds every shard) and Kubernetes (a run per shard)."""
    return request.param


@pytest.fixture(scope="module")
def defs(per_shard_runs, tmp_path_factory) -> dg.Definitions:
    return build_definitions(
        config_file=SYNTH_YAML,
        workdir=str(tmp_path_factory.mktemp("defs")),
        executor=dg.in_process_executor,
        per_shard_runs=per_shard_runs,
    )


def _names(keys) -> set[str]:
    return {k.to_user_string() for k in keys}


def test_every_asset_with_its_group_deps_and_partitions(defs):
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    got = {
        name: (
            s.group_name,
            _names(d.asset_key for d in s.deps),
            s.partitions_def.name if s.partitions_def else None,
        )
        for name, s in specs.items()
    }
    assert got == ASSETS


def test_every_asset_check_with_its_asset_and_blocking(defs):
    graph = defs.resolve_asset_graph()
    got = {
        (k.asset_key.to_user_string(), k.name): graph.get(k).blocking
        for k in graph.asset_check_keys
    }
    assert got == CHECKS


def test_every_job_selects_its_assets_and_checks(defs):
    got = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__ASSET_JOB"):
            continue
        layer = job.asset_layer
        got[job.name] = (
            _names(layer.selected_asset_keys),
            {k.name for k in layer.asset_graph.asset_check_keys},
            job.partitions_def.name if job.partitions_def else None,
            dict(job.tags),
        )
    assert got == JOBS


def test_the_schedule_targets_the_quarterly_refresh(defs):
    got = {
        s.name: (s.job_name, s.cron_schedule, s.execution_timezone)
        for s in defs.get_repository_def().schedule_defs
    }
    assert got == SCHEDULES


def _target(sensor: dg.SensorDefinition, graph) -> set[str]:
    if sensor.asset_selection is not None:
        return _names(sensor.asset_selection.resolve(graph))
    return {t.job_name for t in sensor.targets}


def test_every_sensor_targets_its_jobs_or_assets(defs, per_shard_runs):
    repo = defs.get_repository_def()
    got = {s.name: (_target(s, repo.asset_graph), s.default_status) for s in repo.sensor_defs}
    want = dict(SENSORS)
    if per_shard_runs:  # a sensor launches a backfill only when it targets an asset selection
        want["spec_ready"] = (K8S_SPEC_READY, dg.DefaultSensorStatus.RUNNING)
    assert got == want


def test_shard_runs_hold_every_shard_locally_and_one_shard_in_kubernetes(defs, per_shard_runs):
    shards = defs.resolve_assets_def(dg.AssetKey("synthetic_shards"))
    if per_shard_runs:
        assert shards.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
        assert shards.op.retry_policy == dg.RetryPolicy(max_retries=2, delay=30)
    else:
        assert shards.backfill_policy == dg.BackfillPolicy.single_run()
        assert shards.op.retry_policy is None
