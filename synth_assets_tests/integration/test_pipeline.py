"""Real Dagster runs (ephemeral instance) on a real embedded PostgreSQL."""

import hashlib
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from synth_assets.core import pg
from synth_assets.core.errors import SecretsError
from synth_assets.core.generate import generate_shard
from synth_assets.core.schema import SchemaModel
from synth_assets.core.secrets import init_local_secrets, new_master_seed
from synth_assets.core.store import read_json
from synth_assets.definitions import build_definitions
from synth_assets.orchestrate import run_refresh
from synth_assets_tests.conftest import make_config
from synth_assets_tests.shop_schema import SHOP_BOUNDS, SHOP_PUBLIC

# What each refresh's Dagster instance recorded (runs by job, staging metadata), by work dir.
RECORDED: dict[Path, dict] = {}


def _refresh(tmp_path_factory, url, **sections):
    wd = tmp_path_factory.mktemp("wd")
    init_local_secrets(wd / "secrets")
    with dg.DagsterInstance.ephemeral() as inst:
        summary = run_refresh(
            None, wd, cfg_override=make_config(url, **sections), instance=inst, log=lambda m: None
        )
        meta = {}
        for name in ("source_schema", "metrics_pack", "staging_schema"):
            ev = inst.get_latest_materialization_event(dg.AssetKey(name))
            meta[name] = ev.asset_materialization.metadata if ev else {}
        RECORDED[wd] = {
            "jobs": sorted(r.job_name for r in inst.get_runs()),
            "staging": meta["staging_schema"],
            "meta": meta,
        }
    return wd, summary


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, demo_url):
    return _refresh(tmp_path_factory, demo_url)


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory, shop_url):
    return _refresh(
        tmp_path_factory,
        shop_url,
        source={"schema": "shop"},
        public=SHOP_PUBLIC,
        bounds=SHOP_BOUNDS,
    )


def _frames(refresh_dir: Path, model: SchemaModel) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(str(refresh_dir / "shards" / t / "*.parquet")) for t in model.tables}


def _assert_relational(refresh_dir: Path):
    spec = read_json(refresh_dir / "spec.json")
    model = SchemaModel.from_dict(spec["schema"])
    dfs = _frames(refresh_dir, model)
    for t, tab in model.tables.items():
        assert dfs[t].height > 0, t
        for keyset in tab.unique_sets:
            assert not dfs[t].drop_nulls(list(keyset)).select(list(keyset)).is_duplicated().any(), (
                t,
                keyset,
            )
        for fk in tab.foreign_keys:
            vals = dfs[t][fk.columns[0]].drop_nulls()
            parent = dfs[fk.ref_table][fk.ref_columns[0]]
            assert vals.is_in(parent.implode()).all(), (t, fk.name)


def test_summary_lists_refresh_budget_tables_checks_and_artifacts(demo_run):
    wd, s = demo_run
    on_disk = json.loads(Path(s["summary_path"]).read_text())
    assert on_disk["refresh_id"] == s["refresh_id"]
    assert Path(s["summary_path"]) == wd / "runs" / s["refresh_id"] / "summary.json"
    assert 0 < on_disk["epsilon_spent"] <= 1.0 and on_disk["delta"] == 1e-6
    assert set(on_disk["tables"]) == {"customers", "accounts", "cards", "merchants", "transactions"}
    assert {"metrics_pack_no_pii", "budget_within_cap", "shards_valid"} <= set(on_disk["checks"])
    assert all(c["passed"] for c in on_disk["checks"].values())
    assert Path(on_disk["artifacts"]).is_dir()


def test_cli_runs_are_the_named_jobs_and_the_lineage_starts_at_the_source_database(demo_run):
    wd, summary = demo_run
    assert RECORDED[wd]["jobs"] == ["generate_and_load", "publish_refresh", "quarterly_refresh"]
    meta = RECORDED[wd]["staging"]
    assert meta["dagster/row_count"].value == sum(t["rows"] for t in summary["tables"].values()) > 0
    assert {f"columns/{t}" for t in summary["tables"]} <= set(meta)
    defs = build_definitions(workdir=str(wd))
    graph = defs.resolve_asset_graph()
    head = dg.AssetKey("production_database")
    assert graph.get(head).is_external and not graph.get(head).is_materializable
    assert head in graph.get(dg.AssetKey("source_schema")).parent_keys
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"measure", "synthesize", "release"}
    assert all(graph.get(k).owners for k in graph.get_all_asset_keys())
    # the budget in plain sight on the assets: rounded epsilon, the unit, the reference tables'
    # own epsilon, what the source has left this year
    pack, schema = RECORDED[wd]["meta"]["metrics_pack"], RECORDED[wd]["meta"]["source_schema"]
    eps = pack["epsilon_spent"].value
    assert eps == round(eps, 4) and 0 < eps and "customers row" in pack["privacy_unit"].value
    assert pack["reference_epsilon_spent"].value > 0
    assert pack["reference_unit"].value == "one row of merchants"
    assert schema["annual_epsilon_remaining"].value >= 0
    fresh = graph.get(dg.AssetKey("staging_schema")).freshness_policy
    assert fresh.fail_window.to_timedelta().days == 99  # a quarter and a week


def test_demo_shards_have_unique_keys_and_closed_foreign_keys(demo_run):
    wd, s = demo_run
    _assert_relational(wd / "runs" / s["refresh_id"])


def test_second_schema_with_self_reference_and_cycle_is_relational(shop_run):
    wd, s = shop_run
    assert s["passed"]
    _assert_relational(wd / "runs" / s["refresh_id"])
    members = pl.read_parquet(
        str(wd / "runs" / s["refresh_id"] / "shards" / "members" / "*.parquet")
    )
    assert members["team_id"].null_count() == 0  # NOT NULL side of the cycle is filled


def test_metrics_pack_holds_no_demo_pii_or_memo(demo_run, demo_url):
    wd, s = demo_run
    text = (wd / "runs" / s["refresh_id"] / "metrics_pack.json").read_text()
    pack_strings = set()

    def walk(o):
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, str):
            pack_strings.add(o)

    pack = json.loads(text)
    walk({k: v for k, v in pack.items() if k != "schema"})
    # A released category value of a non-PII column may coincide with free text (the memo
    # "savings" and the account kind "savings"): that value was released for its own column.
    released = {
        v
        for tp in pack["tables"].values()
        for e in tp["columns"].values()
        if e.get("kind") == "categorical"
        for v in e.get("values", [])
    }
    with pg.connect(demo_url) as conn:
        real = {
            r[0]
            for r in conn.execute(
                "SELECT email FROM customers UNION SELECT full_name FROM customers UNION SELECT phone FROM customers "
                "UNION SELECT national_id FROM customers UNION SELECT street_address FROM customers "
                "UNION SELECT memo FROM transactions UNION SELECT iban FROM accounts UNION SELECT card_number FROM cards"
            )
            if r[0]
        }
    assert not (pack_strings & real) - released, sorted((pack_strings & real) - released)[:20]
    assert not any(e in text for e in list(real)[:2000] if "@" in e)


def test_budget_ledger_adds_up_to_the_reported_epsilon(demo_run):
    from synth_assets.core.dp import epsilon_for_rho

    wd, s = demo_run
    led = read_json(wd / "runs" / s["refresh_id"] / "metrics_pack.json")["ledger"]
    rho = sum(e["rho"] for e in led["entries"])
    assert rho <= led["rho_budget"] * (1 + 1e-9)
    assert epsilon_for_rho(rho, led["delta_conversion"]) == pytest.approx(
        s["epsilon_spent"], abs=1e-9
    )
    assert {e["mechanism"] for e in led["entries"]} >= {
        "discrete_gaussian",
        "gaussian_threshold",
        "exponential_noisy_max",
    }


def test_same_sealed_seed_gives_identical_shards_and_another_seed_differs(demo_run, tmp_path):
    wd, s = demo_run
    spec = read_json(wd / "runs" / s["refresh_id"] / "spec.json")
    seed = new_master_seed()

    def digest(seed_bytes, out):
        res = generate_shard(spec, seed_bytes, 1, out)
        return {t: f["sha256"] for t, f in res["tables"].items()}

    a, b = digest(seed, tmp_path / "a"), digest(seed, tmp_path / "b")
    assert a == b
    for t in a:
        pa = tmp_path / "a" / "shards" / t / "part-00001.parquet"
        pb = tmp_path / "b" / "shards" / t / "part-00001.parquet"
        assert hashlib.sha256(pa.read_bytes()).digest() == hashlib.sha256(pb.read_bytes()).digest()
    c = digest(new_master_seed(), tmp_path / "c")
    assert all(a[t] != c[t] for t in a)


def test_missing_key_fails_the_dagster_run_and_writes_no_artifact(tmp_path, demo_url):
    cfg_file = tmp_path / "synth.yaml"
    cfg_file.write_text(f"source:\n  url: '{demo_url}'\n")
    defs = build_definitions(config_file=str(cfg_file), workdir=str(tmp_path))
    with dg.DagsterInstance.ephemeral() as inst:
        res = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=["source_schema", "metrics_pack"],
            instance=inst,
            resources=defs.resources,
            raise_on_error=False,
        )
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "synth-assets init" in str(failure.event_specific_data.error)
    assert not (tmp_path / "runs").exists()


def test_missing_key_stops_the_headless_refresh_before_anything_is_written(tmp_path, demo_url):
    with pytest.raises(SecretsError, match="synth-assets init"):
        run_refresh(None, tmp_path, cfg_override=make_config(demo_url), log=lambda m: None)
    assert not (tmp_path / "runs").exists()


def test_every_stage_is_in_the_hash_chained_audit_log(demo_run):
    from synth_assets.core.audit import list_events, verify_chain
    from synth_assets_tests.conftest import SESSION

    wd, s = demo_run
    kinds = [e.kind for e in list_events(SESSION["target"]) if e.refresh_id == s["refresh_id"]]
    assert kinds[:4] == ["reservation", "profile", "spec", "shards"]
    assert verify_chain(SESSION["target"]).ok


def test_shards_gate_fails_when_a_table_loses_its_fanout(demo_run, tmp_path):
    import shutil

    from synth_assets.core.gates import check_shards

    wd, s = demo_run
    src = wd / "runs" / s["refresh_id"]
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    spec = read_json(dst / "spec.json")
    for f in (dst / "shards" / "transactions").glob("part-*.parquet"):
        df = pl.read_parquet(f)
        df.head(df.height // 3).write_parquet(f)  # two thirds of the children vanish
    res = check_shards(spec, dst)
    assert not res.passed
    assert any(m.startswith("transactions:") and "fan-out gives" in m for m in res.failures)


def test_the_effective_config_is_readable_by_its_owner_only(demo_run):
    """It holds the source URL, password included: mode 0600, like the key file."""
    import stat

    wd, _ = demo_run
    path = wd / "effective-synth.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
