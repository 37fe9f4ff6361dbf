"""Events: the kinds, the fields an event's hash or MAC covers, and their canonical bytes."""

from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from synth_assets.core.digest import canonical_json

from .errors import AuditError
from .keys import AuditKey

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
