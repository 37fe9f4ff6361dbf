"""Free text: lorem sentences of the released word-count distribution, cut at word boundaries."""

from __future__ import annotations

import numpy as np
import polars as pl

from synth_assets.core.errors import GenerationError

from .helpers import _suffix_unique, _text
from .words import _LOREM_LEN, _S_LOREM, LOREM_WORDS


def _length_words(params: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    spec = params.get("length_words")
    if spec is None:
        return rng.integers(3, 13, size=n)
    try:
        if isinstance(spec, dict):
            bins, probs = spec["bins"], spec["probs"]
        else:
            bins, probs = spec
        bins = np.asarray(bins, dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise GenerationError(
            f"free_text: params['length_words'] must be (bins, probs) lists, got {spec!r}; "
            "fix: pass e.g. ([3, 8, 15], [0.5, 0.5])"
        ) from exc
    total = probs.sum() if probs.size else 0.0
    if (
        probs.ndim != 1
        or bins.ndim != 1
        or len(bins) not in (len(probs), len(probs) + 1)
        or not np.all(np.isfinite(probs))
        or np.any(probs < 0)
        or not total > 0
        or np.any(bins < 0)
    ):
        raise GenerationError(
            f"free_text: params['length_words'] {spec!r} is not a valid histogram; fix: give "
            "non-negative word counts and non-negative probabilities with a positive sum, "
            "either one count per probability or len(probs)+1 bin edges"
        )
    which = rng.choice(len(probs), size=n, p=probs / total)
    if len(bins) == len(probs):  # one word count per probability
        return bins[which]
    lo, hi = bins[which], bins[which + 1]  # bin edges: uniform in [lo, hi)
    return rng.integers(lo, np.maximum(hi, lo + 1))


def _fit_words(
    counts: np.ndarray, offsets: np.ndarray, idx: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How many leading words of each row fit in ``limit`` characters (numpy, no regex).

    Returns (words kept per row, whether the final "." still fits, flat keep-mask). A row whose
    first word alone is too long keeps that word; the caller then hard-cuts it to ``limit``.
    """
    n = len(counts)
    row = np.repeat(np.arange(n), counts)
    pos = np.arange(len(idx)) - offsets[:-1][row]  # word position within its row
    csum = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(_LOREM_LEN[idx], out=csum[1:])
    end = csum[1:] - csum[offsets[:-1][row]] + pos  # end of word incl. separating spaces
    kept = np.bincount(row, weights=end <= limit[row], minlength=n).astype(np.int64)
    last_end = np.zeros(n, dtype=np.int64)
    has = counts > 0
    last_end[has] = end[offsets[1:][has] - 1]
    period = has & (kept == counts) & (last_end + 1 <= limit)
    kept[has & (kept == 0) & (limit > 0)] = 1  # first word longer than the limit
    return kept, period, pos < kept[row]


def _free_text(rng, ordinals, unique, max_length, pg_type, params):
    import pyarrow as pa  # a declared dependency; only needed to assemble ragged rows

    n = len(ordinals)
    counts = _length_words(params, n, rng).astype(np.int64)
    limit = None
    if max_length is not None:
        if unique:  # room left for the base once " <ordinal>" is appended
            width = _text(ordinals).str.len_chars().to_numpy().astype(np.int64)
            limit = np.maximum(max_length - width - 1, 0)
        else:
            limit = np.full(n, max_length, dtype=np.int64)
        counts = np.minimum(counts, limit // 2 + 1)  # words are >= 1 char + a space
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n_lower = len(LOREM_WORDS)
    idx = rng.integers(0, n_lower, size=int(offsets[-1]))
    idx[offsets[:-1][counts > 0]] += n_lower  # capitalise each sentence's first word
    period = counts > 0
    if limit is not None:
        counts, period, keep = _fit_words(counts, offsets, idx, limit)
        idx = idx[keep]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
    words = _S_LOREM.gather(idx).to_arrow()
    # 32-bit list offsets while they fit: polars 1.x (which OpenDP's mbi extra pins) panics in
    # `list.join` over a LargeList built from Arrow ("len == bitmap.len()")
    if offsets[-1] < 2**31:
        lists = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), words)
    else:
        lists = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), words)
    frame = pl.DataFrame({"w": pl.Series(pl.from_arrow(lists)), "p": pl.Series(period)})
    if limit is not None:
        frame = frame.with_columns(k=pl.Series(limit))
    text = pl.concat_str(
        [pl.col("w").list.join(" "), pl.when("p").then(pl.lit(".")).otherwise(pl.lit(""))]
    )
    if limit is not None:
        text = text.str.head(pl.col("k"))  # only bites on a single over-long first word
    text = frame.select(text.alias("v")).to_series()
    if unique:
        return _suffix_unique("free_text", text, ordinals, max_length)
    return text
