"""DDL replay: the source's types, tables, constraints, indexes and foreign keys, reflected and
re-qualified to ``<name>__next``."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from synth_assets.core.roles import qi
from synth_assets.core.schema import Column, Domain, SchemaModel, Table

from .copy import ColumnPlan, _all_null_columns, plan_columns
from .errors import LoadRefused
from .inputs import LoadInputs, ShardFile

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _closing_quote(text: str, i: int) -> int:
    """Index of the quote closing the literal or identifier opened at ``i`` (doubled quotes escape)."""
    q, j, n = text[i], i + 1, len(text)
    while j < n:
        if text[j] == q:
            if j + 1 < n and text[j + 1] == q:
                j += 2
                continue
            break
        j += 1
    return j


def requalify(text: str, source: str, target: str) -> str:
    """Replace schema qualifiers ``source.`` (bare or quoted, outside literals) by ``"target".``."""
    out: list[str] = []
    i, n = 0, len(text)
    q_source, q_target = qi(source), qi(target)
    while i < n:
        ch = text[i]
        if ch == "'":
            j = _closing_quote(text, i)
            out.append(text[i : j + 1])
            i = j + 1
        elif ch == '"':
            j = _closing_quote(text, i)
            ident = text[i : j + 1]
            is_schema = (ident == q_source or (ident[1:-1] == source)) and text.startswith(
                ".", j + 1
            )
            out.append(q_target if is_schema else ident)
            i = j + 1
        elif (ch.isalpha() or ch == "_") and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_$")
        ):
            m = _WORD.match(text, i)
            word = m.group(0) if m else ch
            end = m.end() if m else i + 1
            if word.lower() == source and source == source.lower() and text.startswith(".", end):
                out.append(q_target)
            else:
                out.append(word)
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_SIMPLE_KEY = re.compile(
    r"^(PRIMARY KEY|UNIQUE)( NULLS NOT DISTINCT)? \(([^()]*)\)"
    r"((?: DEFERRABLE)?(?: INITIALLY (?:DEFERRED|IMMEDIATE))?)$"
)


@dataclass
class TablePlan:
    """DDL and data of one table in ``<name>__next``."""

    name: str
    columns: list[ColumnPlan]
    files: list[ShardFile]
    key_indexes: list[str] = field(default_factory=list)  # CREATE UNIQUE INDEX for PK/UNIQUE
    alter: list[str] = field(default_factory=list)  # ADD CONSTRAINT clauses (PK/UNIQUE/CHECK)
    checks: list[tuple[str, str]] = field(default_factory=list)  # CHECKs to VALIDATE after adding
    indexes: list[tuple[str, str]] = field(default_factory=list)
    fks: list[tuple[str, str, str]] = field(default_factory=list)  # (name, ref table, clause)
    identity: list[str] = field(default_factory=list)  # columns whose sequence starts after max
    typed_by_domain: list[Column] = field(default_factory=list)  # to name a broken domain CHECK

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def _table_ddl(
    model: SchemaModel, inputs: LoadInputs, next_schema: str, ddl_types: dict[str, dict[str, str]]
) -> dict[str, TablePlan]:
    """A :class:`TablePlan` per table, in load order."""
    return {
        tname: _table_plan(
            tname, model.tables[tname], inputs.files[tname], model.schema, next_schema, ddl_types
        )
        for tname in inputs.order
    }


def _table_plan(
    tname: str,
    table: Table,
    files: list[ShardFile],
    src: str,
    next_schema: str,
    ddl_types: dict[str, dict[str, str]],
) -> TablePlan:
    """One table's columns (encoding from its first shard), constraints, indexes and FKs."""
    first = pq.ParquetFile(files[0].path).schema_arrow
    cols = plan_columns(
        tname,
        table.columns,
        first,
        _all_null_columns(files, [c.name for c in table.columns]),
        ddl_types[tname],
    )
    cols = [  # a generated column's expression may name the source schema
        dataclasses.replace(c, generated=requalify(c.generated, src, next_schema))
        if c.generated
        else c
        for c in cols
    ]
    tp = TablePlan(tname, cols, files, typed_by_domain=[c for c in table.columns if c.domains])
    _add_constraints(tp, table, src, next_schema)
    for c in table.columns:  # identity columns are identities again, after the COPY
        if c.identity and not c.nullable:
            how = "ALWAYS" if c.identity_always else "BY DEFAULT"
            tp.alter.append(f"ALTER COLUMN {qi(c.name)} ADD GENERATED {how} AS IDENTITY")
            tp.identity.append(c.name)
    for iname, idef in table.indexes:
        tp.indexes.append((iname, requalify(idef, src, next_schema)))
    for fk in table.foreign_keys:
        tp.fks.append(
            (
                fk.name,
                fk.ref_table,
                f"ADD CONSTRAINT {qi(fk.name)} {requalify(fk.definition, src, next_schema)}",
            )
        )
    return tp


def _add_constraints(tp: TablePlan, table: Table, src: str, next_schema: str) -> None:
    """PKs and UNIQUEs as indexes built in parallel then attached; CHECKs added NOT VALID."""
    qtab = f"{qi(next_schema)}.{qi(tp.name)}"
    for con in sorted(table.constraints, key=lambda c: {"p": 0, "u": 1, "c": 2}[c.kind]):
        definition = requalify(con.definition, src, next_schema)
        m = _SIMPLE_KEY.match(definition) if con.kind in ("p", "u") else None
        if m:
            nulls = " NULLS NOT DISTINCT" if m.group(2) else ""
            tp.key_indexes.append(
                f"CREATE UNIQUE INDEX {qi(con.name)} ON {qtab} ({m.group(3)}){nulls}"
            )
            tp.alter.append(
                f"ADD CONSTRAINT {qi(con.name)} {m.group(1)} USING INDEX {qi(con.name)}{m.group(4)}"
            )
        elif con.kind == "c":
            # Added NOT VALID, then validated separately: synthetic rows can break a
            # cross-column CHECK the generator cannot model; that is recorded, not fatal.
            clause = (
                definition
                if definition.rstrip().endswith("NOT VALID")
                else f"{definition} NOT VALID"
            )
            tp.alter.append(f"ADD CONSTRAINT {qi(con.name)} {clause}")
            if not con.definition.rstrip().endswith("NOT VALID"):
                tp.checks.append((con.name, definition))
        else:
            tp.alter.append(f"ADD CONSTRAINT {qi(con.name)} {definition}")


def _resolve_types(
    conn: psycopg.Connection, model: SchemaModel, next_schema: str
) -> tuple[dict[str, dict[str, str]], list[sql.Composable]]:
    """DDL type of every column in the target, and the statements that create the types of the
    source in ``next_schema`` first: its enums, then its domains (inner levels first)."""
    enums: dict[str, tuple[str, ...]] = {}
    domains: dict[str, tuple[Domain, str]] = {}  # name -> (level, the DDL type it is over)
    out: dict[str, dict[str, str]] = {}
    cache: dict[str, bool] = {}

    def exists(t: str) -> bool:
        if t not in cache:
            try:
                with conn.transaction():
                    cache[t] = conn.execute("SELECT to_regtype(%s) IS NOT NULL", (t,)).fetchone()[0]
            except psycopg.Error:
                cache[t] = False
        return cache[t]

    for t in model.tables.values():
        out[t.name] = {}
        for c in t.columns:
            if c.enum_labels:
                prev = enums.setdefault(c.base_type, c.enum_labels)
                if prev != c.enum_labels:
                    raise LoadRefused(
                        f"two enum types named {c.base_type} with different labels: cannot "
                        "recreate both in one staging schema"
                    )
                ddl = f"{qi(next_schema)}.{qi(c.base_type)}"
            elif exists(c.pg_type):
                ddl = c.pg_type
            elif exists(qi(c.base_type)):
                ddl = qi(c.base_type)
            else:
                raise LoadRefused(
                    f"{t.name}.{c.name} has type {c.pg_type}, which does not exist in the target database "
                    "(an extension or a type of the source schema): create it in the target first"
                )
            out[t.name][c.name] = _add_domains(domains, c, ddl, next_schema, f"{t.name}.{c.name}")
    clash = sorted(set(enums) & set(domains))
    if clash:
        raise LoadRefused(
            f"an enum and a domain are both named {', '.join(clash)}: cannot recreate both in one "
            "staging schema"
        )
    return out, _type_statements(model.schema, next_schema, enums, domains)


def _add_domains(
    domains: dict[str, tuple[Domain, str]], c: Column, ddl: str, next_schema: str, where: str
) -> str:
    """Register the column's domains (recreated in ``next_schema``, like enums, whatever schema
    they come from) over its base DDL type ``ddl``; the column's DDL type (its outer domain)."""
    for level in reversed(c.domains):
        prev = domains.setdefault(level.name, (level, ddl))
        if dataclasses.replace(prev[0], schema="") != dataclasses.replace(level, schema="") or (
            prev[1] != ddl
        ):
            raise LoadRefused(
                f"two domains named {level.name} ({prev[0].schema}.{level.name} and "
                f"{level.schema}.{level.name}, used by {where}) differ: cannot recreate both in "
                "one staging schema"
            )
        ddl = f"{qi(next_schema)}.{qi(level.name)}"
    return ddl


def _type_statements(
    src: str,
    next_schema: str,
    enums: dict[str, tuple[str, ...]],
    domains: dict[str, tuple[Domain, str]],
) -> list[sql.Composable]:
    """CREATE TYPE for the enums and CREATE DOMAIN (with NOT NULL, DEFAULT and every CHECK) for
    the domains: staging enforces a domain's CHECK on every row, as the source did."""
    out: list[sql.Composable] = [
        sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
            sql.Identifier(next_schema, typname), sql.SQL(", ").join(map(sql.Literal, labels))
        )
        for typname, labels in enums.items()
    ]
    for name, (level, over) in domains.items():
        qname = f"{qi(next_schema)}.{qi(name)}"
        parts = [f"CREATE DOMAIN {qname} AS {over}"]
        if level.default is not None:
            parts.append(f"DEFAULT {requalify(level.default, src, next_schema)}")
        if level.not_null:
            parts.append("NOT NULL")
        later = []
        for cname, definition in level.checks:
            clause = f"CONSTRAINT {qi(cname)} {requalify(definition, src, next_schema)}"
            if definition.rstrip().endswith("NOT VALID"):  # as in the source: still enforced
                later.append(f"ALTER DOMAIN {qname} ADD {clause}")  # on new rows, COPY's too
            else:
                parts.append(clause)
        out += [sql.SQL(" ".join(parts))] + [sql.SQL(stmt) for stmt in later]
    return out
