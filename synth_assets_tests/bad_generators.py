"""Negative controls: generators that leak or distort, each expected to fail a named release gate.

Each control takes a refresh directory already holding honest shards (the real generator's
output) and rewrites them the way a broken generator would have written them: real Parquet
files, read back by the evaluator exactly like the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import psycopg

from synth_assets.core.evaluate import QI_PII_ROLES, read_refresh
from synth_assets.core.plan import build_plan
from synth_assets.core.profile import _unit_from, holdout_key, holdout_sql
from synth_assets.core.roles import DATETIME_TYPES, SYNTHESIZED_ROLES, qi
from synth_assets.core.schema import SchemaModel

KEY_OFFSET = 1_000_000_000

#: The demo's planted rare records: elderly private customers, million-pound transfers, reversed ATM withdrawals.
DEMO_OUTLIER_UNITS_SQL = """
SELECT id FROM customers WHERE segment = 'private' AND date_of_birth < DATE '1935-07-01'
UNION SELECT a.customer_id FROM transactions t JOIN accounts a ON a.id = t.account_id
WHERE t.amount >= 1000000 OR (t.channel = 'atm' AND t.status = 'reversed')
"""


@dataclass
class Context:
    """What a control may use: the refresh, the source (read-only) and the holdout key."""

    refresh_dir: Path
    conn: psycopg.Connection
    hmac_key: bytes

    def __post_init__(self) -> None:
        self.spec, self.pack = read_refresh(self.refresh_dir)
        self.model = SchemaModel.from_dict(self.pack["schema"])
        self.roles = self.pack["roles"]
        self.plans = build_plan(self.model, self.roles, self.pack["privacy"]["unit_table"])
        self.params = {
            "hkey": holdout_key(self.hmac_key),
            "hcut": int(self.pack["privacy"]["holdout_fraction"] * 2**32),
        }

    def synthetic(self, table: str) -> pl.DataFrame:
        return pl.read_parquet(str(self.refresh_dir / "shards" / table / "part-*.parquet"))

    def write(self, table: str, df: pl.DataFrame) -> None:
        d = self.refresh_dir / "shards" / table
        for f in d.glob("part-*.parquet"):
            f.unlink()
        df.write_parquet(d / "part-00000.parquet")

    def real_rows(self, table: str, where: str = "TRUE", args: dict | None = None) -> pl.DataFrame:
        """Real rows of a table (numbers as float8), filtered on its privacy unit ``u``."""
        t = self.model.tables[table]
        plan = self.plans[table]
        src, unit = (
            (f"{qi(self.model.schema)}.{qi(table)} t", "NULL")
            if plan.kind == "reference"
            else _unit_from(self.model, plan)
        )
        cols = ", ".join(
            f"t.{qi(c.name)}::float8 AS {qi(c.name)}"
            if c.base_type in ("numeric", "money")
            else f"t.{qi(c.name)}"
            for c in t.columns
        )
        sql = f"SELECT {cols} FROM {src} WHERE {where.replace('{u}', unit)}"
        rows = self.conn.execute(sql, {**self.params, **(args or {})}).fetchall()
        return pl.DataFrame(
            rows, schema=[c.name for c in t.columns], orient="row", infer_schema_length=None
        )


def _conform(df: pl.DataFrame, like: pl.DataFrame) -> pl.DataFrame:
    """Columns cast to the dtypes of the honest shards (time zones included)."""
    out = []
    for name, dtype in like.schema.items():
        s = df[name]
        if isinstance(dtype, pl.Datetime) and isinstance(s.dtype, pl.Datetime):
            if s.dtype.time_zone is None:
                s = s.dt.replace_time_zone("UTC")
            s = (
                s.dt.convert_time_zone(dtype.time_zone)
                if dtype.time_zone
                else s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            )
        out.append(s.cast(dtype, strict=False))
    return pl.DataFrame(out)


def copy_training_rows(ctx: Context) -> None:
    """A generator that memorised its training data: every shard holds real training rows."""
    for table, plan in ctx.plans.items():
        like = ctx.synthetic(table)
        where = "TRUE" if plan.kind == "reference" else f"NOT {holdout_sql('{u}')}"
        ctx.write(table, _conform(ctx.real_rows(table, where), like))


def copy_outlier_customers(ctx: Context) -> None:
    """Honest shards plus verbatim copies of the demo's outlier units (their direct identifiers
    re-written so that only the memorised attribute values remain real)."""
    units = [r[0] for r in ctx.conn.execute(DEMO_OUTLIER_UNITS_SQL).fetchall()]
    for table, plan in ctx.plans.items():
        if plan.kind == "reference":
            continue
        like = ctx.synthetic(table)
        real = ctx.real_rows(table, "{u} = ANY(%(units)s)", {"units": units})
        if real.height == 0:
            continue
        t = ctx.model.tables[table]
        fixes = []
        for c in t.columns:
            role = ctx.roles[table][c.name]
            fk = t.fk_for(c.name)
            if c.name in t.primary_key and fk is None:
                fixes.append((pl.col(c.name) + KEY_OFFSET).alias(c.name))
            elif fk is not None and ctx.plans[fk.ref_table].kind != "reference":
                fixes.append(
                    (pl.col(c.name) + KEY_OFFSET).alias(c.name)
                    if fk.ref_table != table
                    else pl.lit(None).alias(c.name)
                )
            elif (
                role in SYNTHESIZED_ROLES
                and role not in QI_PII_ROLES
                and c.base_type not in DATETIME_TYPES
            ):
                fixes.append(
                    pl.concat_str(
                        [pl.lit(f"copy-{table}-"), pl.int_range(pl.len()).cast(pl.Utf8)]
                    ).alias(c.name)
                )
        ctx.write(table, pl.concat([like, _conform(real.with_columns(fixes), like)]))


def leak_real_emails(ctx: Context, n: int = 25) -> None:
    """Honest shards, except that ``n`` rows of every email column carry real addresses."""
    for table, cols in ctx.roles.items():
        for col, role in cols.items():
            if role != "email":
                continue
            real = [
                r[0]
                for r in ctx.conn.execute(
                    f"SELECT {qi(col)} FROM {qi(ctx.model.schema)}.{qi(table)} ORDER BY 1 LIMIT {int(n)}"
                )
            ]
            df = ctx.synthetic(table)
            k = min(len(real), df.height)
            ctx.write(
                table,
                df.with_columns(
                    pl.concat([pl.Series(real[:k], dtype=pl.Utf8), df[col].slice(k)]).alias(col)
                ),
            )


def uniform_timestamps(ctx: Context) -> None:
    """Honest shards with every timestamp redrawn uniformly over its synthetic range."""
    rng = np.random.default_rng(20240601)
    for table, t in ctx.model.tables.items():
        cols = [
            c
            for c in t.columns
            if ctx.roles[table][c.name] == "datetime"
            and c.base_type in ("timestamp", "timestamptz")
        ]
        if not cols:
            continue
        df = ctx.synthetic(table)
        for c in cols:
            us = df[c.name].dt.epoch("us")
            lo, hi = int(us.min()), int(us.max())
            new = pl.Series(rng.integers(lo, hi + 1, size=df.height)).cast(pl.Datetime("us"))
            if df.schema[c.name].time_zone:
                new = new.dt.replace_time_zone(df.schema[c.name].time_zone)
            df = df.with_columns(new.alias(c.name))
        ctx.write(table, df)


def ignore_fanout(ctx: Context) -> None:
    """Honest rows whose parent keys are drawn uniformly: the children-per-parent shape is lost."""
    rng = np.random.default_rng(20240602)
    for table, plan in ctx.plans.items():
        if plan.kind != "child":
            continue
        fk = plan.parent_fk
        parents = ctx.synthetic(fk.ref_table)[fk.ref_columns[0]]
        df = ctx.synthetic(table)
        pick = parents.gather(rng.integers(0, parents.len(), size=df.height))
        ctx.write(table, df.with_columns(pick.alias(fk.columns[0])))


CONTROLS: dict[str, Callable[[Context], None]] = {
    "copy_training_rows": copy_training_rows,
    "copy_outlier_customers": copy_outlier_customers,
    "leak_real_emails": leak_real_emails,
    "uniform_timestamps": uniform_timestamps,
    "ignore_fanout": ignore_fanout,
}
