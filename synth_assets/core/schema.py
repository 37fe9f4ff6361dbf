"""Schema reflection from the PostgreSQL catalog, and a generation order that breaks FK cycles."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from .errors import SchemaError


@dataclass(frozen=True)
class Domain:
    """One level of a DOMAIN a column is typed with: staging recreates it, so that its CHECKs
    and NOT NULL hold there too, and the generator reads its CHECKs like a column's own."""

    schema: str
    name: str
    not_null: bool = False
    default: str | None = None  # pg_type.typdefault, the expression as text
    checks: tuple[tuple[str, str], ...] = ()  # (constraint name, pg_get_constraintdef)


@dataclass(frozen=True)
class Column:
    name: str
    # format_type(), e.g. "numeric(12,2)", "timestamp with time zone"; for a domain column, the
    # type under its domains (with the domain's typmod), since that is what values are stored as
    pg_type: str
    base_type: str  # typname of the base type (under every domain), e.g. "numeric", "text"
    nullable: bool  # False also when a domain of the column is NOT NULL
    max_length: int | None = None
    enum_labels: tuple[str, ...] | None = None  # schema-level values of an enum type
    has_default: bool = False
    identity: bool = False
    identity_always: bool = False  # GENERATED ALWAYS (else BY DEFAULT) AS IDENTITY
    # GENERATED ALWAYS AS (expr) STORED: the expression; PostgreSQL computes the value, so the
    # column is neither measured nor generated, and the loader recreates it as generated.
    generated: str | None = None
    # The column's domains, the declared one first and the one over ``pg_type`` last (a domain
    # over a domain has two); empty for a column of a plain type.
    domains: tuple[Domain, ...] = ()
    # The column's own NOT NULL (None: as ``nullable``): it differs only when a NOT NULL domain
    # makes a column declared nullable NOT NULL in effect; the loader declares the column as it was.
    declared_nullable: bool | None = None

    @property
    def declared_type(self) -> str:
        """The type the column is declared with: its domain (schema-qualified), else ``pg_type``."""
        return f"{self.domains[0].schema}.{self.domains[0].name}" if self.domains else self.pg_type

    @property
    def domain_checks(self) -> list[tuple[str, str]]:
        """(constraint name, definition) of every CHECK of every domain level of the column."""
        return [chk for d in self.domains for chk in d.checks]


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    definition: str  # pg_get_constraintdef, replayed by the loader


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: str  # "p" primary key, "u" unique, "c" check
    columns: tuple[str, ...]
    definition: str


@dataclass
class Table:
    name: str
    columns: list[Column]
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=list)  # (name, CREATE INDEX ...)

    def column_checks(self, name: str) -> list[str]:
        """Definitions of the CHECKs on column ``name`` alone: the table's single-column CHECKs,
        then its domains' CHECKs written about the column (so one parser reads both)."""
        own = [
            c.definition for c in self.constraints if c.kind == "c" and tuple(c.columns) == (name,)
        ]
        col = next((c for c in self.columns if c.name == name), None)
        doms = [value_as_column(d, name) for _, d in col.domain_checks] if col else []
        return own + doms

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(f"table {self.name} has no column {name!r}")

    @property
    def unique_sets(self) -> list[tuple[str, ...]]:
        """Column sets that must be unique (primary key first)."""
        sets = [self.primary_key] if self.primary_key else []
        return sets + [c.columns for c in self.constraints if c.kind == "u"]

    def fk_for(self, column: str) -> ForeignKey | None:
        for fk in self.foreign_keys:
            if column in fk.columns:
                return fk
        return None


@dataclass
class SchemaModel:
    schema: str
    tables: dict[str, Table]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "tables": {n: asdict(t) for n, t in self.tables.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SchemaModel:
        tables = {}
        for name, t in d["tables"].items():
            tables[name] = Table(
                name=t["name"],
                columns=[
                    Column(
                        **{
                            **c,
                            "enum_labels": tuple(c["enum_labels"])
                            if c.get("enum_labels")
                            else None,
                            "domains": tuple(_domain(d) for d in c.get("domains") or ()),
                        }
                    )
                    for c in t["columns"]
                ],
                primary_key=tuple(t["primary_key"]),
                foreign_keys=[
                    ForeignKey(
                        f["name"],
                        tuple(f["columns"]),
                        f["ref_table"],
                        tuple(f["ref_columns"]),
                        f["definition"],
                    )
                    for f in t["foreign_keys"]
                ],
                constraints=[
                    Constraint(c["name"], c["kind"], tuple(c["columns"]), c["definition"])
                    for c in t["constraints"]
                ],
                indexes=[tuple(i) for i in t["indexes"]],
            )
        return cls(d["schema"], tables)

    def children(self, table: str) -> list[tuple[str, ForeignKey]]:
        """(child table, FK) pairs referencing ``table`` (self-references included)."""
        return [
            (t.name, fk)
            for t in self.tables.values()
            for fk in t.foreign_keys
            if fk.ref_table == table
        ]

    def generation_order(self) -> tuple[list[str], list[tuple[str, ForeignKey]]]:
        """Tables ordered parents-first, and the FKs deferred to break cycles.

        Self-references are always deferred. A cycle is broken at a FK whose columns are all
        nullable, else at a NOT NULL one: a deferred FK is filled once every table of the
        cycle has its keys, and the loader adds foreign keys after the COPY, so a cycle of NOT
        NULL FKs (store.manager -> staff, staff.store -> store) generates and loads too.
        """
        deferred: list[tuple[str, ForeignKey]] = []
        edges: dict[str, set[str]] = {n: set() for n in self.tables}  # table -> parents
        fk_of: dict[tuple[str, str], list[ForeignKey]] = {}
        for t in self.tables.values():
            for fk in t.foreign_keys:
                if fk.ref_table == t.name or fk.ref_table not in self.tables:
                    if fk.ref_table == t.name:
                        deferred.append((t.name, fk))
                    continue
                edges[t.name].add(fk.ref_table)
                fk_of.setdefault((t.name, fk.ref_table), []).append(fk)

        def nullable(fk: ForeignKey, table: str) -> bool:
            tab = self.tables[table]
            return all(tab.column(c).nullable for c in fk.columns)

        order: list[str] = []
        remaining = {n: set(p) for n, p in edges.items()}
        while remaining:
            ready = sorted(n for n, parents in remaining.items() if not parents)
            if ready:
                for n in ready:
                    order.append(n)
                    del remaining[n]
                for parents in remaining.values():
                    parents.difference_update(ready)
                continue
            # A cycle: defer an edge (filled after all tables), a nullable one where there is
            # one (its rows could also be inserted one by one), else the first NOT NULL one.
            candidates = sorted(
                (not all(nullable(fk, child) for fk in fk_of[(child, parent)]), child, parent)
                for child, parents in remaining.items()
                for parent in parents
            )
            _, child, parent = candidates[0]
            remaining[child].discard(parent)
            deferred.extend((child, fk) for fk in fk_of[(child, parent)])
        return order, deferred


_VALUE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\bVALUE\b")
_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")


def value_as_column(definition: str, column: str) -> str:
    """A domain CHECK as the same CHECK on ``column``: VALUE (outside literals and quoted
    names) becomes the column name, printed as pg_get_constraintdef prints a column."""
    name = column if _BARE.match(column) else '"' + column.replace('"', '""') + '"'
    return _VALUE.sub(lambda m: name if m.group(0) == "VALUE" else m.group(0), definition)


def _domain(d: dict[str, Any]) -> Domain:
    return Domain(
        d["schema"],
        d["name"],
        bool(d.get("not_null")),
        d.get("default"),
        tuple((n, definition) for n, definition in d.get("checks") or ()),
    )


# A domain column is described by the type under all its domains (``walk`` follows a domain
# over a domain down to it; the typmod is the first one set, as PostgreSQL resolves it).
_COLUMNS_SQL = """
WITH RECURSIVE walk(top, cur, typmod) AS (
  SELECT d.oid, d.typbasetype, d.typtypmod FROM pg_type d WHERE d.typtype = 'd'
  UNION ALL
  SELECT w.top, d.typbasetype, CASE WHEN w.typmod = -1 THEN d.typtypmod ELSE w.typmod END
  FROM walk w JOIN pg_type d ON d.oid = w.cur WHERE d.typtype = 'd'
), under AS (
  SELECT w.top, w.cur, w.typmod FROM walk w JOIN pg_type b ON b.oid = w.cur WHERE b.typtype <> 'd'
)
SELECT c.relname, a.attname,
       format_type(coalesce(u.cur, a.atttypid), coalesce(u.typmod, a.atttypmod)),
       bt.typname, NOT a.attnotnull,
       CASE WHEN coalesce(u.typmod, a.atttypmod) > 4 AND bt.typname IN ('varchar','bpchar')
            THEN coalesce(u.typmod, a.atttypmod) - 4 END,
       CASE WHEN bt.typtype = 'e' THEN
            (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = bt.oid)
       END,
       a.atthasdef, a.attidentity::text,
       CASE WHEN a.attgenerated = 's' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
       CASE WHEN t.typtype = 'd' THEN t.oid END
FROM pg_attribute a
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN under u ON u.top = t.oid
JOIN pg_type bt ON bt.oid = coalesce(u.cur, t.oid)
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""

# Every domain of the database (few): its level's NOT NULL, DEFAULT and CHECKs, and the type it
# is over (another domain when nested).
_DOMAINS_SQL = """
SELECT d.oid, n.nspname, d.typname, d.typbasetype, d.typnotnull, d.typdefault,
       ARRAY(SELECT ARRAY[con.conname::text, pg_get_constraintdef(con.oid)] FROM pg_constraint con
             WHERE con.contypid = d.oid AND con.contype = 'c' ORDER BY con.conname)
FROM pg_type d JOIN pg_namespace n ON n.oid = d.typnamespace
WHERE d.typtype = 'd'
"""

_CONSTRAINTS_SQL = """
SELECT c.relname, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
       rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
       pg_get_constraintdef(con.oid), rn.nspname
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE n.nspname = %(schema)s AND con.contype IN ('p', 'u', 'f', 'c')
ORDER BY c.relname, con.conname
"""

_INDEXES_SQL = """
SELECT c.relname, i.relname, pg_get_indexdef(ix.indexrelid)
FROM pg_index ix
JOIN pg_class c ON c.oid = ix.indrelid
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid AND con.contype IN ('p','u','x'))
ORDER BY c.relname, i.relname
"""


def _domains(conn: psycopg.Connection) -> dict[int, tuple[Domain, int]]:
    """Every domain of the database by oid, with the oid of the type it is over."""
    out = {}
    for oid, nsp, name, over, not_null, default, checks in conn.execute(_DOMAINS_SQL):
        level = Domain(nsp, name, bool(not_null), default, tuple((c[0], c[1]) for c in checks))
        out[int(oid)] = (level, int(over))
    return out


def _domain_chain(domains: dict[int, tuple[Domain, int]], oid: int | None) -> tuple[Domain, ...]:
    """A column's domains from the declared one down to the one over a plain type."""
    chain: list[Domain] = []
    while oid is not None and oid in domains and len(chain) < 64:
        level, oid = domains[oid]
        chain.append(level)
    return tuple(chain)


def reflect(
    conn: psycopg.Connection,
    schema: str = "public",
    tables: list[str] | None = None,
    exclude: list[str] | None = None,
) -> SchemaModel:
    """Read tables, columns, keys, constraints and indexes of ``schema`` from the catalog."""
    params = {"schema": schema}
    rows = conn.execute(_COLUMNS_SQL, params).fetchall()
    if not rows:
        raise SchemaError(
            f"schema {schema!r} has no tables (or the user cannot see them): check source.schema "
            "and that the source user has USAGE on the schema"
        )
    domains = _domains(conn) if any(r[-1] is not None for r in rows) else {}
    cols: dict[str, list[Column]] = {}
    for rel, att, fmt, base, nullable, maxlen, enum, hasdef, ident, generated, dom in rows:
        chain = _domain_chain(domains, dom)
        cols.setdefault(rel, []).append(
            Column(
                att,
                fmt,
                base,
                bool(nullable) and not any(d.not_null for d in chain),
                maxlen,
                tuple(enum) if enum else None,
                bool(hasdef),
                bool(ident),
                ident == "a",
                generated,
                chain,
                bool(nullable) if chain else None,
            )
        )
    all_names = set(cols)
    wanted = set(tables) if tables else set(all_names)
    unknown = (wanted | set(exclude or [])) - all_names
    if unknown:
        raise SchemaError(
            f"unknown table(s) {', '.join(sorted(unknown))} in schema {schema!r}; "
            f"the schema has: {', '.join(sorted(all_names))}"
        )
    wanted -= set(exclude or [])
    model = {n: Table(n, cols[n]) for n in sorted(wanted)}
    for rel, name, kind, keys, ref, fkeys, definition, ref_schema in conn.execute(
        _CONSTRAINTS_SQL, params
    ):
        if rel not in model:
            continue
        t = model[rel]
        if kind == "p":
            t.primary_key = tuple(keys)
        elif kind == "f":
            if ref_schema != schema or ref not in model:
                raise SchemaError(
                    f"{rel}.{name} references {ref_schema}.{ref}, which is outside the modelled tables; "
                    f"include {ref} in source.tables or exclude {rel}"
                )
            t.foreign_keys.append(ForeignKey(name, tuple(keys), ref, tuple(fkeys), definition))
        if kind in ("p", "u", "c"):
            t.constraints.append(Constraint(name, kind, tuple(keys or ()), definition))
    for rel, name, definition in conn.execute(_INDEXES_SQL, params):
        if rel in model:
            model[rel].indexes.append((name, definition))
    for t in model.values():
        for fk in t.foreign_keys:
            if len(fk.columns) != 1:
                raise SchemaError(
                    f"{t.name}.{fk.name} is a composite foreign key ({', '.join(fk.columns)}); "
                    "composite keys are not supported yet: exclude the table in source.exclude"
                )
    return SchemaModel(schema, model)
