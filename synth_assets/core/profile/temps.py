"""Session temp tables: each table's measured rows materialized once, read by every aggregate.

A table is scanned (joins to the unit table, holdout, clipping) once instead of once per query.
A read-only standby cannot hold temp tables; the profiler then re-reads the source instead.
"""

from __future__ import annotations

import psycopg

from synth_assets.core.kinds import TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.roles import qi
from synth_assets.core.schema import SchemaModel

from .holdout import holdout_sql
from .sql import TableSQL


class Temps:
    """Session temp tables: training units, and each table's clipped training rows."""

    def __init__(self, conn: psycopg.Connection, params: dict):
        self.conn = conn
        self.params = params
        self.tables: dict[str, tuple[str, TableSQL]] = {}

    def units(self, model: SchemaModel, root: TablePlan) -> str:
        """A temp table of the training units' ids (the holdout hashed once, not per row)."""
        key = qi(model.tables[root.name].primary_key[0])
        self.conn.execute("DROP TABLE IF EXISTS _synth_units")
        self.conn.execute(
            f"CREATE TEMP TABLE _synth_units AS SELECT t.{key} AS u FROM {qi(model.schema)}.{qi(root.name)} t "
            f"WHERE NOT {holdout_sql('t.' + key)}",
            self.params,
        )
        self.conn.execute("CREATE UNIQUE INDEX ON _synth_units (u)")
        self.conn.execute("ANALYZE _synth_units")
        return "_synth_units"

    def materialize(self, ts: TableSQL) -> TableSQL:
        """The table's measured rows in a temp table, and the CTE that reads them."""
        name = f"_synth_t{len(self.tables)}"
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self.conn.execute(f"CREATE TEMP TABLE {name} AS {ts.cte} SELECT * FROM c", self.params)
        self.conn.execute(f"ANALYZE {name}")
        out = TableSQL(
            ts.table,
            ts.plan,
            ts.m,
            f"WITH c AS (SELECT * FROM {name})",
            ts.parent_cols,
            ts.ref_attrs,
        )
        self.tables[ts.table.name] = (name, out)
        return out

    def has(self, table: str) -> bool:
        """Whether ``table``'s measured rows are materialized."""
        return table in self.tables

    def subset(self, table: str, m: int) -> TableSQL:
        """The first ``m`` clipped rows per unit of an already materialized table."""
        name, ts = self.tables[table]
        where = f" WHERE __rn <= {int(m)}" if ts.plan.kind == TableKind.CHILD else ""
        return TableSQL(
            ts.table,
            ts.plan,
            m,
            f"WITH c AS (SELECT * FROM {name}{where})",
            ts.parent_cols,
            ts.ref_attrs,
        )
