"""The demo graph on dagster-postgres instance storage (the production storage) on embedded PostgreSQL."""

import dagster as dg
import yaml

from synth_assets.core import pg
from synth_assets.orchestrate import run_refresh
from synth_assets_tests.conftest import make_config


def test_refresh_runs_with_dagster_postgres_storage(tmp_path, workdir, demo_url, pg_workdir):
    # dagster-postgres speaks psycopg2 (SQLAlchemy 2.1 would default to psycopg 3, whose server-side
    # parameters break its NOTIFY): name the driver, as deploy/dagster.yaml does with `scheme`.
    storage_url = pg.resolve_url("embedded:///dagster_storage", pg_workdir).replace(
        "postgresql://", "postgresql+psycopg2://", 1
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        yaml.safe_dump(
            {
                "storage": {"postgres": {"postgres_url": storage_url}},
                "telemetry": {"enabled": False},
            }
        )
    )
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert type(inst.run_storage).__name__ == "PostgresRunStorage"
        summary = run_refresh(
            None, workdir, cfg_override=make_config(demo_url), instance=inst, log=lambda m: None
        )
        assert summary["passed"]
        runs = inst.get_runs()
        assert len(runs) >= 2 and all(r.is_success for r in runs)
        assert inst.get_latest_materialization_event(dg.AssetKey("synthetic_shards")) is not None
