"""The privacy budget across refreshes: every epsilon spent, per source, with an annual cap.

Stored beside the audit log (``synth_budget.spend`` in the audit database). A refresh reserves
its epsilon *before* any query reaches the source; a refresh that would push the last 365 days
over the cap is refused with the date the budget frees up. Reservations are never released
(a profile that failed midway counts as spent: conservative by design).
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
  status text NOT NULL CHECK (status IN ('reserved', 'spent')),
  spent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS spend_source_idx ON synth_budget.spend (source_key, spent_at);
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


def standing(url: str, key: str, cap: float, now: datetime | None = None) -> Standing:
    """What the source has spent in the last 365 days."""
    now = now or datetime.now(UTC)
    with connect(url) as conn, conn.transaction():
        _ensure(conn)
        rows = conn.execute(
            "SELECT refresh_id, epsilon, spent_at, status FROM synth_budget.spend "
            "WHERE source_key = %s AND spent_at > %s ORDER BY spent_at",
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
            "SELECT epsilon FROM synth_budget.spend WHERE refresh_id = %s", (refresh_id,)
        ).fetchone()
        if existing:
            return {
                "refresh_id": refresh_id,
                "epsilon": float(existing[0]),
                "source": label,
                "reused": True,
            }
        rows = conn.execute(
            "SELECT epsilon, spent_at FROM synth_budget.spend WHERE source_key = %s AND spent_at > %s",
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
            "VALUES (%s, %s, %s, %s, %s, 'reserved', %s)",
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
            "UPDATE synth_budget.spend SET epsilon = LEAST(epsilon, %s), status = 'spent' "
            "WHERE refresh_id = %s",
            (epsilon_spent, refresh_id),
        )
