"""Staging load: binary COPY of the shards into ``<name>__next``, constraints replayed, swap.

The load is fail-closed and atomic for readers:

1. Refusals, before anything is written to the target: the refresh's privacy report must exist
   and every gate in it must have passed (read from the report itself, so a run that selects
   only the loader cannot bypass the gates); the spec must match its content hash and every
   shard file its manifest hash; the target must not be the source (same server and database)
   and must not carry a production marker (:func:`production_marker`); the schema name must be
   a safe identifier and any existing ``<name>``/``__next``/``__prev`` must have been created by
   this tool.
2. ``<name>__next`` is built from scratch: enum types and domains (with their NOT NULL, DEFAULT
   and CHECKs, so every COPY'd row is checked against them), tables (NOT NULL declared up front: it
   costs nothing during COPY), one binary COPY stream per table (``FREEZE``, in the transaction
   that created the table), then primary keys, unique constraints, CHECKs and indexes, then
   foreign keys, as reflected from the source and re-qualified to ``<name>__next``. Independent
   steps run on ``workers`` connections; a lock-aware scheduler never runs two conflicting
   statements at once.
3. Row counts are checked against the shard manifests (COPY's count and ``count(*)``), every
   foreign key must be validated by PostgreSQL (unvalidated ones are checked by query), then
   one transaction renames ``<name>`` → ``<name>__prev`` and ``<name>__next`` → ``<name>``
   (FKs reference tables by OID, so they follow the rename). Any failure before that commit
   leaves ``<name>`` untouched; ``__next`` is dropped.

Metadata lives in ``synth_meta`` (``load_runs``, ``managed_schemas``, ``teardowns``); every
schema the tool creates carries a ``COMMENT`` starting with :data:`SCHEMA_MARKER` and a row in
``synth_meta.managed_schemas``; teardown only ever drops schemas with both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from .audit import append_event, default_actor, ensure_audit_schema, record_event
from .errors import SynthError
from .manifest import sha256_file
from .pg import connect, database_identity, redact
from .roles import qi
from .schema import Column, Domain, SchemaModel
from .spec import content_hash
from .store import check_refresh_id, read_json

SCHEMA_MARKER = "synth_assets staging schema"
META_SCHEMA = "synth_meta"
REPORT_PATH = Path("report") / "privacy_report.json"
DEFAULT_BATCH_ROWS = 131_072
MAINTENANCE_WORK_MEM = "512MB"
_SAFE_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_RESERVED = {"public", "information_schema", META_SCHEMA, "synth_audit", "synth_budget"}
_PRODUCTION = re.compile(r"\bproduction\b", re.IGNORECASE)

Progress = Callable[[str, int, int], None]


class LoadError(SynthError):
    """The staging load failed; the live staging schema was left as it was."""


class LoadRefused(LoadError):
    """The load was refused before anything was written to the target."""


# --------------------------------------------------------------------------------------------
# Names and safety checks
# --------------------------------------------------------------------------------------------


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
    path = Path(refresh_dir) / REPORT_PATH
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


# --------------------------------------------------------------------------------------------
# Inputs: spec, manifests, shard files
# --------------------------------------------------------------------------------------------


@dataclass
class ShardFile:
    path: Path
    rows: int
    sha256: str


@dataclass
class LoadInputs:
    """Everything read from the refresh directory and verified before the target is touched."""

    refresh_id: str
    spec: dict[str, Any]
    model: SchemaModel
    order: list[str]
    files: dict[str, list[ShardFile]]
    report: dict[str, Any]

    @property
    def rows(self) -> dict[str, int]:
        return {t: sum(f.rows for f in fs) for t, fs in self.files.items()}

    @property
    def shard_hashes(self) -> dict[str, dict[str, str]]:
        return {t: {f.path.name: f.sha256 for f in fs} for t, fs in self.files.items()}


def read_inputs(refresh_dir: Path, refresh_id: str, *, check_hashes: bool = True) -> LoadInputs:
    """Verify the report, the spec hash and every shard file's hash; list files per table."""
    check_refresh_id(refresh_id)
    refresh_dir = Path(refresh_dir)
    report = verify_report(refresh_dir, refresh_id)
    spec_path = refresh_dir / "spec.json"
    if not spec_path.is_file():
        raise LoadRefused(f"refresh {refresh_id} has no spec.json in {refresh_dir}")
    spec = read_json(spec_path)
    if content_hash(spec) != spec.get("content_hash"):
        raise LoadRefused(
            f"{spec_path} does not match its content hash: it was modified after calibration"
        )
    if spec.get("refresh_id") not in (None, refresh_id):
        raise LoadRefused(
            f"{spec_path} belongs to refresh {spec.get('refresh_id')}, not {refresh_id}"
        )
    model = SchemaModel.from_dict(spec["schema"])
    files: dict[str, list[ShardFile]] = {t: [] for t in model.tables}
    n_shards = int(spec["shards"])
    for s in range(n_shards):
        mpath = refresh_dir / "shards" / f"manifest-{s:05d}.json"
        if not mpath.is_file():
            raise LoadRefused(
                f"shard {s:05d} of refresh {refresh_id} has no manifest ({mpath}): "
                "the shards are incomplete; materialize every partition of synthetic_shards"
            )
        man = read_json(mpath)
        for t, f in man["tables"].items():
            if t not in files:
                raise LoadRefused(f"{mpath} lists table {t!r}, which the spec does not have")
            p = refresh_dir / "shards" / t / Path(f["path"]).name
            files[t].append(ShardFile(p, int(f["rows"]), f["sha256"]))
    for t, fs in files.items():
        if not fs:
            raise LoadRefused(f"no shard file holds table {t} in refresh {refresh_id}")
        if check_hashes:
            for f in fs:
                if not f.path.is_file():
                    raise LoadRefused(f"shard file {f.path} is missing")
                if sha256_file(f.path) != f.sha256:
                    raise LoadRefused(
                        f"shard file {f.path} does not match the SHA-256 in its manifest: "
                        "it was modified after generation; regenerate the shards"
                    )
    order = [t for t in spec.get("order", []) if t in model.tables]
    order += [t for t in model.tables if t not in order]
    return LoadInputs(refresh_id, spec, model, order, files, report)


# --------------------------------------------------------------------------------------------
# Binary COPY encoder (vectorized: numpy blocks for fixed-width fields, Arrow for the rest)
# --------------------------------------------------------------------------------------------

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000
_INT_LIMITS = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext", "json"}
_DIRECT = {
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "time",
    "timetz",
    "interval",
    "bytea",
    "uuid",
    "text",
    "jsonb",
}
_SECONDS = frozenset({"time", "timetz", "interval"})  # generated as float seconds
_NUMERIC_SCALE = re.compile(r"^numeric\((\d+)(?:,\s*(-?\d+))?\)$")
_SEP = pa.scalar(b"", pa.large_binary())


@dataclass(frozen=True)
class ColumnPlan:
    """How one column travels: its COPY encoding and its DDL type (``cast_to`` after a text load)."""

    name: str
    kind: str  # a member of _DIRECT, "null" (every value NULL) or "cast" (text, cast in SQL)
    ddl_type: str
    nullable: bool
    scale: int | None = None
    cast_to: str | None = None
    generated: str | None = None  # kind "generated": PostgreSQL computes it from this expression
    # The column's own NOT NULL where it is weaker than ``nullable`` (a NOT NULL domain makes a
    # column declared nullable NOT NULL in effect); None: NOT NULL exactly when not nullable.
    own_not_null: bool | None = None

    @property
    def declare_not_null(self) -> bool:
        """Whether the column's DDL says NOT NULL (as the source column did)."""
        return not self.nullable if self.own_not_null is None else self.own_not_null


def _base_kind(col: Column) -> str:
    if col.enum_labels:
        return "text"
    b = col.base_type
    if b in _TEXT_TYPES:
        return "text"
    return b if b in _DIRECT else "cast"


def _compatible(kind: str, t: pa.DataType) -> bool:
    if pa.types.is_null(t):
        return True
    if kind in ("int2", "int4", "int8"):
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
    if kind in ("float4", "float8", "numeric"):
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if kind == "bool":
        return pa.types.is_boolean(t)
    if kind == "date":
        return pa.types.is_date(t) or pa.types.is_timestamp(t)
    if kind in ("timestamp", "timestamptz"):
        return pa.types.is_timestamp(t) or pa.types.is_date(t)
    if kind in _SECONDS:
        return pa.types.is_integer(t) or pa.types.is_floating(t)
    if kind == "bytea":
        return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
    if kind in ("uuid", "jsonb"):
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    return kind == "text"


def plan_columns(
    table: str,
    columns: list[Column],
    arrow_schema: pa.Schema,
    all_null: set[str],
    ddl_types: dict[str, str],
) -> list[ColumnPlan]:
    """Choose each column's encoding from its PostgreSQL type and its Parquet type."""
    plans = []
    for col in columns:
        if col.name not in arrow_schema.names:
            raise LoadError(
                f"shards of {table} have no column {col.name!r}: the shards do not match the spec"
            )
        t = arrow_schema.field(col.name).type
        ddl = ddl_types[col.name]
        if col.generated:
            plans.append(
                ColumnPlan(col.name, "generated", ddl, col.nullable, generated=col.generated)
            )
            continue
        kind = _base_kind(col)
        scale = None
        if kind == "numeric":
            m = _NUMERIC_SCALE.match(col.pg_type)
            scale = int(m.group(2) or 0) if m else None
            if scale is not None and not 0 <= scale <= 1000:
                kind = "cast"
        if col.name in all_null or pa.types.is_null(t):
            plans.append(ColumnPlan(col.name, "null", ddl, col.nullable))
        elif kind != "cast" and _compatible(kind, t):
            plans.append(ColumnPlan(col.name, kind, ddl, col.nullable, scale))
        else:
            plans.append(ColumnPlan(col.name, "cast", "text", col.nullable, None, ddl))
        if col.declared_nullable is not None:
            plans[-1] = dataclasses.replace(plans[-1], own_not_null=not col.declared_nullable)
    return plans


def _hdr(width: int, n: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(np.int32(width).byteswap().tobytes(), np.uint8), (n, 4))


def _be(values: np.ndarray, dtype: str) -> np.ndarray:
    """Big-endian bytes of ``values`` as an (n, width) uint8 block (``dtype`` like ``"<i8"``)."""
    a = np.asarray(values).astype(">" + dtype[1:])
    return a.view(np.uint8).reshape(len(a), -1)


def _lengths_hdr(lengths: np.ndarray) -> np.ndarray:
    return _be(lengths.astype(np.int32), "<i4")


def _null_mask(a: pa.Array) -> np.ndarray | None:
    if a.null_count == 0:
        return None
    return np.asarray(a.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _binary_from_fixed(block: np.ndarray) -> pa.Array:
    n, w = block.shape
    offsets = np.arange(0, w * (n + 1), w, dtype=np.int64) if w else np.zeros(n + 1, np.int64)
    return pa.Array.from_buffers(
        pa.large_binary(),
        n,
        [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(block))],
    )


def _with_validity(arr: pa.Array, null: np.ndarray | None) -> pa.Array:
    if null is None:
        return arr
    bitmap = np.packbits(~null, bitorder="little")
    bufs = arr.buffers()
    return pa.Array.from_buffers(arr.type, len(arr), [pa.py_buffer(bitmap), *bufs[1:]])


def _int_values(a: pa.Array, kind: str, where: str) -> np.ndarray:
    t = a.type
    if pa.types.is_floating(t):
        v = pc.fill_null(a, 0.0).to_numpy(zero_copy_only=False)
        r = np.rint(v)
        if not np.all(np.isfinite(v)) or np.any(r != v):
            raise LoadError(f"{where}: non-integral values cannot go into an integer column")
        v = r
    elif pa.types.is_boolean(t):
        v = np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        v = pc.fill_null(a, 0).to_numpy(zero_copy_only=False)
    lo, hi = _INT_LIMITS[kind]
    if len(v) and (v.min() < lo or v.max() > hi):
        bad = v[(v < lo) | (v > hi)][0]
        raise LoadError(f"{where}: value {bad} is out of range for {kind}")
    return v


def _float_values(a: pa.Array) -> np.ndarray:
    if pa.types.is_decimal(a.type):
        a = pc.cast(a, pa.float64())
    return np.asarray(pc.fill_null(a, 0).to_numpy(zero_copy_only=False), dtype=np.float64)


def _infer_scale(x: np.ndarray) -> int:
    """Smallest decimal scale (≤ 15) that represents every finite value exactly at float precision."""
    x = x[np.isfinite(x)]
    for s in range(16):
        y = x * 10.0**s
        big = np.abs(y).max() if len(y) else 0.0
        if big >= 2.0**52:
            return s
        if np.all(np.abs(y - np.rint(y)) <= np.abs(y) * 4e-16 + 1e-9):
            return s
    return 15


def _numeric_block(a: pa.Array, null: np.ndarray | None, scale: int | None) -> np.ndarray:
    """Fixed-width NUMERIC binary values (same digit count per batch; PostgreSQL strips zeros)."""
    n = len(a)
    isint = pa.types.is_integer(a.type)
    if isint:
        iv = pc.fill_null(a, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        x = iv.astype(np.float64)
    else:
        x = _float_values(a)
    special = ~np.isfinite(x)
    if null is not None:
        special |= null
    if scale is None:
        scale = 0 if isint else _infer_scale(x[~special])
    nfrac = (scale + 3) // 4
    pad = 4 * nfrac - scale
    if isint:
        base = np.abs(np.where(special, 0, iv))
        factor = 10 ** (4 * nfrac)
        small = len(base) == 0 or int(base.max()) < (2**62) // factor
        mag: np.ndarray = base * factor if small else base.astype(object) * factor
    else:
        ax = np.where(special, 0.0, np.abs(x))
        scaled = np.rint(ax * 10.0**scale)
        if len(scaled) and scaled.max() * 10.0**pad < 2.0**62:
            mag = scaled.astype(np.int64) * (10**pad)
        else:  # beyond int64: exact decimal expansion of each float, via Python integers
            from decimal import Decimal

            mag = np.array(
                [
                    int(Decimal(repr(float(v))).scaleb(scale).to_integral_value()) * 10**pad
                    for v in ax
                ],
                dtype=object,
            )
    mx = int(mag.max()) if len(mag) else 0
    nd = max(nfrac + 1, -(-len(str(mx)) // 4) if mx else 1)
    digits = np.empty((n, nd), dtype=np.int64)
    rest = mag
    for i in range(nd - 1, -1, -1):
        # Python integers beyond int64 (numeric(38,10) holds 28 integer digits): numpy has
        # no divmod ufunc for object arrays, but // and % work element by element.
        d, rest = rest % 10000, rest // 10000
        digits[:, i] = d.astype(np.int64) if d.dtype == object else d
    out = np.empty((n, 4 + nd), dtype=np.uint16)
    out[:, 0] = nd
    out[:, 1] = nd - nfrac - 1
    sign = np.where(x < 0, 0x4000, 0)
    if special.any():
        digits[special] = 0
        sign = np.where(
            np.isnan(x), 0xC000, np.where(x == np.inf, 0xD000, np.where(x == -np.inf, 0xF000, sign))
        )
        if null is not None:
            sign = np.where(null, 0, sign)
    out[:, 2] = sign
    out[:, 3] = scale
    out[:, 4:] = digits
    return out.astype(">u2").view(np.uint8).reshape(n, -1)


def _to_us(a: pa.Array) -> np.ndarray:
    """Microseconds since 1970 (UTC instant for tz-aware, wall time for naive) of timestamps/dates."""
    t = a.type
    if pa.types.is_date(t):
        d = pc.cast(a, pa.date32()).cast(pa.int32())
        return pc.fill_null(d, 0).to_numpy(zero_copy_only=False).astype(np.int64) * 86_400_000_000
    v = pc.fill_null(a.cast(pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    unit = t.unit
    if unit == "s":
        return v * 1_000_000
    if unit == "ms":
        return v * 1_000
    if unit == "ns":
        return np.floor_divide(v, 1_000)
    return v


DAY_US = 86_400_000_000


def _seconds_block(kind: str, seconds: np.ndarray, where: str) -> np.ndarray:
    """time (int64 microseconds), timetz (that and an int32 zone, UTC) or interval (int64
    microseconds, int32 days, int32 months) in binary COPY layout, from seconds."""
    us = np.round(np.nan_to_num(seconds) * 1e6).astype(np.int64)
    if kind == "interval":
        days = (us // DAY_US).astype(np.int32)  # whole days in the days field, as '1 day 02:00'
        return np.hstack(
            [
                _be(us - days.astype(np.int64) * DAY_US, "<i8"),
                _be(days, "<i4"),
                _be(np.zeros_like(days), "<i4"),
            ]
        )
    if len(us) and (us.min() < 0 or us.max() > DAY_US):
        raise LoadError(f"{where}: a time of day outside 00:00-24:00 ({us.min() / 1e6:g} s)")
    block = _be(us, "<i8")
    return (
        np.hstack([block, _be(np.zeros(len(us), np.int32), "<i4")]) if kind == "timetz" else block
    )


def _text_array(a: pa.Array) -> pa.Array:
    t = a.type
    if not (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        a = pc.cast(a, pa.large_string())
    return a.cast(pa.large_binary())


class _Row:
    """Accumulates one batch's pieces: fixed-width blocks are merged, Arrow arrays joined."""

    def __init__(self, n: int):
        self.n = n
        self.pieces: list[pa.Array] = []
        self.fixed: list[np.ndarray] = []

    def add_fixed(self, block: np.ndarray) -> None:
        self.fixed.append(block)

    def add_array(self, arr: pa.Array) -> None:
        self._flush()
        self.pieces.append(arr)

    def _flush(self) -> None:
        if not self.fixed:
            return
        if len(self.fixed) == 1:
            block = self.fixed[0]
        else:
            width = sum(b.shape[1] for b in self.fixed)
            block = np.empty((self.n, width), dtype=np.uint8)
            o = 0
            for b in self.fixed:
                block[:, o : o + b.shape[1]] = b
                o += b.shape[1]
        self.fixed = []
        self.pieces.append(_binary_from_fixed(block))

    def to_bytes(self) -> memoryview:
        if not self.pieces:  # every field fixed-width and non-null: one numpy block is the output
            width = sum(b.shape[1] for b in self.fixed)
            block = np.empty((self.n, width), dtype=np.uint8)
            o = 0
            for b in self.fixed:
                block[:, o : o + b.shape[1]] = b
                o += b.shape[1]
            return memoryview(block).cast("B")
        self._flush()
        if len(self.pieces) == 1:
            out = self.pieces[0]
        else:
            out = pc.binary_join_element_wise(
                *self.pieces, _SEP, null_handling="replace", null_replacement=""
            )
        offsets = np.frombuffer(
            out.buffers()[1], dtype=np.int64, count=self.n + 1, offset=out.offset * 8
        )
        return memoryview(out.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


def encode_batch(batch: pa.RecordBatch, plans: list[ColumnPlan], where: str = "") -> memoryview:
    """PostgreSQL binary COPY tuples (no signature, no trailer) for one Arrow record batch."""
    n = batch.num_rows
    row = _Row(n)
    row.add_fixed(_be(np.full(n, len(plans), dtype=np.int16), "<i2"))
    for i, p in enumerate(plans):
        a = batch.column(i)
        if isinstance(a, pa.ChunkedArray):
            a = a.combine_chunks()
        loc = f"{where}.{p.name}"
        if p.kind == "null":
            if a.null_count != n and not pa.types.is_null(a.type):
                raise LoadError(
                    f"{loc}: the shards' statistics said every value is NULL, but some are not"
                )
            row.add_fixed(_hdr(-1, n))
            continue
        null = _null_mask(a)
        if null is not None and not p.nullable:
            raise LoadError(
                f"{loc} is NOT NULL but the shard holds {int(null.sum())} NULL value(s)"
            )
        fixed: np.ndarray | None = None
        if p.kind in _INT_LIMITS:
            dt = {"int2": "<i2", "int4": "<i4", "int8": "<i8"}[p.kind]
            fixed = _be(_int_values(a, p.kind, loc), dt)
        elif p.kind == "float8":
            fixed = _be(_float_values(a), "<f8")
        elif p.kind == "float4":
            fixed = _be(_float_values(a).astype(np.float32), "<f4")
        elif p.kind == "numeric":
            fixed = _numeric_block(a, null, p.scale)
        elif p.kind == "bool":
            fixed = np.asarray(
                pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=np.uint8
            ).reshape(n, 1)
        elif p.kind == "date":
            us = _to_us(a)
            fixed = _be(
                (np.floor_divide(us, 86_400_000_000) - PG_EPOCH_DAYS).astype(np.int32), "<i4"
            )
        elif p.kind in ("timestamp", "timestamptz"):
            fixed = _be(_to_us(a) - PG_EPOCH_US, "<i8")
        elif p.kind in _SECONDS:
            fixed = _seconds_block(p.kind, _float_values(a), loc)
        if fixed is not None:
            w = fixed.shape[1]
            if null is None:
                row.add_fixed(_hdr(w, n))
                row.add_fixed(fixed)
            else:
                row.add_fixed(_lengths_hdr(np.where(null, -1, w)))
                row.add_array(_with_validity(_binary_from_fixed(fixed), null))
            continue
        if p.kind == "bytea":
            val = a.cast(pa.large_binary())
            lengths = pc.binary_length(val).fill_null(-1).to_numpy(zero_copy_only=False)
            row.add_fixed(_lengths_hdr(lengths))
            row.add_array(val)
            continue
        if p.kind == "uuid":
            s = pl.from_arrow(a).cast(pl.Utf8).str.replace_all("-", "", literal=True)
            raw = s.str.decode("hex", strict=False)
            bad = raw.is_null() & s.is_not_null() | (raw.bin.size() != 16).fill_null(False)
            if bad.any():
                raise LoadError(f"{loc}: {int(bad.sum())} value(s) are not UUIDs")
            val = raw.to_arrow().cast(pa.large_binary())
            row.add_fixed(
                _lengths_hdr(np.where(null, -1, 16) if null is not None else np.full(n, 16))
            )
            row.add_array(val)
            continue
        val = _text_array(a)
        lengths = pc.binary_length(val).fill_null(-1).to_numpy(zero_copy_only=False)
        if p.kind == "jsonb":
            row.add_fixed(_lengths_hdr(np.where(lengths < 0, -1, lengths + 1)))
            one = np.ones((n, 1), dtype=np.uint8)
            row.add_array(_with_validity(_binary_from_fixed(one), null))
        else:
            row.add_fixed(_lengths_hdr(lengths))
        row.add_array(val)
    return row.to_bytes()


def iter_batches(path: Path, columns: list[str], batch_rows: int) -> Iterable[pa.RecordBatch]:
    """Record batches of one Parquet shard file, in schema column order, never the whole file."""
    f = pq.ParquetFile(path)
    yield from f.iter_batches(batch_size=batch_rows, columns=columns, use_threads=True)


def _all_null_columns(files: list[ShardFile], columns: list[str]) -> set[str]:
    """Columns whose Parquet statistics say every value is NULL in every file."""
    nulls = {c: 0 for c in columns}
    total = 0
    for f in files:
        md = pq.ParquetFile(f.path).metadata
        total += md.num_rows
        names = [md.schema.column(i).name for i in range(md.num_columns)]
        for rg in range(md.num_row_groups):
            g = md.row_group(rg)
            for i, name in enumerate(names):
                if name not in nulls:
                    continue
                st = g.column(i).statistics
                if st is None or not st.has_null_count:
                    nulls[name] = -(10**18)
                else:
                    nulls[name] += st.null_count
    return {c for c, k in nulls.items() if total > 0 and k == total}


# --------------------------------------------------------------------------------------------
# DDL: re-qualification of reflected definitions
# --------------------------------------------------------------------------------------------

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
    src = model.schema
    qt = qi(next_schema)
    plans: dict[str, TablePlan] = {}
    for tname in inputs.order:
        table = model.tables[tname]
        files = inputs.files[tname]
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
        qtab = f"{qt}.{qi(tname)}"
        for con in sorted(table.constraints, key=lambda c: {"p": 0, "u": 1, "c": 2}[c.kind]):
            definition = requalify(con.definition, src, next_schema)
            m = _SIMPLE_KEY.match(definition) if con.kind in ("p", "u") else None
            if m:
                nulls = " NULLS NOT DISTINCT" if m.group(2) else ""
                tp.key_indexes.append(
                    f"CREATE UNIQUE INDEX {qi(con.name)} ON {qtab} ({m.group(3)}){nulls}"
                )
                tp.alter.append(
                    f"ADD CONSTRAINT {qi(con.name)} {m.group(1)} USING INDEX "
                    f"{qi(con.name)}{m.group(4)}"
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
        plans[tname] = tp
    return plans


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


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------

_META_DDL = """
CREATE SCHEMA IF NOT EXISTS synth_meta;
COMMENT ON SCHEMA synth_meta IS 'synth_assets load metadata';
CREATE TABLE IF NOT EXISTS synth_meta.load_runs (
  load_id bigserial PRIMARY KEY,
  refresh_id text NOT NULL,
  schema_name text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'loaded', 'failed', 'abandoned', 'torn_down')),
  spec_hash text NOT NULL,
  shard_hashes jsonb NOT NULL,
  rows jsonb,
  durations jsonb,
  actor text NOT NULL,
  run_id text,
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS synth_meta.managed_schemas (
  schema_name text PRIMARY KEY,
  load_id bigint NOT NULL REFERENCES synth_meta.load_runs (load_id),
  refresh_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS synth_meta.teardowns (
  teardown_id bigserial PRIMARY KEY,
  mode text NOT NULL CHECK (mode IN ('teardown', 'emergency')),
  schemas text[] NOT NULL,
  artifacts text[] NOT NULL DEFAULT '{}',
  actor text NOT NULL,
  run_id text,
  at timestamptz NOT NULL DEFAULT now()
);
"""
_META_LOCK = 0x5A7A_0E71


def ensure_meta(conn: psycopg.Connection) -> None:
    """Create ``synth_meta`` and its tables once (committed)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_META_LOCK,))
        if conn.execute("SELECT to_regclass('synth_meta.teardowns') IS NULL").fetchone()[0]:
            conn.execute(_META_DDL)


def _managed(conn: psycopg.Connection, names: list[str]) -> dict[str, bool | None]:
    """For each existing schema of ``names``: True when this tool created it, else False."""
    rows = conn.execute(
        "SELECT n.nspname, coalesce(obj_description(n.oid, 'pg_namespace'), '') FROM pg_namespace n "
        "WHERE n.nspname = ANY(%s)",
        (names,),
    ).fetchall()
    has_meta = conn.execute(
        "SELECT to_regclass('synth_meta.managed_schemas') IS NOT NULL"
    ).fetchone()[0]
    listed: set[str] = set()
    if has_meta:
        listed = {
            r[0]
            for r in conn.execute(
                "SELECT schema_name FROM synth_meta.managed_schemas WHERE schema_name = ANY(%s)",
                (names,),
            )
        }
    return {name: comment.startswith(SCHEMA_MARKER) and name in listed for name, comment in rows}


def _outside_dependents(conn: psycopg.Connection, schema: str) -> list[str]:
    """Objects outside ``schema`` that a DROP … CASCADE of it would also remove (views, FKs, …)."""
    rows = conn.execute(
        """
        WITH nsp AS (SELECT oid FROM pg_namespace WHERE nspname = %(s)s),
        objs AS (
          SELECT 'pg_class'::regclass::oid AS classid, c.oid AS objid FROM pg_class c, nsp WHERE c.relnamespace = nsp.oid
          UNION ALL
          SELECT 'pg_type'::regclass::oid, t.oid FROM pg_type t, nsp WHERE t.typnamespace = nsp.oid)
        SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d JOIN objs o ON d.refclassid = o.classid AND d.refobjid = o.objid, nsp
        WHERE d.deptype = 'n'
          AND NOT EXISTS (SELECT 1 FROM objs o2 WHERE o2.classid = d.classid AND o2.objid = d.objid)
          AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (
                SELECT 1 FROM pg_constraint k WHERE k.oid = d.objid AND k.connamespace = nsp.oid))
          AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (
                SELECT 1 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
                WHERE r.oid = d.objid AND c.relnamespace = nsp.oid))
          AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (
                SELECT 1 FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
                WHERE a.oid = d.objid AND c.relnamespace = nsp.oid))
        ORDER BY 1
        """,
        {"s": schema},
    ).fetchall()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------------------------
# A small lock-aware task scheduler over several connections
# --------------------------------------------------------------------------------------------


@dataclass
class _Task:
    key: str
    run: Callable[[psycopg.Connection], None]
    tables: frozenset[str]
    exclusive: bool
    deps: frozenset[str] = frozenset()
    priority: float = 0.0


class _Aborted(Exception):
    """Another task failed; this one stopped early."""


def _session_setup(conn: psycopg.Connection, search_path: list[str]) -> None:
    conn.execute(
        sql.SQL("SET search_path TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, search_path))
        )
    )
    conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(MAINTENANCE_WORK_MEM)))
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET statement_timeout = 0")
    conn.commit()


def _run_tasks(
    url: str, tasks: list[_Task], workers: int, search_path: list[str], abort: threading.Event
) -> dict[str, float]:
    """Run ``tasks`` on up to ``workers`` connections, respecting dependencies and table locks."""
    cond = threading.Condition()
    pending = sorted(tasks, key=lambda t: t.priority)
    keys = {t.key for t in tasks}
    for t in tasks:
        unknown = t.deps - keys
        if unknown:
            raise LoadError(f"internal: task {t.key} depends on unknown tasks {sorted(unknown)}")
    done: set[str] = set()
    shared: Counter[str] = Counter()
    excl: Counter[str] = Counter()
    running = [0]
    errors: list[tuple[str, BaseException]] = []
    durations: dict[str, float] = {}

    def can_run(t: _Task) -> bool:
        if not t.deps <= done:
            return False
        if t.exclusive:
            return not any(excl[x] or shared[x] for x in t.tables)
        return not any(excl[x] for x in t.tables)

    def take() -> _Task | None:
        with cond:
            while True:
                if errors or abort.is_set() or not pending:
                    return None
                task = next((t for t in pending if can_run(t)), None)
                if task is not None:
                    pending.remove(task)
                    for x in task.tables:
                        (excl if task.exclusive else shared)[x] += 1
                    running[0] += 1
                    return task
                if running[0] == 0:
                    errors.append(
                        (
                            "scheduler",
                            LoadError("internal: no load step can run (dependency cycle)"),
                        )
                    )
                    cond.notify_all()
                    return None
                cond.wait()

    def worker() -> None:
        try:
            conn = connect(url)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            with cond:
                errors.append(("connect", exc))
                cond.notify_all()
            return
        try:
            _session_setup(conn, search_path)
            while True:
                task = take()
                if task is None:
                    return
                t0 = time.perf_counter()
                failed: BaseException | None = None
                try:
                    task.run(conn)
                    conn.commit()
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    failed = exc
                    try:
                        conn.rollback()
                    except psycopg.Error:
                        pass
                with cond:
                    for x in task.tables:
                        (excl if task.exclusive else shared)[x] -= 1
                    running[0] -= 1
                    if failed is None:
                        done.add(task.key)
                        durations[task.key] = round(time.perf_counter() - t0, 3)
                    elif not isinstance(failed, _Aborted):
                        errors.append((task.key, failed))
                        abort.set()
                    cond.notify_all()
                if failed is not None:
                    return
        finally:
            conn.close()

    threads = [
        threading.Thread(target=worker, name=f"synth-load-{i}", daemon=True)
        for i in range(max(1, min(workers, len(tasks))))
    ]
    for th in threads:
        th.start()
    try:
        for th in threads:
            while th.is_alive():
                th.join(0.2)
    except BaseException:
        abort.set()
        for th in threads:
            th.join()
        raise
    if errors:
        key, exc = errors[0]
        if isinstance(exc, psycopg.Error):
            raise LoadError(f"load step {key} failed: {str(exc).strip().splitlines()[0]}") from exc
        raise exc
    if abort.is_set():
        raise LoadError("the load was aborted")
    return durations


# --------------------------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What a load did: where, how many rows, how long, and the load id in synth_meta."""

    load_id: int
    refresh_id: str
    schema: str
    target: str  # redacted URL
    rows: dict[str, int]
    durations: dict[str, Any]
    seconds: float
    spec_hash: str
    replaced_previous: bool
    connect_hint: str = ""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "refresh_id": self.refresh_id,
            "schema": self.schema,
            "target": self.target,
            "rows": self.rows,
            "total_rows": self.total_rows,
            "durations": self.durations,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "spec_hash": self.spec_hash,
            "replaced_previous": self.replaced_previous,
            "connect": self.connect_hint,
        }


def connect_hint(target_url: str, schema: str) -> str:
    """A psql command line that opens the staging schema (password redacted)."""
    url = redact(target_url)
    sep = "&" if "?" in url else "?"
    return f'psql "{url}{sep}options=-csearch_path%3D{schema}"'


def _lock_key(schema: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"synth_assets/{schema}".encode()).digest()[:8], "big", signed=True
    )


def _copy_task(
    tp: TablePlan,
    next_schema: str,
    batch_rows: int,
    progress: Progress | None,
    abort: threading.Event,
    copied: dict[str, int],
) -> Callable[[psycopg.Connection], None]:
    qtab = sql.Identifier(next_schema, tp.name)
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
            _copy_rows(conn, tp, stmt, cols, copied_cols, batch_rows, progress, abort, copied)
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
    batch_rows: int,
    progress: Progress | None,
    abort: threading.Event,
    copied: dict[str, int],
) -> None:
    """Stream every shard of the table through one binary COPY."""
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
        copied[tp.name] = cur.rowcount


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
    def run(conn: psycopg.Connection) -> None:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type] - reflected DDL, no parameters

    return run


def _exec(statement: str) -> Callable[[psycopg.Connection], None]:
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


def _validate_checks_task(
    tp: TablePlan, next_schema: str, unvalidated: dict[str, int], repaired: dict[str, int]
) -> Callable[[psycopg.Connection], None]:
    """Validate each cross-column CHECK; one that orders two columns (end_at > start_at) is
    first repaired by swapping the two values in the rows that break it (the generator draws
    each column from its own distribution); what still breaks a CHECK is counted, not fatal."""

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


def _count_task(
    tp: TablePlan, next_schema: str, counted: dict[str, int]
) -> Callable[[psycopg.Connection], None]:
    def run(conn: psycopg.Connection) -> None:
        counted[tp.name] = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(next_schema, tp.name))
        ).fetchone()[0]

    return run


def _build_tasks(
    plans: dict[str, TablePlan],
    next_schema: str,
    batch_rows: int,
    progress: Progress | None,
    abort: threading.Event,
    copied: dict[str, int],
    counted: dict[str, int],
    unvalidated: dict[str, int],
    repaired: dict[str, int],
) -> list[_Task]:
    tasks: list[_Task] = []
    qt = qi(next_schema)
    for tp in plans.values():
        big = -float(tp.rows)
        tab = frozenset({tp.name})
        tasks.append(
            _Task(
                f"copy:{tp.name}",
                _copy_task(tp, next_schema, batch_rows, progress, abort, copied),
                tab,
                True,
                priority=big,
            )
        )
        tasks.append(
            _Task(
                f"count:{tp.name}",
                _count_task(tp, next_schema, counted),
                tab,
                False,
                frozenset({f"copy:{tp.name}"}),
                priority=1e12 + big,
            )
        )
        idx_keys = []
        for i, stmt in enumerate(tp.key_indexes):
            key = f"key-index:{tp.name}:{i}"
            tasks.append(
                _Task(key, _exec(stmt), tab, False, frozenset({f"copy:{tp.name}"}), priority=big)
            )
            idx_keys.append(key)
        for iname, stmt in tp.indexes:
            key = f"index:{tp.name}:{iname}"
            tasks.append(
                _Task(
                    key, _exec(stmt), tab, False, frozenset({f"copy:{tp.name}"}), priority=big + 0.5
                )
            )
        if tp.alter:
            qtab = f"{qt}.{qi(tp.name)}"
            stmts = [f"ALTER TABLE {qtab} " + ", ".join(tp.alter)] + [
                # the next value an application inserts follows the synthetic rows
                f"SELECT setval(pg_get_serial_sequence('{qtab.replace(chr(39), chr(39) * 2)}', "
                f"'{col.replace(chr(39), chr(39) * 2)}'), coalesce(max({qi(col)}), 0) + 1, "
                f"false) FROM {qtab}"
                for col in tp.identity
            ]
            tasks.append(
                _Task(
                    f"constraints:{tp.name}",
                    _exec_all(stmts),
                    tab,
                    True,
                    frozenset({f"copy:{tp.name}", *idx_keys}),
                    priority=big,
                )
            )
        else:
            tasks.append(
                _Task(
                    f"constraints:{tp.name}",
                    lambda conn: None,
                    tab,
                    True,
                    frozenset({f"copy:{tp.name}"}),
                    priority=big,
                )
            )
    for tp in plans.values():
        if tp.checks:
            tasks.append(
                _Task(
                    f"checks:{tp.name}",
                    _validate_checks_task(tp, next_schema, unvalidated, repaired),
                    frozenset({tp.name}),
                    True,
                    frozenset({f"constraints:{tp.name}"}),
                    priority=-float(tp.rows),
                )
            )
    for tp in plans.values():
        fk_keys = []
        for name, ref, clause in tp.fks:
            key = f"fk:{tp.name}:{name}"
            stmt = f"ALTER TABLE {qt}.{qi(tp.name)} {clause}"
            tasks.append(
                _Task(
                    key,
                    _exec(stmt),
                    frozenset({tp.name, ref}),
                    True,
                    frozenset({f"constraints:{tp.name}", f"constraints:{ref}"}),
                    priority=-float(tp.rows),
                )
            )
            fk_keys.append(key)
    for tp in plans.values():
        touching = frozenset(
            t.key for t in tasks if t.key.startswith("fk:") and tp.name in t.tables
        )
        indexes = frozenset(t.key for t in tasks if t.key.startswith(f"index:{tp.name}:"))
        tasks.append(
            _Task(
                f"analyze:{tp.name}",
                _exec(f"ANALYZE {qt}.{qi(tp.name)}"),
                frozenset({tp.name}),
                True,
                frozenset({f"constraints:{tp.name}", *touching, *indexes}),
                priority=2e12,
            )
        )
    return tasks


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


def load_refresh(
    refresh_dir: Path,
    refresh_id: str,
    target_url: str,
    schema: str,
    *,
    source_url: str | None,
    actor: str | None = None,
    run_id: str | None = None,
    audit_url: str | None = None,
    workers: int = 2,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> LoadResult:
    """Load a gated refresh into ``schema`` of ``target_url`` (see the module docstring)."""
    started = time.perf_counter()
    schema = check_schema_name(schema)
    actor = actor or default_actor()
    next_s, prev_s = f"{schema}__next", f"{schema}__prev"
    t0 = time.perf_counter()
    inputs = read_inputs(Path(refresh_dir), refresh_id)
    assert_not_source(source_url, target_url)
    durations: dict[str, Any] = {"verify_inputs": round(time.perf_counter() - t0, 3)}
    audit_target = audit_url or target_url
    audit_inline = audit_target == target_url
    main = connect(target_url)
    locked = False
    try:
        marker = production_marker(main)
        if marker:
            raise LoadRefused(
                f"target {redact(target_url)} is marked as production ({marker}): refusing to "
                "load synthetic data there; choose a staging database for target.url"
            )
        ours = _managed(main, [schema, next_s, prev_s])
        foreign = sorted(n for n, mine in ours.items() if not mine)
        if foreign:
            raise LoadRefused(
                f"schema(s) {', '.join(foreign)} exist in the target but were not created by synth_assets: "
                "refusing to replace them; choose another target.schema or remove them yourself"
            )
        ddl_types, type_ddl = _resolve_types(main, inputs.model, next_s)
        locked = bool(
            main.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(schema),)).fetchone()[0]
        )
        main.commit()
        if not locked:
            raise LoadRefused(
                f"another load into schema {schema} of {redact(target_url)} is running; retry later"
            )
        # ---- from here on the target is written ----
        ensure_meta(main)
        if audit_inline:
            ensure_audit_schema(main)
        with main.transaction():
            main.execute(
                "UPDATE synth_meta.load_runs SET status = 'abandoned', finished_at = now(), "
                "error = 'the loading process ended without finishing' "
                "WHERE schema_name = %s AND status = 'running'",
                (schema,),
            )
            load_id = main.execute(
                "INSERT INTO synth_meta.load_runs (refresh_id, schema_name, status, spec_hash, shard_hashes, "
                "actor, run_id) VALUES (%s, %s, 'running', %s, %s::jsonb, %s, %s) RETURNING load_id",
                (
                    refresh_id,
                    schema,
                    inputs.spec["content_hash"],
                    json.dumps(inputs.shard_hashes),
                    actor,
                    run_id,
                ),
            ).fetchone()[0]
        main.commit()
        try:
            result = _load(
                main,
                inputs,
                target_url,
                schema,
                load_id,
                ddl_types,
                type_ddl,
                durations,
                actor=actor,
                run_id=run_id,
                audit_inline=audit_inline,
                workers=workers,
                batch_rows=batch_rows,
                progress=progress,
                started=started,
            )
        except BaseException as exc:
            _fail(main, next_s, load_id, exc)
            _audit_safely(
                audit_target,
                refresh_id,
                {
                    "status": "failed",
                    "schema": schema,
                    "target": redact(target_url),
                    "load_id": load_id,
                    "spec_hash": inputs.spec["content_hash"],
                    "error": _first_line(exc),
                    "run_id": run_id,
                },
                actor,
            )
            if isinstance(exc, psycopg.Error):
                raise LoadError(
                    f"loading refresh {refresh_id} into {schema} failed: {_first_line(exc)}; "
                    f"the live schema {schema} was not changed"
                ) from exc
            raise
        if not audit_inline:
            try:
                record_event(
                    audit_target, "load", refresh_id, _load_payload(result, run_id, inputs), actor
                )
            except SynthError as exc:
                raise LoadError(
                    f"refresh {refresh_id} is live in {schema}, but its audit event could not be "
                    f"written ({exc}); record it before using the data"
                ) from exc
        return result
    finally:
        try:
            if locked:
                main.rollback()
                main.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(schema),))
                main.commit()
        except psycopg.Error:
            pass
        main.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _audit_safely(url: str, refresh_id: str, payload: dict[str, Any], actor: str) -> None:
    try:
        record_event(url, "load", refresh_id, payload, actor)
    except SynthError:
        pass


def _load_payload(result: LoadResult, run_id: str | None, inputs: LoadInputs) -> dict[str, Any]:
    return {
        "status": "loaded",
        "schema": result.schema,
        "target": result.target,
        "load_id": result.load_id,
        "spec_hash": result.spec_hash,
        "rows": result.rows,
        "shard_hashes": inputs.shard_hashes,
        "seconds": round(result.seconds, 3),
        "replaced_previous": result.replaced_previous,
        "run_id": run_id,
    }


def _fail(main: psycopg.Connection, next_s: str, load_id: int, exc: BaseException) -> None:
    """Drop ``__next`` (it is ours) and mark the load failed; never raises."""
    try:
        main.rollback()
        with main.transaction():
            if _managed(main, [next_s]).get(next_s):
                main.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(next_s)))
                main.execute(
                    "DELETE FROM synth_meta.managed_schemas WHERE schema_name = %s", (next_s,)
                )
            main.execute(
                "UPDATE synth_meta.load_runs SET status = 'failed', error = %s, finished_at = now() "
                "WHERE load_id = %s",
                (_first_line(exc)[:2000], load_id),
            )
        main.commit()
    except psycopg.Error:
        pass


def _load(
    main: psycopg.Connection,
    inputs: LoadInputs,
    target_url: str,
    schema: str,
    load_id: int,
    ddl_types: dict[str, dict[str, str]],
    type_ddl: list[sql.Composable],
    durations: dict[str, Any],
    *,
    actor: str,
    run_id: str | None,
    audit_inline: bool,
    workers: int,
    batch_rows: int,
    progress: Progress | None,
    started: float,
) -> LoadResult:
    next_s, prev_s = f"{schema}__next", f"{schema}__prev"
    rid = inputs.refresh_id
    t0 = time.perf_counter()
    with main.transaction():
        if _managed(main, [next_s]).get(next_s):  # a crashed load left it behind
            main.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(next_s)))
            main.execute("DELETE FROM synth_meta.managed_schemas WHERE schema_name = %s", (next_s,))
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
    plans = _table_ddl(inputs.model, inputs, next_s, ddl_types)
    durations["prepare"] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    abort = threading.Event()
    copied: dict[str, int] = {}
    counted: dict[str, int] = {}
    unvalidated: dict[str, int] = {}
    repaired: dict[str, int] = {}
    tasks = _build_tasks(
        plans, next_s, batch_rows, progress, abort, copied, counted, unvalidated, repaired
    )
    steps = _run_tasks(target_url, tasks, workers, [next_s, "public"], abort)
    durations["build"] = round(time.perf_counter() - t0, 3)
    durations["steps"] = steps
    durations["copy"] = round(sum(v for k, v in steps.items() if k.startswith("copy:")), 3)
    durations["constraints_and_indexes"] = round(
        sum(
            v
            for k, v in steps.items()
            if k.split(":")[0] in ("key-index", "index", "constraints", "fk")
        ),
        3,
    )

    t0 = time.perf_counter()
    _verify(main, next_s, inputs, plans, copied, counted)
    main.commit()
    durations["verify"] = round(time.perf_counter() - t0, 3)
    durations["checks_not_validated"] = unvalidated  # CHECKs kept NOT VALID: rows violating each
    durations["checks_repaired"] = repaired  # rows whose two ordered columns were swapped

    t0 = time.perf_counter()
    with main.transaction():
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
            main.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(prev_s)))
            main.execute("DELETE FROM synth_meta.managed_schemas WHERE schema_name = %s", (prev_s,))
        replaced = bool(state.get(schema))
        if replaced:
            main.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(schema), sql.Identifier(prev_s)
                )
            )
            main.execute(
                "UPDATE synth_meta.managed_schemas SET schema_name = %s WHERE schema_name = %s",
                (prev_s, schema),
            )
        main.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(next_s), sql.Identifier(schema)
            )
        )
        main.execute(
            "UPDATE synth_meta.managed_schemas SET schema_name = %s WHERE schema_name = %s",
            (schema, next_s),
        )
        durations["swap"] = round(time.perf_counter() - t0, 3)
        seconds = time.perf_counter() - started
        durations["total"] = round(seconds, 3)
        result = LoadResult(
            load_id,
            rid,
            schema,
            redact(target_url),
            inputs.rows,
            durations,
            seconds,
            inputs.spec["content_hash"],
            replaced,
            connect_hint(target_url, schema),
        )
        main.execute(
            "UPDATE synth_meta.load_runs SET status = 'loaded', rows = %s::jsonb, durations = %s::jsonb, "
            "finished_at = now() WHERE load_id = %s",
            (json.dumps(inputs.rows), json.dumps(durations), load_id),
        )
        if audit_inline:
            append_event(main, "load", rid, _load_payload(result, run_id, inputs), actor)
    main.commit()
    return result


# --------------------------------------------------------------------------------------------
# Teardown
# --------------------------------------------------------------------------------------------


@dataclass
class TeardownResult:
    """What a teardown removed (and what it left alone)."""

    mode: str
    dropped: list[str]
    skipped: list[str]
    artifacts: list[str] = field(default_factory=list)
    also_removed: list[str] = field(default_factory=list)


def teardown(
    target_url: str,
    schema: str,
    *,
    actor: str | None = None,
    run_id: str | None = None,
    audit_url: str | None = None,
) -> TeardownResult:
    """Drop ``schema`` and its ``__next``/``__prev`` if this tool created them; record it."""
    schema = check_schema_name(schema)
    actor = actor or default_actor()
    names = [schema, f"{schema}__next", f"{schema}__prev"]
    audit_target = audit_url or target_url
    inline = False
    with connect(target_url) as conn:
        state = _managed(conn, names)
        foreign = sorted(n for n, mine in state.items() if not mine)
        if foreign:
            raise LoadRefused(
                f"schema(s) {', '.join(foreign)} in {redact(target_url)} were not created by "
                "synth_assets: teardown only removes schemas it created"
            )
        mine = [n for n in names if state.get(n)]
        if not mine:
            conn.rollback()
            return TeardownResult("teardown", [], [])
        for n in mine:
            outside = _outside_dependents(conn, n)
            if outside:
                raise LoadRefused(
                    f"objects outside {n} depend on it ({', '.join(outside[:5])}): drop or "
                    "repoint them first (emergency-teardown removes them too)"
                )
        conn.rollback()
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(schema),)).fetchone()[0]
        conn.commit()
        if not locked:
            raise LoadRefused(
                f"a load into {schema} is running: wait for it to finish, then tear down"
            )
        try:
            with conn.transaction():
                _drop_managed(conn, mine)
                conn.execute(
                    "INSERT INTO synth_meta.teardowns (mode, schemas, actor, run_id) "
                    "VALUES ('teardown', %s, %s, %s)",
                    (mine, actor, run_id),
                )
                payload = {
                    "mode": "teardown",
                    "schemas": mine,
                    "target": redact(target_url),
                    "run_id": run_id,
                }
                if audit_target == target_url:
                    inline = conn.execute(
                        "SELECT to_regclass('synth_audit.events') IS NOT NULL"
                    ).fetchone()[0]
                    if inline:
                        append_event(conn, "teardown", None, payload, actor)
            conn.commit()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(schema),))
            conn.commit()
    if not inline:
        record_event(audit_target, "teardown", None, payload, actor)
    return TeardownResult("teardown", mine, [])


def _drop_managed(conn: psycopg.Connection, names: list[str]) -> None:
    for n in names:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(n)))
    conn.execute("DELETE FROM synth_meta.managed_schemas WHERE schema_name = ANY(%s)", (names,))
    conn.execute(
        "UPDATE synth_meta.load_runs SET status = 'torn_down' WHERE status = 'loaded' AND "
        "schema_name = ANY(%s)",
        ([n.removesuffix("__prev").removesuffix("__next") for n in names],),
    )


def emergency_teardown(
    target_url: str,
    store_root: Path | None,
    *,
    actor: str | None = None,
    run_id: str | None = None,
    audit_url: str | None = None,
) -> TeardownResult:
    """Drop every schema this tool created in the target and delete every refresh's artifacts."""
    actor = actor or default_actor()
    audit_target = audit_url or target_url
    dropped: list[str] = []
    skipped: list[str] = []
    also: list[str] = []
    with connect(target_url) as conn:
        has_meta = conn.execute(
            "SELECT to_regclass('synth_meta.managed_schemas') IS NOT NULL"
        ).fetchone()[0]
        if has_meta:
            listed = [
                r[0]
                for r in conn.execute(
                    "SELECT schema_name FROM synth_meta.managed_schemas ORDER BY 1"
                )
            ]
            state = _managed(conn, listed)
            for n in listed:
                if state.get(n):
                    dropped.append(n)
                    also += [f"{d} (depends on {n})" for d in _outside_dependents(conn, n)]
                elif n in state:
                    skipped.append(n)  # exists but lost its marker: never dropped blindly
            with conn.transaction():
                stale = [n for n in listed if n not in state]
                if stale:
                    conn.execute(
                        "DELETE FROM synth_meta.managed_schemas WHERE schema_name = ANY(%s)",
                        (stale,),
                    )
                if dropped:
                    _drop_managed(conn, dropped)
            conn.commit()
    artifacts: list[str] = []
    if store_root is not None and Path(store_root).is_dir():
        for d in sorted(Path(store_root).iterdir()):
            try:
                check_refresh_id(d.name)
            except SynthError:
                continue
            if d.is_dir():
                shutil.rmtree(d)
                artifacts.append(d.name)
    payload = {
        "mode": "emergency",
        "schemas": dropped,
        "skipped": skipped,
        "also_removed": also,
        "artifacts_deleted": artifacts,
        "store": str(store_root) if store_root else None,
        "target": redact(target_url),
        "run_id": run_id,
    }
    with connect(target_url) as conn:
        ensure_meta(conn)
        conn.execute(
            "INSERT INTO synth_meta.teardowns (mode, schemas, artifacts, actor, run_id) "
            "VALUES ('emergency', %s, %s, %s, %s)",
            (dropped, artifacts, actor, run_id),
        )
        conn.commit()
    record_event(audit_target, "teardown", None, payload, actor)
    return TeardownResult("emergency", dropped, skipped, artifacts, also)


def check_staging(
    target_url: str, schema: str, refresh_id: str | None = None
) -> tuple[bool, dict[str, Any], list[str]]:
    """Re-check a live staging schema: ours, loaded from ``refresh_id``, counts as recorded, FKs valid."""
    failures: list[str] = []
    metrics: dict[str, Any] = {}
    with connect(target_url) as conn:
        if not _managed(conn, [schema]).get(schema):
            return (
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
            return False, metrics, [f"synth_meta has no finished load for {schema}"]
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
    return not failures, metrics, failures
