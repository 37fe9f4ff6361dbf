"""Every measured column as an integer code in SQL, counted in one scan with every pair.

Once the domains are released, a modelled column's value becomes its code (a released value,
"other" or null; a point mass, a bin or null), and one GROUPING SETS query returns the one-way
counts of every code expression and the joint counts of every pair of modelled columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from synth_assets.core.kinds import ColumnKind, TableKind
from synth_assets.core.roles import LENGTH_ROLES, qi

from .context import TableRun
from .sql import grouping_counts, lit, text_array

TEXT_LENGTH_BINS = 40
HOW = 168  # hours of the week


@dataclass
class Codes:
    """The code expressions of a table, and which of them are modelled (marginals, pairs)."""

    exprs: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)  # key -> position in exprs
    modelled: list[tuple[str, str, int]] = field(default_factory=list)  # (key, label, domain)
    synth_cols: list[str] = field(default_factory=list)  # measured by null rate or length

    def add(self, key: str, sql: str) -> int:
        self.index[key] = len(self.exprs)
        self.exprs.append(sql)
        return self.index[key]

    @property
    def keys(self) -> list[str]:
        """Keys of the modelled columns, in order."""
        return [k for k, _, _ in self.modelled]


def _categorical_code(q: str, vals: list[str], as_text: str) -> str:
    """Codes 0..k-1 for the released values, k for "other", k+1 for null."""
    k = len(vals)
    return (
        f"CASE WHEN {q} IS NULL THEN {k + 1} ELSE coalesce(array_position({text_array(vals)}, "
        f"{as_text}) - 1, {k}) END"
    )


def _numeric_code(q: str, info: dict) -> tuple[str, int]:
    """(code SQL, domain): point masses first, then bins of the clipped value, null last."""
    inner = info["edges"][1:-1]
    arr = "ARRAY[" + ", ".join(repr(float(e)) for e in inner) + "]::float8[]" if inner else None
    nb = len(info["edges"]) - 1
    lo, hi = float(info["edges"][0]), float(info["edges"][-1])
    clip = f"least(greatest({q}::float8, {lo!r}), {hi!r})"
    k = len(info["atoms"])
    code = f"{k} + width_bucket({clip}, {arr})" if arr else str(k)
    atom = ""
    if k:
        aarr = text_array(info["atoms"])
        atom = f"WHEN {q}::text = ANY({aarr}) THEN array_position({aarr}, {q}::text) - 1 "
    return f"CASE WHEN {q} IS NULL THEN {k + nb} {atom}ELSE {code} END", k + nb + 1


def modelled_codes(run: TableRun, codes: Codes) -> None:
    """Codes of the categorical, numeric and boolean columns (their domains set here)."""
    for c, cm in run.cms.items():
        q = qi(c)
        if cm.kind == ColumnKind.CATEGORICAL:
            codes.add(c, _categorical_code(q, cm.info["values"], f"{q}::text"))
            cm.domain = len(cm.info["values"]) + 2  # values, other, null
        elif cm.kind == ColumnKind.NUMERIC:
            sql, cm.domain = _numeric_code(q, cm.info)  # point masses, bins, null
            codes.add(c, sql)
        elif cm.kind == ColumnKind.BOOLEAN:
            codes.add(c, f"CASE WHEN {q} IS NULL THEN 2 WHEN {q} THEN 1 ELSE 0 END")
            cm.domain = 3
        else:
            continue
        codes.modelled.append((c, c, cm.domain))


def reference_codes(run: TableRun, codes: Codes) -> None:
    """Codes of the referenced reference rows' attributes (``^column``): a pseudo-column that
    the table's rows are conditioned on, with its pack entry."""
    for fk in run.table.foreign_keys:
        alias = run.ts.ref_attrs.get(fk.name)
        if not alias:
            continue
        ref = fk.ref_table
        attr = run.src.ref_attr_of[ref]
        vals = run.src.tables[ref]["columns"][attr]["values"]
        key = f"^{fk.columns[0]}"
        codes.add(key, _categorical_code(alias, vals, alias))  # the alias is text already
        codes.modelled.append((key, key, len(vals) + 2))
        run.out["columns"][key] = {
            "kind": ColumnKind.REF_ATTRIBUTE,
            "fk": fk.name,
            "ref_table": ref,
            "attribute": attr,
            "values": vals,
        }


def synth_codes(run: TableRun, codes: Codes) -> None:
    """Codes of synthesized columns and non-parent foreign keys: length bins, else null or not."""
    codes.synth_cols = [
        c
        for c, cm in run.cms.items()
        if cm.kind == ColumnKind.SYNTH
        or (cm.kind == ColumnKind.FK and run.table.fk_for(c) is not run.plan.parent_fk)
    ]
    for c in codes.synth_cols:
        q = qi(c)
        if run.cms[c].role in LENGTH_ROLES:
            codes.add(
                c, f"CASE WHEN {q} IS NULL THEN 0 ELSE least({TEXT_LENGTH_BINS - 1}, {q}) + 1 END"
            )
        else:
            codes.add(c, f"CASE WHEN {q} IS NULL THEN 1 ELSE 0 END")


def temporal_codes(run: TableRun, codes: Codes) -> None:
    """Codes of each datetime: its day bucket, its hour of the week, and whether it falls after
    the parent row's first datetime (children only)."""
    for c in run.cols(ColumnKind.DATETIME):
        q = qi(c)
        info = run.cms[c].info
        ndays = (date.fromisoformat(info["end"]) - date.fromisoformat(info["start"])).days + 1
        info["days"] = ndays
        w = info["bucket_days"]
        nb = -(-ndays // w)
        info["buckets"] = nb
        codes.add(
            f"{c}:day",
            f"CASE WHEN {q} IS NULL THEN {nb} ELSE greatest(0, least({nb - 1}, "
            f"({q}::date - DATE {lit(info['start'])}) / {w})) END",
        )
        if not info["date_only"]:
            codes.add(
                f"{c}:how",
                f"CASE WHEN {q} IS NULL THEN NULL ELSE "
                f"(extract(isodow from {q})::int - 1) * 24 + extract(hour from {q})::int END",
            )
        if run.ts.parent_cols and run.plan.kind == TableKind.CHILD:
            pc, alias = next(iter(run.ts.parent_cols.items()))
            info["after_parent_column"] = pc
            codes.add(
                f"{c}:after",
                f"CASE WHEN {q} IS NULL OR {alias} IS NULL THEN 2 "
                f"WHEN {q} >= {alias} THEN 1 ELSE 0 END",
            )


def table_codes(run: TableRun) -> Codes:
    """Every code expression of the table, in the order the scan groups them."""
    codes = Codes()
    modelled_codes(run, codes)
    reference_codes(run, codes)
    synth_codes(run, codes)
    temporal_codes(run, codes)
    return codes


def count_codes(
    run: TableRun, codes: Codes
) -> tuple[dict[str, dict[tuple, int]], dict[tuple[str, str], dict[tuple, int]]]:
    """(one-way counts per key, joint counts per pair of modelled keys) in one scan."""
    sets = [(i,) for i in range(len(codes.exprs))]
    pair_keys = []
    keys = codes.keys
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            pair_keys.append((keys[a], keys[b]))
            sets.append((codes.index[keys[a]], codes.index[keys[b]]))
    src = run.src
    res = (
        grouping_counts(src.conn, run.ts.cte, src.params, codes.exprs, sets) if codes.exprs else []
    )
    one = {key: res[i] for key, i in codes.index.items()}
    pairs = {p: res[len(codes.exprs) + i] for i, p in enumerate(pair_keys)}
    return one, pairs
