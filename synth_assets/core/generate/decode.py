"""Codes and draws turned into typed column values (categorical, numeric, boolean, datetime, key,
bytea), inside the column's type and CHECK bounds."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from synth_assets.core.errors import GenerationError

from .sampling import _conditional, _inverse_cdf

INT_MAX = {"int2": 2**15 - 1, "int4": 2**31 - 1, "int8": 2**63 - 1}
_EPOCH = date(1970, 1, 1)
US_PER_DAY = 86_400_000_000


def _decode_categorical(c: dict[str, Any], code: np.ndarray, rng: np.random.Generator) -> pl.Series:
    values = c["values"]
    k = len(values)
    allowed = (c.get("check") or {}).get("allowed")
    if allowed:  # the schema's CHECK list: never emit a value outside it
        ok = np.array([v in set(allowed) for v in values] + [True, True])
        if k == 0 or not ok[:k].any():  # nothing released (or nothing allowed): the schema's values
            pick = rng.integers(0, len(allowed), size=len(code))
            out = pl.Series(allowed, dtype=pl.Utf8).gather(pick)
            return _cast_text(
                out.scatter(
                    np.flatnonzero(code == k + 1) if k else np.flatnonzero(code == 1), None
                ),
                c,
            )
        code = np.where(
            ok[code], code, k
        )  # disallowed released values join "other" (redrawn below)
        p_ok = np.asarray(c["p"][:k], dtype=np.float64) * ok[:k]
        c = {**c, "p": list(p_ok) + list(c["p"][k:])}
    if k == 0:  # nothing released: the spec refuses unless every row is NULL (never a filler)
        return _cast_text(pl.Series([None] * len(code), dtype=pl.Utf8), c)
    p = np.asarray(c["p"][:k], dtype=np.float64)
    other = code == k
    if other.any():  # suppressed values are never emitted: redraw from the released ones
        code = code.copy()
        code[other] = _inverse_cdf(p if p.sum() > 0 else np.ones(k), rng.random(int(other.sum())))
    out = pl.Series(values + [None], dtype=pl.Utf8).gather(np.minimum(code, k))
    return _cast_text(out, c)


def _cast_text(s: pl.Series, c: dict[str, Any]) -> pl.Series:
    t = c["base_type"]
    if t in INT_MAX:
        return s.cast(pl.Int64, strict=False)
    if t in ("numeric", "float4", "float8"):
        return s.cast(pl.Float64, strict=False)
    if t == "bool":
        return s.cast(pl.Boolean, strict=False)
    return s


def from_text(values: list[str | None], c: dict[str, Any]) -> pl.Series:
    """A copied column (text from PostgreSQL, timestamps as UTC ISO) in its generated dtype."""
    s = pl.Series(values, dtype=pl.Utf8)
    t = c["base_type"]
    if t in INT_MAX:
        return s.cast(pl.Int64)
    if t in ("numeric", "float4", "float8", "time", "timetz", "interval"):  # times as seconds
        return s.cast(pl.Float64)
    if t == "bool":
        return s.replace_strict({"true": True, "false": False}, return_dtype=pl.Boolean)
    if t == "date":
        return s.str.to_date("%Y-%m-%d")
    if t in ("timestamp", "timestamptz"):
        d = s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us")
        return d.dt.replace_time_zone("UTC") if t == "timestamptz" else d
    return s


def _decode_numeric(
    c: dict[str, Any],
    code: np.ndarray,
    rng: np.random.Generator,
    within: np.ndarray | None = None,
) -> pl.Series:
    """Codes are point masses (exact values), then bins (drawn inside the bin, at ``within``
    when the tree placed the rows there), then NULL."""
    edges = np.asarray(c["edges"], dtype=np.float64)
    atoms = np.asarray(c.get("atoms") or [], dtype=np.float64)
    k = atoms.size
    nb = len(edges) - 1
    null = code >= k + nb
    is_atom = code < k
    b = np.clip(code - k, 0, nb - 1)
    lo, hi = edges[b], edges[b + 1]
    u = rng.random(len(code)) if within is None else within
    if c["integer"] and np.allclose(np.diff(edges), 1.0):  # one bin per integer value
        vals = np.round((lo + hi) / 2)
    elif np.all(edges[:-1] < edges[1:]) and edges[-1] - edges[0] >= 10:
        a0, a1 = np.arcsinh(lo), np.arcsinh(hi)
        vals = np.sinh(a0 + u * (a1 - a0))
    else:
        vals = lo + u * (hi - lo)
    vals = np.clip(vals, edges[0], edges[-1])
    if k:
        vals = np.where(is_atom, atoms[np.minimum(code, k - 1)], vals)
    vals = _type_range(c, _apply_check(c, vals))
    if c["integer"] or c["base_type"] in INT_MAX:
        vals = np.round(vals)
        s = pl.Series(vals.astype(np.int64))
    else:
        if c.get("decimals") is not None:
            vals = np.round(vals, c["decimals"])
        s = pl.Series(vals)
    if null.any():
        s = s.scatter(np.nonzero(null)[0], None)
    return s


def _type_range(c: dict[str, Any], vals: np.ndarray) -> np.ndarray:
    """Keep values inside what the column's type can store (int4, numeric(8,2), real): a value
    drawn from a wide outer bin must load, not stop the refresh at the COPY."""
    t = c["base_type"]
    if t in INT_MAX:
        return np.clip(vals, -INT_MAX[t] - 1, INT_MAX[t])
    m = re.match(r"numeric\((\d+)(?:,\s*(\d+))?\)", str(c.get("pg_type") or ""))
    if m:
        precision, scale = int(m.group(1)), int(m.group(2) or 0)
        top = 10.0 ** (precision - scale) - 10.0**-scale
        return np.clip(vals, -top, top)
    if t == "float4":
        return np.clip(vals, -3.4e38, 3.4e38)
    if t in ("time", "timetz"):  # seconds since midnight
        return np.clip(vals, 0.0, 86_400.0 - 1e-6)
    return vals


def _apply_check(c: dict[str, Any], vals: np.ndarray) -> np.ndarray:
    """Keep numbers inside single-column CHECK bounds and off excluded values (e.g. amount <> 0)."""
    rules = c.get("check") or {}
    if not rules:
        return vals
    step = 1.0 if (c["integer"] or c["base_type"] in INT_MAX) else 10.0 ** -(c.get("decimals") or 6)
    if "min" in rules:
        vals = np.maximum(vals, rules["min"] + (step if rules.get("min_strict") else 0.0))
    if "max" in rules:
        vals = np.minimum(vals, rules["max"] - (step if rules.get("max_strict") else 0.0))
    digits = 0 if step >= 1 else int(round(-np.log10(step)))
    for x in rules.get("exclude", []):
        hit = np.round(vals, digits) == x
        vals = np.where(hit, x + step, vals)
    return vals


def _decode_boolean(code: np.ndarray) -> pl.Series:
    s = pl.Series(code == 1)
    null = code >= 2
    return s.scatter(np.nonzero(null)[0], None) if null.any() else s


def _null_mask(p: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) < p if p > 0 else np.zeros(n, dtype=bool)


def _after_parent_cdf(target: np.ndarray, parent_day: np.ndarray, rounds: int = 4) -> np.ndarray:
    """CDF to truncate at each row's parent day so that the children's *marginal* stays the target.

    Truncating the target itself at the parents' days shifts mass later (a child of a late
    parent can only be late). With parent days counted per row, the marginal of truncated draws
    from f' is f'(t) * w(t), w(t) = mean over rows of 1[p <= t] / S'(p), S' the survival of f'.
    A few fixed-point rounds of f' <- f / w (all O(days)) bring that marginal back to f.
    """
    f = np.clip(target, 0, None)
    f = f / f.sum()
    counts = np.bincount(parent_day, minlength=len(f)).astype(np.float64)
    counts /= max(1.0, counts.sum())
    fp = f.copy()
    for _ in range(rounds):
        surv = np.cumsum(fp[::-1])[::-1]  # S'(d) = P(T >= d)
        w = np.cumsum(np.divide(counts, surv, out=np.zeros_like(counts), where=surv > 0))
        fp = np.divide(f, w, out=np.zeros_like(f), where=w > 1e-12)
        if fp.sum() <= 0:
            fp = f.copy()
            break
        fp /= fp.sum()
    cdf = np.cumsum(fp)
    return cdf / cdf[-1]


def _datetime_us(
    c: dict[str, Any], n: int, rng: np.random.Generator, floor_us: np.ndarray | None
) -> np.ndarray:
    """Microseconds since the epoch: day from the daily histogram, hour from hour-of-week."""
    start = (date.fromisoformat(c["start"]) - _EPOCH).days
    day_p = np.asarray(c["day_p"], dtype=np.float64)
    cdf = np.cumsum(day_p)
    cdf /= cdf[-1]
    u = rng.random(n)
    if (
        floor_us is not None
    ):  # children after their parents: truncate the day CDF at the parent's day
        pday = np.clip(np.floor_divide(floor_us, US_PER_DAY) - start, 0, len(day_p) - 1).astype(
            np.int64
        )
        cdf = _after_parent_cdf(day_p, pday)
        low = np.where(pday > 0, cdf[np.maximum(pday - 1, 0)], 0.0)
        u = low + u * (1.0 - low)
    day = np.minimum(np.searchsorted(cdf, u, side="right"), len(day_p) - 1)
    abs_day = start + day
    if c["date_only"]:
        us = abs_day.astype(np.int64) * US_PER_DAY
    else:
        how = np.asarray(c["how_p"], dtype=np.float64).reshape(7, 24)
        dow = (abs_day + 3) % 7  # 1970-01-01 was a Thursday; ISO Monday = 0
        hour = _conditional(how, dow.astype(np.int64), rng.random(n))
        secs = rng.integers(0, 3600, size=n)
        us = abs_day.astype(np.int64) * US_PER_DAY + hour * 3_600_000_000 + secs * 1_000_000
    if floor_us is not None:
        bad = us < floor_us
        if bad.any():
            us[bad] = floor_us[bad] + rng.integers(60, 3600, size=int(bad.sum())) * 1_000_000
    return us


def _datetime_series(c: dict[str, Any], us: np.ndarray, null: np.ndarray) -> pl.Series:
    t = c["base_type"]
    if t == "date":
        s = pl.Series((us // US_PER_DAY).astype(np.int32)).cast(pl.Date)
    else:
        s = pl.Series(us).cast(pl.Datetime("us", "UTC" if t == "timestamptz" else None))
    return s.scatter(np.nonzero(null)[0], None) if null.any() else s


def _key_series(
    c: dict[str, Any], ordinals: np.ndarray, rng: np.random.Generator, table: str
) -> pl.Series:
    t = c["base_type"]
    if t in INT_MAX:
        keys = ordinals + 1
        if keys.size and int(keys.max()) > INT_MAX[t]:
            raise GenerationError(
                f"{table}.{c.get('name', 'key')} ({c['pg_type']}) cannot hold {int(keys.max())} rows' keys; "
                "lower generation.scale or widen the column to bigint"
            )
        return pl.Series(keys.astype(np.int64))
    if t in ("numeric", "float8", "float4"):
        return pl.Series((ordinals + 1).astype(np.float64))
    if t == "uuid":
        b = rng.integers(0, 256, size=(len(ordinals), 16), dtype=np.uint8)
        b[:, 6] = (b[:, 6] & 0x0F) | 0x40
        b[:, 8] = (b[:, 8] & 0x3F) | 0x80
        # Fixed-size binary keeps trailing zero bytes (a numpy "S16" view would drop them).
        import pyarrow as pa

        fixed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(16), len(b), [None, pa.py_buffer(b.tobytes())]
        )
        h = pl.from_arrow(fixed.cast(pa.binary())).bin.encode("hex")
        parts = [
            h.str.slice(0, 8),
            h.str.slice(8, 4),
            h.str.slice(12, 4),
            h.str.slice(16, 4),
            h.str.slice(20, 12),
        ]
        return pl.select(pl.concat_str([pl.lit(x) for x in parts], separator="-")).to_series()
    if t in ("date", "timestamp", "timestamptz"):
        return pl.Series((ordinals * 1_000_000 + 946_684_800_000_000).astype(np.int64)).cast(
            pl.Datetime("us")
        )
    prefix = "".join(ch for ch in table[:3].upper() if ch.isalnum()) or "K"
    digits = pl.Series((ordinals + 1).astype(np.int64)).cast(pl.Utf8).str.zfill(9)
    s = pl.select(pl.concat_str([pl.lit(prefix + "-"), pl.lit(digits)])).to_series()
    if c.get("max_length") and s.str.len_chars().max() > c["max_length"]:
        s = pl.Series((ordinals + 1).astype(np.int64)).cast(pl.Utf8)
        if s.str.len_chars().max() > c["max_length"]:
            raise GenerationError(
                f"{table}: key column of {c['pg_type']} is too short for {len(ordinals)} unique keys"
            )
    return s


MAX_BYTES_BUCKET = 20  # a generated bytea value is at most 2^21 - 2 bytes (2 MiB)


def random_bytes(log2_p: list[float] | None, n: int, rng: np.random.Generator) -> pl.Series:
    """n bytea values: lengths from the released log2 length buckets (uniform inside a bucket),
    bytes from the shard's generator. Only the length distribution is learned, never a byte."""
    if log2_p:
        p = np.asarray(log2_p[: MAX_BYTES_BUCKET + 1], dtype=np.float64)
        p = p / p.sum() if p.sum() > 0 else np.eye(1, p.size).ravel()
        b = rng.choice(p.size, size=n, p=p)
    else:  # no length cleared the noise: empty values, the only length the data vouches for
        b = np.zeros(n, dtype=np.int64)
    lo = (1 << b) - 1
    lengths = lo + np.floor(rng.random(n) * (1 << b)).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(0, 256, size=int(offsets[-1]), dtype=np.uint8)
    arr = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return pl.Series(arr, dtype=pl.Binary)


def _ignored(c: dict[str, Any], n: int) -> pl.Series:
    if c["nullable"] or c.get("generated"):  # a generated column is computed at the load
        return pl.Series([None] * n, dtype=pl.Utf8)
    # Values with no content of their own (a search vector is rebuilt by the application).
    # JSON, bytea, arrays, times and intervals are modelled; ignored, they have no filler.
    defaults = {"tsvector": "", "xml": "<x/>"}
    if c["base_type"] in defaults:
        return pl.Series([defaults[c["base_type"]]] * n, dtype=pl.Utf8)
    raise GenerationError(
        f"column of type {c['pg_type']} is NOT NULL but has no role the generator can fill; "
        "give it a role in synth.yaml `columns:` or make it nullable"
    )
