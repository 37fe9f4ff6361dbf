"""Reading the log for people: its events in seq order, one line each."""

from __future__ import annotations

import json

from synth_assets.core.pg import connect

from .events import AuditEvent, _ts
from .log import _has_key_column, _has_schema, _rows


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
