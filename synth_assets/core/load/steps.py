"""The load's steps, as scheduler tasks: per table one binary COPY (in the transaction that
creates the table), a count, key indexes, indexes, constraints, CHECK validation, foreign keys
and ANALYZE, with the dependencies and table locks that order them."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from synth_assets.core.roles import qi

from .copy import COPY_SIGNATURE, COPY_TRAILER, ColumnPlan, encode_batch, iter_batches
from .ddl import TablePlan
from .errors import LoadError
from .scheduler import _Aborted, _Task

Progress = Callable[[str, int, int], None]


@dataclass
class Build:
    """What the steps of one build of the next schema share: where and how they copy, the abort
    flag, and what they count (rows copied and counted per table; rows breaking, or repaired
    for, each cross-column CHECK)."""

    next_schema: str
    batch_rows: int
    progress: Progress | None
    abort: threading.Event = field(default_factory=threading.Event)
    copied: dict[str, int] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)
    unvalidated: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)


def _copy_task(tp: TablePlan, build: Build) -> Callable[[psycopg.Connection], None]:
    """A step that creates the table and COPYs its shards in one transaction (so ``FREEZE``
    applies), then casts its text-loaded columns; a broken domain CHECK is named."""
    qtab = sql.Identifier(build.next_schema, tp.name)
    copied_cols = [c for c in tp.columns if c.kind != "generated"]
    cols = [c.name for c in copied_cols]

    def run(conn: psycopg.Connection) -> None:
        defs = [
            sql.SQL("{} {}{}{}").format(
                sql.Identifier(c.name),
                sql.SQL(c.ddl_type),
                sql.SQL(f" GENERATED ALWAYS AS ({c.generated}) STORED" if c.generated else ""),
                sql.SQL(" NOT NULL" if c.declare_not_null else ""),
            )
            for c in tp.columns
        ]
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(qtab, sql.SQL(", ").join(defs)))
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY, FREEZE)").format(
            qtab, sql.SQL(", ").join(map(sql.Identifier, cols))
        )
        try:
            _copy_rows(conn, tp, stmt, cols, copied_cols, build)
            _cast_columns(conn, qtab, [c for c in tp.columns if c.kind == "cast"])
        except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
            broken = _domain_violation(tp, exc)
            if broken is None:
                raise
            raise broken from exc

    return run


def _copy_rows(
    conn: psycopg.Connection,
    tp: TablePlan,
    stmt: sql.Composable,
    cols: list[str],
    copied_cols: list[ColumnPlan],
    build: Build,
) -> None:
    """Stream every shard of the table through one binary COPY."""
    batch_rows, progress, abort = build.batch_rows, build.progress, build.abort
    done = 0
    total = tp.rows
    with conn.cursor() as cur:
        with cur.copy(stmt) as cp:
            cp.write(COPY_SIGNATURE)
            for f in tp.files:
                in_file = 0
                for batch in iter_batches(f.path, cols, batch_rows):
                    if abort.is_set():
                        raise _Aborted()
                    cp.write(encode_batch(batch, copied_cols, tp.name))
                    in_file += batch.num_rows
                    done += batch.num_rows
                    if progress is not None:
                        progress(tp.name, done, total)
                if in_file != f.rows:
                    raise LoadError(f"{f.path} holds {in_file} rows, its manifest says {f.rows}")
            cp.write(COPY_TRAILER)
        build.copied[tp.name] = cur.rowcount


def _cast_columns(conn: psycopg.Connection, qtab: sql.Identifier, casts: list[ColumnPlan]) -> None:
    """Give the columns loaded as text their type (a domain's CHECKs are checked here)."""
    if not casts:
        return
    conn.execute(
        sql.SQL("ALTER TABLE {} {}").format(
            qtab,
            sql.SQL(", ").join(
                sql.SQL("ALTER COLUMN {} TYPE {} USING {}::{}").format(
                    sql.Identifier(c.name),
                    sql.SQL(c.cast_to or "text"),
                    sql.Identifier(c.name),
                    sql.SQL(c.cast_to or "text"),
                )
                for c in casts
            ),
        )
    )


_COPY_COLUMN = re.compile(r"^COPY .*?, line \d+, column (.+?)(?::.*)?$")


def _domain_violation(tp: TablePlan, exc: psycopg.Error) -> LoadError | None:
    """A generated row broke a domain's CHECK (or NOT NULL) while loading ``tp``: the error that
    names the table, the column and the constraint; None when no domain of ``tp`` raised it."""
    domain, con = exc.diag.datatype_name, exc.diag.constraint_name
    typed = [c for c in tp.typed_by_domain if any(d.name == domain for d in c.domains)]
    if not domain or not typed:
        return None
    context = (exc.diag.context or "").splitlines()  # "COPY t, line 3, column y" names it
    m = _COPY_COLUMN.match(context[0]) if context else None
    named = [c for c in typed if m and c.name == m.group(1)] or typed
    where = " or ".join(f"{tp.name}.{c.name}" for c in named)
    if con is None:
        return LoadError(
            f"{where}: a generated row is NULL, which domain {domain} (NOT NULL) refuses; staging "
            "keeps the domain, so nothing was loaded (the generator treats the column as NOT "
            "NULL: this is a bug to report)"
        )
    definition = next((d for c in named for n, d in c.domain_checks if n == con), "")
    return LoadError(
        f"{where}: generated values break constraint {con} of domain {domain} ({definition}); "
        "staging keeps the domain's CHECKs, so nothing was loaded. The generator keeps the "
        "bounds, exclusions and value lists a CHECK states, not other conditions: give the "
        "column a role or values that satisfy it (columns:, overrides.categorical, "
        "public.values), or exclude the table (source.exclude)"
    )


def _exec_all(statements: list[str]) -> Callable[[psycopg.Connection], None]:
    """A step that runs reflected DDL statements in order."""

    def run(conn: psycopg.Connection) -> None:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type] - reflected DDL, no parameters

    return run


def _exec(statement: str) -> Callable[[psycopg.Connection], None]:
    """A step that runs one reflected DDL statement."""
    return _exec_all([statement])


# A CHECK that orders two columns of a row: CHECK ((end_at > start_at)), quoted names allowed.
_ORDER_CHECK = re.compile(
    r'^CHECK\s*\(\(?\s*("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*(<=|>=|<|>)\s*'
    r'("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*\)?\)$'
)


def _order_pair(definition: str) -> tuple[str, str] | None:
    """(lower, upper) columns of an ordering CHECK between two columns, else None."""
    m = _ORDER_CHECK.match(definition.strip())
    if not m or m.group(1) == m.group(3):
        return None
    a, op, b = m.group(1), m.group(2), m.group(3)
    return (b, a) if op in (">", ">=") else (a, b)


def _validate_checks_task(tp: TablePlan, build: Build) -> Callable[[psycopg.Connection], None]:
    """Validate each cross-column CHECK; one that orders two columns (end_at > start_at) is
    first repaired by swapping the two values in the rows that break it (the generator draws
    each column from its own distribution); what still breaks a CHECK is counted, not fatal."""
    next_schema, unvalidated, repaired = build.next_schema, build.unvalidated, build.repaired

    def run(conn: psycopg.Connection) -> None:
        qt = sql.Identifier(next_schema, tp.name)
        for name, definition in tp.checks:
            expr = definition.strip()
            expr = expr[len("CHECK") :].strip() if expr.upper().startswith("CHECK") else expr
            pair = _order_pair(definition)
            if pair is not None:
                lo, hi = (sql.SQL(c) for c in pair)
                try:
                    with conn.transaction():
                        cur = conn.execute(
                            sql.SQL("UPDATE {} SET {} = {}, {} = {} WHERE NOT {}").format(
                                qt, lo, hi, hi, lo, sql.SQL(expr)
                            )
                        )
                        if cur.rowcount:
                            repaired[f"{tp.name}.{name}"] = int(cur.rowcount)
                except psycopg.Error:
                    pass  # a key or type the swap would break: counted below as it is
            try:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                            qt, sql.Identifier(name)
                        )
                    )
            except psycopg.errors.CheckViolation:
                bad = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE NOT {}").format(qt, sql.SQL(expr))
                ).fetchone()[0]
                unvalidated[f"{tp.name}.{name}"] = int(bad)

    return run


def _count_task(tp: TablePlan, build: Build) -> Callable[[psycopg.Connection], None]:
    """A step that counts the table's rows (checked against COPY's count and the manifests)."""

    def run(conn: psycopg.Connection) -> None:
        build.counted[tp.name] = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(build.next_schema, tp.name))
        ).fetchone()[0]

    return run


def _build_tasks(plans: dict[str, TablePlan], build: Build) -> list[_Task]:
    """Every step of the load; the biggest tables first, ANALYZE last."""
    next_schema = build.next_schema
    tasks: list[_Task] = []
    for tp in plans.values():
        tasks += _table_tasks(tp, build)
    for tp in plans.values():
        if tp.checks:
            tasks.append(
                _Task(
                    f"checks:{tp.name}",
                    _validate_checks_task(tp, build),
                    frozenset({tp.name}),
                    True,
                    frozenset({f"constraints:{tp.name}"}),
                    priority=-float(tp.rows),
                )
            )
    for tp in plans.values():
        tasks += _fk_tasks(tp, next_schema)
    for tp in plans.values():
        tasks.append(_analyze_task(tp, next_schema, tasks))
    return tasks


def _table_tasks(tp: TablePlan, build: Build) -> list[_Task]:
    """COPY, count, key indexes, indexes and constraints of one table."""
    big = -float(tp.rows)
    tab = frozenset({tp.name})
    copy_key = frozenset({f"copy:{tp.name}"})
    tasks = [
        _Task(
            f"copy:{tp.name}",
            _copy_task(tp, build),
            tab,
            True,
            priority=big,
        ),
        _Task(
            f"count:{tp.name}",
            _count_task(tp, build),
            tab,
            False,
            copy_key,
            priority=1e12 + big,
        ),
    ]
    idx_keys = []
    for i, stmt in enumerate(tp.key_indexes):
        key = f"key-index:{tp.name}:{i}"
        tasks.append(_Task(key, _exec(stmt), tab, False, copy_key, priority=big))
        idx_keys.append(key)
    for iname, stmt in tp.indexes:
        key = f"index:{tp.name}:{iname}"
        tasks.append(_Task(key, _exec(stmt), tab, False, copy_key, priority=big + 0.5))
    tasks.append(_constraints_task(tp, build.next_schema, idx_keys))
    return tasks


def _constraints_task(tp: TablePlan, next_schema: str, idx_keys: list[str]) -> _Task:
    """One ALTER TABLE adding the table's constraints (after its key indexes), then its identity
    sequences moved past the synthetic rows; a no-op step when it has none, as a dependency."""
    tab = frozenset({tp.name})
    if not tp.alter:
        return _Task(
            f"constraints:{tp.name}",
            lambda conn: None,
            tab,
            True,
            frozenset({f"copy:{tp.name}"}),
            priority=-float(tp.rows),
        )
    qtab = f"{qi(next_schema)}.{qi(tp.name)}"
    stmts = [f"ALTER TABLE {qtab} " + ", ".join(tp.alter)] + [
        # the next value an application inserts follows the synthetic rows
        f"SELECT setval(pg_get_serial_sequence('{qtab.replace(chr(39), chr(39) * 2)}', "
        f"'{col.replace(chr(39), chr(39) * 2)}'), coalesce(max({qi(col)}), 0) + 1, "
        f"false) FROM {qtab}"
        for col in tp.identity
    ]
    return _Task(
        f"constraints:{tp.name}",
        _exec_all(stmts),
        tab,
        True,
        frozenset({f"copy:{tp.name}", *idx_keys}),
        priority=-float(tp.rows),
    )


def _fk_tasks(tp: TablePlan, next_schema: str) -> list[_Task]:
    """One step per foreign key, once both its tables have their constraints."""
    return [
        _Task(
            f"fk:{tp.name}:{name}",
            _exec(f"ALTER TABLE {qi(next_schema)}.{qi(tp.name)} {clause}"),
            frozenset({tp.name, ref}),
            True,
            frozenset({f"constraints:{tp.name}", f"constraints:{ref}"}),
            priority=-float(tp.rows),
        )
        for name, ref, clause in tp.fks
    ]


def _analyze_task(tp: TablePlan, next_schema: str, tasks: list[_Task]) -> _Task:
    """ANALYZE of one table after every step that changes it (its indexes, FKs touching it)."""
    touching = frozenset(t.key for t in tasks if t.key.startswith("fk:") and tp.name in t.tables)
    indexes = frozenset(t.key for t in tasks if t.key.startswith(f"index:{tp.name}:"))
    return _Task(
        f"analyze:{tp.name}",
        _exec(f"ANALYZE {qi(next_schema)}.{qi(tp.name)}"),
        frozenset({tp.name}),
        True,
        frozenset({f"constraints:{tp.name}", *touching, *indexes}),
        priority=2e12,
    )
