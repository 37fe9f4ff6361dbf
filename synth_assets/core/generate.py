"""The vectorized generator: spec + sealed seed -> Parquet shards with valid keys.

A shard is a block of privacy units (rows of the unit table) with all their descendants, so
every foreign key resolves inside the shard; reference tables are generated once from their
own stream (every shard can rebuild them in memory, shard 0 writes them). Each shard draws
from its own ``SeedSequence`` child; nothing touches a global RNG.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from . import copula
from .digest import sha256_file
from .errors import GenerationError
from .fakes import fake_column
from .schema import ForeignKey, SchemaModel

REFERENCE_STREAM = 0
# Sub-stream tag of reference popularity draws (apart from the deferred FKs' 1 + index).
POPULARITY_SUB = 1 << 16
INT_MAX = {"int2": 2**15 - 1, "int4": 2**31 - 1, "int8": 2**63 - 1}
_EPOCH = date(1970, 1, 1)
US_PER_DAY = 86_400_000_000


def shard_key(shard: int) -> str:
    """Partition key / file stem of a shard."""
    return f"{shard:05d}"


def shard_units(spec: dict[str, Any], shard: int) -> tuple[int, int]:
    """Global ordinals [start, end) of the unit-table rows that belong to ``shard``."""
    n, s = spec["tables"][spec["unit_table"]]["rows"], spec["shards"]
    if not 0 <= shard < s:
        raise GenerationError(
            f"shard {shard} is out of range: the spec has {s} shards (0..{s - 1})"
        )
    return shard * n // s, (shard + 1) * n // s


def streams(master_seed: bytes, n_shards: int) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per shard (index shard+1) plus one for reference tables (0)."""
    if len(master_seed) < 16:
        raise GenerationError("the master seed must hold at least 128 bits of entropy")
    root = np.random.SeedSequence(int.from_bytes(master_seed, "big"))
    return root.spawn(n_shards + 1)


@dataclass
class Frame:
    """A generated table inside one shard: its columns and, for unit tables, each row's unit."""

    columns: dict[str, Any]
    n: int
    unit: np.ndarray | None  # local unit index per row


def _inverse_cdf(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(p) - 1)


def _groups(keys: np.ndarray):
    """(value, row indices) for each distinct value of ``keys`` — one sort, no per-value scans."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    cuts = np.flatnonzero(np.diff(sk)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(sk)]))
    for a, b in zip(starts, ends, strict=True):
        if b > a:
            yield sk[a], order[a:b]


def _conditional(cond: np.ndarray, parent: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from P(child | parent) for every row in one vectorized search.

    Row v of the conditional CDF is shifted by v, so the flattened CDFs increase monotonically
    and ``searchsorted(flat, v + u)`` lands inside row v: no sort, no per-parent loop.
    """
    p = np.clip(np.asarray(cond, dtype=np.float64), 0, None)
    sums = p.sum(axis=1, keepdims=True)
    p = np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), 1.0 / p.shape[1])
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = 1.0
    k = cdf.shape[1]
    flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()
    idx = np.searchsorted(flat, parent + u, side="right") - parent * k
    return np.clip(idx, 0, k - 1)


def _sample_tree(
    tspec: dict[str, Any], n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Codes of every modelled column, sampled ancestrally along the table's dependency tree,
    and for numeric columns where each row sits inside its code (a fraction in [0, 1]).

    A numeric child linked to its numeric parent (``tree.links``, see :mod:`.copula`) keeps the
    group the measured pair gives it and takes its place inside that group from the parent's."""
    cols = tspec["columns"]
    tree = tspec["tree"]
    links = tree.get("links") or {}
    # Only linked columns and their parents need a place inside their codes; every other
    # numeric column draws its own inside its bin when decoded.
    placed = set(links) | {tree["parent"][k] for k in links}
    codes: dict[str, np.ndarray] = {}
    scales: dict[str, copula.ValueScale] = {}
    positions: dict[str, np.ndarray] = {}
    for node in tree["order"]:
        par = tree["parent"][node]
        if par is None:
            codes[node] = _inverse_cdf(np.asarray(cols[node]["p"]), rng.random(n))
        else:
            cond = np.asarray(tree["cond"][node])
            codes[node] = _conditional(cond, codes[par], rng.random(n))
        c = cols[node]
        if c["kind"] != "numeric" or node not in placed:
            continue
        scale = scales[node] = copula.ValueScale(c.get("atoms") or [], c["edges"], c["p"])
        link = links.get(node)
        bounds = scale.group_bounds(link["groups"]) if link and par in positions else None
        if bounds is not None:
            ppos = np.where(codes[par] == scales[par].null, np.nan, positions[par])
            codes[node], positions[node] = copula.linked_positions(
                scale, codes[node], bounds, link["groups"], link["rho"], ppos, rng
            )
        else:
            positions[node] = scale.position(codes[node], rng.random(n))
    within = {k: scales[k].within(codes[k], pos) for k, pos in positions.items()}
    return codes, within


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


def _popularity(f: dict[str, Any], m: int, rng: np.random.Generator) -> np.ndarray:
    """Weights of ``m`` reference rows from a histogram of sampled children per row.

    The histogram counts a sample of the children (one per unit), so it is popularity plus
    Poisson sampling noise. Moments deconvolve it: CV^2 of popularity = (Var - Mean) / Mean^2;
    weights are log-normal with that CV (uniform when there is no overdispersion).
    """
    bins = np.asarray(f["bins"], dtype=np.float64)
    hi = np.append(bins[1:], bins[-1] * 2 if bins[-1] > 0 else 1.0)
    mid = np.where(hi - bins > 1, (bins + hi - 1) / 2, bins)
    p = np.asarray(f["p"], dtype=np.float64)
    # Noise spreads mass into far bins where it would dominate the variance: estimate the mean
    # on the near bins, then keep bins up to 8x that mean.
    near = mid <= 64
    mean0 = float(p[near] @ mid[near] / max(p[near].sum(), 1e-12))
    keep = mid <= max(8.0 * mean0, 16.0)
    p = np.where(keep, p, 0.0)
    p = p / max(p.sum(), 1e-12)
    mean = float(p @ mid)
    var = float(p @ (mid - mean) ** 2)
    if mean <= 0 or var <= mean:
        return np.ones(m)
    cv2 = (var - mean) / mean**2
    s2 = np.log1p(cv2)
    return np.exp(rng.normal(-s2 / 2, np.sqrt(s2), size=m))


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


@dataclass
class _Rows:
    """What every column of one table's generated rows is drawn from."""

    n: int
    ordinals: np.ndarray
    parent_idx: np.ndarray | None
    parent_frame: Frame | None
    codes: dict[str, np.ndarray]
    within: dict[str, np.ndarray]
    rng: np.random.Generator


def _parent_floor(c: dict[str, Any], rows: _Rows) -> np.ndarray | None:
    """Per row, the parent's timestamp (µs) a datetime must not precede (None when unenforced);
    a NULL parent value gives no floor."""
    pc = c.get("after_parent_column")
    if not pc or rows.parent_frame is None or rows.parent_idx is None:
        return None
    ps = rows.parent_frame.columns[pc]
    pus = ps.cast(pl.Datetime("us")).cast(pl.Int64) if ps.dtype == pl.Date else ps.cast(pl.Int64)
    floor = pus.to_numpy()[rows.parent_idx]
    floor = np.where(np.isnan(floor.astype(np.float64)), np.iinfo(np.int64).min // 2, floor)
    return floor.astype(np.int64)


def _synth_column(c: dict[str, Any], rows: _Rows) -> pl.Series:
    """A synthesized (fake) column: values faked only for the rows that are not NULL."""
    n = rows.n
    params = {}
    if c.get("words_p"):
        params["length_words"] = (list(range(len(c["words_p"]))), c["words_p"])
    null = _null_mask(c["null_p"], n, rows.rng)
    keep = np.flatnonzero(~null)  # fake only the values that will be emitted
    s = fake_column(
        c["role"],
        rows.rng,
        rows.ordinals[keep],
        unique=c["unique"],
        max_length=c["max_length"],
        pg_type=c["pg_type"],
        params=params,
    )
    if s.dtype in (pl.Date, pl.Datetime) or isinstance(s.dtype, pl.Datetime):
        if c["base_type"] not in ("date", "timestamp", "timestamptz"):
            s = s.cast(pl.Utf8)
    if keep.size < n:
        full = pl.Series([None] * n, dtype=s.dtype) if n else s.clear()
        s = full.scatter(keep, s) if keep.size else full
    return s


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


class ShardGenerator:
    """Generates the tables of one shard (or the reference tables) from the spec."""

    def __init__(self, spec: dict[str, Any], master_seed: bytes):
        self.spec = spec
        self.model = SchemaModel.from_dict(spec["schema"])
        self.seqs = streams(master_seed, spec["shards"])
        self._refs: dict[str, Frame] | None = None
        self._popularity: dict[tuple[str, str], np.ndarray] = {}

    def _rng(self, stream: int, table: str, *sub: int) -> np.random.Generator:
        """Independent generator for (stream, table[, sub]): a child of the stream's SeedSequence."""
        ss = self.seqs[stream]
        key = (*ss.spawn_key, self.spec["order"].index(table), *sub)
        return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=key))

    def references(self) -> dict[str, Frame]:
        """Reference tables, identical in every shard (their own stream)."""
        if self._refs is None:
            frames: dict[str, Frame] = {}
            for name in self.spec["order"]:
                t = self.spec["tables"][name]
                if t["kind"] != "reference":
                    continue
                n = int(t["rows"])
                rng = self._rng(REFERENCE_STREAM, name)
                frames[name] = self._table(
                    name, n, np.arange(n, dtype=np.int64), None, None, frames, rng
                )
                for col, values in t.get("copy", {}).items():  # public.tables
                    frames[name].columns[col] = from_text(values, t["columns"][col])
            self._refs = frames
        return self._refs

    def shard(self, shard: int) -> dict[str, Frame]:
        """Every unit-owned table of ``shard`` (reference tables not included)."""
        u0, u1 = shard_units(self.spec, shard)
        frames: dict[str, Frame] = dict(self.references())
        S = self.spec["shards"]
        out: dict[str, Frame] = {}
        for name in self.spec["order"]:
            t = self.spec["tables"][name]
            if t["kind"] == "reference":
                continue
            rng = self._rng(shard + 1, name)
            if t["kind"] == "root":
                n = u1 - u0
                ordinals = np.arange(u0, u1, dtype=np.int64)
                unit = np.arange(n, dtype=np.int64)
                parent_idx = None
            else:
                f = t["fanout"][t["parent_fk"]]
                parent = frames[t["parent"]]
                k = self._fanout(f, parent.n, rng)
                parent_idx = np.repeat(np.arange(parent.n, dtype=np.int64), k)
                n = int(parent_idx.size)
                unit = parent.unit[parent_idx]
                ordinals = np.arange(n, dtype=np.int64) * S + shard
            frames[name] = self._table(name, n, ordinals, unit, parent_idx, frames, rng)
            out[name] = frames[name]
        self._fill_deferred(frames, shard)
        for name in out:
            out[name] = frames[name] = self._drop_duplicate_keys(name, frames[name])
        return out

    def _drop_duplicate_keys(self, name: str, fr: Frame) -> Frame:
        """Rows whose composite key repeats within the shard, dropped (first kept).

        A link table keyed by (parent, reference) draws the reference per row: two draws for
        the same parent can coincide (3 courses of 40 per person: 4 % of rows). Only for leaf
        tables whose key holds the parent FK (unique across shards, since parents are): a
        dropped row of a referenced table would orphan its children.
        """
        table = self.model.tables[name]
        t = self.spec["tables"][name]
        parent_fk = next((fk for fk in table.foreign_keys if fk.name == t["parent_fk"]), None)
        if parent_fk is None or self.model.children(name) or fr.n == 0:
            return fr
        keep = np.ones(fr.n, dtype=bool)
        for cols in table.unique_sets:
            if len(cols) < 2 or parent_fk.columns[0] not in cols:
                continue
            df = pl.DataFrame({c: fr.columns[c] for c in cols})
            keep &= df.select(pl.struct(cols).is_first_distinct()).to_series().to_numpy()
        if keep.all():
            return fr
        idx = np.flatnonzero(keep)
        cols = {c: s.gather(idx) if s is not None else s for c, s in fr.columns.items()}
        return Frame(cols, int(idx.size), fr.unit[idx] if fr.unit is not None else None)

    @staticmethod
    def _fanout(f: dict[str, Any], n_parents: int, rng: np.random.Generator) -> np.ndarray:
        bins = np.asarray(f["bins"], dtype=np.int64)
        hi = np.append(bins[1:], max(int(bins[-1]) * 2, int(bins[-1]) + 1))
        b = _inverse_cdf(np.asarray(f["p"]), rng.random(n_parents))
        k = bins[b] + np.floor(rng.random(n_parents) * (hi[b] - bins[b])).astype(np.int64)
        return np.minimum(k, int(f["max"]))

    def _table(
        self,
        name: str,
        n: int,
        ordinals: np.ndarray,
        unit: np.ndarray | None,
        parent_idx: np.ndarray | None,
        frames: dict[str, Frame],
        rng: np.random.Generator,
    ) -> Frame:
        t = self.spec["tables"][name]
        table = self.model.tables[name]
        cols: dict[str, Any] = {}
        codes, within = _sample_tree(t, n, rng)
        parent_frame = frames.get(t["parent"]) if t["parent"] else None
        rows = _Rows(n, ordinals, parent_idx, parent_frame, codes, within, rng)
        for col in table.columns:
            c = {**t["columns"][col.name], "name": col.name}
            cols[col.name] = self._column(name, c, rows)
        # Foreign keys: the parent, references (popularity and attribute), same-unit rows.
        for fk in table.foreign_keys:
            cols[fk.columns[0]] = self._fk_column(name, t, fk, frames, rows)
        return Frame(cols, n, unit)

    def _column(self, name: str, c: dict[str, Any], rows: _Rows) -> pl.Series | None:
        """One column of table ``name`` by its kind; None for FK and public columns, which the
        table's FK pass and the caller fill once every other column exists."""
        kind, n, rng = c["kind"], rows.n, rows.rng
        if kind == "key":
            return self._key_column(name, c, rows)
        if kind == "categorical":
            return _decode_categorical(c, rows.codes[c["name"]], rng)
        if kind == "numeric":
            return _decode_numeric(c, rows.codes[c["name"]], rng, rows.within.get(c["name"]))
        if kind == "boolean":
            return _decode_boolean(rows.codes[c["name"]])
        if kind == "datetime":
            us = _datetime_us(c, n, rng, _parent_floor(c, rows))
            return _datetime_series(c, us, _null_mask(c["null_p"], n, rng))
        if kind == "synth" and c["role"] == "binary":
            return random_bytes(c.get("log2_bytes_p"), n, rng).scatter(
                np.flatnonzero(_null_mask(c["null_p"], n, rng)), None
            )
        if kind == "synth":
            return _synth_column(c, rows)
        if kind in ("fk", "public"):
            return None  # fk: filled by the FK pass; public: copied by the caller (public.tables)
        return _ignored(c, n)

    def _key_column(self, name: str, c: dict[str, Any], rows: _Rows) -> pl.Series:
        """A key column: numbered within the parent when it completes a composite (parent, n)
        primary key, else from the rows' global ordinals."""
        t = self.spec["tables"][name]
        table = self.model.tables[name]
        pfk = next((fk for fk in table.foreign_keys if fk.name == t["parent_fk"]), None)
        if (
            pfk is not None
            and rows.parent_idx is not None
            and c["name"] in table.primary_key
            and pfk.columns[0] in table.primary_key
        ):
            # Composite key (parent, n): number the rows within their parent, 1..k.
            first = np.searchsorted(rows.parent_idx, rows.parent_idx, side="left")
            within = np.arange(rows.n, dtype=np.int64) - first
            return _key_series(c, within, rows.rng, name)
        return _key_series(c, rows.ordinals, rows.rng, name)

    def _fk_column(
        self, name: str, t: dict[str, Any], fk: Any, frames: dict[str, Frame], rows: _Rows
    ) -> pl.Series | None:
        """An FK column: the parent's key, a reference table's row, or None (deferred: rows of
        the same shard of a table generated later, or of this table itself)."""
        if fk.name == t["parent_fk"]:
            return rows.parent_frame.columns[fk.ref_columns[0]].gather(rows.parent_idx)
        if fk.ref_table in frames and self.spec["tables"][fk.ref_table]["kind"] == "reference":
            return self._reference_fk(
                name, t, fk, frames[fk.ref_table], rows.codes, rows.n, rows.rng
            )
        return None

    def _reference_weights(self, name: str, fk: ForeignKey, m: int) -> np.ndarray:
        """Popularity of each of the ``m`` reference rows ``name.fk`` points at: a property of
        the reference row, so drawn once from the reference stream and shared by every shard.
        Drawn per shard, each merchant got a fresh weight in every shard and its total over
        the shards averaged them out: merchant popularity came out flatter the more shards
        (the demo's fan-out score 0.57-0.64 where one draw reaches ~0.67, the staging band's
        0.47)."""
        key = (name, fk.name)
        if key not in self._popularity:
            f = self.spec["tables"][name]["fanout"].get(fk.name)
            index = self.model.tables[name].foreign_keys.index(fk)
            rng = self._rng(REFERENCE_STREAM, name, POPULARITY_SUB + index)
            self._popularity[key] = _popularity(f, m, rng) if f is not None else np.ones(m)
        return self._popularity[key]

    def _reference_fk(self, name: str, t, fk, ref: Frame, codes, n, rng) -> pl.Series:
        keycol = ref.columns[fk.ref_columns[0]]
        m = ref.n
        w = self._reference_weights(name, fk, m)
        attr_key = f"^{fk.columns[0]}"
        idx = np.empty(n, dtype=np.int64)
        if attr_key in codes:
            a = t["columns"][attr_key]
            vals = a["values"]
            ref_vals = ref.columns[a["attribute"]].cast(pl.Utf8).to_numpy()
            ref_code = np.full(m, len(vals), dtype=np.int64)
            for i, v in enumerate(vals):
                ref_code[ref_vals == v] = i
            want = codes[attr_key]
            u = rng.random(n)
            for v, rows in _groups(want):
                pool = np.nonzero(ref_code == v)[0] if v < len(vals) else np.arange(m)
                if pool.size == 0:
                    pool = np.arange(m)
                idx[rows] = pool[_inverse_cdf(w[pool], u[rows])]
        else:
            idx = _inverse_cdf(w, rng.random(n))
        s = keycol.gather(idx)
        null = _null_mask(t["columns"][fk.columns[0]].get("null_p", 0.0), n, rng)
        return s.scatter(np.nonzero(null)[0], None) if null.any() else s

    def _fill_deferred(self, frames: dict[str, Frame], shard: int) -> None:
        """Self-references and FKs to other unit-owned tables: a row of the same shard, same unit when possible."""
        for name in self.spec["order"]:
            t = self.spec["tables"][name]
            table = self.model.tables[name]
            fr = frames[name]
            for fk in table.foreign_keys:
                colname = fk.columns[0]
                if fr.columns.get(colname) is not None:
                    continue
                c = t["columns"][colname]
                stream = REFERENCE_STREAM if t["kind"] == "reference" else shard + 1
                rng = self._rng(stream, name, 1 + table.foreign_keys.index(fk))
                target = frames[fk.ref_table]
                keys = target.columns[fk.ref_columns[0]]
                n = fr.n
                if target.n == 0:
                    if not c["nullable"]:
                        raise GenerationError(
                            f"{name}.{colname} needs rows of {fk.ref_table} but the shard has none"
                        )
                    fr.columns[colname] = pl.Series([None] * n, dtype=keys.dtype)
                    continue
                u = rng.random(n)
                if fk.ref_table == name:
                    # Self-reference: an earlier row of the same shard (no self-loops, no cycles).
                    idx = np.floor(u * np.arange(n)).astype(np.int64)
                    null = np.zeros(n, dtype=bool)
                    null[0] = True
                elif (
                    fr.unit is not None
                    and target.unit is not None
                    and self.spec["tables"][fk.ref_table]["kind"] != "root"
                ):
                    # Another row of the same unit (a card of the same account); a second FK
                    # to the unit table itself (transfer.to_id) is any unit of the shard.
                    order = np.argsort(target.unit, kind="stable")
                    su = target.unit[order]
                    lo = np.searchsorted(su, fr.unit, side="left")
                    hi = np.searchsorted(su, fr.unit, side="right")
                    cnt = hi - lo
                    has = cnt > 0
                    pick = lo + np.floor(u * np.maximum(cnt, 1)).astype(np.int64)
                    idx = np.where(
                        has,
                        order[np.minimum(pick, len(order) - 1)],
                        np.floor(u * target.n).astype(np.int64),
                    )
                    null = ~has if c["nullable"] else np.zeros(n, dtype=bool)
                else:
                    idx = np.floor(u * target.n).astype(np.int64)
                    null = np.zeros(n, dtype=bool)
                null |= _null_mask(c.get("null_p", 0.0), n, rng)
                if not c["nullable"]:
                    if null[0] and fk.ref_table == name and n > 0:
                        raise GenerationError(
                            f"{name}.{colname} is a NOT NULL self-reference: the first row cannot point "
                            "at an earlier one; make it nullable"
                        )
                    null[:] = False
                s = keys.gather(np.clip(idx, 0, target.n - 1))
                fr.columns[colname] = s.scatter(np.nonzero(null)[0], None) if null.any() else s


def to_polars(frame: Frame, table_columns: list[str]) -> pl.DataFrame:
    """Columns in schema order as a DataFrame."""
    return pl.DataFrame({c: frame.columns[c] for c in table_columns})


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> str:
    """Write zstd Parquet via a temp file and rename; return its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.write_parquet(tmp, compression="zstd", compression_level=1, statistics=True)
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    return digest


def shard_path(root: Path, table: str, shard: int) -> Path:
    """``<refresh>/shards/<table>/part-<shard:05d>.parquet``."""
    return Path(root) / "shards" / table / f"part-{shard_key(shard)}.parquet"


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs the container's CFS quota allows (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``),
    rounded up; None when there is no quota. A pod limited to 1 CPU on a 32-core node sees 32
    CPUs through affinity, and 32 workers under a 1 GiB limit would be killed."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def usable_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a container's CPU quota."""
    try:
        n = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        n = max(1, os.cpu_count() or 1)
    limit = cgroup_cpu_limit()
    return min(n, limit) if limit else n


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: end this worker when the process that started it dies.

    A ``kill -9`` of the CLI (or of a Dagster step process) leaves pool workers blocked on
    their task queue, generating for nobody, holding a sealed seed in memory. On Linux the
    kernel sends SIGKILL to the worker when its parent exits (``PR_SET_PDEATHSIG``); a parent
    that died before this ran is caught by its pid having changed."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def generate_shard_file(args: tuple[str, bytes, int, str]) -> dict[str, Any]:
    """Process-pool entry point: (spec path, seed, shard, refresh dir) -> shard result.

    Lives in core so a spawned worker imports numpy/polars only, not Dagster.
    """
    import json

    spec_path, seed, shard, refresh_dir = args
    return generate_shard(json.loads(Path(spec_path).read_text()), seed, shard, Path(refresh_dir))


def generate_shard(
    spec: dict[str, Any], master_seed: bytes, shard: int, refresh_dir: Path
) -> dict[str, Any]:
    """Generate and write one shard (shard 0 also writes the reference tables)."""
    started = datetime.now()
    gen = ShardGenerator(spec, master_seed)
    frames = gen.shard(shard)
    if shard == 0:
        frames = {**gen.references(), **frames}
    files: dict[str, Any] = {}
    for name, fr in frames.items():
        df = to_polars(fr, [c.name for c in gen.model.tables[name].columns])
        p = shard_path(refresh_dir, name, shard)
        files[name] = {"rows": df.height, "path": str(p), "sha256": write_parquet_atomic(df, p)}
    return {"shard": shard, "tables": files, "seconds": (datetime.now() - started).total_seconds()}
