"""Preflight: every refusal that the config and the reflected schema can decide, before any
budget is reserved and before anything is written.

A refresh spends privacy budget from its first step. A typo found three steps later has already
cost epsilon, and a few typos can use up the annual cap. So everything that can be checked
without reading a row is checked here first, and every problem found is reported at once, one
line each:

* each table and column the config names exists in the reflected schema, and fits the use the
  config makes of it (bounds, overrides, role overrides);
* the target and the audit database are not the source, compared both from the URLs and on
  the live servers. Otherwise the budget ledger and the audit log would be created inside
  the source;
* the generator can fill every NOT NULL column, some table can be the privacy unit, and no NOT
  NULL foreign key points at its own table;
* the source role may read every modelled table, and the loader can prove that the target is
  not the source with the roles given.

Preflight only reads: the catalog, ``pg_stat_activity`` and the budget ledger. It creates no
schema, no database, and no file in the work directory.
"""

from __future__ import annotations

import difflib
import getpass
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from . import budget, pg
from .config import SynthConfig, deployment, with_overrides_file
from .errors import ConfigError, GenerationError, SynthError
from .kinds import ColumnKind
from .profile.columns import column_model
from .roles import (
    DATETIME_TYPES,
    EPOCH_TYPES,
    NUMERIC_TYPES,
    TEXT_TYPES,
    infer_role,
    role_from_name,
)
from .schema import Column, SchemaModel, Table, reflect
from .secrets import backend_from_config

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
_EMBEDDED_PORT = "5432"  # the embedded server listens on a Unix socket in <workdir>/pg


class PreflightError(ConfigError):
    """A refresh refused before any budget was reserved or anything was written; one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"preflight refused the refresh ({n} problem{'s' if n > 1 else ''}; no budget was "
        super().__init__(
            head + "reserved and nothing was written):\n  - " + "\n  - ".join(self.problems)
        )


def preflight(
    cfg: SynthConfig, workdir: Path, refresh_id: str | None = None, *, spends: bool = True
) -> SchemaModel:
    """Refuse a refresh that would fail later, before any reservation or write.

    This runs in three stages. (1) The config alone: the URLs and the overrides file. (2) The
    secrets and the annual budget, so that a refresh over the cap never touches the source.
    (3) The source catalog and the live target and audit databases. Problems are collected across stages and raised together as a
    :class:`PreflightError`. An error of stage 2 or 3 that stops the checks (no secrets, budget
    exhausted, source unreachable) is raised as it is when it is the only problem.
    ``refresh_id`` names a refresh whose own reservation may already be in the ledger (a step
    re-executed after a failure): it is not counted against itself. ``spends=False`` (a
    regeneration from an existing metrics pack) skips the annual budget: it spends nothing.
    """
    workdir = Path(workdir).expanduser().resolve()
    try:
        problems = deployment_problems(cfg, deployment())
    except ConfigError as exc:
        problems = [str(exc)]
    problems += url_problems(cfg, workdir)
    try:
        cfg = with_overrides_file(cfg)
    except ConfigError as exc:
        problems.append(str(exc))
    meta = cfg.audit_url()
    with _stop_on(problems):
        backend_from_config(cfg.secrets, workdir).check_ready()
        if spends and not is_source(meta, cfg, workdir):  # never read a ledger from the source
            _refuse_over_cap(cfg, meta, workdir, refresh_id)
    with _stop_on(problems):
        src = pg.resolve_url(cfg.source.url, workdir, create=False)
        with pg.connect(src, read_only=True) as conn:
            model = reflect(conn, cfg.source.db_schema, cfg.source.tables, cfg.source.exclude)
            problems += privilege_problems(conn, model)
    problems += schema_problems(cfg, model)
    if not any(p.startswith(("target.url", "audit.url")) for p in problems):
        problems += live_target_problems(cfg, workdir, src)
    if problems:
        raise PreflightError(problems)
    return model


@contextmanager
def _stop_on(problems: list[str]) -> Iterator[None]:
    """A SynthError ends preflight: raised as it is when it is the only problem, else added to
    the problems found so far and raised with them."""
    try:
        yield
    except SynthError as exc:
        if not problems:
            raise
        raise PreflightError([*problems, str(exc)]) from exc


def _refuse_over_cap(
    cfg: SynthConfig, meta: str, workdir: Path, refresh_id: str | None = None
) -> None:
    """BudgetError when this refresh's epsilon would exceed the annual cap (read-only)."""
    key, label = budget.source_key(cfg.source.url, cfg.source.db_schema, cfg.privacy.budget_key)
    url = existing_database(meta, workdir)
    if url is None:  # the ledger's database does not exist yet: nothing was ever spent
        return
    st = budget.standing(url, key, cfg.privacy.annual_epsilon_cap)
    if refresh_id and any(e["refresh_id"] == refresh_id for e in st.entries):
        return  # its reservation is already in the ledger: budget.reserve reuses it
    st.refuse_if_over(cfg.privacy.epsilon, label)


# --------------------------------------------------------------------------------------------
# Target and audit database are not the source
# --------------------------------------------------------------------------------------------


def _host(h: str) -> str:
    h = h.strip()
    if h.startswith("/"):
        return os.path.realpath(h)
    h = h.lower()
    return "localhost" if h in _LOCAL_HOSTS else h


def database_address(url: str, workdir: Path) -> tuple[frozenset[tuple[str, str]], str]:
    """The (host, port) pairs and the database a URL names, normalised without connecting.

    Missing parts take libpq's defaults: PGHOST/PGPORT/PGDATABASE/PGUSER, then port 5432 and
    a database named after the user. The aliases of the loopback interface count as one
    host. ``embedded:///db`` is the Unix socket of the work directory's own server.
    """
    if pg.is_embedded(url):
        sock = Path(workdir).expanduser().resolve() / "pg"
        return frozenset({(_host(str(sock)), _EMBEDDED_PORT)}), urlsplit(url).path.lstrip("/")
    try:
        info = conninfo_to_dict(pg.resolve_url(url, workdir))
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"database URL {pg.redact(url)!r} cannot be parsed: {exc}") from None
    hosts = (
        info.get("host") or info.get("hostaddr") or os.environ.get("PGHOST") or "(default socket)"
    ).split(",")
    ports = (info.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    pairs = frozenset((_host(h), p.strip() or "5432") for h, p in zip(hosts, ports, strict=False))
    user = info.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    return pairs, info.get("dbname") or os.environ.get("PGDATABASE") or user


def same_address(a: str, b: str, workdir: Path) -> bool:
    """True when two URLs name the same database on the same server (see database_address)."""
    (ha, da), (hb, db) = database_address(a, workdir), database_address(b, workdir)
    return da == db and bool(ha & hb)


def is_source(url: str, cfg: SynthConfig, workdir: Path) -> bool:
    """Whether ``url`` names the source database (False when it cannot be told)."""
    try:
        return same_address(url, cfg.source.url, workdir)
    except SynthError:
        return False  # an unparsable URL is reported by url_problems


def deployment_problems(cfg: SynthConfig, where: str) -> list[str]:
    """What a deployment whose steps run in separate pods cannot keep: each pod would start its
    own empty embedded database (the annual epsilon cap would never bind, the audit chain would
    restart in every pod), its own local key file and its own local artifacts. Refused, never
    a fallback."""
    if where != "kubernetes":
        return []
    fix = "point it at a shared PostgreSQL (or set {env} from a Secret)"
    out = [
        f"{key} {url} is an embedded database, which a Kubernetes deployment cannot share "
        f"between pods: {fix.format(env=env)}"
        for key, url, env in (
            ("source.url", cfg.source.url, "SYNTH_SOURCE_URL"),
            ("target.url", cfg.target.url, "SYNTH_TARGET_URL"),
            ("audit.url", cfg.audit.url, "SYNTH_AUDIT_URL"),  # unset: the target's, said above
        )
        if url is not None and pg.is_embedded(url)
    ]
    if cfg.secrets.backend != "vault":
        out.append(
            "secrets.backend is local: in a Kubernetes deployment every pod would need the same "
            "key file; use secrets: {backend: vault} (deploy/vault.md)"
        )
    if not cfg.artifacts.is_s3:
        out.append(
            "artifacts.store is not an s3:// location: in a Kubernetes deployment the steps share "
            "nothing but the artifact store and PostgreSQL; set artifacts.store: s3://bucket/prefix"
        )
    return out


def url_problems(cfg: SynthConfig, workdir: Path) -> list[str]:
    """The target and the audit database, compared with the source from the URLs alone."""
    out = []
    for key, url in (("target.url", cfg.target.url), ("audit.url", cfg.audit.url)):
        if url is None:
            continue
        try:
            same = same_address(url, cfg.source.url, workdir)
        except SynthError as exc:
            out.append(f"{key}: {exc}")
            continue
        if same:
            out.append(_is_source_message(key, url))
    return out


def _is_source_message(key: str, url: str) -> str:
    return (
        f"{key} {pg.redact(url)} is the source database: the product creates its own schemas there "
        "(synth_budget, synth_audit, synth_meta and the staging schema), and nothing is ever "
        f"created in the source; set {key} to a separate database"
    )


def existing_database(url: str, workdir: Path) -> str | None:
    """libpq URL of ``url``, or None for an embedded database that does not exist yet.

    Unlike :func:`pg.resolve_url`, this never creates the embedded database, or the server
    of a work directory that has none.
    """
    try:
        return pg.resolve_url(url, workdir, create=False)
    except pg.NoSuchDatabase:
        return None


def same_database(a: str, b: str) -> bool:
    """True when two libpq URLs reach the same database, however they are spelled.

    No privilege is needed: a connection to ``a`` carries a random application_name, and
    the connection to ``b`` looks for that backend in ``pg_stat_activity`` of its own
    database. Ordinary roles can see the pid, the application_name and the database of other
    sessions.
    """
    nonce = f"synth-preflight-{secrets.token_hex(8)}"
    with pg.connect(a, autocommit=True) as first:
        first.execute("SELECT set_config('application_name', %s, false)", (nonce,))
        pid = first.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pg.connect(b, autocommit=True) as second:
            row = second.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s "
                "AND application_name = %s AND datname = current_database())",
                (pid, nonce),
            ).fetchone()
    return bool(row and row[0])


def live_target_problems(cfg: SynthConfig, workdir: Path, source_url: str) -> list[str]:
    """The live target and audit database are not the source, and the loader can prove it.

    The loader checks the source and the target again before it writes (load.assert_not_source).
    That check is run here too, so a role that lacks a privilege it needs is refused before
    any budget is spent, not after the whole refresh.
    """
    from .load import assert_not_source

    out = []
    live: dict[str, str] = {}
    for key, url in (("target.url", cfg.target.url), ("audit.url", cfg.audit.url)):
        if url is None:
            continue
        try:
            found = existing_database(url, workdir)
            if found is not None and same_database(source_url, found):
                out.append(_is_source_message(key, url))
            elif found is not None:
                live[key] = found
        except SynthError as exc:
            out.append(f"{key}: {exc}")
    if "target.url" in live:
        try:
            assert_not_source(source_url, live["target.url"])
        except (SynthError, psycopg.Error) as exc:
            detail = " ".join(str(exc).split())
            out.append(
                "the loader cannot prove that the target is not the source with these roles "
                f"({detail}). Over a Unix socket this needs pg_read_all_settings: grant it to the "
                "source and target roles (GRANT pg_read_all_settings TO <role>), or connect over TCP"
            )
    return out


# --------------------------------------------------------------------------------------------
# The source role
# --------------------------------------------------------------------------------------------

_UNREADABLE_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND NOT (has_schema_privilege(n.oid, 'USAGE') AND (has_table_privilege(c.oid, 'SELECT')
       OR NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                      AND NOT a.attisdropped AND NOT has_column_privilege(c.oid, a.attnum, 'SELECT'))))
ORDER BY 1
"""


def privilege_problems(conn: psycopg.Connection, model: SchemaModel) -> list[str]:
    """Modelled tables the source role may not read, which would stop the profile midway."""
    rows = conn.execute(
        _UNREADABLE_SQL, {"schema": model.schema, "tables": list(model.tables)}
    ).fetchall()
    role = conn.execute("SELECT current_user").fetchone()[0]
    return [
        f"source role {role} cannot read {model.schema}.{name}: GRANT USAGE ON SCHEMA "
        f"{model.schema} and SELECT ON {model.schema}.{name} TO {role}, or exclude the table "
        "(source.exclude)"
        for (name,) in rows
    ]


# --------------------------------------------------------------------------------------------
# The config against the reflected schema, and what the generator can fill
# --------------------------------------------------------------------------------------------


def schema_problems(cfg: SynthConfig, model: SchemaModel) -> list[str]:
    """Every problem of the config against the reflected schema, one line each."""
    return [
        *_name_problems(cfg, model),
        *_use_problems(cfg, model),
        *_capability_problems(cfg, model),
    ]


def _column_keys(cfg: SynthConfig) -> Iterator[tuple[str, str]]:
    """(config key, "table.column") for every per-column setting of the config."""
    for key in cfg.columns:
        yield f"columns: {key!r}", key
    for key in cfg.bounds:
        yield f"bounds: {key!r}", key
    for sec in ("null_rate", "categorical"):
        for key in cfg.overrides.get(sec, {}):
            yield f"overrides.{sec}: {key!r}", key
    for key in cfg.public.get("values", {}):
        yield f"public.values: {key!r}", key


def _table_keys(cfg: SynthConfig) -> Iterator[tuple[str, str]]:
    """(config key, table) for every per-table setting of the config."""
    if cfg.privacy.unit_table:
        yield "privacy.unit_table", cfg.privacy.unit_table
    for t in cfg.privacy.max_rows_per_unit_by_table:
        yield f"privacy.max_rows_per_unit_by_table: {t!r}", t
    for t in cfg.generation.rows:
        yield f"generation.rows: {t!r}", t
    for t in cfg.overrides.get("rows", {}):
        yield f"overrides.rows: {t!r}", t
    for t in cfg.public_tables():
        yield f"public.tables: {t!r}", t


def _unknown_table(where: str, name: str, model: SchemaModel) -> str:
    hint = difflib.get_close_matches(name, model.tables, n=1)
    return (
        f"{where} names table {name!r}, which is not among the modelled tables of schema "
        f"{model.schema!r}"
        + (f" (did you mean {hint[0]}?)" if hint else "")
        + f"; tables: {', '.join(sorted(model.tables))}"
    )


def _name_problems(cfg: SynthConfig, model: SchemaModel) -> list[str]:
    out = [_unknown_table(w, t, model) for w, t in _table_keys(cfg) if t not in model.tables]
    for where, key in _column_keys(cfg):
        tname, cname = key.split(".", 1)
        if tname not in model.tables:
            out.append(_unknown_table(where, tname, model))
            continue
        names = [c.name for c in model.tables[tname].columns]
        if cname not in names:
            hint = difflib.get_close_matches(cname, names, n=1)
            out.append(
                f"{where} names no column of table {tname}"
                + (f" (did you mean {tname}.{hint[0]}?)" if hint else "")
                + f"; its columns: {', '.join(names)}"
            )
    return out


def _lookup(model: SchemaModel, key: str) -> tuple[Table, Column] | None:
    tname, cname = key.split(".", 1)
    t = model.tables.get(tname)
    c = next((c for c in t.columns if c.name == cname), None) if t else None
    return (t, c) if t and c else None


def known_role(t: Table, c: Column, overrides: dict[str, str]) -> str | None:
    """A column's role as source_schema will assign it, or None when sampled values decide.

    The role of a column that is not text follows from the catalog alone (infer_role reads
    values only for text). A text column's role is known from the catalog only when its name
    or its key constraints decide it.
    """
    if f"{t.name}.{c.name}" in overrides:
        return overrides[f"{t.name}.{c.name}"]
    keyed = c.name in t.primary_key or t.fk_for(c.name) is not None
    if c.base_type in TEXT_TYPES and not keyed:
        by_name = role_from_name(t, c)
        if by_name is None or by_name == "categorical":
            return None
    return infer_role(t, c, None)


def _kind(t: Table, c: Column, role: str) -> ColumnKind:
    """How the profile models a column with this role (its own column models, one home)."""
    return column_model(t, c, role).kind


def _role_type_problems(cfg: SynthConfig, model: SchemaModel) -> dict[str, str]:
    """Role overrides the column's type cannot take, by "table.column" (the profile would
    fail on them mid-measurement, or model nothing)."""
    out = {}
    for key, role in cfg.columns.items():
        found = _lookup(model, key)
        if found is None:
            continue
        c = found[1]
        if role == "numeric" and c.base_type not in NUMERIC_TYPES | EPOCH_TYPES:
            out[key] = (
                f"columns: {key!r} = numeric needs a number, time or interval column; {key} is "
                f"{c.pg_type}"
            )
        elif role == "binary" and c.base_type != "bytea":
            out[key] = f"columns: {key!r} = binary needs a bytea column; {key} is {c.pg_type}"
        elif role == "datetime" and c.base_type not in DATETIME_TYPES:
            out[key] = (
                f"columns: {key!r} = datetime needs a date or timestamp column; {key} is {c.pg_type}"
            )
    return out


def _bounds_problems(cfg: SynthConfig, model: SchemaModel) -> list[str]:
    """Bounds that the profile would ignore (not a numeric or datetime column) or misread."""
    out = []
    for key, (lo, _) in cfg.bounds.items():
        found = _lookup(model, key)
        if found is None:
            continue
        t, c = found
        role = known_role(t, c, cfg.columns)
        want = ColumnKind.DATETIME if isinstance(lo, date) else ColumnKind.NUMERIC
        kind = _kind(t, c, role) if role else None
        if kind == want:
            continue
        cannot = ", which its type cannot take" if kind == ColumnKind.IGNORE else ""
        has = "a role decided by its sampled values" if role is None else f"role {role}{cannot}"
        gives = "dates" if want == ColumnKind.DATETIME else "numbers"
        out.append(
            f"bounds: {key!r} gives {gives}, which apply "
            f"only to {want} columns; {key} ({c.pg_type}) has {has}"
        )
    return out


def _use_problems(cfg: SynthConfig, model: SchemaModel) -> list[str]:
    """Settings that name a real column but could not apply to it (silently ignored later)."""
    out = [*_role_type_problems(cfg, model).values(), *_bounds_problems(cfg, model)]
    for key, share in cfg.overrides.get("null_rate", {}).items():
        found = _lookup(model, key)
        if found is not None and not found[1].nullable and share > 0:
            out.append(
                f"overrides.null_rate: {key!r} = {share:g}, but {key} is NOT NULL in the source "
                "(staging keeps the constraint): use 0 or remove the override"
            )
    for key in cfg.overrides.get("categorical", {}):
        out += _categorical_problem("overrides.categorical", key, model, cfg)
    for key in cfg.public.get("values", {}):
        out += _categorical_problem("public.values", key, model, cfg)
    return out


def _categorical_problem(where: str, key: str, model: SchemaModel, cfg: SynthConfig) -> list[str]:
    found = _lookup(model, key)
    if found is None:
        return []
    t, c = found
    role = known_role(t, c, cfg.columns)
    if role is None or _kind(t, c, role) == ColumnKind.CATEGORICAL:
        return []
    return [
        f"{where}: {key!r} applies to categorical columns, but {key} ({c.pg_type}) is modelled as "
        f"{role}: set columns: {{{key}: categorical}} or remove the setting"
    ]


def generator_fills(col: Column) -> bool:
    """Whether the generator can fill a NOT NULL column it does not model (asked of the
    generator itself, so that this check follows the generator when it learns a type)."""
    from .generate import _ignored

    if col.generated:  # PostgreSQL computes it at the load
        return True
    try:
        _ignored({"nullable": False, "base_type": col.base_type, "pg_type": col.pg_type}, 0)
    except GenerationError:
        return False
    return True


def _capability_problems(cfg: SynthConfig, model: SchemaModel) -> list[str]:
    """What the engine cannot do with this schema: refused now, each by table and column."""
    out = []
    public = set(cfg.public_tables())
    reported = _role_type_problems(cfg, model)  # a wrong role override is reported once, there
    for t in model.tables.values():
        for c in t.columns:
            role = known_role(t, c, cfg.columns)
            if (
                c.nullable
                or role is None
                or _kind(t, c, role) != ColumnKind.IGNORE
                or generator_fills(c)
            ):
                continue
            if f"{t.name}.{c.name}" in reported:
                continue
            out.append(
                f"{t.name}.{c.name} is NOT NULL of type {c.pg_type}, which the generator cannot "
                f"fill (role {role}): exclude the table (source.exclude), make the column "
                "nullable, or give it a role the generator fills (columns:)"
            )
        for fk in t.foreign_keys:
            if fk.ref_table != t.name or t.name in public:
                continue
            if not any(t.column(c).nullable for c in fk.columns):
                out.append(
                    f"{t.name}.{', '.join(fk.columns)} is a NOT NULL self-reference ({fk.name}): "
                    "the first generated row has no earlier row to point at; make the column "
                    "nullable in the source or exclude the table (source.exclude)"
                )
    out += _unit_problems(cfg, model)
    return out


def _unit_problems(cfg: SynthConfig, model: SchemaModel) -> list[str]:
    unit = cfg.privacy.unit_table
    if unit:
        t = model.tables.get(unit)
        if t is not None and len(t.primary_key) != 1:
            return [
                f"privacy.unit_table {unit!r} needs a one-column primary key (it has "
                f"{', '.join(t.primary_key) or 'none'}): its rows are the people to protect"
            ]
        return []
    if not any(len(t.primary_key) == 1 for t in model.tables.values()):
        return [
            f"no table of schema {model.schema!r} has a one-column primary key, so none can be "
            f"the privacy unit (tables: {', '.join(sorted(model.tables))}): add a primary key to "
            "the table whose rows are the people to protect and set privacy.unit_table"
        ]
    return []
