"""Tamper-evident audit log: append-only, hash-chained events in ``synth_audit.events``.

Each event stores the SHA-256 of the previous event, and its own hash is the SHA-256 of the
canonical JSON of ``(seq, ts, kind, refresh_id, actor, payload, prev_hash)``. A single-row
``synth_audit.head`` table records the newest event, so deleting the last event is detected
too. Ordinary roles cannot change history: UPDATE/DELETE/TRUNCATE are revoked from PUBLIC and
refused by triggers. A superuser can still bypass both (``session_replication_role = replica``);
:func:`verify_chain` then detects the edit, the deletion or the reordering and names the event.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .errors import SynthError
from .pg import connect, redact

AUDIT_SCHEMA = "synth_audit"
GENESIS_HASH = "0" * 64
EVENT_KINDS = (
    "profile",
    "spec",
    "shards",
    "report",
    "gates",
    "load",
    "release",
    "teardown",
    "gate_failed",
    "run_failed",
)
_LOCK_KEY = 0x5A7A_0D17  # advisory lock serializing appends (any database)

_DDL = """
CREATE SCHEMA IF NOT EXISTS synth_audit;
COMMENT ON SCHEMA synth_audit IS 'synth_assets audit log (append-only, hash-chained)';
CREATE TABLE IF NOT EXISTS synth_audit.events (
  seq bigint PRIMARY KEY CHECK (seq > 0),
  ts timestamptz NOT NULL,
  kind text NOT NULL,
  refresh_id text,
  actor text NOT NULL,
  payload json NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL UNIQUE
);
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


class AuditError(SynthError):
    """The audit log cannot be written or read."""


class AuditChainBroken(AuditError):
    """The audit chain does not verify: an event was altered, removed or reordered."""


@dataclass(frozen=True)
class AuditEvent:
    """One stored event of the chain."""

    seq: int
    ts: datetime
    kind: str
    refresh_id: str | None
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": _ts(self.ts),
            "kind": self.kind,
            "refresh_id": self.refresh_id,
            "actor": self.actor,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_chain`: events checked, the head hash, and every break found."""

    events: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def default_actor() -> str:
    """Who acts: ``$SYNTH_ACTOR`` (e.g. ``alice/TICKET-12``), else the OS user."""
    env = os.environ.get("SYNTH_ACTOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry in some containers
        return f"uid:{os.getuid()}"


def _ts(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_payload(payload: dict[str, Any]) -> str:
    """The canonical JSON text stored (and hashed) for a payload; refuses NaN and infinity."""
    try:
        return json.dumps(
            payload,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
            default=str,
        )
    except ValueError as exc:
        raise AuditError(f"audit payload is not representable as strict JSON: {exc}") from None


def event_hash(
    seq: int,
    ts: datetime,
    kind: str,
    refresh_id: str | None,
    actor: str,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of (seq, ts, kind, refresh_id, actor, payload, prev_hash)."""
    body = json.dumps(
        {
            "seq": seq,
            "ts": _ts(ts),
            "kind": kind,
            "refresh_id": refresh_id,
            "actor": actor,
            "payload": payload,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def ensure_audit_schema(conn: psycopg.Connection) -> None:
    """Create ``synth_audit`` (tables, triggers, revokes) once; commits."""
    row = conn.execute(
        "SELECT to_regclass('synth_audit.events') IS NOT NULL AND "
        "to_regclass('synth_audit.head') IS NOT NULL"
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
            "The audit role needs CREATE on the audit database"
        ) from exc
    if not conn.autocommit:
        conn.commit()


def append_event(
    conn: psycopg.Connection, kind: str, refresh_id: str | None, payload: dict[str, Any], actor: str
) -> AuditEvent:
    """Append one event inside the caller's transaction (the caller commits)."""
    if kind not in EVENT_KINDS:
        raise AuditError(f"unknown audit event kind {kind!r}; use one of {', '.join(EVENT_KINDS)}")
    text = canonical_payload(payload)
    obj = json.loads(text)
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
    seq = (last[0] + 1) if last else 1
    prev = last[1] if last else GENESIS_HASH
    ts = datetime.now(UTC)
    h = event_hash(seq, ts, kind, refresh_id, actor, obj, prev)
    conn.execute(
        "INSERT INTO synth_audit.events (seq, ts, kind, refresh_id, actor, payload, prev_hash, hash) "
        "VALUES (%s, %s, %s, %s, %s, %s::json, %s, %s)",
        (seq, ts, kind, refresh_id, actor, text, prev, h),
    )
    if head is None:
        conn.execute(
            "INSERT INTO synth_audit.head (seq, kind, hash) VALUES (%s, %s, %s)", (seq, kind, h)
        )
    else:
        conn.execute("UPDATE synth_audit.head SET seq = %s, kind = %s, hash = %s", (seq, kind, h))
    return AuditEvent(seq, ts, kind, refresh_id, actor, obj, prev, h)


def record_event(
    url: str, kind: str, refresh_id: str | None, payload: dict[str, Any], actor: str | None = None
) -> AuditEvent:
    """Append one event to the audit log at libpq ``url`` (creating the schema on first use)."""
    try:
        with connect(url, autocommit=True) as conn:
            ensure_audit_schema(conn)
            with conn.transaction():
                ev = append_event(conn, kind, refresh_id, payload, actor or default_actor())
            return ev
    except psycopg.Error as exc:
        raise AuditError(
            f"cannot append a {kind} event to the audit log at {redact(url)}: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from exc


def _rows(conn: psycopg.Connection, refresh_id: str | None = None) -> Iterator[AuditEvent]:
    where = "WHERE refresh_id = %s" if refresh_id else ""
    params = (refresh_id,) if refresh_id else ()
    with conn.cursor(name="synth_audit_scan") as cur:
        cur.itersize = 2000
        cur.execute(
            f"SELECT seq, ts, kind, refresh_id, actor, payload::text, prev_hash, hash "  # noqa: S608
            f"FROM synth_audit.events {where} ORDER BY seq",
            params,
        )
        for seq, ts, kind, rid, actor, payload, prev, h in cur:
            try:
                obj = json.loads(payload)
            except ValueError:
                obj = {"unparseable_payload": payload}
            yield AuditEvent(seq, ts, kind, rid, actor, obj, prev, h)


def _has_schema(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('synth_audit.events') IS NOT NULL").fetchone()
    return bool(row and row[0])


def verify_chain(url: str) -> VerifyResult:
    """Walk the chain in seq order: recompute every hash, check every link and the head."""
    with connect(url, autocommit=True) as conn:
        if not _has_schema(conn):
            raise AuditError(
                f"{redact(url)} holds no audit log (no table synth_audit.events): "
                "check the audit database URL (audit.url, default the target database)"
            )
        problems: list[str] = []
        prev_hash, prev_seq, n = GENESIS_HASH, 0, 0
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for ev in _rows(conn):
                n += 1
                name = f"event {ev.seq} ({ev.kind}, refresh {ev.refresh_id or '-'}, {_ts(ev.ts)})"
                if ev.seq != prev_seq + 1:
                    missing = (
                        f"event {prev_seq + 1}"
                        if ev.seq == prev_seq + 2
                        else f"events {prev_seq + 1}..{ev.seq - 1}"
                    )
                    problems.append(f"{missing} missing: {name} follows event {prev_seq}")
                if ev.prev_hash != prev_hash:
                    problems.append(
                        f"{name}: its prev_hash {ev.prev_hash[:12]}… does not match the hash "
                        f"{prev_hash[:12]}… of the event before it (an event was removed, "
                        "inserted or altered)"
                    )
                recomputed = event_hash(
                    ev.seq, ev.ts, ev.kind, ev.refresh_id, ev.actor, ev.payload, ev.prev_hash
                )
                if recomputed != ev.hash:
                    problems.append(
                        f"{name} was altered: stored hash {ev.hash[:12]}…, "
                        f"recomputed {recomputed[:12]}…"
                    )
                prev_hash, prev_seq = ev.hash, ev.seq
            head = conn.execute("SELECT seq, kind, hash FROM synth_audit.head").fetchone()
        if head is None and n:
            problems.append("the chain head (synth_audit.head) was removed")
        elif head is not None:
            hseq, hkind, hhash = head
            if hseq > prev_seq:
                missing = (
                    f"event {hseq} ({hkind})"
                    if hseq == prev_seq + 1
                    else f"events {prev_seq + 1}..{hseq} (the last a {hkind} event)"
                )
                problems.append(
                    f"{missing} missing: the chain head records event {hseq} but the log "
                    f"ends at event {prev_seq}"
                )
            elif hseq < prev_seq:
                problems.append(
                    f"event(s) after {hseq} were appended without advancing the chain head "
                    f"(the log ends at event {prev_seq})"
                )
            elif hhash != prev_hash:
                problems.append(
                    f"event {hseq} ({hkind}): the chain head records hash {hhash[:12]}…, "
                    f"the log holds {prev_hash[:12]}…"
                )
        return VerifyResult(n, prev_hash, problems)


def list_events(url: str, refresh_id: str | None = None) -> list[AuditEvent]:
    """The stored events in seq order (optionally of one refresh)."""
    with connect(url, autocommit=True) as conn:
        if not _has_schema(conn):
            return []
        with conn.transaction():
            return list(_rows(conn, refresh_id))


def format_event(ev: AuditEvent) -> str:
    """One human-readable line per event (payload as compact JSON)."""
    body = json.dumps(ev.payload, sort_keys=True, separators=(", ", ": "), default=str)
    if len(body) > 400:
        body = body[:397] + "…"
    return (
        f"#{ev.seq:<5} {_ts(ev.ts)}  {ev.kind:<8} {ev.refresh_id or '-':<26} {ev.actor}  "
        f"{ev.hash[:16]}  {body}"
    )


# --------------------------------------------------------------------------------------------
# Payloads of the pipeline's stages (the assets call record_event with these)
# --------------------------------------------------------------------------------------------


def profile_payload(pack: dict[str, Any]) -> dict[str, Any]:
    """ε spent, δ, mechanisms used and the thresholds applied, from a metrics pack's ledger."""
    led = pack["ledger"]
    mechanisms: dict[str, dict[str, float]] = {}
    thresholds: dict[str, Any] = {}
    for e in led["entries"]:
        m = mechanisms.setdefault(e["mechanism"], {"measurements": 0, "rho": 0.0})
        m["measurements"] += 1
        m["rho"] += float(e["rho"])
        if "threshold" in (e.get("detail") or {}):
            thresholds[e["name"]] = e["detail"]["threshold"]
    return {
        "epsilon_spent": led["epsilon_spent"],
        "epsilon_target": led.get("epsilon_target"),
        "delta": led["delta"],
        "rho_spent": led["rho_spent"],
        "rho_budget": led.get("rho_budget"),
        "accounting": led.get("accounting"),
        "mechanisms": mechanisms,
        "thresholds": thresholds,
    }


def spec_payload(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec hash, version, pack refresh and target row counts."""
    return {
        "spec_hash": spec["content_hash"],
        "version": spec.get("version"),
        "pack_refresh_id": spec.get("pack_refresh_id"),
        "shards": spec.get("shards"),
        "expected_rows": spec.get("expected_rows"),
    }


def shards_payload(refresh_dir: Path) -> dict[str, Any]:
    """File hashes of every shard (from the manifests) and the seed commitment (never the seed)."""
    refresh_dir = Path(refresh_dir)
    gen = json.loads((refresh_dir / "generation.json").read_text())
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    for m in sorted((refresh_dir / "shards").glob("manifest-*.json")):
        man = json.loads(m.read_text())
        for t, f in man["tables"].items():
            files[f"{t}/{Path(f['path']).name}"] = f["sha256"]
            rows[t] = rows.get(t, 0) + int(f["rows"])
    return {
        "seed_commitment": gen["seed_commitment"],
        "spec_hash": gen.get("spec_hash"),
        "files": files,
        "rows": rows,
    }


def report_payload(report: dict[str, Any]) -> dict[str, Any]:
    """Gate outcomes with their measured values and the overall verdict of a privacy report."""
    return {
        "passed": bool(report.get("passed")),
        "gates": report.get("gates", {}),
        "metrics": report.get("metrics", {}),
    }
