"""Checks of a loaded schema: ``__next`` before the swap (counts, constraints, indexes, domains,
foreign keys), and the live schema afterwards (:func:`check_staging`, the staging gate)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from synth_assets.core.gates import GateResult
from synth_assets.core.pg import connect
from synth_assets.core.roles import qi
from synth_assets.core.schema import SchemaModel

from .ddl import TablePlan
from .errors import LoadError
from .inputs import LoadInputs
from .meta import _managed


def _verify(
    conn: psycopg.Connection,
    next_schema: str,
    inputs: LoadInputs,
    plans: dict[str, TablePlan],
    copied: dict[str, int],
    counted: dict[str, int],
) -> None:
    """Counts equal the manifests; every constraint and index exists; every FK resolves."""
    problems = []
    for t, want in inputs.rows.items():
        if copied.get(t) != want or counted.get(t) != want:
            problems.append(
                f"{t}: manifests hold {want} rows, COPY reported {copied.get(t)}, "
                f"count(*) {counted.get(t)}"
            )
    cons = {
        (r[0], r[1]): (r[2], r[3])
        for r in conn.execute(
            "SELECT c.relname, k.conname, k.contype, k.convalidated FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %s::regnamespace",
            (qi(next_schema),),
        )
    }
    idx = {
        r[0]
        for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (next_schema,)
        )
    }
    problems += _domain_problems(conn, next_schema, inputs.model)
    for t, table in inputs.model.tables.items():
        for con in table.constraints:
            if (t, con.name) not in cons:
                problems.append(f"{t}: constraint {con.name} is missing after the load")
        for iname, _ in table.indexes:
            if iname not in idx:
                problems.append(f"{t}: index {iname} is missing after the load")
        for fk in table.foreign_keys:
            got = cons.get((t, fk.name))
            if got is None or got[0] != "f":
                problems.append(f"{t}: foreign key {fk.name} is missing after the load")
            elif not got[1]:  # replayed as NOT VALID (as in the source): check it by query
                col, rcol = fk.columns[0], fk.ref_columns[0]
                orphans = conn.execute(
                    sql.SQL(
                        "SELECT count(*) FROM {} c WHERE c.{} IS NOT NULL AND NOT EXISTS "
                        "(SELECT 1 FROM {} p WHERE p.{} = c.{})"
                    ).format(
                        sql.Identifier(next_schema, t),
                        sql.Identifier(col),
                        sql.Identifier(next_schema, fk.ref_table),
                        sql.Identifier(rcol),
                        sql.Identifier(col),
                    )
                ).fetchone()[0]
                if orphans:
                    problems.append(f"{t}.{col}: {orphans} value(s) have no row in {fk.ref_table}")
    if problems:
        raise LoadError("the loaded schema does not verify: " + "; ".join(problems[:10]))


def _domain_problems(conn: psycopg.Connection, next_schema: str, model: SchemaModel) -> list[str]:
    """Columns typed with a domain in the source that are not typed with it in staging, or
    whose domain lacks one of its CHECKs there (a domain is never dropped silently)."""
    if not any(c.domains for t in model.tables.values() for c in t.columns):
        return []
    typed = {
        (r[0], r[1]): r[2]
        for r in conn.execute(
            "SELECT c.relname, a.attname, t.typname FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE c.relnamespace = %(s)s::regnamespace AND t.typnamespace = %(s)s::regnamespace "
            "AND a.attnum > 0 AND NOT a.attisdropped AND t.typtype = 'd'",
            {"s": qi(next_schema)},
        )
    }
    checks = {
        (r[0], r[1])
        for r in conn.execute(
            "SELECT t.typname, k.conname FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid "
            "WHERE t.typnamespace = %s::regnamespace",
            (qi(next_schema),),
        )
    }
    problems = []
    for t, table in model.tables.items():
        for c in table.columns:
            if c.domains and typed.get((t, c.name)) != c.domains[0].name:
                problems.append(f"{t}.{c.name} is not of domain {c.domains[0].name} after the load")
            missing = [n for d in c.domains for n, _ in d.checks if (d.name, n) not in checks]
            if missing:
                problems.append(f"{t}.{c.name}: domain CHECK(s) {', '.join(missing)} missing")
    return problems


STAGING_GATE = "staging_schema_intact"


def check_staging(target_url: str, schema: str, refresh_id: str | None = None) -> GateResult:
    """Re-check a live staging schema: ours, loaded from ``refresh_id``, counts as recorded, FKs
    valid. The same result type as every other gate (:class:`~synth_assets.core.gates.GateResult`)."""
    failures: list[str] = []
    metrics: dict[str, Any] = {}
    with connect(target_url) as conn:
        if not _managed(conn, [schema]).get(schema):
            return GateResult(
                STAGING_GATE,
                False,
                metrics,
                [f"schema {schema} does not exist or was not created by synth_assets"],
            )
        row = conn.execute(
            "SELECT r.load_id, r.refresh_id, r.rows FROM synth_meta.managed_schemas m "
            "JOIN synth_meta.load_runs r ON r.load_id = m.load_id WHERE m.schema_name = %s",
            (schema,),
        ).fetchone()
        if row is None or row[2] is None:
            return GateResult(
                STAGING_GATE, False, metrics, [f"synth_meta has no finished load for {schema}"]
            )
        load_id, rid, rows = row
        metrics.update({"load_id": load_id, "refresh_id": rid})
        if refresh_id and rid != refresh_id:
            failures.append(f"{schema} holds refresh {rid}, not {refresh_id}")
        counted = {}
        for t, want in rows.items():
            got = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, t))
            ).fetchone()[0]
            counted[t] = got
            if got != want:
                failures.append(f"{schema}.{t}: {got} rows, the load recorded {want}")
        metrics["rows"] = counted
        bad = [
            r[0]
            for r in conn.execute(
                "SELECT conname FROM pg_constraint WHERE connamespace = %s::regnamespace AND contype = 'f' "
                "AND NOT convalidated",
                (qi(schema),),
            )
        ]
        failures += [f"foreign key {n} is not validated" for n in bad]
        metrics["foreign_keys"] = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE connamespace = %s::regnamespace AND contype = 'f'",
            (qi(schema),),
        ).fetchone()[0]
    return GateResult(STAGING_GATE, not failures, metrics, failures)
