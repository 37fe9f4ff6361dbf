"""Preflight: whatever the config and the reflected schema can refuse is refused before any
budget is reserved and before anything is written, one line per problem, exit code 2."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synth_assets.cli import main
from synth_assets.core import budget, pg
from synth_assets.core.audit import list_events
from synth_assets.core.config import GATE_RANGES, load_config, parse_config, read_yaml
from synth_assets.core.errors import RunFailed
from synth_assets.core.evaluate import GATE_SPECS
from synth_assets.core.preflight import database_address, preflight, same_database
from synth_assets.orchestrate import run_refresh
from synth_assets_tests.conftest import LOOSE_GATES, SESSION, make_config

CUSTOMERS = """
CREATE TABLE {s}.customers (id int PRIMARY KEY, email text NOT NULL, segment text NOT NULL,
                            joined timestamptz NOT NULL);
CREATE TABLE {s}.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES {s}.customers,
                         amount numeric(10,2) NOT NULL, at timestamptz NOT NULL);
"""
SCHEMAS = {
    "pf_ok": CUSTOMERS,
    "pf_inet": CUSTOMERS + "ALTER TABLE {s}.orders ADD COLUMN peer inet NOT NULL;",
    "pf_nokey": "CREATE TABLE {s}.events (who text NOT NULL, at timestamptz NOT NULL);",
    "pf_selfref": CUSTOMERS
    + "CREATE TABLE {s}.staff (id int PRIMARY KEY, boss int NOT NULL REFERENCES {s}.staff);",
    # A cycle of NOT NULL foreign keys between two tables: the engine generates it (deferred FK).
    "pf_cycle": CUSTOMERS
    + """CREATE TABLE {s}.store (id int PRIMARY KEY, manager int NOT NULL);
         CREATE TABLE {s}.clerk (id int PRIMARY KEY, store int NOT NULL REFERENCES {s}.store);
         ALTER TABLE {s}.store ADD FOREIGN KEY (manager) REFERENCES {s}.clerk;""",
    # Two equally plausible privacy units: only sampled roles can tell (after the reservation).
    "pf_ambiguous": """
        CREATE TABLE {s}.plane (tail text PRIMARY KEY, seats int NOT NULL);
        CREATE TABLE {s}.carrier (code text PRIMARY KEY, label text NOT NULL);
        CREATE TABLE {s}.flight (id int PRIMARY KEY, tail text NOT NULL REFERENCES {s}.plane,
                                 code text NOT NULL REFERENCES {s}.carrier, delay int);""",
}
READER = "pf_reader"  # a non-superuser source role, over the embedded server's Unix socket


@pytest.fixture(scope="session")
def src(pg_workdir) -> str:
    """A source database with one small schema per case (tables empty: preflight reads no row)."""
    url = pg.resolve_url("embedded:///pf_src", pg_workdir)
    with pg.connect(url, autocommit=True) as conn:
        for schema, ddl in SCHEMAS.items():
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};")
            conn.execute(ddl.format(s=schema))
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone():
            conn.execute(f"CREATE ROLE {READER} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA pf_ok TO {READER}")
        conn.execute(f"GRANT SELECT ON pf_ok.customers TO {READER}")  # not pf_ok.orders
    return url


def _config(url: str, schema: str = "pf_ok", **sections) -> dict:
    data = {
        "source": {"url": url, "schema": schema},
        "target": {"url": SESSION["target"]},
        "privacy": {"annual_epsilon_cap": 1000.0},
        "generation": {"shards": 1},
        "gates": dict(LOOSE_GATES),
    }
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v}
    return data


def _ledger(source_url: str, schema: str) -> list[tuple]:
    """Every ledger row of a source (any status), from the session's meta database."""
    key, _ = budget.source_key(source_url, schema)
    with pg.connect(SESSION["target"]) as conn:
        if not conn.execute("SELECT to_regclass('synth_budget.spend') IS NOT NULL").fetchone()[0]:
            return []
        return conn.execute(
            "SELECT status, epsilon, note FROM synth_budget.spend WHERE source_key = %s", (key,)
        ).fetchall()


def _nothing_written(workdir) -> bool:
    return not any(
        (workdir / d).exists() for d in ("runs", "dagster_home", "pg", "effective-synth.yaml")
    )


@pytest.fixture
def refuse(workdir, tmp_path, capsys, src):
    """Run a refresh that must be refused in preflight; return its stderr."""

    def run(data: dict | str, *options: str, schema: str = "pf_ok") -> str:
        path = tmp_path / "synth.yaml"
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
        source = data["source"]["url"] if isinstance(data, dict) else src
        args = ["refresh", "--source", source, "--config", str(path), "--workdir", str(workdir)]
        before = _ledger(source, schema)
        assert main([*args, *options]) == 2
        err = capsys.readouterr().err
        assert _ledger(source, schema) == before, "preflight must reserve nothing"
        assert _nothing_written(workdir)
        return err

    return run


# --- every table and column the config names exists ------------------------------------------


@pytest.mark.parametrize(
    "section",
    [
        {"columns": {"customers.emial": "email"}},
        {"bounds": {"orders.amout": [0, 100]}},
        {"overrides": {"null_rate": {"orders.amout": 0.1}}},
        {"overrides": {"categorical": {"customers.segmnt": {"a": 1}}}},
        {"public": {"values": {"customers.segmnt": ["a", "b"]}}},
    ],
    ids=["columns", "bounds", "null_rate", "categorical", "public.values"],
)
def test_an_unknown_column_in_any_per_column_setting_is_refused_before_the_budget(
    refuse, src, section
):
    err = refuse(_config(src, **section))
    assert "preflight refused the refresh (1 problem" in err
    assert "names no column of table" in err and "did you mean" in err


def test_every_problem_is_listed_once_in_one_message(refuse, src):
    err = refuse(
        _config(
            src,
            columns={"customers.emial": "email", "orders.amount": "datetime"},
            bounds={"customers.segment": [0, 1]},
            overrides={"null_rate": {"orders.at": 0.2}, "rows": {"ordres": 5}},
        )
    )
    lines = [ln for ln in err.splitlines() if ln.startswith("  - ")]
    assert "(5 problems;" in err and len(lines) == 5
    assert any("'customers.emial' names no column" in ln for ln in lines)
    assert any("'orders.amount' = datetime needs a date or timestamp column" in ln for ln in lines)
    assert any("bounds: 'customers.segment' gives numbers" in ln for ln in lines)
    assert any("orders.at is NOT NULL in the source" in ln for ln in lines)
    assert any("'ordres'" in ln and "did you mean orders?" in ln for ln in lines)


# --- gates, duplicate keys, reserved schemas, scale -------------------------------------------


@pytest.mark.parametrize(
    "gates,message",
    [
        (
            {"dcr_share_max": -1},
            r"gates.dcr_share_max = -1 is out of range: use a value in \[0, 1\]",
        ),
        ({"mia_auc_max": 1.5}, r"gates.mia_auc_max = 1.5 is out of range"),
        (
            {"dcr_share_mx": 0.9},
            r"gates.dcr_share_mx is not a gate \(did you mean dcr_share_max\?\)",
        ),
    ],
)
def test_a_gate_out_of_range_or_unknown_is_refused(refuse, src, gates, message):
    import re

    assert re.search(message, refuse(_config(src, gates=gates)))


def test_every_gate_of_the_evaluator_has_a_range_and_no_other():
    assert set(GATE_RANGES) == {g.key for g in GATE_SPECS}


def test_a_duplicated_yaml_key_is_refused_naming_it(refuse, src):
    text = yaml.safe_dump(_config(src), sort_keys=False).replace(
        "privacy:\n", "privacy:\n  epsilon: 1\n  epsilon: 3\n", 1
    )
    err = refuse(text)
    assert "duplicate key privacy.epsilon at line" in err and "(first at line" in err


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "any.yaml"
    path.write_text("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n")
    assert read_yaml(path) == {"a": {"b": 1}, "c": {"b": 2}}


@pytest.mark.parametrize(
    "schema",
    ["public", "synth_budget", "synth_audit", "synth_meta", "information_schema", "pg_temp_x"],
)
def test_a_reserved_target_schema_is_refused(refuse, src, schema):
    assert f"target schema {schema!r} is reserved" in refuse(
        _config(src, target={"schema": schema})
    )


@pytest.mark.parametrize("scale", ["inf", "nan", "0", "-1"])
def test_a_scale_that_is_not_a_finite_positive_number_is_refused(refuse, src, scale):
    err = refuse(_config(src), "--scale", scale)
    assert "generation.scale:" in err and "Traceback" not in err


# --- target and audit database are never the source ------------------------------------------


def _same_db_forms(src: str) -> list[tuple[str, str]]:
    spelled = src.replace("postgres:@", "postgres@") + "&connect_timeout=5"
    return [("target.url", src), ("target.url", spelled), ("audit.url", spelled)]


@pytest.mark.parametrize("form", range(3))
def test_a_target_or_audit_database_equal_to_the_source_is_refused_before_anything_is_created(
    refuse, src, form
):
    key, url = _same_db_forms(src)[form]
    section = key.split(".")[0]
    err = refuse(_config(src, **{section: {"url": url}}))
    assert f"{key} " in err and "is the source database" in err
    with pg.connect(src) as conn:
        made = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('synth_budget', 'synth_audit', 'synth_meta')"
        ).fetchall()
    assert made == []


def test_an_embedded_target_naming_the_source_database_is_refused(
    pg_workdir, workdir, tmp_path, capsys, src
):
    data = _config(
        src, target={"url": "embedded:///pf_src"}, secrets={"path": str(workdir / "secrets")}
    )
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(data))
    code = main(["refresh", "--source", src, "--config", str(path), "--workdir", str(pg_workdir)])
    assert code == 2
    assert "target.url embedded:///pf_src is the source database" in capsys.readouterr().err
    assert _ledger(src, "pf_ok") == []


def test_urls_are_compared_after_normalisation(tmp_path, monkeypatch):
    monkeypatch.delenv("PGPORT", raising=False)
    a = database_address("postgresql://u:secret@LOCALHOST/db", tmp_path)
    b = database_address("postgresql://other@127.0.0.1:5432/db?sslmode=require", tmp_path)
    assert a == b
    sock = str((tmp_path / "pg").resolve())
    assert database_address("embedded:///db", tmp_path) == database_address(
        f"postgresql://postgres@/db?host={sock}", tmp_path
    )
    assert database_address("postgresql://u@h:5433/db", tmp_path)[0] == {("h", "5433")}


def test_the_live_check_recognises_one_database_however_it_is_spelled(src, meta_url):
    assert same_database(src, src.replace("postgres:@", "postgres@") + "&application_name=x")
    assert not same_database(src, meta_url)


# --- what the generator cannot fill, or the schema cannot offer -------------------------------


def test_a_not_null_column_the_generator_cannot_fill_is_named(refuse, src):
    err = refuse(_config(src, "pf_inet"), schema="pf_inet")
    assert "orders.peer is NOT NULL of type inet, which the generator cannot fill" in err


def test_a_schema_without_a_single_column_key_is_refused(refuse, src):
    err = refuse(_config(src, "pf_nokey"), schema="pf_nokey")
    assert "no table of schema 'pf_nokey' has a one-column primary key" in err


def test_a_not_null_self_reference_is_refused(refuse, src):
    err = refuse(_config(src, "pf_selfref"), schema="pf_selfref")
    assert "staff.boss is a NOT NULL self-reference (staff_boss_fkey)" in err


def test_a_cycle_of_not_null_foreign_keys_passes_preflight(workdir, src):
    cfg = make_config(src, source={"url": src, "schema": "pf_cycle"})
    assert set(preflight(cfg, workdir).tables) == {"customers", "orders", "store", "clerk"}


# --- the source role ---------------------------------------------------------------------------


def test_a_source_role_that_cannot_read_a_table_or_prove_the_target_is_refused(refuse, src):
    reader = src.replace("postgres:@", f"{READER}@")
    err = refuse(_config(reader))
    assert f"source role {READER} cannot read pf_ok.orders" in err
    assert "GRANT pg_read_all_settings" in err


# --- the budget --------------------------------------------------------------------------------


def test_four_refreshes_with_a_typo_do_not_lock_the_source_out(refuse, workdir, src):
    bad = _config(src, privacy={"annual_epsilon_cap": 4.0}, bounds={"orders.amout": [0, 9]})
    before = len([e for e in list_events(SESSION["target"]) if e.kind == "refusal"])
    for _ in range(4):
        refuse(bad)
    key, _ = budget.source_key(src, "pf_ok")
    assert budget.standing(SESSION["target"], key, 4.0).spent == 0
    # every refusal is in the audit log (its database exists and is not the source)
    refusals = [e for e in list_events(SESSION["target"]) if e.kind == "refusal"][before:]
    assert len(refusals) == 4 and all(
        "orders.amout" in " ".join(e.payload["problems"]) for e in refusals
    )
    fixed = parse_config(_config(src, privacy={"annual_epsilon_cap": 4.0}), "fixed")
    assert "orders" in preflight(fixed, workdir).tables


def test_a_refresh_that_fails_before_measuring_releases_its_reservation(workdir, src):
    cfg = make_config(src, source={"url": src, "schema": "pf_ambiguous"})
    with dg.DagsterInstance.ephemeral() as inst, pytest.raises(RunFailed) as failed:
        run_refresh(None, workdir, cfg_override=cfg, instance=inst, log=lambda m: None)
    assert "ambiguous" in str(failed.value) and "reservation was released" in str(failed.value)
    [(status, epsilon, note)] = _ledger(src, "pf_ambiguous")
    assert (status, epsilon) == ("released", 0.0)
    assert note.startswith("released unused: reserved epsilon=1;") and "ambiguous" in note
    key, _ = budget.source_key(src, "pf_ambiguous")
    assert budget.standing(SESSION["target"], key, 4.0, datetime.now(UTC)).spent == 0


def test_a_refresh_that_fails_before_profiling_releases_its_reservation(workdir, src, monkeypatch):
    from synth_assets.core.errors import SourceError
    from synth_assets.defs.profile import assets as profile_assets

    def lost_connection(*args, **kwargs):
        raise SourceError("the source went away while reading roles")

    monkeypatch.setattr(profile_assets, "infer_roles", lost_connection)
    cfg = make_config(src, source={"url": src, "schema": "pf_cycle"})
    with dg.DagsterInstance.ephemeral() as inst, pytest.raises(RunFailed, match="released"):
        run_refresh(None, workdir, cfg_override=cfg, instance=inst, log=lambda m: None)
    [(status, epsilon, note)] = _ledger(src, "pf_cycle")
    assert (status, epsilon) == ("released", 0.0) and "source_schema" in note
    # the audit log shows both: what was reserved, and that it was released and why
    by_kind = {}
    for ev in list_events(SESSION["target"]):
        by_kind.setdefault(ev.kind, []).append(ev)
    released = by_kind["reservation_released"][-1]
    assert "source_schema" in released.payload["reason"]
    assert any(e.refresh_id == released.refresh_id for e in by_kind["reservation"])


def test_a_released_reservation_is_reserved_again_and_a_spent_one_is_never_released(meta_url):
    url, rid = "postgresql://reader@127.0.0.1:1/prod_release", "r20260101T000000Z-rel001"
    budget.reserve(meta_url, rid, url, "public", 1.0, 1e-6, 4.0)
    assert budget.release(meta_url, rid, "test") and not budget.release(meta_url, rid, "again")
    budget.reserve(meta_url, rid, url, "public", 1.0, 1e-6, 4.0)  # a retry of the same refresh
    key, _ = budget.source_key(url, "public")
    assert budget.standing(meta_url, key, 4.0).spent == 1.0
    budget.settle(meta_url, rid, 0.9)
    assert not budget.release(meta_url, rid, "after measuring")
    assert budget.standing(meta_url, key, 4.0).spent == pytest.approx(0.9)


def test_the_demo_configuration_passes_preflight(workdir, demo_url):
    data = load_config(Path(__file__).parents[1] / "synth.yaml").to_json()
    data["source"]["url"] = demo_url
    data["target"]["url"] = SESSION["target"]
    model = preflight(parse_config(data, "synth.yaml"), workdir)
    assert {"customers", "accounts", "merchants"} <= set(model.tables)


# --- a Kubernetes deployment --------------------------------------------------------------------


def test_a_kubernetes_deployment_refuses_what_one_pod_would_keep_to_itself(
    refuse, src, monkeypatch
):
    """Each pod would start its own empty embedded database: the annual cap would never bind
    and the audit chain would restart in every pod."""
    monkeypatch.setenv("SYNTH_DEPLOYMENT", "kubernetes")
    err = refuse(_config(src, audit={"url": "embedded:///pf_audit"}))
    assert "audit.url embedded:///pf_audit is an embedded database" in err
    assert "set SYNTH_AUDIT_URL from a Secret" in err
    assert "secrets.backend is local" in err
    assert "artifacts.store is not an s3:// location" in err
    monkeypatch.delenv("SYNTH_DEPLOYMENT")
    err = refuse(_config(src, audit={"url": "embedded:///pf_audit"}, privacy={"epsilon": -1}))
    assert "embedded database" not in err  # local: embedded databases are the default
