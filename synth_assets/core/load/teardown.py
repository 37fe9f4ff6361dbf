"""Teardown: drop the staging schemas this tool created (and only those), and record it.

:func:`teardown` removes one staging schema with its ``__next``/``__prev`` and refuses when
anything outside them depends on them; :func:`emergency_teardown` removes every schema of ours
(with whatever depends on it) and every refresh's artifacts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from synth_assets.core.audit import append_event, default_actor, record_event
from synth_assets.core.errors import SynthError
from synth_assets.core.pg import connect, redact
from synth_assets.core.store import check_refresh_id

from .errors import LoadRefused
from .guards import check_schema_name
from .meta import _lock_key, _managed, _ours_or_refuse, _outside_dependents, ensure_meta


@dataclass
class TeardownResult:
    """What a teardown removed (and what it left alone)."""

    mode: str
    dropped: list[str]
    skipped: list[str]
    artifacts: list[str] = field(default_factory=list)
    also_removed: list[str] = field(default_factory=list)


def teardown(
    target_url: str,
    schema: str,
    *,
    actor: str | None = None,
    run_id: str | None = None,
    audit_url: str | None = None,
) -> TeardownResult:
    """Drop ``schema`` and its ``__next``/``__prev`` if this tool created them; record it."""
    schema = check_schema_name(schema)
    actor = actor or default_actor()
    names = [schema, f"{schema}__next", f"{schema}__prev"]
    audit_target = audit_url or target_url
    inline = False
    with connect(target_url) as conn:
        mine = _ours_to_drop(conn, target_url, names)
        conn.rollback()
        if not mine:
            return TeardownResult("teardown", [], [])
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(schema),)).fetchone()[0]
        conn.commit()
        if not locked:
            raise LoadRefused(
                f"a load into {schema} is running: wait for it to finish, then tear down"
            )
        payload = {
            "mode": "teardown",
            "schemas": mine,
            "target": redact(target_url),
            "run_id": run_id,
        }
        try:
            inline = _drop_and_record(
                conn, mine, payload, actor, run_id, audit_target == target_url
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(schema),))
            conn.commit()
    if not inline:
        record_event(audit_target, "teardown", None, payload, actor)
    return TeardownResult("teardown", mine, [])


def _ours_to_drop(conn: psycopg.Connection, target_url: str, names: list[str]) -> list[str]:
    """The schemas of ``names`` that exist and are ours; refuse when one exists but is not
    ours, or when anything outside them depends on them."""
    where, then = f"in {redact(target_url)}", "teardown only removes schemas it created"
    state = _ours_or_refuse(conn, names, where, then)
    mine = [n for n in names if state.get(n)]
    for n in mine:
        outside = _outside_dependents(conn, n)
        if outside:
            raise LoadRefused(
                f"objects outside {n} depend on it ({', '.join(outside[:5])}): drop or "
                "repoint them first (emergency-teardown removes them too)"
            )
    return mine


def _drop_and_record(
    conn: psycopg.Connection,
    mine: list[str],
    payload: dict[str, Any],
    actor: str,
    run_id: str | None,
    audit_here: bool,
) -> bool:
    """In one transaction: drop the schemas, record the teardown and, when the audit log lives
    in this database, its audit event; whether that event was written here (committed)."""
    inline = False
    with conn.transaction():
        _drop_managed(conn, mine)
        conn.execute(
            "INSERT INTO synth_meta.teardowns (mode, schemas, actor, run_id) "
            "VALUES ('teardown', %s, %s, %s)",
            (mine, actor, run_id),
        )
        if audit_here:
            inline = conn.execute(
                "SELECT to_regclass('synth_audit.events') IS NOT NULL"
            ).fetchone()[0]
            if inline:
                append_event(conn, "teardown", None, payload, actor)
    conn.commit()
    return inline


def _drop_managed(conn: psycopg.Connection, names: list[str]) -> None:
    """Drop schemas of ours, forget them and mark their loads torn down."""
    for n in names:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(n)))
    conn.execute("DELETE FROM synth_meta.managed_schemas WHERE schema_name = ANY(%s)", (names,))
    conn.execute(
        "UPDATE synth_meta.load_runs SET status = 'torn_down' WHERE status = 'loaded' AND "
        "schema_name = ANY(%s)",
        ([n.removesuffix("__prev").removesuffix("__next") for n in names],),
    )


def emergency_teardown(
    target_url: str,
    store_root: Path | None,
    *,
    actor: str | None = None,
    run_id: str | None = None,
    audit_url: str | None = None,
) -> TeardownResult:
    """Drop every schema this tool created in the target and delete every refresh's artifacts."""
    actor = actor or default_actor()
    audit_target = audit_url or target_url
    with connect(target_url) as conn:
        dropped, skipped, also = _drop_all_managed(conn)
    artifacts = _delete_artifacts(store_root)
    payload = {
        "mode": "emergency",
        "schemas": dropped,
        "skipped": skipped,
        "also_removed": also,
        "artifacts_deleted": artifacts,
        "store": str(store_root) if store_root else None,
        "target": redact(target_url),
        "run_id": run_id,
    }
    with connect(target_url) as conn:
        ensure_meta(conn)
        conn.execute(
            "INSERT INTO synth_meta.teardowns (mode, schemas, artifacts, actor, run_id) "
            "VALUES ('emergency', %s, %s, %s, %s)",
            (dropped, artifacts, actor, run_id),
        )
        conn.commit()
    record_event(audit_target, "teardown", None, payload, actor)
    return TeardownResult("emergency", dropped, skipped, artifacts, also)


def _drop_all_managed(conn: psycopg.Connection) -> tuple[list[str], list[str], list[str]]:
    """Drop every listed schema that still carries our marker (with what depends on it) and
    forget the ones that no longer exist; (dropped, skipped, also removed)."""
    dropped: list[str] = []
    skipped: list[str] = []
    also: list[str] = []
    has_meta = conn.execute(
        "SELECT to_regclass('synth_meta.managed_schemas') IS NOT NULL"
    ).fetchone()[0]
    if not has_meta:
        return dropped, skipped, also
    listed = [
        r[0] for r in conn.execute("SELECT schema_name FROM synth_meta.managed_schemas ORDER BY 1")
    ]
    state = _managed(conn, listed)
    for n in listed:
        if state.get(n):
            dropped.append(n)
            also += [f"{d} (depends on {n})" for d in _outside_dependents(conn, n)]
        elif n in state:
            skipped.append(n)  # exists but lost its marker: never dropped blindly
    with conn.transaction():
        stale = [n for n in listed if n not in state]
        if stale:
            conn.execute(
                "DELETE FROM synth_meta.managed_schemas WHERE schema_name = ANY(%s)",
                (stale,),
            )
        if dropped:
            _drop_managed(conn, dropped)
    conn.commit()
    return dropped, skipped, also


def _delete_artifacts(store_root: Path | None) -> list[str]:
    """Delete every refresh directory under ``store_root`` (only names that are refresh ids)."""
    artifacts: list[str] = []
    if store_root is not None and Path(store_root).is_dir():
        for d in sorted(Path(store_root).iterdir()):
            try:
                check_refresh_id(d.name)
            except SynthError:
                continue
            if d.is_dir():
                shutil.rmtree(d)
                artifacts.append(d.name)
    return artifacts
