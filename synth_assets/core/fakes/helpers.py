"""Small vectorized helpers the kinds build values with: draws, text, an injective scramble of
ordinals, and the length and capacity checks behind ``unique``."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import polars as pl

from synth_assets.core.errors import GenerationError


def _pick(values: pl.Series, rng: np.random.Generator, n: int) -> pl.Series:
    """n uniform draws from a word list (numpy indices, one polars gather)."""
    return values.gather(rng.integers(0, len(values), size=n))


def _text(ints: np.ndarray, width: int | None = None) -> pl.Series:
    """Decimal text of non-negative integers, optionally zero-padded to ``width``."""
    s = pl.Series(ints).cast(pl.Utf8)
    return s.str.zfill(width) if width else s


def _cat(*parts: pl.Series | str, sep: str = "") -> pl.Series:
    """Row-wise concatenation of Series and string literals via ``pl.concat_str``."""
    cols: dict[str, pl.Series] = {}
    exprs: list[pl.Expr] = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            exprs.append(pl.lit(part))
        else:
            cols[f"c{i}"] = part
            exprs.append(pl.col(f"c{i}"))
    return pl.DataFrame(cols).select(pl.concat_str(exprs, separator=sep).alias("v")).to_series()


def _truncate(s: pl.Series, max_length: int | None) -> pl.Series:
    """Cut to ``max_length`` characters (non-unique kinds) and drop dangling spaces."""
    if max_length is None:
        return s
    return s.str.head(max_length).str.strip_chars_end(" ")


@cache
def _affine(m: int) -> tuple[int, int]:
    """Multiplier/offset of a fixed bijection x -> (a*x + c) mod m on [0, m)."""
    a = max(1, int(m * 0.6180339887498949))
    while math.gcd(a, m) != 1:
        a += 1
    if m * a + m >= 2**63:  # keep the int64 product exact
        raise ValueError(f"affine scramble modulus {m} is too large for int64 arithmetic")
    return a, int(m * 0.3819660112501051)


def _scramble(x: np.ndarray, m: int) -> np.ndarray:
    """Injective, rng-free shuffle of ordinals in [0, m) so consecutive rows don't look serial."""
    a, c = _affine(m)
    return (x.astype(np.int64) * a + c) % m


def _max_ordinal(ordinals: np.ndarray) -> int:
    return int(ordinals.max()) if len(ordinals) else -1


def _check_capacity(kind: str, ordinals: np.ndarray, capacity: int, what: str) -> None:
    top = _max_ordinal(ordinals)
    if top >= capacity:
        raise GenerationError(
            f"{kind}: unique=True can only produce {capacity:,} distinct values ({what}), "
            f"but got ordinal {top:,}; fix: drop unique for this column or generate fewer "
            f"than {capacity:,} rows"
        )


def _need_length(
    kind: str, max_length: int | None, need: int, what: str, *, unique: bool = True
) -> None:
    if max_length is not None and max_length < need:
        alternative = " or drop unique" if unique else ""
        raise GenerationError(
            f"{kind}: max_length={max_length} cannot hold {what} (needs {need} characters); "
            f"fix: widen the column to at least {need} characters{alternative}"
        )


def _suffix_unique(
    kind: str,
    base: pl.Series,
    ordinals: np.ndarray,
    max_length: int | None,
) -> pl.Series:
    """``base + " " + ordinal``: unique because the text after the last space is the ordinal.

    The base is shortened (never the ordinal) to fit ``max_length``; when nothing of the base
    fits, the value is the bare ordinal, which still cannot collide (it has no space).
    """
    suffix = _text(ordinals)
    if max_length is None:
        return _cat(base, " ", suffix)
    width = int(suffix.str.len_chars().max() or 0)
    _need_length(kind, max_length, width, f"the ordinal-derived unique part of {width} digits")
    frame = pl.DataFrame({"b": base, "s": suffix})
    budget = pl.lit(max_length) - pl.col("s").str.len_chars().cast(pl.Int64) - 1
    budget = pl.when(budget > 0).then(budget).otherwise(0)
    head = pl.col("b").str.head(budget).str.strip_chars_end(" ")
    value = (
        pl.when(head.str.len_chars() > 0)
        .then(pl.concat_str([head, pl.lit(" "), pl.col("s")]))
        .otherwise(pl.col("s"))
    )
    return frame.select(value.alias("v")).to_series()
