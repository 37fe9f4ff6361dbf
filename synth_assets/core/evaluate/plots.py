"""Plot data: real and synthetic proportions on bins the spec already released.

Real cells under ``min_cell`` rows are suppressed, and category labels are only released
values, so a plot reveals nothing the spec did not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from synth_assets.core.kinds import EvalKind

from .samples import NULL_TOKEN
from .views import Col

MAX_PLOT_CATEGORIES = 12

#: Plot bins: their labels, then the real and the synthetic count of each.
Bins = tuple[list[str], np.ndarray, np.ndarray]


def _shares(counts: np.ndarray, min_cell: int) -> list[float | None]:
    """Proportions of a histogram; real cells under ``min_cell`` rows are suppressed (None)."""
    total = counts.sum()
    return [None if (0 < c < min_cell) else (float(c / total) if total else 0.0) for c in counts]


def _month_index(epoch_seconds: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of the non-null epoch seconds (nulls dropped)."""
    x = epoch_seconds[~np.isnan(epoch_seconds)]
    return x.astype(np.int64).astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)


def marginal_plot(
    col: Col, spec_col: dict[str, Any] | None, real: pl.Series, synth: pl.Series, min_cell: int
) -> dict[str, Any] | None:
    """Real and synthetic proportions of one column on bins the spec already released."""
    spec_col = spec_col or {}
    if col.kind == EvalKind.CATEGORICAL:
        bins: Bins | None = _category_bins(spec_col, real, synth)
    else:
        x_r = real.to_numpy().astype(np.float64)
        x_s = synth.to_numpy().astype(np.float64)
        if col.kind == EvalKind.NUMERIC:
            bins = _numeric_bins(spec_col, x_r, x_s)
        else:
            bins = _month_bins(spec_col, x_r, x_s)
    if bins is None:
        return None
    labels, r, s = bins
    return {
        "kind": col.kind,
        "labels": labels,
        "real": _shares(r, min_cell),
        "synthetic": _shares(s, 0),
    }


def _category_bins(spec_col: dict[str, Any], real: pl.Series, synth: pl.Series) -> Bins:
    """The most frequent released categories (real counts), the rest pooled, and nulls."""
    released = [str(v) for v in spec_col.get("values", [])]
    rc = real.value_counts().rename({real.name: "v"})
    freq = dict(zip(rc["v"].to_list(), rc["count"].to_list(), strict=True))
    top = sorted(released, key=lambda v: (-freq.get(v, 0), v))[:MAX_PLOT_CATEGORIES]
    labels = [*top, "(other)", "(null)"]

    def counts(s: pl.Series) -> np.ndarray:
        vals = s.to_numpy()
        out = np.array(
            [np.count_nonzero(vals == v) for v in top] + [0, np.count_nonzero(vals == NULL_TOKEN)],
            dtype=np.float64,
        )
        out[-2] = len(vals) - out.sum()
        return out

    return labels, counts(real), counts(synth)


def _numeric_bins(spec_col: dict[str, Any], x_r: np.ndarray, x_s: np.ndarray) -> Bins | None:
    """The spec's released bin edges, with one open bin either side (None: no edges released)."""
    edges = spec_col.get("edges")
    if not edges:
        return None
    e = np.asarray(edges, dtype=np.float64)
    labels = (
        [f"< {_fmt(e[0])}"]
        + [f"{_fmt(a)}-{_fmt(b)}" for a, b in zip(e[:-1], e[1:], strict=True)]
        + [f"> {_fmt(e[-1])}"]
    )

    def counts(x: np.ndarray) -> np.ndarray:
        x = x[~np.isnan(x)]
        idx = np.searchsorted(e, x, side="right")
        idx = np.where(x == e[-1], len(e) - 1, idx)
        return np.bincount(idx, minlength=len(e) + 1).astype(np.float64)

    return labels, counts(x_r), counts(x_s)


def _month_bins(spec_col: dict[str, Any], x_r: np.ndarray, x_s: np.ndarray) -> Bins | None:
    """At most 48 month bins over the spec's released date range, plus before and after (None:
    no range released)."""
    if "start" not in spec_col:
        return None
    start = np.datetime64(spec_col["start"], "D")
    end = (
        np.datetime64(spec_col["end"], "D")
        if "end" in spec_col
        else start + max(1, int(spec_col.get("days", 1))) - 1
    )
    m0 = start.astype("datetime64[M]").astype(np.int64)
    m1 = end.astype("datetime64[M]").astype(np.int64)
    step = max(1, int(math.ceil((m1 - m0 + 1) / 48)))
    nb = int((m1 - m0) // step) + 1
    labels = (
        ["before"] + [str(np.datetime64(int(m0 + i * step), "M")) for i in range(nb)] + ["after"]
    )

    def counts(x: np.ndarray) -> np.ndarray:
        m = _month_index(x)
        idx = np.clip(np.where(m < m0, -1, (m - m0) // step) + 1, 0, nb + 1)
        idx = np.where(m > m1, nb + 1, idx)
        return np.bincount(idx, minlength=nb + 2).astype(np.float64)

    return labels, counts(x_r), counts(x_s)


def _fmt(x: float) -> str:
    """A bin edge as a short label: thousands separated, otherwise three significant digits."""
    if abs(x) >= 1000 or x == int(x):
        return f"{x:,.0f}"
    return f"{x:.3g}"
