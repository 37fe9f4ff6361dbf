"""One refresh, one lineage (issue 11 §2): two refreshes never mix their artifacts."""

import threading
import time

import dagster as dg
import psycopg
import pytest

from synth_assets.core import budget, pg
from synth_assets.core.errors import RefreshBusy
from synth_assets.core.secrets import init_local_secrets
from synth_assets.core.store import read_json
from synth_assets.definitions import build_definitions
from synth_assets.defs.constants import REFRESH_TAG
from synth_assets.orchestrate import refresh_locks, run_refresh
from synth_assets_tests.conftest import make_config


def _locks_held(url: str, n: int) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        held = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()[0]
    return held >= n


@pytest.fixture(scope="module")
def two_refreshes(tmp_path_factory, demo_url):
    """Refresh A runs while B is attempted on the same work directory; then C runs after A."""
    wd = tmp_path_factory.mktemp("lineage")
    init_local_secrets(wd / "secrets")
    cfg = make_config(demo_url)
    meta, locks = refresh_locks(cfg, wd)
    out: dict = {}
    with dg.DagsterInstance.ephemeral() as inst:

        def refresh_a():
            out["a"] = run_refresh(None, wd, cfg_override=cfg, instance=inst, log=lambda m: None)

        key, _ = budget.source_key(cfg.source.url, cfg.source.db_schema)
        before = {e["refresh_id"] for e in budget.standing(meta, key, 1000.0).entries}
        t = threading.Thread(target=refresh_a)
        t.start()
        deadline = time.monotonic() + 120
        while not _locks_held(meta, len(locks)) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            run_refresh(None, wd, cfg_override=cfg, instance=inst, log=lambda m: None)
        except RefreshBusy as exc:
            out["b_refused"] = str(exc)
        t.join()
        after = {e["refresh_id"] for e in budget.standing(meta, key, 1000.0).entries}
        out["new_reservations"] = after - before
        out["c"] = run_refresh(None, wd, cfg_override=cfg, instance=inst, log=lambda m: None)
        # Now the latest spec is C's. A run tagged with A's refresh regenerates A's shards.
        defs = build_definitions(config_file=str(wd / "effective-synth.yaml"), workdir=str(wd))
        rid_a = out["a"]["refresh_id"]
        spec = read_json(wd / "runs" / rid_a / "spec.json")
        res = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=["synthetic_shards"],
            instance=inst,
            resources=defs.resources,
            tags={
                REFRESH_TAG: rid_a,
                "dagster/asset_partition_range_start": "00000",
                "dagster/asset_partition_range_end": f"{spec['shards'] - 1:05d}",
            },
            raise_on_error=False,
        )
        out["rerun"] = res
        out["rerun_rid"] = [
            m.metadata["refresh_id"].value
            for m in res.asset_materializations_for_node("synthetic_shards")
        ]
    return wd, out


def test_a_second_refresh_at_once_is_refused_before_it_reserves(two_refreshes):
    _, out = two_refreshes
    assert "another refresh is running on work directory" in out["b_refused"]
    assert out["new_reservations"] == {out["a"]["refresh_id"]}  # B reserved nothing
    assert out["a"]["passed"]


def test_each_refresh_has_its_own_spec_shards_report_and_summary(two_refreshes):
    wd, out = two_refreshes
    a, c = out["a"]["refresh_id"], out["c"]["refresh_id"]
    assert a != c
    for rid in (a, c):
        d = wd / "runs" / rid
        assert read_json(d / "spec.json")["refresh_id"] == rid
        assert read_json(d / "summary.json")["refresh_id"] == rid
        assert read_json(d / "report" / "privacy_report.json")["refresh_id"] == rid
        assert list((d / "shards").glob("*/part-*.parquet"))


def test_a_run_tagged_with_a_refresh_works_on_it_not_on_the_latest(two_refreshes):
    _, out = two_refreshes
    assert out["rerun"].success
    assert set(out["rerun_rid"]) == {out["a"]["refresh_id"]}  # not C's, the latest spec


def test_session_locks_are_released_when_the_block_ends(tmp_path, demo_url):
    url = pg.resolve_url(demo_url, tmp_path)
    with pg.session_locks(url, {"x": "synth-test:x"}):
        with pytest.raises(RefreshBusy, match="another refresh is running on x"):
            with pg.session_locks(url, {"x": "synth-test:x"}):
                pass
    with pg.session_locks(url, {"x": "synth-test:x"}):  # free again
        pass
