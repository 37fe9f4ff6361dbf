"""One run per shard (issue 15, Kubernetes): each shard partition materialized by its own run of
the refresh, then the report and the load in another run, on the demo bank (in process)."""

import dagster as dg
import pytest
import yaml

from synth_assets.core.audit import list_events
from synth_assets.core.gates import check_shards
from synth_assets.core.generate import shard_key
from synth_assets.core.secrets import init_local_secrets
from synth_assets.core.store import new_refresh_id, read_json, write_private
from synth_assets.definitions import build_definitions
from synth_assets.defs.constants import REFRESH_TAG, SHARDS
from synth_assets_tests.conftest import make_config

SHARDS_KEY = dg.AssetKey("synthetic_shards")
RELEASE = [dg.AssetKey("privacy_report"), dg.AssetKey("staging_schema")]


def _checks(res: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in res.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def per_shard_refresh(tmp_path_factory, demo_url, meta_url):
    """The spec run, one run per shard (the report run tried once before the last shard), then
    the report and the load: what the backfill of a Kubernetes deployment launches."""
    wd = tmp_path_factory.mktemp("per-shard")
    init_local_secrets(wd / "secrets")
    cfg_file = wd / "effective-synth.yaml"
    write_private(cfg_file, yaml.safe_dump(make_config(demo_url).to_json(), sort_keys=False))
    defs = build_definitions(config_file=str(cfg_file), workdir=str(wd), per_shard_runs=True)
    job = defs.resolve_job_def("generate_and_load")
    rid = new_refresh_id()
    tags = {REFRESH_TAG: rid}
    out: dict = {"wd": wd, "rid": rid, "shard_runs": []}
    with dg.DagsterInstance.ephemeral() as inst:
        spec_run = defs.resolve_job_def("quarterly_refresh").execute_in_process(
            instance=inst, tags=tags, raise_on_error=False
        )
        assert spec_run.success
        n = read_json(wd / "runs" / rid / "spec.json")["shards"]
        keys = [shard_key(i) for i in range(n)]
        inst.add_dynamic_partitions(SHARDS.name, keys)

        def release():
            return dg.materialize(
                [*defs.assets, *defs.asset_checks],
                selection=RELEASE,
                instance=inst,
                resources=defs.resources,
                tags=tags,
                raise_on_error=False,
            )

        for i, key in enumerate(keys):
            if i == n - 1:
                out["early_release"] = release()
            out["shard_runs"].append(
                job.execute_in_process(
                    instance=inst,
                    partition_key=key,
                    asset_selection=[SHARDS_KEY],
                    tags=tags,
                    raise_on_error=False,
                )
            )
        out["release"] = release()
    out["events"] = [e for e in list_events(meta_url) if e.refresh_id == rid]
    return out


def test_each_shard_run_generates_and_checks_only_its_own_shard(per_shard_refresh):
    runs = per_shard_refresh["shard_runs"]
    assert len(runs) >= 2 and all(r.success for r in runs)
    for i, r in enumerate(runs):
        [mat] = r.asset_materializations_for_node("synthetic_shards")
        assert mat.partition == shard_key(i)
        check = _checks(r)["shards_valid"]
        assert check.passed and check.metadata["shards"].value == [i]


def test_each_shard_run_records_its_own_files_in_the_audit_log(per_shard_refresh):
    events = [e for e in per_shard_refresh["events"] if e.kind == "shards"]
    assert [e.payload["partitions"] for e in events] == [
        [i] for i in range(len(per_shard_refresh["shard_runs"]))
    ]
    for i, e in enumerate(events):
        assert e.payload["files"] and all(
            f.endswith(f"part-{i:05d}.parquet") for f in e.payload["files"]
        )


def test_the_report_refuses_a_refresh_whose_shards_are_incomplete(per_shard_refresh):
    early = per_shard_refresh["early_release"]
    assert not early.success
    assert not early.asset_materializations_for_node("privacy_report")
    assert not early.asset_materializations_for_node("staging_schema")
    error = early.failure_data_for_node("privacy_report").error
    message = error.cause.message if error.cause else error.message
    assert "GateFailed" in message and "incomplete or invalid together" in message
    last = shard_key(len(per_shard_refresh["shard_runs"]) - 1)
    assert f"part-{last}.parquet is missing" in message


def test_once_every_shard_exists_the_report_and_load_pass_in_their_own_run(per_shard_refresh):
    release, rid, wd = (per_shard_refresh[k] for k in ("release", "rid", "wd"))
    assert release.success
    [load] = release.asset_materializations_for_node("staging_schema")
    assert load.metadata["refresh_id"].value == rid
    assert all(c.passed for c in release.get_asset_check_evaluations())
    spec = read_json(wd / "runs" / rid / "spec.json")
    assert check_shards(spec, wd / "runs" / rid).passed  # the whole refresh, all runs together


def test_a_shard_run_check_catches_its_own_shard_and_not_the_others(per_shard_refresh, tmp_path):
    import shutil

    import polars as pl

    src = per_shard_refresh["wd"] / "runs" / per_shard_refresh["rid"]
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    spec = read_json(dst / "spec.json")
    f = dst / "shards" / "transactions" / "part-00001.parquet"
    df = pl.read_parquet(f)
    df.head(df.height // 3).write_parquet(f)  # two thirds of shard 1's children vanish
    assert check_shards(spec, dst, [0]).passed
    bad = check_shards(spec, dst, [1])
    assert any(m.startswith("transactions:") and "fan-out gives" in m for m in bad.failures)
