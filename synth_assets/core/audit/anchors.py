"""Anchors outside the database: the head (seq, MAC) of an audit database, MAC-signed, in the
work directory and in an unpublished refresh; written after an append, checked before one."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .errors import AuditChainBroken, AuditError
from .events import AuditEvent, _canonical, _ts
from .keys import AuditKey, AuditSigner

ANCHOR_FORMAT = "synth_assets.audit_anchor/1"


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
