"""Tamper-evident audit log: append-only, keyed, hash-chained, its head anchored outside the database.

Why keyed: an unkeyed SHA-256 chain can be rewritten end to end by anyone who can write the
table (a database superuser edits one event and recomputes every later hash and the head). Each
event's hash is therefore an HMAC-SHA256 under the *audit key*, a purpose-bound subkey of the
secrets backend's HMAC key (:meth:`SecretsBackend.audit_key`), over the canonical JSON of
``(seq, ts, kind, refresh_id, actor, payload, prev_hash, key_id)``. Each event names its key
(``key_id`` = the backend's key version and a short fingerprint of the audit key, never the key).
Without a key nothing is written: there is no unkeyed fallback.

Why anchored: a chain whose head lives in the same database can still be rewound (delete the
newest events, restore an older head) or wiped. After every append the head (seq + MAC), itself
MAC-signed, is written outside the database: ``<workdir>/audit/anchor-<database>.json`` and, while
the event's refresh is unpublished, ``<store>/<refresh_id>/audit-anchor.json`` (so the refresh's
signed manifest hashes it and the artifact store publishes it). :func:`verify_chain` checks every
MAC and link, and that each anchored event is still in the log with the anchored MAC; an append
refuses to continue a log that contradicts its anchor.

Who signs: callers pass an :class:`AuditSigner` (secrets backend, work directory, store), or a
process binds one to the audit database once (:func:`bind_audit_log`, done by the Dagster resource
and the CLI) so that core code that only knows a URL or a connection (the loader, teardown,
release) signs with the configured key.

Events written before the log was keyed (``key_id`` NULL) verify as legacy SHA-256 events while
they form a prefix of the log (the first keyed event seals them); an unkeyed event after a keyed
one is tampering. Ordinary roles cannot change history: UPDATE/DELETE/TRUNCATE are revoked from
PUBLIC and refused by triggers; a superuser can bypass both, which the MACs and anchors detect.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .digest import canonical_json
from .errors import SynthError
from .pg import connect, redact
from .secrets import KeyVersionUnavailable, SecretsBackend

AUDIT_SCHEMA = "synth_audit"
GENESIS_HASH = "0" * 64
EVENT_KINDS = (
    "reservation",
    "reservation_released",
    "refusal",
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
ANCHOR_FORMAT = "synth_assets.audit_anchor/1"
ANCHOR_DIR = "audit"  # under the work directory
REFRESH_ANCHOR = "audit-anchor.json"  # in a refresh's directory of the store
_MANIFEST = "manifest.json"  # a published refresh is immutable: no anchor is written into it
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


class AuditError(SynthError):
    """The audit log cannot be written or read."""


class AuditChainBroken(AuditError):
    """The audit chain does not verify: an event was altered, removed or reordered."""


class AuditKeyUnavailable(AuditError):
    """The audit key an event or anchor names cannot be obtained from the secrets backend."""


# --------------------------------------------------------------------------------------------
# Keys and signers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditKey:
    """An audit key and the backend version it derives from (the key never leaves this object)."""

    value: bytes = field(repr=False)
    version: str

    @property
    def key_id(self) -> str:
        """``<backend key version>:<first 12 hex of SHA-256 of the audit key>``: names, never reveals."""
        return f"{self.version}:{hashlib.sha256(self.value).hexdigest()[:12]}"

    def mac(self, body: bytes) -> str:
        """HMAC-SHA256 of ``body`` under this key, hex."""
        return hmac.new(self.value, body, hashlib.sha256).hexdigest()


# Every audit key this process loaded from a secrets backend, by key id: lets verify_chain(url)
# without a signer check a log written by several configurations of this process (the tests).
_KNOWN_KEYS: dict[str, AuditKey] = {}


class AuditSigner:
    """Signs and anchors events for one configuration: its secrets backend's audit key, the work
    directory's anchor directory and the refresh store (both optional, e.g. in unit tests)."""

    def __init__(
        self,
        secrets: SecretsBackend,
        anchor_dir: str | Path | None = None,
        store_root: str | Path | None = None,
    ):
        self.secrets = secrets
        self.anchor_dir = Path(anchor_dir) if anchor_dir is not None else None
        self.store_root = Path(store_root) if store_root is not None else None
        self._keys: dict[str, AuditKey] = {}
        self._current: AuditKey | None = None

    @classmethod
    def for_config(cls, cfg: Any, workdir: str | Path) -> AuditSigner:
        """The signer of a configuration: its secrets backend, ``<workdir>/audit`` and its store."""
        from .secrets import backend_from_config
        from .store import store_for

        work = Path(workdir).expanduser().resolve()
        return cls(
            backend_from_config(cfg.secrets, work), work / ANCHOR_DIR, store_for(cfg, work).root
        )

    def key(self) -> AuditKey:
        """The current audit key; a missing key raises the backend's SecretsError (fail closed)."""
        if self._current is None:
            secret = self.secrets.audit_key()
            self._current = self._remember(AuditKey(secret.value, secret.version))
        return self._current

    def key_for(self, key_id: str) -> AuditKey:
        """The audit key an event names, from this signer's backend only (older versions too)."""
        if key_id in self._keys:
            return self._keys[key_id]
        current = self.key()
        if key_id == current.key_id:
            return current
        version = key_id.rpartition(":")[0]
        where = f"the {self.secrets.name} secrets backend"
        try:
            secret = self.secrets.audit_key_at(version)
        except KeyVersionUnavailable:
            raise AuditKeyUnavailable(
                f"{where} cannot provide audit key {key_id} (it holds {current.key_id}): the log was "
                "written with another secrets backend or work directory (pass the right --workdir/"
                "--config), or the key was replaced since (`synth-assets init --force`)"
            ) from None
        got = AuditKey(secret.value, secret.version)
        if got.key_id != key_id:
            raise AuditKeyUnavailable(
                f"version {version} of the audit key in {where} is {got.key_id}, not {key_id}: "
                "the log was signed with another key"
            )
        return self._remember(got)

    def _remember(self, key: AuditKey) -> AuditKey:
        self._keys[key.key_id] = key
        _KNOWN_KEYS[key.key_id] = key
        return key

    def anchor_path(self, database: str) -> Path | None:
        """The work directory's anchor file of one audit database (None without an anchor dir)."""
        if self.anchor_dir is None:
            return None
        tag = hashlib.sha256(database.encode()).hexdigest()[:16]
        return self.anchor_dir / f"anchor-{tag}.json"

    def refresh_anchor_path(self, refresh_id: str | None) -> Path | None:
        """``<store>/<rid>/audit-anchor.json`` while that refresh exists and is unpublished."""
        if not refresh_id or self.store_root is None:
            return None
        from .store import check_refresh_id

        try:
            d = self.store_root / check_refresh_id(refresh_id)
        except SynthError:
            return None
        if not d.is_dir() or (d / _MANIFEST).exists():
            return None
        return d / REFRESH_ANCHOR


# Signers bound to audit databases in this process (by host, port, database), and the default.
_BOUND: dict[tuple[str, str, str], AuditSigner] = {}
_DEFAULT: list[AuditSigner] = []


def _url_key(url: str) -> tuple[str, str, str]:
    try:
        d = conninfo_to_dict(url)
    except psycopg.Error:
        return ("", "", url)
    return (str(d.get("host") or ""), str(d.get("port") or "5432"), str(d.get("dbname") or ""))


def bind_audit_log(signer: AuditSigner, url: str | None = None) -> None:
    """Sign every event this process appends to the audit log at ``url`` with ``signer``.

    Core code that knows only a URL or a connection (loader, teardown, release) then signs with
    the configured key. The last signer bound is also the process default for unbound databases:
    one process serves one configuration (the CLI, a Dagster code server or step process).
    """
    if url is not None:
        _BOUND[_url_key(url)] = signer
    _DEFAULT[:] = [signer]


def bound_signer(
    url: str | None = None, conn: psycopg.Connection | None = None
) -> AuditSigner | None:
    """The signer bound to the database of ``url`` or ``conn``, else the process default."""
    if url is not None and _url_key(url) in _BOUND:
        return _BOUND[_url_key(url)]
    if conn is not None:
        info = conn.info
        key = (str(info.host or ""), str(info.port or "5432"), str(info.dbname or ""))
        if key in _BOUND:
            return _BOUND[key]
        for (host, port, db), signer in _BOUND.items():
            if not host and (port, db) == key[1:]:
                return signer
    return _DEFAULT[0] if _DEFAULT else None


def _require_signer(
    signer: AuditSigner | None, url: str | None, conn: psycopg.Connection | None, what: str
) -> AuditSigner:
    signer = signer or bound_signer(url, conn)
    if signer is None:
        where = redact(url) if url else "this connection"
        raise AuditError(
            f"refusing to {what} the audit log at {where}: no audit key is configured in this "
            "process. The log is keyed (HMAC under the secrets backend's audit key) and never "
            "written unkeyed: pass signer=AuditSigner.for_config(cfg, workdir) or call "
            "bind_audit_log(signer, url) first"
        )
    return signer


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


# What an event's hash or MAC covers, in this order: (seq, ts, kind, refresh_id, actor, payload,
# prev_hash). One alias, so event_hash and event_mac take the same fields the same way.
EventFields = tuple[int, datetime, str, str | None, str, dict[str, Any], str]


@dataclass(frozen=True)
class AuditEvent:
    """One stored event of the chain (``hash`` is its HMAC; legacy events: SHA-256, no key_id)."""

    seq: int
    ts: datetime
    kind: str
    refresh_id: str | None
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str | None = None

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
            "key_id": self.key_id,
        }

    @property
    def fields(self) -> EventFields:
        """What its hash or MAC covers: ``event_mac(key, *ev.fields)``."""
        return (
            self.seq,
            self.ts,
            self.kind,
            self.refresh_id,
            self.actor,
            self.payload,
            self.prev_hash,
        )

    @property
    def name(self) -> str:
        """How messages name the event."""
        return f"event {self.seq} ({self.kind}, refresh {self.refresh_id or '-'}, {_ts(self.ts)})"


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_chain`: events checked, the head, every break found, and notes
    (legacy events, anchors checked) that are not breaks."""

    events: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    head_seq: int = 0
    key_ids: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)

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


def _canonical(obj: Any) -> str:
    return canonical_json(obj, strict=True, default=str)


def canonical_payload(payload: dict[str, Any]) -> str:
    """The canonical JSON text stored (and hashed) for a payload; refuses NaN and infinity."""
    try:
        return _canonical(payload)
    except ValueError as exc:
        raise AuditError(f"audit payload is not representable as strict JSON: {exc}") from None


def _event_body(fields: EventFields, key_id: str | None) -> bytes:
    seq, ts, kind, refresh_id, actor, payload, prev_hash = fields
    body: dict[str, Any] = {
        "seq": seq,
        "ts": _ts(ts),
        "kind": kind,
        "refresh_id": refresh_id,
        "actor": actor,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    if key_id is not None:  # legacy events hashed exactly these seven fields
        body["key_id"] = key_id
    return _canonical(body).encode()


def event_hash(*fields: *EventFields) -> str:
    """Legacy (unkeyed) hash: SHA-256 of (seq, ts, kind, refresh_id, actor, payload, prev_hash).

    Only to verify events written before the log was keyed; anyone can recompute it.
    """
    return hashlib.sha256(_event_body(fields, None)).hexdigest()


def event_mac(key: AuditKey, *fields: *EventFields) -> str:
    """HMAC-SHA256 under the audit key of the event's fields, its link and its key id."""
    return key.mac(_event_body(fields, key.key_id))


# --------------------------------------------------------------------------------------------
# Schema and database identity
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Anchors (outside the database)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """A stored anchor: the head (seq, MAC) of one audit database at one moment, MAC-signed."""

    path: Path
    body: dict[str, Any]

    @property
    def seq(self) -> int:
        return int(self.body.get("seq", 0))

    @property
    def hash(self) -> str:
        return str(self.body.get("hash", ""))

    def describe(self) -> str:
        b = self.body
        return f"{self.path} (written {b.get('anchored_at', '?')}: event {self.seq}, {b.get('kind', '?')})"


def _anchor_body(database: str, ev: AuditEvent) -> dict[str, Any]:
    return {
        "format": ANCHOR_FORMAT,
        "database": database,
        "seq": ev.seq,
        "hash": ev.hash,
        "key_id": ev.key_id,
        "kind": ev.kind,
        "refresh_id": ev.refresh_id,
        "event_ts": _ts(ev.ts),
        "anchored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def read_anchor(path: Path) -> Anchor | None:
    """The anchor stored at ``path`` (None if absent); an unreadable file raises AuditError."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"cannot read the audit anchor {path}: {exc.strerror}") from None
    try:
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("format") != ANCHOR_FORMAT:
            raise ValueError("not an audit anchor")
        int(body["seq"])
    except (ValueError, KeyError, TypeError):
        raise AuditError(
            f"the audit anchor {path} is not a readable anchor: it was altered"
        ) from None
    return Anchor(path, body)


def _write_anchor(path: Path, key: AuditKey, database: str, ev: AuditEvent) -> None:
    """Advance the anchor at ``path`` to ``ev`` (never backwards: parallel steps append too)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.parent / ".anchor.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_anchor(path)  # an unreadable anchor is evidence: never overwritten
        if current is not None and current.seq >= ev.seq:
            return
        body = _anchor_body(database, ev)
        body["mac"] = key.mac(_canonical(body).encode())
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)


def _anchor(signer: AuditSigner, database: str, ev: AuditEvent) -> None:
    """Write the head to the work directory's anchor and the refresh's (if unpublished)."""
    key = signer.key_for(ev.key_id) if ev.key_id else signer.key()
    paths = [signer.anchor_path(database), signer.refresh_anchor_path(ev.refresh_id)]
    try:
        for p in paths:
            if p is not None:
                _write_anchor(p, key, database, ev)
    except OSError as exc:
        raise AuditError(
            f"event {ev.seq} ({ev.kind}) was recorded but its anchor could not be written "
            f"({exc.filename}: {exc.strerror}): the head is not anchored outside the database"
        ) from None


def _guard_anchor(
    conn: psycopg.Connection, signer: AuditSigner, database: str, last_seq: int, kind: str
) -> None:
    """Refuse to extend a log that contradicts the work directory's anchor (rewound or rewritten)."""
    path = signer.anchor_path(database)
    anchor = read_anchor(path) if path is not None else None
    if anchor is None:
        return
    advice = (
        "Run `synth-assets audit verify`; if the log was removed on purpose, move the anchor aside"
    )
    if anchor.seq > last_seq:
        raise AuditChainBroken(
            f"refusing to append a {kind} event: the audit log ends at event {last_seq} but its "
            f"anchor {anchor.describe()} records event {anchor.seq}: events were deleted (the "
            f"log was rewound or wiped). {advice}"
        )
    row = conn.execute(
        "SELECT hash FROM synth_audit.events WHERE seq = %s", (anchor.seq,)
    ).fetchone()
    if row is None or row[0] != anchor.hash:
        raise AuditChainBroken(
            f"refusing to append a {kind} event: event {anchor.seq} of the audit log does not "
            f"match its anchor {anchor.describe()}: it was removed or rewritten. {advice}"
        )


# --------------------------------------------------------------------------------------------
# Appending
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Verifying
# --------------------------------------------------------------------------------------------


def _seqs(seqs: list[int]) -> str:
    """``event 3`` / ``events 3..5`` / ``events 1, 4..6`` (at most ten ranges named)."""
    ranges: list[list[int]] = []
    for s in sorted(seqs):
        if ranges and s == ranges[-1][1] + 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    parts = [f"{a}" if a == b else f"{a}..{b}" for a, b in ranges[:10]]
    more = f" and {len(ranges) - 10} more range(s)" if len(ranges) > 10 else ""
    noun = "event" if len(seqs) == 1 else "events"
    return f"{noun} {', '.join(parts)}{more}"


class _Keyring:
    """The key an event names: from the signer's backend, or (no signer given) any audit key this
    process loaded. Remembers why a key is unavailable so each reason is reported once."""

    def __init__(self, signer: AuditSigner | None, process_keys: bool):
        self.signer = signer
        self.process_keys = process_keys
        self.missing: dict[str, str] = {}

    def get(self, key_id: str) -> AuditKey | None:
        if key_id in self.missing:
            return None
        if self.process_keys and key_id in _KNOWN_KEYS:
            return _KNOWN_KEYS[key_id]
        if self.signer is None:
            self.missing[key_id] = (
                "no audit key is loaded in this process; verify with `synth-assets audit verify` "
                "(it reads the configured secrets backend)"
            )
            return None
        try:
            return self.signer.key_for(key_id)
        except AuditKeyUnavailable as exc:
            self.missing[key_id] = str(exc)
            return None


@dataclass
class _Walk:
    """One pass over the events in seq order: links, MACs, legacy prefix, anchored hashes."""

    keys: _Keyring
    wanted: set[int]
    n: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    last_kind: str = ""
    legacy_upto: int = 0
    first_keyed: int | None = None
    problems: list[str] = field(default_factory=list)
    altered: list[AuditEvent] = field(default_factory=list)
    unverifiable: dict[str, list[int]] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)
    key_ids: dict[str, int] = field(default_factory=dict)

    def add(self, ev: AuditEvent) -> None:
        self.n += 1
        self._link(ev)
        if ev.seq in self.wanted:
            self.hashes[ev.seq] = ev.hash
        if ev.key_id is None:
            self._legacy(ev)
        else:
            self._keyed(ev)
        self.last_seq, self.last_hash, self.last_kind = ev.seq, ev.hash, ev.kind

    def _link(self, ev: AuditEvent) -> None:
        if ev.seq != self.last_seq + 1:
            missing = _seqs(list(range(self.last_seq + 1, ev.seq)))
            self.problems.append(f"{missing} missing: {ev.name} follows event {self.last_seq}")
        if ev.prev_hash != self.last_hash:
            self.problems.append(
                f"{ev.name}: its prev_hash {ev.prev_hash[:12]}… does not match the hash "
                f"{self.last_hash[:12]}… of the event before it (an event was removed, "
                "inserted or altered)"
            )

    def _legacy(self, ev: AuditEvent) -> None:
        if self.first_keyed is not None:
            self.problems.append(
                f"{ev.name} is unkeyed but follows keyed event {self.first_keyed}: events are never "
                "written unkeyed any more, so it was inserted or rewritten without the audit key"
            )
            return
        recomputed = event_hash(*ev.fields)
        if recomputed != ev.hash:
            self.problems.append(
                f"{ev.name} (a legacy unkeyed event) was altered: stored hash {ev.hash[:12]}…, "
                f"recomputed {recomputed[:12]}…"
            )
        self.legacy_upto = ev.seq

    def _keyed(self, ev: AuditEvent) -> None:
        key_id = str(ev.key_id)
        self.key_ids[key_id] = self.key_ids.get(key_id, 0) + 1
        if self.first_keyed is None:
            self.first_keyed = ev.seq
        key = self.keys.get(key_id)
        if key is None:
            self.unverifiable.setdefault(key_id, []).append(ev.seq)
            return
        mac = event_mac(key, *ev.fields)
        if not hmac.compare_digest(mac, ev.hash):
            self.altered.append(ev)

    def mac_problems(self) -> list[str]:
        out = []
        if self.altered:
            first = self.altered[0]
            out.append(
                f"{first.name} was altered: its MAC does not verify under audit key {first.key_id} "
                "(changed by someone without the key)"
            )
            rest = [e.seq for e in self.altered[1:]]
            if rest:
                out.append(
                    f"{_seqs(rest)} do not verify either (altered too, or re-hashed after "
                    f"event {first.seq} was changed)"
                )
        for key_id, seqs in self.unverifiable.items():
            out.append(
                f"{_seqs(seqs)} cannot be verified: signed with audit key {key_id}, and "
                f"{self.keys.missing[key_id]}"
            )
        return out


def _head_problems(head: tuple | None, walk: _Walk) -> list[str]:
    if head is None:
        return ["the chain head (synth_audit.head) was removed"] if walk.n else []
    hseq, hkind, hhash = head
    last = walk.last_seq
    if hseq > last:
        missing = (
            f"event {hseq} ({hkind})"
            if hseq == last + 1
            else f"events {last + 1}..{hseq} (the last a {hkind} event)"
        )
        return [
            f"{missing} missing: the chain head records event {hseq} but the log ends at event {last}"
        ]
    if hseq < last:
        return [
            f"event(s) after {hseq} were appended without advancing the chain head "
            f"(the log ends at event {last})"
        ]
    if hhash != walk.last_hash:
        return [
            f"event {hseq} ({hkind}): the chain head records hash {hhash[:12]}…, "
            f"the log holds {walk.last_hash[:12]}…"
        ]
    return []


def _load_anchors(
    signer: AuditSigner, database: str
) -> tuple[Anchor | None, list[Anchor], list[str]]:
    """The work directory's anchor, the store's refresh anchors of this database, and problems."""
    problems: list[str] = []
    own = None
    path = signer.anchor_path(database)
    if path is not None:
        try:
            own = read_anchor(path)
        except AuditError as exc:
            problems.append(str(exc))
    refresh: list[Anchor] = []
    if signer.store_root is not None and signer.store_root.is_dir():
        for p in sorted(signer.store_root.glob(f"*/{REFRESH_ANCHOR}")):
            try:
                a = read_anchor(p)
            except AuditError as exc:
                problems.append(str(exc))
                continue
            if a is not None and a.body.get("database") == database:
                refresh.append(a)
    return own, refresh, problems


def _anchor_signature_problem(a: Anchor, keys: _Keyring, database: str) -> str | None:
    if a.body.get("database") != database:
        return (
            f"the anchor {a.path} names audit database {a.body.get('database')}, not {database}: "
            "it was copied from another log"
        )
    key_id = str(a.body.get("key_id"))
    key = keys.get(key_id)
    if key is None:
        return (
            f"the anchor {a.path} cannot be verified: signed with audit key {key_id}, and "
            f"{keys.missing.get(key_id, 'that key is not available')}"
        )
    body = {k: v for k, v in a.body.items() if k != "mac"}
    if not hmac.compare_digest(key.mac(_canonical(body).encode()), str(a.body.get("mac", ""))):
        return f"the anchor {a.path} does not verify under audit key {key_id}: it was altered or forged"
    return None


def _anchor_problem(a: Anchor, walk: _Walk | None, keys: _Keyring, database: str) -> str | None:
    """How the log contradicts one (authentic) anchor: wiped, emptied, rewound or rewritten."""
    bad = _anchor_signature_problem(a, keys, database)
    if bad:
        return bad
    if walk is None:
        return (
            f"the audit log is gone (no table synth_audit.events) but the anchor {a.describe()} "
            f"records {a.seq} event(s): the log was wiped (its schema dropped)"
        )
    if walk.n == 0 and a.seq > 0:
        return (
            f"the audit log holds no event but the anchor {a.describe()} records {a.seq} "
            "event(s): the log was emptied (wiped)"
        )
    if a.seq > walk.last_seq:
        gone = _seqs(list(range(walk.last_seq + 1, a.seq + 1)))
        return (
            f"the audit log ends at event {walk.last_seq} ({walk.last_kind}) but the anchor "
            f"{a.describe()} records event {a.seq}: {gone} were deleted and the chain head "
            "rewound"
        )
    stored = walk.hashes.get(a.seq)
    if stored is None:
        return f"event {a.seq}, recorded by the anchor {a.describe()}, is missing from the log"
    if stored != a.hash:
        return (
            f"event {a.seq} does not match the anchor {a.describe()}: the anchor records MAC "
            f"{a.hash[:12]}…, the log holds {stored[:12]}…: the event (or one before it) was "
            "rewritten and the chain re-hashed"
        )
    return None


@dataclass
class _Anchors:
    """The anchors one verification checks against the log."""

    signer: AuditSigner
    database: str
    own: Anchor | None
    refresh: list[Anchor]
    problems: list[str]

    @property
    def all(self) -> list[Anchor]:
        return [a for a in (self.own, *self.refresh) if a is not None]

    def check(self, walk: _Walk | None, keys: _Keyring) -> tuple[list[str], list[str]]:
        """(problems, notes) of the anchors against the log (``walk`` None: no log at all)."""
        problems = list(self.problems)
        problems += [p for a in self.all if (p := _anchor_problem(a, walk, keys, self.database))]
        notes = [f"anchor {a.describe()}" for a in self.all]
        if walk is None or self.signer.anchor_dir is None:
            return problems, notes
        if self.own is None and walk.first_keyed is not None:
            problems.append(
                f"no anchor for this audit log at {self.signer.anchor_path(self.database)} although "
                f"the log holds {walk.n} event(s) (keyed since event {walk.first_keyed}): the anchor "
                f"was deleted, or {self.signer.anchor_dir} is not the audit directory of the work "
                "directory that writes this log (pass --workdir)"
            )
        elif self.own is not None and self.own.seq < walk.last_seq:
            notes.append(
                f"the work directory's anchor records event {self.own.seq} of {walk.last_seq}: the "
                "newer events were appended by another work directory or are not anchored yet"
            )
        return problems, notes


def _legacy_notes(walk: _Walk) -> list[str]:
    if not walk.legacy_upto:
        return []
    if walk.first_keyed is not None:
        return [
            f"legacy unkeyed events up to event {walk.legacy_upto} (SHA-256, written before the log "
            f"was keyed); keyed event {walk.first_keyed} seals them"
        ]
    return [
        f"legacy unkeyed events up to event {walk.legacy_upto} (SHA-256 only): not protected against "
        "a database superuser until the next event is appended with the audit key"
    ]


def verify_chain(
    url: str, signer: AuditSigner | None = None, *, check_anchors: bool | None = None
) -> VerifyResult:
    """Walk the chain in seq order: every MAC (or legacy hash), link, the head and the anchors.

    With ``signer`` (the CLI): keys come from its secrets backend only, and the work directory's
    anchor (required once the log holds keyed events) and the store's refresh anchors are checked.
    Without: keys this process loaded (or the bound signer's), no anchor check unless asked.
    """
    explicit = signer is not None
    if signer is not None:
        signer.key()  # verifying needs the key even for a legacy-only log: fail closed without
    signer = signer or bound_signer(url)
    keys = _Keyring(signer, process_keys=not explicit)
    check = explicit if check_anchors is None else check_anchors
    with connect(url, autocommit=True) as conn:
        database = database_identity(conn)
        anchors = (
            _Anchors(signer, database, *_load_anchors(signer, database))
            if check and signer is not None
            else None
        )
        if not _has_schema(conn):
            if anchors is None or not anchors.all:
                raise AuditError(
                    f"{redact(url)} holds no audit log (no table synth_audit.events): "
                    "check the audit database URL (audit.url, default the target database)"
                )
            problems, notes = anchors.check(None, keys)
            return VerifyResult(0, GENESIS_HASH, problems, anchors=notes)
        keyed = _has_key_column(conn)
        walk = _Walk(keys, {a.seq for a in anchors.all} if anchors else set())
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for ev in _rows(conn, keyed=keyed):
                walk.add(ev)
            head = conn.execute("SELECT seq, kind, hash FROM synth_audit.head").fetchone()
    problems = walk.problems + walk.mac_problems() + _head_problems(head, walk)
    anchor_notes: list[str] = []
    notes = _legacy_notes(walk)
    if anchors is not None:
        more, anchor_notes = anchors.check(walk, keys)
        problems += more
    return VerifyResult(
        walk.n,
        walk.last_hash,
        problems,
        notes,
        head_seq=walk.last_seq,
        key_ids=sorted(walk.key_ids),
        anchors=anchor_notes,
    )


def list_events(url: str, refresh_id: str | None = None) -> list[AuditEvent]:
    """The stored events in seq order (optionally of one refresh)."""
    with connect(url, autocommit=True) as conn:
        if not _has_schema(conn):
            return []
        keyed = _has_key_column(conn)
        with conn.transaction():
            return list(_rows(conn, refresh_id, keyed=keyed))


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


def shards_payload(refresh_dir: Path, shards: Iterable[int] | None = None) -> dict[str, Any]:
    """File hashes of every shard (from the manifests) and the seed commitment (never the seed).

    ``shards`` limits it to those shards' manifests: a run that generated only them records
    only them, whatever other runs of the refresh are writing at the same time.
    """
    refresh_dir = Path(refresh_dir)
    gen = json.loads((refresh_dir / "generation.json").read_text())
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    d = refresh_dir / "shards"
    manifests = (
        sorted(d.glob("manifest-*.json"))
        if shards is None
        else [d / f"manifest-{s:05d}.json" for s in sorted(shards)]
    )
    for m in manifests:
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


def reservation_payload(reservation: dict[str, Any], delta: float | None = None) -> dict[str, Any]:
    """A budget reservation (``budget.reserve``'s answer): epsilon reserved, the source's label
    (never its credentials), what the source had spent in the window, and the cap."""
    return {
        "epsilon": reservation.get("epsilon"),
        "delta": delta,
        "source": reservation.get("source"),
        "spent_before": reservation.get("spent_before"),
        "cap": reservation.get("cap"),
        "reused": bool(reservation.get("reused", False)),
    }


def refusal_payload(stage: str, reasons: list[str], **facts: Any) -> dict[str, Any]:
    """A refusal (budget cap, preflight, release): where it happened, why, and the facts weighed."""
    return {"stage": stage, "reasons": [str(r)[:1000] for r in reasons[:50]], **facts}
