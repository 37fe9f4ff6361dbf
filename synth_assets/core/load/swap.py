"""The staging schema's life: ``<name>__next`` created empty, swapped in as ``<name>`` (the old
one kept as ``<name>__prev``) in one transaction, or dropped when the load fails."""

from __future__ import annotations

import psycopg
from psycopg import sql

from .errors import LoadError, _first_line
from .meta import SCHEMA_MARKER, _managed, _outside_dependents


def _drop_schema(conn: psycopg.Connection, name: str) -> None:
    """Drop a schema of ours and its row in ``synth_meta.managed_schemas``."""
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    conn.execute("DELETE FROM synth_meta.managed_schemas WHERE schema_name = %s", (name,))


def _create_next(
    main: psycopg.Connection,
    next_s: str,
    load_id: int,
    rid: str,
    type_ddl: list[sql.Composable],
) -> None:
    """Create ``next_s`` afresh (a crashed load may have left one), marked and registered as
    ours, with the source's enums and domains in it (committed)."""
    with main.transaction():
        if _managed(main, [next_s]).get(next_s):  # a crashed load left it behind
            _drop_schema(main, next_s)
        main.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(next_s)))
        main.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(next_s),
                sql.Literal(f"{SCHEMA_MARKER}: load {load_id}, refresh {rid}"),
            )
        )
        main.execute(
            "INSERT INTO synth_meta.managed_schemas (schema_name, load_id, refresh_id) VALUES (%s, %s, %s)",
            (next_s, load_id, rid),
        )
        for statement in type_ddl:  # the source's enums and domains
            main.execute(statement)
    main.commit()


def _swap(main: psycopg.Connection, schema: str) -> bool:
    """In the caller's transaction: drop ``__prev``, rename ``schema`` to ``__prev`` and
    ``__next`` to ``schema``; whether a previous ``schema`` was replaced. FKs reference tables
    by OID, so they follow the rename."""
    next_s, prev_s = f"{schema}__next", f"{schema}__prev"
    main.execute("SET LOCAL lock_timeout = '60s'")
    state = _managed(main, [schema, next_s, prev_s])
    if not state.get(next_s):
        raise LoadError(
            f"{next_s} disappeared or lost its marker during the load: refusing to swap"
        )
    if state.get(prev_s):
        outside = _outside_dependents(main, prev_s)
        if outside:
            raise LoadError(
                f"objects outside {prev_s} depend on it ({', '.join(outside[:5])}): drop or "
                f"repoint them, then load again; {schema} was not changed"
            )
        _drop_schema(main, prev_s)
    replaced = bool(state.get(schema))
    if replaced:
        _rename(main, schema, prev_s)
    _rename(main, next_s, schema)
    return replaced


def _rename(main: psycopg.Connection, old: str, new: str) -> None:
    """Rename a schema of ours, and its row in ``synth_meta.managed_schemas``."""
    main.execute(
        sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )
    main.execute(
        "UPDATE synth_meta.managed_schemas SET schema_name = %s WHERE schema_name = %s",
        (new, old),
    )


def _fail(main: psycopg.Connection, next_s: str, load_id: int, exc: BaseException) -> None:
    """Drop ``__next`` (it is ours) and mark the load failed; never raises."""
    try:
        main.rollback()
        with main.transaction():
            if _managed(main, [next_s]).get(next_s):
                _drop_schema(main, next_s)
            main.execute(
                "UPDATE synth_meta.load_runs SET status = 'failed', error = %s, finished_at = now() "
                "WHERE load_id = %s",
                (_first_line(exc)[:2000], load_id),
            )
        main.commit()
    except psycopg.Error:
        pass
