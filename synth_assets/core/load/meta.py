"""Metadata in the target: ``synth_meta`` and the markers that prove a schema is ours.

Every schema the tool creates carries a ``COMMENT`` starting with :data:`SCHEMA_MARKER` and a
row in ``synth_meta.managed_schemas``; nothing is ever replaced or dropped without both.
"""

from __future__ import annotations

import hashlib

import psycopg

from .errors import LoadRefused

SCHEMA_MARKER = "synth_assets staging schema"
META_SCHEMA = "synth_meta"

_META_DDL = """
CREATE SCHEMA IF NOT EXISTS synth_meta;
COMMENT ON SCHEMA synth_meta IS 'synth_assets load metadata';
CREATE TABLE IF NOT EXISTS synth_meta.load_runs (
  load_id bigserial PRIMARY KEY,
  refresh_id text NOT NULL,
  schema_name text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'loaded', 'failed', 'abandoned', 'torn_down')),
  spec_hash text NOT NULL,
  shard_hashes jsonb NOT NULL,
  rows jsonb,
  durations jsonb,
  actor text NOT NULL,
  run_id text,
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS synth_meta.managed_schemas (
  schema_name text PRIMARY KEY,
  load_id bigint NOT NULL REFERENCES synth_meta.load_runs (load_id),
  refresh_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS synth_meta.teardowns (
  teardown_id bigserial PRIMARY KEY,
  mode text NOT NULL CHECK (mode IN ('teardown', 'emergency')),
  schemas text[] NOT NULL,
  artifacts text[] NOT NULL DEFAULT '{}',
  actor text NOT NULL,
  run_id text,
  at timestamptz NOT NULL DEFAULT now()
);
"""
_META_LOCK = 0x5A7A_0E71


def ensure_meta(conn: psycopg.Connection) -> None:
    """Create ``synth_meta`` and its tables once (committed)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_META_LOCK,))
        if conn.execute("SELECT to_regclass('synth_meta.teardowns') IS NULL").fetchone()[0]:
            conn.execute(_META_DDL)


def _managed(conn: psycopg.Connection, names: list[str]) -> dict[str, bool | None]:
    """For each existing schema of ``names``: True when this tool created it, else False."""
    rows = conn.execute(
        "SELECT n.nspname, coalesce(obj_description(n.oid, 'pg_namespace'), '') FROM pg_namespace n "
        "WHERE n.nspname = ANY(%s)",
        (names,),
    ).fetchall()
    has_meta = conn.execute(
        "SELECT to_regclass('synth_meta.managed_schemas') IS NOT NULL"
    ).fetchone()[0]
    listed: set[str] = set()
    if has_meta:
        listed = {
            r[0]
            for r in conn.execute(
                "SELECT schema_name FROM synth_meta.managed_schemas WHERE schema_name = ANY(%s)",
                (names,),
            )
        }
    return {name: comment.startswith(SCHEMA_MARKER) and name in listed for name, comment in rows}


def _ours_or_refuse(
    conn: psycopg.Connection, names: list[str], where: str, then: str
) -> dict[str, bool | None]:
    """``_managed(conn, names)``, refused when one of them exists but this tool did not create
    it: "schema(s) <those> <where> were not created by synth_assets: <then>"."""
    state = _managed(conn, names)
    foreign = sorted(n for n, mine in state.items() if not mine)
    if foreign:
        raise LoadRefused(
            f"schema(s) {', '.join(foreign)} {where} were not created by synth_assets: {then}"
        )
    return state


def _outside_dependents(conn: psycopg.Connection, schema: str) -> list[str]:
    """Objects outside ``schema`` that a DROP … CASCADE of it would also remove (views, FKs, …)."""
    rows = conn.execute(
        """
        WITH nsp AS (SELECT oid FROM pg_namespace WHERE nspname = %(s)s),
        objs AS (
          SELECT 'pg_class'::regclass::oid AS classid, c.oid AS objid FROM pg_class c, nsp WHERE c.relnamespace = nsp.oid
          UNION ALL
          SELECT 'pg_type'::regclass::oid, t.oid FROM pg_type t, nsp WHERE t.typnamespace = nsp.oid)
        SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d JOIN objs o ON d.refclassid = o.classid AND d.refobjid = o.objid, nsp
        WHERE d.deptype = 'n'
          AND NOT EXISTS (SELECT 1 FROM objs o2 WHERE o2.classid = d.classid AND o2.objid = d.objid)
          AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (
                SELECT 1 FROM pg_constraint k WHERE k.oid = d.objid AND k.connamespace = nsp.oid))
          AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (
                SELECT 1 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
                WHERE r.oid = d.objid AND c.relnamespace = nsp.oid))
          AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (
                SELECT 1 FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
                WHERE a.oid = d.objid AND c.relnamespace = nsp.oid))
        ORDER BY 1
        """,
        {"s": schema},
    ).fetchall()
    return [r[0] for r in rows]


def _lock_key(schema: str) -> int:
    """The advisory lock that serialises loads and teardowns of one staging schema."""
    return int.from_bytes(
        hashlib.sha256(f"synth_assets/{schema}".encode()).digest()[:8], "big", signed=True
    )
