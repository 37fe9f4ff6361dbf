"""Staging load on embedded PostgreSQL: constraints replayed, atomic swap, refusals, teardown."""

import shutil
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from synth_assets.core import pg
from synth_assets.core.audit import AuditSigner, bind_audit_log, list_events, verify_chain
from synth_assets.core.load import (
    LoadRefused,
    check_schema_name,
    emergency_teardown,
    load_refresh,
    requalify,
    teardown,
)
from synth_assets.core.secrets import LocalSecrets, init_local_secrets
from synth_assets.core.store import read_json, write_json_atomic
from synth_assets.orchestrate import run_refresh
from synth_assets_tests.conftest import make_config
from synth_assets_tests.shop_schema import SHOP_BOUNDS, SHOP_PUBLIC

# At test size (1,500 customers) some categories do not clear the DP threshold and the generator
# falls back to a placeholder that violates the demo's CHECK constraints: fix them by override
# (post-processing, no budget), as an operator would.
DEMO_OVERRIDES = {
    "categorical": {
        "accounts.account_type": {"checking": 3, "savings": 2, "credit": 1},
        "accounts.status": {"active": 5, "dormant": 1},
        "cards.network": {"visa": 2, "mastercard": 1},
        "merchants.category_code": {"5411": 2, "5812": 1},
        "merchants.country": {"GB": 3, "IE": 1},
    }
}
SHOP_OVERRIDES = {"categorical": {"users.tier": {"free": 3, "plus": 2, "pro": 1}}}

CONSTRAINTS_SQL = """
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.convalidated
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.connamespace = %s::regnamespace ORDER BY 1, 2
"""


def _refresh(tmp_path_factory, url, **sections):
    wd = tmp_path_factory.mktemp("wd")
    init_local_secrets(wd / "secrets")
    with dg.DagsterInstance.ephemeral() as inst:
        s = run_refresh(
            None, wd, cfg_override=make_config(url, **sections), instance=inst, log=lambda m: None
        )
    rdir = wd / "runs" / s["refresh_id"]
    write_report(rdir, s["refresh_id"], passed=True)
    return rdir, s["refresh_id"]


def write_report(rdir: Path, rid: str, passed: bool) -> None:
    gates = {"dcr_share": {"passed": True}, "membership_auc": {"passed": passed}}
    write_json_atomic(
        rdir / "report" / "privacy_report.json",
        {"refresh_id": rid, "gates": gates, "passed": passed},
    )


@pytest.fixture(scope="module")
def demo_refresh(tmp_path_factory, demo_url):
    return _refresh(tmp_path_factory, demo_url, overrides=DEMO_OVERRIDES)


@pytest.fixture
def target(pg_workdir) -> str:
    """A fresh, empty target database."""
    return pg.resolve_url(f"embedded:///tgt_{uuid.uuid4().hex[:10]}", pg_workdir)


def _schemas(url: str) -> set[str]:
    with pg.connect(url) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
            )
        }


def _constraints(url: str, schema: str) -> list[tuple]:
    with pg.connect(url) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return conn.execute(CONSTRAINTS_SQL, (schema,)).fetchall()


def _counts(url: str, schema: str, tables) -> dict[str, int]:
    with pg.connect(url) as conn:
        return {
            t: conn.execute(f'SELECT count(*) FROM "{schema}"."{t}"').fetchone()[0] for t in tables
        }


def test_demo_load_replays_every_source_constraint_and_index(demo_refresh, demo_url, target):
    rdir, rid = demo_refresh
    res = load_refresh(rdir, rid, target, "synth", source_url=demo_url)
    src = _constraints(demo_url, "public")
    assert {r[2] for r in src} >= {"p", "u", "f", "c"}
    assert _constraints(target, "synth") == src
    with pg.connect(demo_url) as s, pg.connect(target) as t:
        want = {
            r[0]: r[1].replace("public.", "X.")
            for r in s.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
        got = {
            r[0]: r[1].replace("synth.", "X.")
            for r in t.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'synth'"
            )
        }
    assert got == want
    manifest_rows = {}
    for m in sorted((rdir / "shards").glob("manifest-*.json")):
        for tab, f in read_json(m)["tables"].items():
            manifest_rows[tab] = manifest_rows.get(tab, 0) + f["rows"]
    assert _counts(target, "synth", manifest_rows) == manifest_rows == res.rows


def test_load_metadata_and_audit_event_are_recorded(demo_refresh, demo_url, target):
    rdir, rid = demo_refresh
    res = load_refresh(
        rdir, rid, target, "synth", source_url=demo_url, actor="tester/CHG-1", run_id="run-1"
    )
    with pg.connect(target) as conn:
        row = conn.execute(
            "SELECT refresh_id, status, spec_hash, shard_hashes, rows, durations, actor, run_id "
            "FROM synth_meta.load_runs WHERE load_id = %s",
            (res.load_id,),
        ).fetchone()
    spec = read_json(rdir / "spec.json")
    assert row[:3] == (rid, "loaded", spec["content_hash"])
    assert set(row[3]) == set(res.rows) and all(
        len(h) == 64 for f in row[3].values() for h in f.values()
    )
    assert row[4] == res.rows and row[5]["total"] > 0 and row[6:] == ("tester/CHG-1", "run-1")
    events = list_events(target, rid)
    assert [e.kind for e in events] == ["load"] and events[0].payload["status"] == "loaded"
    assert verify_chain(target).ok


def test_second_load_swaps_and_keeps_the_previous_schema(demo_refresh, demo_url, target):
    rdir, rid = demo_refresh
    first = load_refresh(rdir, rid, target, "synth", source_url=demo_url)
    second = load_refresh(rdir, rid, target, "synth", source_url=demo_url)
    assert second.replaced_previous and not first.replaced_previous
    assert {"synth", "synth__prev"} <= _schemas(target) and "synth__next" not in _schemas(target)
    with pg.connect(target) as conn:  # FKs follow the renamed schemas (they reference OIDs)
        refs = conn.execute(
            "SELECT DISTINCT k.connamespace::regnamespace::text, r.relnamespace::regnamespace::text "
            "FROM pg_constraint k JOIN pg_class r ON r.oid = k.confrelid WHERE k.contype = 'f' "
            "AND k.connamespace::regnamespace::text IN ('synth', 'synth__prev')"
        ).fetchall()
    assert sorted(refs) == [("synth", "synth"), ("synth__prev", "synth__prev")]


def test_a_load_killed_inside_copy_leaves_the_live_schema_intact(demo_refresh, demo_url, target):
    rdir, rid = demo_refresh
    first = load_refresh(rdir, rid, target, "synth", source_url=demo_url)

    def explode(table: str, done: int, total: int) -> None:
        raise RuntimeError(f"simulated crash while copying {table}")

    with pytest.raises(RuntimeError, match="simulated crash"):
        load_refresh(rdir, rid, target, "synth", source_url=demo_url, progress=explode)
    assert _counts(target, "synth", first.rows) == first.rows
    assert _constraints(target, "synth") == _constraints(demo_url, "public")
    assert "synth__next" not in _schemas(target)
    with pg.connect(target) as conn:
        statuses = [
            r[0] for r in conn.execute("SELECT status FROM synth_meta.load_runs ORDER BY load_id")
        ]
        live = conn.execute(
            "SELECT load_id FROM synth_meta.managed_schemas WHERE schema_name = 'synth'"
        ).fetchone()
    assert statuses == ["loaded", "failed"] and live[0] == first.load_id


def test_a_failed_gate_in_the_report_refuses_and_writes_nothing(
    demo_refresh, demo_url, target, tmp_path
):
    rdir, rid = demo_refresh
    copy = tmp_path / rid
    shutil.copytree(rdir, copy)
    write_report(copy, rid, passed=False)
    before = _schemas(target)
    with pytest.raises(LoadRefused, match="membership_auc"):
        load_refresh(copy, rid, target, "synth", source_url=demo_url)
    (copy / "report" / "privacy_report.json").unlink()
    with pytest.raises(LoadRefused, match="no privacy report"):
        load_refresh(copy, rid, target, "synth", source_url=demo_url)
    write_report(copy, "r20200101T000000Z-000000", passed=True)
    with pytest.raises(LoadRefused, match="not " + rid):
        load_refresh(copy, rid, target, "synth", source_url=demo_url)
    assert _schemas(target) == before


def test_target_equal_to_source_is_refused_and_nothing_is_written(
    demo_refresh, demo_url, pg_workdir
):
    rdir, rid = demo_refresh
    before = _schemas(demo_url)
    with pytest.raises(LoadRefused, match="source"):
        load_refresh(rdir, rid, demo_url, "synth", source_url=demo_url)
    same_db_other_spelling = demo_url.replace("postgres:@", "postgres@")
    with pytest.raises(LoadRefused, match="source database"):
        load_refresh(rdir, rid, same_db_other_spelling, "synth", source_url=demo_url)
    assert _schemas(demo_url) == before


@pytest.mark.parametrize(
    "marker",
    [
        "COMMENT ON DATABASE {db} IS 'Payments PRODUCTION cluster'",
        "CREATE SCHEMA synth_meta; CREATE TABLE synth_meta.production_marker ()",
        "ALTER DATABASE {db} SET synth.environment = 'production'",
    ],
)
def test_a_production_marker_refuses_the_load(demo_refresh, demo_url, target, marker):
    rdir, rid = demo_refresh
    with pg.connect(target, autocommit=True) as conn:
        db = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(marker.format(db=f'"{db}"'))
    before = _schemas(target)
    with pytest.raises(LoadRefused, match="production"):
        load_refresh(rdir, rid, target, "synth", source_url=demo_url)
    assert _schemas(target) == before


@pytest.mark.parametrize(
    "name", ["Synth", "synth; drop schema public", "public", "pg_x", "a__next", "x" * 42, ""]
)
def test_unsafe_or_reserved_schema_names_are_refused(name):
    with pytest.raises(LoadRefused):
        check_schema_name(name)


def test_requalify_rewrites_schema_qualifiers_but_not_literals():
    text = "CHECK (((note)::text <> 'shop.x'::text) AND (tier = 'pro'::shop.tier)) REFERENCES \"shop\".users(id)"
    assert requalify(text, "shop", "s__next") == (
        "CHECK (((note)::text <> 'shop.x'::text) AND (tier = 'pro'::\"s__next\".tier)) "
        'REFERENCES "s__next".users(id)'
    )


def test_domains_are_recreated_inner_level_first_and_same_named_different_ones_refused():
    from synth_assets.core.load.ddl import _add_domains, _type_statements
    from synth_assets.core.schema import Column, Domain

    pos = Domain("shop", "pos", checks=(("pos_c", "CHECK ((VALUE > 0)) NOT VALID"),))
    qty = Domain("shop", "qty", True, "1", (("qty_c", "CHECK ((VALUE <= 'shop.x'::shop.big))"),))
    domains: dict = {}
    col = Column("n", "integer", "int4", False, domains=(qty, pos))
    assert _add_domains(domains, col, "integer", "s__next", "t.n") == '"s__next"."qty"'
    stmts = [s.as_string() for s in _type_statements("shop", "s__next", {}, domains)]
    assert stmts == [
        'CREATE DOMAIN "s__next"."pos" AS integer',
        'ALTER DOMAIN "s__next"."pos" ADD CONSTRAINT "pos_c" CHECK ((VALUE > 0)) NOT VALID',
        'CREATE DOMAIN "s__next"."qty" AS "s__next"."pos" DEFAULT 1 NOT NULL '
        'CONSTRAINT "qty_c" CHECK ((VALUE <= \'shop.x\'::"s__next".big))',
    ]
    other = Column("m", "integer", "int4", True, domains=(Domain("public", "pos"),))
    with pytest.raises(LoadRefused, match="two domains named pos.*shop.pos and public.pos"):
        _add_domains(domains, other, "integer", "s__next", "t.m")


def test_teardown_removes_exactly_the_schemas_the_tool_created(demo_refresh, demo_url, target):
    rdir, rid = demo_refresh
    load_refresh(rdir, rid, target, "synth", source_url=demo_url)
    load_refresh(rdir, rid, target, "synth", source_url=demo_url)
    load_refresh(rdir, rid, target, "other", source_url=demo_url)
    with pg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA keepme; CREATE TABLE keepme.t (x int); CREATE SCHEMA imposter")
    res = teardown(target, "synth", actor="tester")
    assert sorted(res.dropped) == ["synth", "synth__prev"]
    assert {"other", "keepme", "imposter", "synth_meta", "synth_audit"} <= _schemas(target)
    assert not {"synth", "synth__prev"} & _schemas(target)
    with pytest.raises(LoadRefused, match="not created by synth_assets"):
        teardown(target, "imposter")
    assert teardown(target, "synth").dropped == []
    with pg.connect(target) as conn:
        rec = conn.execute("SELECT mode, schemas, actor FROM synth_meta.teardowns").fetchall()
    assert rec == [("teardown", ["synth", "synth__prev"], "tester")]
    assert [e.payload["schemas"] for e in list_events(target) if e.kind == "teardown"] == [
        ["synth", "synth__prev"]
    ]


def test_emergency_teardown_removes_all_synthetic_schemas_and_artifacts(
    demo_refresh, demo_url, target, tmp_path
):
    rdir, rid = demo_refresh
    store = tmp_path / "runs"
    shutil.copytree(rdir, store / rid)
    (store / "not-a-refresh").mkdir()
    load_refresh(store / rid, rid, target, "synth", source_url=demo_url)
    load_refresh(store / rid, rid, target, "synth", source_url=demo_url)
    load_refresh(store / rid, rid, target, "team_b", source_url=demo_url)
    with pg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA keepme; CREATE TABLE keepme.t (x int)")
    res = emergency_teardown(target, store, actor="oncall")
    assert sorted(res.dropped) == ["synth", "synth__prev", "team_b"]
    assert _schemas(target) == {"public", "keepme", "synth_meta", "synth_audit"}
    assert (
        res.artifacts == [rid] and not (store / rid).exists() and (store / "not-a-refresh").is_dir()
    )
    ev = [e for e in list_events(target) if e.kind == "teardown"]
    assert ev[-1].payload["mode"] == "emergency" and ev[-1].payload["artifacts_deleted"] == [rid]
    assert verify_chain(target).ok


def test_shop_schema_loads_with_enum_self_reference_and_fk_cycle(
    tmp_path_factory, shop_url, target
):
    rdir, rid = _refresh(
        tmp_path_factory,
        shop_url,
        source={"schema": "shop"},
        overrides=SHOP_OVERRIDES,
        public=SHOP_PUBLIC,
        bounds=SHOP_BOUNDS,
    )
    load_refresh(rdir, rid, target, "shop_staging", source_url=shop_url)
    assert _constraints(target, "shop_staging") == _constraints(shop_url, "shop")
    with pg.connect(target) as conn:
        assert (
            conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                "attrelid = 'shop_staging.users'::regclass AND attname = 'tier'"
            ).fetchone()[0]
            == "shop_staging.tier"
        )


def test_the_embedded_server_writes_no_wal_for_tables_the_load_creates(meta_url):
    with psycopg.connect(meta_url) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "minimal"
        assert conn.execute("SHOW max_wal_size").fetchone()[0] == "4GB"


def test_staging_asset_alone_cannot_bypass_the_gates(demo_refresh, demo_url, tmp_path, pg_workdir):
    from synth_assets.defs.resources import SynthResource
    from synth_assets.defs.staging import staging_schema

    rdir, rid = demo_refresh
    wd = tmp_path / "wd"
    shutil.copytree(rdir, wd / "runs" / rid)
    write_report(wd / "runs" / rid, rid, passed=False)
    cfg = tmp_path / "synth.yaml"
    tgt = pg.resolve_url(f"embedded:///tgt_{uuid.uuid4().hex[:10]}", pg_workdir)
    cfg.write_text(f"source: {{url: '{demo_url}'}}\ntarget: {{url: '{tgt}'}}\n")
    with dg.DagsterInstance.ephemeral() as inst:
        inst.report_runless_asset_event(
            dg.AssetMaterialization("synthetic_shards", metadata={"refresh_id": rid})
        )
        res = dg.materialize(
            [staging_schema],
            instance=inst,
            raise_on_error=False,
            resources={"synth": SynthResource(config_file=str(cfg), workdir=str(wd))},
        )
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "did not pass its release gates" in str(failure.event_specific_data.error)
    assert not any(s.startswith("synth") for s in _schemas(tgt))


def test_copy_encoder_round_trips_every_supported_type(target, tmp_path):
    import polars as pl

    from synth_assets.core.load import COPY_SIGNATURE, COPY_TRAILER, ColumnPlan, encode_batch

    df = pl.DataFrame(
        {
            "i2": [1, None, -32768],
            "i4": [2_000_000_000, 0, None],
            "i8": [2**62, -(2**62), 7],
            "f8": [1.5, None, -0.25],
            "n": [12.34, -0.05, None],
            "nu": [1e-3, 123456789.125, 0.0],
            "b": [True, False, None],
            "d": pl.Series([0, 19000, None], dtype=pl.Int32).cast(pl.Date),
            "ts": pl.Series([0, 1_700_000_000_000_000, None]).cast(pl.Datetime("us")),
            "tz": pl.Series([1, None, 1_700_000_000_123_456]).cast(pl.Datetime("us", "UTC")),
            "u": [
                "00000000-0000-4000-8000-000000000001",
                None,
                "ffffffff-ffff-4fff-bfff-ffffffffffff",
            ],
            "t": ["héllo", None, ""],
            "j": ['{"a": 1}', None, "[]"],
            "ip": ["10.0.0.1", None, "::1"],
        }
    )
    kinds = [
        ("i2", "int2", "smallint"),
        ("i4", "int4", "integer"),
        ("i8", "int8", "bigint"),
        ("f8", "float8", "double precision"),
        ("n", "numeric", "numeric(12,2)"),
        ("nu", "numeric", "numeric"),
        ("b", "bool", "boolean"),
        ("d", "date", "date"),
        ("ts", "timestamp", "timestamp"),
        ("tz", "timestamptz", "timestamptz"),
        ("u", "uuid", "uuid"),
        ("t", "text", "varchar(10)"),
        ("j", "jsonb", "jsonb"),
        ("ip", "text", "text"),
    ]
    plans = [ColumnPlan(c, k, d, True, 2 if c == "n" else None) for c, k, d in kinds]
    batch = df.to_arrow().to_batches()[0]
    with psycopg.connect(target) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE TABLE rt (" + ", ".join(f"{c} {d}" for c, _, d in kinds) + ")")
        with conn.cursor().copy("COPY rt FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(COPY_SIGNATURE)
            cp.write(encode_batch(batch, plans, "rt"))
            cp.write(COPY_TRAILER)
        rows = conn.execute(
            "SELECT i2, i4, i8, f8, n::text, nu::text, b, d::text, ts::text, tz::text, "
            "u::text, t, j::text, ip FROM rt"
        ).fetchall()
    assert rows[0] == (
        1,
        2_000_000_000,
        2**62,
        1.5,
        "12.34",
        "0.001",
        True,
        "1970-01-01",
        "1970-01-01 00:00:00",
        "1970-01-01 00:00:00.000001+00",
        "00000000-0000-4000-8000-000000000001",
        "héllo",
        '{"a": 1}',
        "10.0.0.1",
    )
    assert rows[1] == (
        None,
        0,
        -(2**62),
        None,
        "-0.05",
        "123456789.125",
        False,
        "2022-01-08",
        "2023-11-14 22:13:20",
        None,
        None,
        None,
        None,
        None,
    )
    assert (
        rows[2][0] == -32768 and rows[2][4] is None and float(rows[2][5]) == 0 and rows[2][11] == ""
    )
    assert (
        rows[2][9] == "2023-11-14 22:13:20.123456+00"
        and rows[2][10] == "ffffffff-ffff-4fff-bfff-ffffffffffff"
    )


def test_teardown_job_and_command_drop_the_staging_schema(
    demo_refresh, demo_url, target, tmp_path, capsys
):
    import argparse

    from synth_assets.cli.ops import add_commands
    from synth_assets.defs.resources import SynthResource
    from synth_assets.defs.staging import emergency_teardown as emergency_job
    from synth_assets.defs.staging import teardown_staging

    init_local_secrets(tmp_path / "secrets")  # the load's and teardown's events are keyed
    bind_audit_log(AuditSigner(LocalSecrets(tmp_path / "secrets"), tmp_path / "audit"), target)
    rdir, rid = demo_refresh
    load_refresh(rdir, rid, target, "synth", source_url=demo_url)
    load_refresh(rdir, rid, target, "team_b", source_url=demo_url)
    resources = {"synth": SynthResource(workdir=str(tmp_path))}
    res = teardown_staging.execute_in_process(
        resources=resources,
        run_config={
            "ops": {
                "drop_staging_schema": {"config": {"schema_name": "synth", "target_url": target}}
            }
        },
    )
    assert res.success and "synth" not in _schemas(target) and "team_b" in _schemas(target)
    refused = emergency_job.execute_in_process(
        resources=resources,
        raise_on_error=False,
        run_config={"ops": {"remove_all_synthetic_data": {"config": {"target_url": target}}}},
    )
    assert not refused.success and "team_b" in _schemas(target)
    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(
        ["teardown", "--workdir", str(tmp_path), "--target", target, "--schema", "team_b"]
    )
    assert args.fn(args) == 0 and "dropped team_b" in capsys.readouterr().out
    assert not {"synth", "team_b"} & _schemas(target)


def test_wide_numeric_values_beyond_int64_load_exactly(target):
    """numeric(38,10) with values above ~4.6e6 (scaled past int64) crashed the encoder."""
    import polars as pl

    from synth_assets.core.load import COPY_SIGNATURE, COPY_TRAILER, ColumnPlan, encode_batch

    df = pl.DataFrame({"w": [12_345_678.5, -987_654_321.25, None, 4.0e17], "k": [1, 2, 3, 4]})
    plans = [
        ColumnPlan("w", "numeric", "numeric(38,10)", True, 10),
        ColumnPlan("k", "int8", "bigint", True, None),
    ]
    with psycopg.connect(target) as conn:
        conn.execute("CREATE TABLE wide_num (w numeric(38,10), k bigint)")
        with conn.cursor().copy("COPY wide_num FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(COPY_SIGNATURE)
            cp.write(encode_batch(df.to_arrow().to_batches()[0], plans, "wide_num"))
            cp.write(COPY_TRAILER)
        rows = conn.execute("SELECT w::text FROM wide_num ORDER BY k").fetchall()
    assert [r[0] for r in rows] == [
        "12345678.5000000000",
        "-987654321.2500000000",
        None,
        "400000000000000000.0000000000",
    ]
