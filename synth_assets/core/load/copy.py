"""Binary COPY encoder, vectorized: numpy blocks for fixed-width fields, Arrow for the rest.

Each column gets a :class:`ColumnPlan` (its wire encoding and its DDL type) from its PostgreSQL
type and its Parquet type; :func:`encode_batch` turns one Arrow record batch into COPY tuples
without a Python loop over rows.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synth_assets.core.roles import TEXT_TYPES
from synth_assets.core.schema import Column

from .errors import LoadError
from .inputs import ShardFile

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000
_INT_LIMITS = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}
_TEXT_TYPES = TEXT_TYPES | {"json"}  # sent as text in the binary COPY
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

    def _merged(self) -> np.ndarray:
        """The fixed-width blocks side by side: one (n, total width) uint8 block."""
        width = sum(b.shape[1] for b in self.fixed)
        block = np.empty((self.n, width), dtype=np.uint8)
        o = 0
        for b in self.fixed:
            block[:, o : o + b.shape[1]] = b
            o += b.shape[1]
        return block

    def _flush(self) -> None:
        if not self.fixed:
            return
        block = self.fixed[0] if len(self.fixed) == 1 else self._merged()
        self.fixed = []
        self.pieces.append(_binary_from_fixed(block))

    def to_bytes(self) -> memoryview:
        if not self.pieces:  # every field fixed-width and non-null: one numpy block is the output
            return memoryview(self._merged()).cast("B")
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


_INT_DTYPES = {"int2": "<i2", "int4": "<i4", "int8": "<i8"}


def _fixed_block(
    a: pa.Array, p: ColumnPlan, null: np.ndarray | None, n: int, loc: str
) -> np.ndarray | None:
    """The column's values as an (n, width) block of big-endian bytes, or None when its
    encoding is variable-width (bytea, uuid, text, jsonb)."""
    if p.kind in _INT_LIMITS:
        return _be(_int_values(a, p.kind, loc), _INT_DTYPES[p.kind])
    if p.kind == "float8":
        return _be(_float_values(a), "<f8")
    if p.kind == "float4":
        return _be(_float_values(a).astype(np.float32), "<f4")
    if p.kind == "numeric":
        return _numeric_block(a, null, p.scale)
    if p.kind == "bool":
        return np.asarray(
            pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=np.uint8
        ).reshape(n, 1)
    if p.kind == "date":
        us = _to_us(a)
        return _be((np.floor_divide(us, 86_400_000_000) - PG_EPOCH_DAYS).astype(np.int32), "<i4")
    if p.kind in ("timestamp", "timestamptz"):
        return _be(_to_us(a) - PG_EPOCH_US, "<i8")
    if p.kind in _SECONDS:
        return _seconds_block(p.kind, _float_values(a), loc)
    return None


def _add_fixed_column(row: _Row, fixed: np.ndarray, null: np.ndarray | None, n: int) -> None:
    """Length headers and values of a fixed-width column (a NULL is a -1 length, no value)."""
    w = fixed.shape[1]
    if null is None:
        row.add_fixed(_hdr(w, n))
        row.add_fixed(fixed)
    else:
        row.add_fixed(_lengths_hdr(np.where(null, -1, w)))
        row.add_array(_with_validity(_binary_from_fixed(fixed), null))


def _add_uuid_column(row: _Row, a: pa.Array, null: np.ndarray | None, n: int, loc: str) -> None:
    """UUIDs as their 16 raw bytes, decoded from the text form (refusing what is not a UUID)."""
    s = pl.from_arrow(a).cast(pl.Utf8).str.replace_all("-", "", literal=True)
    raw = s.str.decode("hex", strict=False)
    bad = raw.is_null() & s.is_not_null() | (raw.bin.size() != 16).fill_null(False)
    if bad.any():
        raise LoadError(f"{loc}: {int(bad.sum())} value(s) are not UUIDs")
    val = raw.to_arrow().cast(pa.large_binary())
    row.add_fixed(_lengths_hdr(np.where(null, -1, 16) if null is not None else np.full(n, 16)))
    row.add_array(val)


def _add_varlen_column(
    row: _Row, a: pa.Array, p: ColumnPlan, null: np.ndarray | None, n: int, loc: str
) -> None:
    """bytea as is, uuid as 16 bytes, jsonb as version 1 then its text, anything else as text."""
    if p.kind == "bytea":
        val = a.cast(pa.large_binary())
        lengths = pc.binary_length(val).fill_null(-1).to_numpy(zero_copy_only=False)
        row.add_fixed(_lengths_hdr(lengths))
        row.add_array(val)
        return
    if p.kind == "uuid":
        _add_uuid_column(row, a, null, n, loc)
        return
    val = _text_array(a)
    lengths = pc.binary_length(val).fill_null(-1).to_numpy(zero_copy_only=False)
    if p.kind == "jsonb":
        row.add_fixed(_lengths_hdr(np.where(lengths < 0, -1, lengths + 1)))
        one = np.ones((n, 1), dtype=np.uint8)
        row.add_array(_with_validity(_binary_from_fixed(one), null))
    else:
        row.add_fixed(_lengths_hdr(lengths))
    row.add_array(val)


def _add_column(row: _Row, a: pa.Array, p: ColumnPlan, n: int, loc: str) -> None:
    """One column's fields of every tuple in the batch, after its NULLs are checked."""
    if p.kind == "null":
        if a.null_count != n and not pa.types.is_null(a.type):
            raise LoadError(
                f"{loc}: the shards' statistics said every value is NULL, but some are not"
            )
        row.add_fixed(_hdr(-1, n))
        return
    null = _null_mask(a)
    if null is not None and not p.nullable:
        raise LoadError(f"{loc} is NOT NULL but the shard holds {int(null.sum())} NULL value(s)")
    fixed = _fixed_block(a, p, null, n, loc)
    if fixed is not None:
        _add_fixed_column(row, fixed, null, n)
    else:
        _add_varlen_column(row, a, p, null, n, loc)


def encode_batch(batch: pa.RecordBatch, plans: list[ColumnPlan], where: str = "") -> memoryview:
    """PostgreSQL binary COPY tuples (no signature, no trailer) for one Arrow record batch."""
    n = batch.num_rows
    row = _Row(n)
    row.add_fixed(_be(np.full(n, len(plans), dtype=np.int16), "<i2"))
    for i, p in enumerate(plans):
        a = batch.column(i)
        if isinstance(a, pa.ChunkedArray):
            a = a.combine_chunks()
        _add_column(row, a, p, n, f"{where}.{p.name}")
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
