"""A numeric column's bins: how many the noise allows, and where their edges sit."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from synth_assets.core.kinds import ColumnKind
from synth_assets.core.roles import INTEGER_TYPES

from .context import TableRun

# Rows per numeric bin, in noise deviations of the one-way marginal: fewer rows per bin and
# the noise outweighs the resolution, more and the shape inside a bin (drawn uniformly) does.
# Simulated on 9 real columns of 1,200-2,200 rows at sigma 22.5 and 45 (decile scores): 12-16
# bins were best at 22.5 and 6-12 at 45, where a fixed 24 lost 10-80 points.
BIN_SNR = 4.5
MIN_NUMERIC_BINS = 6
MAX_NUMERIC_BINS = 64
# Rows a value of a small integer range must hold on average, in noise deviations of the
# one-way marginal, for each value to keep a bin of its own (see per_value_limit).
PER_VALUE_SNR = 2.0


def numeric_resolution(rows: float | None, sigma: float, fallback: int) -> int:
    """Bins of a numeric column's binned rows: as many as hold ``BIN_SNR`` noise deviations
    each, within [``MIN_NUMERIC_BINS``, ``MAX_NUMERIC_BINS``] (a 1,200-row table at sigma 22.5
    gets 12, a 27k-row one 64); ``privacy.numeric_bins`` where the rows are not estimated
    (bounds declared in the config) or it asks for more than the cap."""
    if sigma <= 0 or rows is None:
        return fallback
    fit = int(min(MAX_NUMERIC_BINS, max(MIN_NUMERIC_BINS, rows / (BIN_SNR * sigma))))
    return max(fit, fallback) if fallback > MAX_NUMERIC_BINS else fit


def per_value_limit(
    lo: float, hi: float, rows: float | None, sigma: float, nbins: int, configured: int
) -> int:
    """Integer values up to which a range gets one bin per value: ``configured``
    (``privacy.numeric_bins``), unless the values are at least twice the noise-fitted bins and
    hold under ``PER_VALUE_SNR`` noise deviations each; then the fitted bins hold several.

    Years 2003-2009 on 1,500 rows keep a bin each (~210 rows a year at sigma 22). Planes'
    build years 1993-2010 (~80 planes a year at sigma 51) and attrition's years at the company
    2-16 (~40 employees a value at sigma 52) were one bin a value of mostly noise."""
    values = math.floor(hi + 1e-9) - math.ceil(lo - 1e-9) + 1
    # Fewer than two values a fitted bin: bins would hold one value or two, unevenly.
    if rows is None or sigma <= 0 or values < 2 * nbins:
        return configured
    return configured if rows / values >= PER_VALUE_SNR * sigma else 0


def numeric_edges(
    lo: float, hi: float, nbins: int, integer: bool, per_value_up_to: int = 0
) -> list[float]:
    """Bin edges on [lo, hi]: one per integer for integer ranges of at most
    ``max(nbins, per_value_up_to)`` values, else asinh-spaced.

    An integer column's edges sit on half-integers, so every bin holds whole values: bins of
    width 0.86 over the years 2003-2009 would hold one year or two, and the values drawn inside
    them (then rounded) would favour some years for no reason in the data."""
    if integer:
        lo, hi = float(math.ceil(lo - 1e-9)), float(math.floor(hi + 1e-9))
        hi = max(hi, lo)
        if hi - lo + 1 <= max(nbins, per_value_up_to):
            return [float(v) - 0.5 for v in range(int(lo), int(hi) + 2)]
    if hi - lo < 10:
        e = np.linspace(lo, hi, nbins + 1)
    else:
        e = np.sinh(np.linspace(np.arcsinh(lo), np.arcsinh(hi), nbins + 1))
        e[0], e[-1] = lo, hi
    if integer:  # snap to half-integers; bins that collapse to nothing are merged away
        e = np.unique(np.concatenate([[lo - 0.5], np.floor(e[1:-1]) + 0.5, [hi + 0.5]]))
    return [float(v) for v in e]


def with_outer_bins(
    edges: list[float],
    outer: list[float] | None,
    steps: list[float] | None = None,
    integer: bool = False,
) -> list[float]:
    """Fine edges of a refined range plus its outer bins on each side, up to the range it was
    refined from. A refinement is a decision on noisy counts; when it wrongly drops a thinly
    spread part of the column, the marginal still finds that mass in the outer bins (and where
    there is none, the marginal's projection empties them). ``steps`` are the refinement's
    sub-bucket edges beside the span (:func:`.ranges.outer_steps`): the outer bins split there,
    on half-integers for an integer column."""
    if not outer:
        return edges
    lo, hi = float(outer[0]), float(outer[1])
    edges = [float(e) for e in edges]
    snapped = {math.floor(x) + 0.5 if integer else float(x) for x in steps or ()}
    gap = 1.0 if integer else 0.0  # an integer column's outer bin holds a whole value or more
    below = sorted(x for x in snapped if lo + gap < x < edges[0])
    above = sorted(x for x in snapped if edges[-1] < x < hi - gap)
    return (
        ([lo] if lo < edges[0] else []) + below + edges + above + ([hi] if hi > edges[-1] else [])
    )


def _one_bin_per_value(info: dict[str, Any]) -> bool:
    return bool(info["integer"]) and bool(np.allclose(np.diff(info["edges"]), 1.0))


def _decimals(pg_type: str) -> int | None:
    if pg_type.startswith("numeric(") and "," in pg_type:
        return int(pg_type.split(",")[1].rstrip(")"))
    if pg_type == "money":
        return 2
    return None


def numeric_bins(run: TableRun, atoms: dict[str, dict[str, int]]) -> None:
    """Each numeric column's bin edges on its range (declared bounds override the released
    one), as many bins as the rows left to the bins hold noise deviations (post-processing)."""
    n, cfg, cms = run.name, run.src.cfg, run.cms
    num_cols = run.cols(ColumnKind.NUMERIC)
    rho_marginal = run.budget("one_way")
    sigma_marginal = run.sens / math.sqrt(2 * rho_marginal) if rho_marginal else 0.0
    for c in num_cols:
        if f"{n}.{c}" in cfg.bounds:
            lo, hi = cfg.bounds[f"{n}.{c}"]
            cms[c].info = {"low": float(lo), "high": float(hi), "bounds_from": "config"}
        col = run.table.column(c)
        integer = col.base_type in INTEGER_TYPES
        info = cms[c].info
        info["integer"] = integer
        info["decimals"] = _decimals(col.pg_type)
        # The bins serve the rows the point masses do not hold.
        rows = info.pop("rows_estimate", None)
        info.pop("rows_sigma", None)
        if rows is not None:
            rows = max(0.0, rows - sum(atoms.get(c, {}).values()))
        rows = info.pop("bin_rows", rows)  # measured apart from the point masses' rows
        if info["bounds_from"] == "point_masses_only":
            # One cell for the rows of no point mass, measured and never drawn: the spec keeps
            # it empty, or refuses the column where the marginal shows rows in it.
            info["edges"], info["outer_bins"] = [info["low"], info["high"]], [False, False]
            continue
        nbins = numeric_resolution(rows, sigma_marginal, run.pcfg.numeric_bins)
        # A few integer values keep a bin each: inside a wider bin they would be drawn evenly
        # (a column of years 2003-2009 in bins of two favoured some years). Without point
        # masses, only where each value's rows clear the noise (per_value_limit); beside them
        # the bins serve the values that missed the threshold, each on its own (wage's years,
        # three or four of 2003-2009 point masses and the range refined to 2004-2015, spread
        # the others over 2010-2015 in bins of two: year 1-way 939 -> 765).
        per_value = run.pcfg.numeric_bins
        if integer and not atoms.get(c):
            per_value = per_value_limit(
                info["low"], info["high"], rows, sigma_marginal, nbins, per_value
            )
        inner = numeric_edges(info["low"], info["high"], nbins, integer, per_value)
        steps = info.pop("outer_steps", None)
        info["edges"] = with_outer_bins(inner, info.pop("outer", None), steps, integer)
        # How many end bins on each side are outer ones: the spec keeps them only where the
        # marginal shows data there.
        e = np.asarray(info["edges"])
        info["outer_bins"] = [int((e < inner[0]).sum()), int((e > inner[-1]).sum())]
    # Point masses are their own cells, generated exactly, inside the range or not (a year the
    # refinement of the rest left out); one bin per integer already holds those inside it.
    for c in num_cols:
        info = cms[c].info
        e = info["edges"]
        per_value = info["bounds_from"] != "point_masses_only" and _one_bin_per_value(info)
        cms[c].info["atoms"] = [
            a for a in atoms.get(c, {}) if not (per_value and e[0] <= float(a) <= e[-1])
        ]
