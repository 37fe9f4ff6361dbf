"""The privacy budget across refreshes: every epsilon spent, per source, with an annual cap.

Stored beside the audit log (``synth_budget.spend`` in the audit database). A refresh reserves
its epsilon *before* any query reaches the source; a refresh that would push the last 365 days
over the cap is refused with the date the budget frees up. A profile that failed midway counts
as spent (conservative by design). A reservation whose refresh stopped before its first DP
measurement is released: its row stays in the ledger with status ``released``, epsilon 0 and
the reason, so a failed run cannot use up the annual cap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from .errors import BudgetError
from .pg import connect, redact

WINDOW = timedelta(days=365)
_DDL = """
CREATE SCHEMA IF NOT EXISTS synth_budget;
CREATE TABLE IF NOT EXISTS synth_budget.spend (
  refresh_id text PRIMARY KEY,
  source_key text NOT NULL,
  source text NOT NULL,
  epsilon double precision NOT NULL CHECK (epsilon >= 0),
  delta double precision NOT NULL,
  status text NOT NULL,
  spent_at timestamptz NOT NULL DEFAULT now(),
  note text,
  CONSTRAINT spend_status_check CHECK (status IN ('reserved', 'spent', 'released'))
);
CREATE INDEX IF NOT EXISTS spend_source_idx ON synth_budget.spend (source_key, spent_at);
"""
# Ledgers created before releases existed: the note column and the wider status check.
_MIGRATE = """
ALTER TABLE synth_budget.spend ADD COLUMN IF NOT EXISTS note text;
ALTER TABLE synth_budget.spend DROP CONSTRAINT IF EXISTS spend_status_check;
ALTER TABLE synth_budget.spend ADD CONSTRAINT spend_status_check
  CHECK (status IN ('reserved', 'spent', 'released'));
"""


def source_key(source_url: str, schema: str, pinned: str | None = None) -> tuple[str, str]:
    """(hashed key, readable label) identifying a source without its credentials."""
    label = pinned or f"{redact(source_url).split('?')[0]}#{schema}"
    return hashlib.sha256(label.encode()).hexdigest()[:32], label


@dataclass
class Standing:
    """Budget standing of a source: spent in the window, the cap, and when budget frees up."""

    spent: float
    cap: float
    entries: list[dict[str, Any]]

    def frees_up(self, need: float) -> datetime | None:
        """Earliest time at which ``need`` more epsilon fits under the cap (None: it fits now)."""
        total = self.spent
        if total + need <= self.cap + 1e-9:
            return None
        for e in sorted(self.entries, key=lambda e: e["spent_at"]):
            total -= e["epsilon"]
            if total + need <= self.cap + 1e-9:
                return e["spent_at"] + WINDOW
        return None  # needs more than the cap itself

    def refuse_if_over(self, need: float, label: str) -> None:
        """Raise BudgetError, naming the cap, the spent total and the date budget frees up."""
        if self.spent + need <= self.cap + 1e-9:
            return
        when = self.frees_up(need)
        raise BudgetError(
            f"annual privacy budget exceeded for source {label}: the cap is epsilon={self.cap:g} per 365 days, "
            f"{self.spent:g} is already spent in {len(self.entries)} refresh(es), this refresh needs {need:g}. "
            + (f"Enough budget frees up on {when:%Y-%m-%d %H:%M} UTC. " if when else "")
            + "Re-run only `regenerate_from_spec` (it spends no budget), or raise "
            "privacy.annual_epsilon_cap with your privacy officer's approval."
        )


def _ensure(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('synth_budget'))")
    conn.execute(_DDL)
    current = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'synth_budget.spend'::regclass AND conname = 'spend_status_check'"
    ).fetchone()
    if not current or "released" not in current[0]:
        conn.execute(_MIGRATE)


def _has_ledger(conn: psycopg.Connection) -> bool:
    """Whether the ledger table exists (reads never create it: preflight creates nothing)."""
    return bool(conn.execute("SELECT to_regclass('synth_budget.spend') IS NOT NULL").fetchone()[0])


def standing(url: str, key: str, cap: float, now: datetime | None = None) -> Standing:
    """What the source has spent in the last 365 days (read-only: a ledger that does not exist
    yet means nothing was spent, and preflight must create nothing)."""
    now = now or datetime.now(UTC)
    with connect(url) as conn, conn.transaction():
        if not _has_ledger(conn):
            return Standing(0.0, cap, [])
        rows = conn.execute(
            "SELECT refresh_id, epsilon, spent_at, status FROM synth_budget.spend "
            "WHERE source_key = %s AND spent_at > %s AND status <> 'released' ORDER BY spent_at",
            (key, now - WINDOW),
        ).fetchall()
    entries = [
        {"refresh_id": r[0], "epsilon": float(r[1]), "spent_at": r[2], "status": r[3]} for r in rows
    ]
    return Standing(sum(e["epsilon"] for e in entries), cap, entries)


def reserve(
    url: str,
    refresh_id: str,
    source_url: str,
    schema: str,
    epsilon: float,
    delta: float,
    cap: float,
    pinned: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Reserve ``epsilon`` for a refresh, or refuse if the annual cap would be exceeded."""
    key, label = source_key(source_url, schema, pinned)
    now = now or datetime.now(UTC)
    with connect(url) as conn, conn.transaction():
        _ensure(conn)  # the advisory lock serialises concurrent refreshes of any source
        existing = conn.execute(
            "SELECT epsilon, status FROM synth_budget.spend WHERE refresh_id = %s", (refresh_id,)
        ).fetchone()
        if existing and existing[1] != "released":  # a released one is reserved again below
            return {
                "refresh_id": refresh_id,
                "epsilon": float(existing[0]),
                "source": label,
                "reused": True,
            }
        rows = conn.execute(
            "SELECT epsilon, spent_at FROM synth_budget.spend "
            "WHERE source_key = %s AND spent_at > %s AND status <> 'released'",
            (key, now - WINDOW),
        ).fetchall()
        st = Standing(
            sum(float(r[0]) for r in rows),
            cap,
            [{"epsilon": float(r[0]), "spent_at": r[1]} for r in rows],
        )
        st.refuse_if_over(epsilon, label)
        conn.execute(
            "INSERT INTO synth_budget.spend (refresh_id, source_key, source, epsilon, delta, status, spent_at) "
            "VALUES (%s, %s, %s, %s, %s, 'reserved', %s) ON CONFLICT (refresh_id) DO UPDATE "
            "SET epsilon = excluded.epsilon, delta = excluded.delta, status = 'reserved', "
            "spent_at = excluded.spent_at, note = NULL",
            (refresh_id, key, label, epsilon, delta, now),
        )
    return {
        "refresh_id": refresh_id,
        "epsilon": epsilon,
        "source": label,
        "spent_before": st.spent,
        "cap": cap,
    }


def settle(url: str, refresh_id: str, epsilon_spent: float) -> None:
    """Record the epsilon a finished profile actually spent (never more than reserved)."""
    with connect(url) as conn, conn.transaction():
        _ensure(conn)
        conn.execute(
            "UPDATE synth_budget.spend SET status = 'spent', "
            "epsilon = CASE WHEN status = 'released' THEN %s ELSE LEAST(epsilon, %s) END "
            "WHERE refresh_id = %s",
            (epsilon_spent, epsilon_spent, refresh_id),
        )


def release(url: str, refresh_id: str, reason: str) -> bool:
    """Release a reservation whose refresh stopped before its first DP measurement.

    The row stays in the ledger (status ``released``, epsilon 0, the reserved epsilon and the
    reason in ``note``) so the ledger shows what happened. A settled (spent) entry is never
    touched. Returns True when a reservation was released.
    """
    with connect(url) as conn, conn.transaction():
        _ensure(conn)
        row = conn.execute(
            "UPDATE synth_budget.spend SET status = 'released', epsilon = 0, "
            "note = 'released unused: reserved epsilon=' || epsilon || '; ' || %s "
            "WHERE refresh_id = %s AND status = 'reserved' RETURNING refresh_id",
            (reason, refresh_id),
        ).fetchone()
    return row is not None


def ledger(url: str, key: str | None = None) -> list[dict[str, Any]]:
    """Every ledger row (of one source key, or all), oldest first; read-only (no ledger: [])."""
    with connect(url) as conn:
        if not _has_ledger(conn):
            return []
        rows = conn.execute(
            "SELECT refresh_id, source_key, source, epsilon, delta, status, spent_at, note "
            "FROM synth_budget.spend WHERE %s::text IS NULL OR source_key = %s ORDER BY spent_at",
            (key, key),
        ).fetchall()
    cols = ("refresh_id", "source_key", "source", "epsilon", "delta", "status", "spent_at", "note")
    return [dict(zip(cols, r, strict=True)) for r in rows]
