"""What is public and spends no budget: tables declared public (copied verbatim) and the
values of a categorical column that the config, an enum or a CHECK list already states."""

from __future__ import annotations

from typing import Any

import psycopg

from synth_assets.core.config import SynthConfig
from synth_assets.core.errors import ConfigError
from synth_assets.core.kinds import ColumnKind, TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.roles import EPOCH_TYPES, qi
from synth_assets.core.schema import SchemaModel, Table
from synth_assets.core.spec import check_rules

from .columns import ColumnModel


def check_public_tables(
    cfg: SynthConfig, model: SchemaModel, plans: dict[str, TablePlan]
) -> set[str]:
    """The tables declared public, refused with the fix when one cannot be copied as it is."""
    public = cfg.public_tables()
    unknown = [t for t in public if t not in model.tables]
    if unknown:
        raise ConfigError(
            f"public.tables names unknown table(s) {unknown}; tables: {', '.join(model.tables)}"
        )
    owned = [t for t in public if plans[t].kind != TableKind.REFERENCE]
    if owned:
        raise ConfigError(
            f"public.tables: {owned} hold rows of privacy units (their foreign keys lead to the "
            "unit table): they are measured with DP and synthesized, never copied; remove them "
            "from public.tables"
        )
    for t in public:
        for fk in model.tables[t].foreign_keys:
            if fk.ref_table not in public:
                raise ConfigError(
                    f"public table {t!r} references {fk.ref_table!r} ({fk.name}), which is not "
                    "declared public: its copied keys would point at rows that are synthesized "
                    f"anew; add {fk.ref_table!r} to public.tables too"
                )
    return set(public)


def public_table(
    conn: psycopg.Connection, model: SchemaModel, n: str, cms: dict[str, ColumnModel]
) -> dict[str, Any]:
    """A declared-public table, copied: every key, foreign key and modelled column verbatim (as
    text, in primary-key order); PII and free-text roles are still synthesized. Spends nothing."""
    t = model.tables[n]
    copied = [
        c.name for c in t.columns if cms[c.name].kind not in (ColumnKind.SYNTH, ColumnKind.IGNORE)
    ]
    sch = qi(model.schema)
    exprs = [text_sql(f"t.{qi(c)}", t.column(c).base_type) for c in copied]
    order = ", ".join(f"t.{qi(c)}" for c in (t.primary_key or copied[:1]))  # native order
    if copied:
        sql = f"SELECT {', '.join(exprs)} FROM {sch}.{qi(n)} t ORDER BY {order}"
        rows = conn.execute(sql).fetchall()
    else:
        rows = [()] * int(conn.execute(f"SELECT count(*) FROM {sch}.{qi(n)}").fetchone()[0])
    copy = {c: [r[i] for r in rows] for i, c in enumerate(copied)}
    columns: dict[str, Any] = {}
    for c, cm in cms.items():
        if c in copy:
            entry: dict[str, Any] = {"kind": ColumnKind.PUBLIC, "role": cm.role}
            if cm.kind == ColumnKind.CATEGORICAL:
                entry["values"] = sorted({v for v in copy[c] if v is not None})
            columns[c] = entry
        else:
            columns[c] = {"kind": cm.kind, "role": cm.role}
    return {
        "kind": TableKind.REFERENCE,
        "public": True,
        "rows_per_unit": 1,
        "rows": len(rows),
        "columns": columns,
        "pairs": [],
        "fanout": {},
        "copy": copy,
    }


def public_attribute(tp: dict[str, Any]) -> str | None:
    """The categorical column of a public table that children are conditioned on."""
    cats = [(len(e["values"]), c) for c, e in tp["columns"].items() if "values" in e]
    best = max(cats, default=None)
    return best[1] if best and best[0] >= 2 else None


def text_sql(x: str, base_type: str) -> str:
    """A column as text that :func:`generate.from_text` parses back (timestamps in UTC, ISO)."""
    if base_type == "timestamptz":
        return f"to_char({x} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    if base_type == "timestamp":
        return f"to_char({x}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    if base_type in EPOCH_TYPES:  # modelled (and generated) as seconds
        return f"extract(epoch from {x})::float8::text"
    return f"{x}::text"


def public_domain(cfg: SynthConfig, t: Table, col: str) -> list[str] | None:
    """A categorical column's values when they are public (spends no budget): declared in
    ``public.values``, an enum's labels, or the schema's CHECK list."""
    declared = cfg.public_values(t.name, col)
    if declared:
        return declared
    if t.column(col).enum_labels:
        return list(t.column(col).enum_labels)
    allowed = check_rules(t, col).get("allowed")
    return list(allowed) if allowed else None
