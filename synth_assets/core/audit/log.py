"""The log in PostgreSQL: its schema (append-only tables, triggers, revokes), appending a keyed
event under the advisory lock, anchoring the head, and reading events back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg

from synth_assets.core.pg import connect, redact

from .anchors import _anchor, _guard_anchor
from .errors import AuditChainBroken, AuditError
from .events import (
    EVENT_KINDS,
    GENESIS_HASH,
    AuditEvent,
    canonical_payload,
    default_actor,
    event_mac,
)
from .keys import AuditSigner, _require_signer

_LOCK_KEY = 0x5A7A_0D17  # advisory lock serializing appends (any database)

_DDL = """
CREATE SCHEMA IF NOT EXISTS synth_audit;
COMMENT ON SCHEMA synth_audit IS 'synth_assets audit log (append-only, HMAC-keyed, hash-chained)';
CREATE TABLE IF NOT EXISTS synth_audit.events (
  seq bigint PRIMARY KEY CHECK (seq > 0),
  ts timestamptz NOT NULL,
  kind text NOT NULL,
  refresh_id text,
  actor text NOT NULL,
  payload json NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL UNIQUE,
  key_id text
);
ALTER TABLE synth_audit.events ADD COLUMN IF NOT EXISTS key_id text;
COMMENT ON COLUMN synth_audit.events.key_id IS
  'audit key version:fingerprint of the HMAC in hash; NULL for legacy unkeyed (SHA-256) events';
CREATE TABLE IF NOT EXISTS synth_audit.head (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL,
  kind text NOT NULL,
  hash text NOT NULL
);
CREATE OR REPLACE FUNCTION synth_audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'synth_audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE OR REPLACE FUNCTION synth_audit.advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq <> OLD.seq + 1 OR NOT EXISTS (
      SELECT 1 FROM synth_audit.events e WHERE e.seq = NEW.seq AND e.hash = NEW.hash) THEN
    RAISE EXCEPTION 'synth_audit.head may only advance to the next appended event';
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON synth_audit.events
  FOR EACH ROW EXECUTE FUNCTION synth_audit.refuse_change();
CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON synth_audit.events
  FOR EACH STATEMENT EXECUTE FUNCTION synth_audit.refuse_change();
CREATE OR REPLACE TRIGGER head_no_delete BEFORE DELETE ON synth_audit.head
  FOR EACH ROW EXECUTE FUNCTION synth_audit.refuse_change();
CREATE OR REPLACE TRIGGER head_no_truncate BEFORE TRUNCATE ON synth_audit.head
  FOR EACH STATEMENT EXECUTE FUNCTION synth_audit.refuse_change();
CREATE OR REPLACE TRIGGER head_advance BEFORE UPDATE ON synth_audit.head
  FOR EACH ROW EXECUTE FUNCTION synth_audit.advance_head();
REVOKE UPDATE, DELETE, TRUNCATE ON synth_audit.events, synth_audit.head FROM PUBLIC;
"""


def ensure_audit_schema(conn: psycopg.Connection) -> None:
    """Create ``synth_audit`` (tables, triggers, revokes) once, or add ``key_id`` to an old log."""
    row = conn.execute(
        "SELECT to_regclass('synth_audit.head') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute "
        "WHERE attrelid = to_regclass('synth_audit.events') AND attname = 'key_id' "
        "AND NOT attisdropped)"
    ).fetchone()
    if row and row[0]:
        return
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(_DDL)
    except psycopg.Error as exc:
        raise AuditError(
            f"cannot create the audit schema synth_audit: {str(exc).strip().splitlines()[0]}. "
            "The audit role needs CREATE on the audit database (and ownership of an existing log)"
        ) from exc
    if not conn.autocommit:
        conn.commit()


def database_identity(conn: psycopg.Connection) -> str:
    """``<cluster system identifier>/<database>``: names an audit database in its anchor.

    The cluster's system identifier cannot be changed from SQL; where a role may not read it,
    ``host:port/database`` of the connection is used instead.
    """
    try:
        with conn.transaction():  # a savepoint inside the caller's transaction
            row = conn.execute(
                "SELECT (SELECT system_identifier::text FROM pg_control_system()), current_database()"
            ).fetchone()
        return f"{row[0]}/{row[1]}"
    except psycopg.Error:
        info = conn.info
        return f"{info.host}:{info.port}/{info.dbname}"


def _append(
    conn: psycopg.Connection,
    kind: str,
    refresh_id: str | None,
    payload: dict[str, Any],
    actor: str,
    signer: AuditSigner,
) -> tuple[AuditEvent, str]:
    if kind not in EVENT_KINDS:
        raise AuditError(f"unknown audit event kind {kind!r}; use one of {', '.join(EVENT_KINDS)}")
    text = canonical_payload(payload)
    obj = json.loads(text)
    key = signer.key()  # fail closed before anything is written
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    last = conn.execute(
        "SELECT seq, hash FROM synth_audit.events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    head = conn.execute("SELECT seq, hash FROM synth_audit.head").fetchone()
    if (last is None) != (head is None) or (last and head and tuple(last) != tuple(head)):
        raise AuditChainBroken(
            f"refusing to append a {kind} event: the chain head {head and head[0]} does not match the "
            f"newest event {last and last[0]}. Run `synth-assets audit verify` and investigate"
        )
    database = database_identity(conn)
    _guard_anchor(conn, signer, database, last[0] if last else 0, kind)
    seq = (last[0] + 1) if last else 1
    prev = last[1] if last else GENESIS_HASH
    ts = datetime.now(UTC)
    mac = event_mac(key, seq, ts, kind, refresh_id, actor, obj, prev)
    conn.execute(
        "INSERT INTO synth_audit.events (seq, ts, kind, refresh_id, actor, payload, prev_hash, hash, "
        "key_id) VALUES (%s, %s, %s, %s, %s, %s::json, %s, %s, %s)",
        (seq, ts, kind, refresh_id, actor, text, prev, mac, key.key_id),
    )
    if head is None:
        conn.execute(
            "INSERT INTO synth_audit.head (seq, kind, hash) VALUES (%s, %s, %s)", (seq, kind, mac)
        )
    else:
        conn.execute("UPDATE synth_audit.head SET seq = %s, kind = %s, hash = %s", (seq, kind, mac))
    return AuditEvent(seq, ts, kind, refresh_id, actor, obj, prev, mac, key.key_id), database


def append_event(
    conn: psycopg.Connection,
    kind: str,
    refresh_id: str | None,
    payload: dict[str, Any],
    actor: str,
    *,
    signer: AuditSigner | None = None,
) -> AuditEvent:
    """Append one keyed event inside the caller's transaction (the caller commits).

    The anchor cannot be written before the commit: call :func:`anchor_head` afterwards (the
    next :func:`record_event` anchors a later head, which covers this event too).
    """
    signer = _require_signer(signer, None, conn, f"append a {kind} event to")
    return _append(conn, kind, refresh_id, payload, actor, signer)[0]


def record_event(
    url: str,
    kind: str,
    refresh_id: str | None,
    payload: dict[str, Any],
    actor: str | None = None,
    *,
    signer: AuditSigner | None = None,
) -> AuditEvent:
    """Append one keyed event to the audit log at libpq ``url`` and anchor the new head.

    ``signer`` defaults to the one bound to ``url`` (:func:`bind_audit_log`); without one, or
    without its key, nothing is written (fail closed).
    """
    signer = _require_signer(signer, url, None, f"append a {kind} event to")
    signer.key()
    try:
        with connect(url, autocommit=True) as conn:
            ensure_audit_schema(conn)
            with conn.transaction():
                ev, database = _append(
                    conn, kind, refresh_id, payload, actor or default_actor(), signer
                )
    except psycopg.Error as exc:
        raise AuditError(
            f"cannot append a {kind} event to the audit log at {redact(url)}: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from exc
    _anchor(signer, database, ev)
    return ev


def anchor_head(url: str, signer: AuditSigner | None = None) -> AuditEvent | None:
    """Anchor the newest event (e.g. after an :func:`append_event` the caller committed).

    Only an event whose MAC verifies under the signer's key is anchored; returns it (None when
    the log is empty or its head was signed with another key).
    """
    signer = _require_signer(signer, url, None, "anchor")
    with connect(url, autocommit=True) as conn:
        if not _has_schema(conn):
            return None
        database = database_identity(conn)
        keyed = _has_key_column(conn)
        with conn.transaction():
            ev = next(_rows(conn, newest=True, keyed=keyed), None)
    if ev is None or ev.key_id != signer.key().key_id:
        return None
    key = signer.key()
    if event_mac(key, *ev.fields) != ev.hash:
        raise AuditChainBroken(
            f"{ev.name} does not verify under the audit key: not anchoring it. "
            "Run `synth-assets audit verify`"
        )
    _anchor(signer, database, ev)
    return ev


def _rows(
    conn: psycopg.Connection,
    refresh_id: str | None = None,
    *,
    newest: bool = False,
    keyed: bool = True,
) -> Iterator[AuditEvent]:
    """Events in seq order (``keyed`` False: a log from before ``key_id`` existed)."""
    where = "WHERE refresh_id = %s" if refresh_id else ""
    params = (refresh_id,) if refresh_id else ()
    order = "ORDER BY seq DESC LIMIT 1" if newest else "ORDER BY seq"
    key_col = "key_id" if keyed else "NULL::text"
    with conn.cursor(name="synth_audit_scan") as cur:
        cur.itersize = 2000
        cur.execute(
            f"SELECT seq, ts, kind, refresh_id, actor, payload::text, prev_hash, hash, {key_col} "  # noqa: S608
            f"FROM synth_audit.events {where} {order}",
            params,
        )
        for seq, ts, kind, rid, actor, payload, prev, h, key_id in cur:
            try:
                obj = json.loads(payload)
            except ValueError:
                obj = {"unparseable_payload": payload}
            yield AuditEvent(seq, ts, kind, rid, actor, obj, prev, h, key_id)


def _has_schema(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('synth_audit.events') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _has_key_column(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'synth_audit.events'::regclass "
        "AND attname = 'key_id' AND NOT attisdropped)"
    ).fetchone()
    return bool(row and row[0])
