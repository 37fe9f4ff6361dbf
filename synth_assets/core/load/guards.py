"""Refusals before anything is written: a safe schema name, passed gates, a target that is
neither the source nor a production database, and no foreign schema in the way."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

from synth_assets.core.errors import SynthError
from synth_assets.core.pg import database_identity, redact
from synth_assets.core.store import RefreshPaths, read_json

from .errors import LoadRefused
from .meta import META_SCHEMA, _ours_or_refuse

REPORT_PATH = Path(RefreshPaths.REPORT_JSON)  # relative to the refresh directory
_SAFE_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_RESERVED = {"public", "information_schema", META_SCHEMA, "synth_audit", "synth_budget"}
_PRODUCTION = re.compile(r"\bproduction\b", re.IGNORECASE)


def check_schema_name(name: str) -> str:
    """Refuse a staging schema name that is not a plain, safe, non-reserved identifier."""
    if not isinstance(name, str) or not _SAFE_SCHEMA.match(name):
        raise LoadRefused(
            f"staging schema name {name!r} is not a safe identifier: use lowercase letters, digits and "
            "underscores, starting with a letter or underscore, at most 41 characters (target.schema)"
        )
    if name in _RESERVED or name.startswith("pg_") or name.endswith(("__next", "__prev")):
        raise LoadRefused(
            f"staging schema name {name!r} is reserved (public, information_schema, synth_meta, "
            "synth_audit, pg_*, *__next, *__prev): choose another target.schema"
        )
    return name


def production_marker(conn: psycopg.Connection) -> str | None:
    """Why the connected database is marked as production, or None.

    A database is a production database when any of these holds:

    * its comment mentions the word "production" (``COMMENT ON DATABASE db IS 'production …'``);
    * it has a table ``synth_meta.production_marker`` (create it to fence a database off);
    * the setting ``synth.environment`` is ``production`` for it
      (``ALTER DATABASE db SET synth.environment = 'production'``).
    """
    comment, has_table, env = conn.execute(
        "SELECT shobj_description(d.oid, 'pg_database'), "
        "to_regclass('synth_meta.production_marker') IS NOT NULL, "
        "current_setting('synth.environment', true) "
        "FROM pg_database d WHERE d.datname = current_database()"
    ).fetchone()
    if comment and _PRODUCTION.search(comment):
        return f"COMMENT ON DATABASE says {comment[:80]!r}"
    if has_table:
        return "the table synth_meta.production_marker exists"
    if env and env.strip().lower() == "production":
        return "synth.environment = 'production'"
    return None


def assert_not_source(source_url: str | None, target_url: str) -> None:
    """Refuse a target on the same server and database as the source (fail closed)."""
    if source_url is None:
        raise LoadRefused(
            "the source URL is unknown, so the target cannot be shown to differ from it: "
            "pass the source URL (source.url) to the loader"
        )
    if source_url == target_url:
        raise LoadRefused(
            f"target {redact(target_url)} is the source database: choose another target.url"
        )
    try:
        src = database_identity(source_url)
    except SynthError as exc:
        raise LoadRefused(
            f"cannot reach the source to prove the target differs from it ({exc}); refusing to load"
        ) from exc
    tgt = database_identity(target_url)
    if src == tgt:
        raise LoadRefused(
            f"target {redact(target_url)} is the source database ({tgt[1]} on the same server): "
            "synthetic data never goes into the source; set target.url to a separate database"
        )


def verify_report(refresh_dir: Path, refresh_id: str) -> dict[str, Any]:
    """The refresh's privacy report, if it exists, names this refresh and every gate passed."""
    path = RefreshPaths(Path(refresh_dir)).report_json
    if not path.is_file():
        raise LoadRefused(
            f"refresh {refresh_id} has no privacy report ({path}): materialize privacy_report "
            "for this refresh first; the loader never loads data whose gates did not run"
        )
    try:
        report = read_json(path)
    except ValueError as exc:
        raise LoadRefused(f"privacy report {path} is not valid JSON: {exc}") from None
    if not isinstance(report, dict) or report.get("refresh_id") != refresh_id:
        raise LoadRefused(
            f"privacy report {path} is for refresh {report.get('refresh_id') if isinstance(report, dict) else '?'}, "
            f"not {refresh_id}: regenerate the report for this refresh"
        )
    gates = report.get("gates")
    if not isinstance(gates, dict) or not gates:
        raise LoadRefused(
            f"privacy report {path} lists no gates: refusing to load an unchecked refresh"
        )
    failed = sorted(
        n for n, g in gates.items() if not (isinstance(g, dict) and g.get("passed") is True)
    )
    if failed or report.get("passed") is not True:
        raise LoadRefused(
            f"refresh {refresh_id} did not pass its release gates ({', '.join(failed) or 'report verdict: failed'}): "
            "fix the cause and re-run from calibrated_spec; a failed refresh is never loaded"
        )
    return report


def _check_target(conn: psycopg.Connection, target_url: str, names: list[str]) -> None:
    """Refuse a production target, or one where a schema of ``names`` exists but is not ours."""
    marker = production_marker(conn)
    if marker:
        raise LoadRefused(
            f"target {redact(target_url)} is marked as production ({marker}): refusing to "
            "load synthetic data there; choose a staging database for target.url"
        )
    _ours_or_refuse(
        conn,
        names,
        "exist in the target but",
        "refusing to replace them; choose another target.schema or remove them yourself",
    )
