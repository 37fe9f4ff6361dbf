"""What the steps share: the source being profiled, and the table being measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from synth_assets.core import dp
from synth_assets.core.config import PrivacyConfig, SynthConfig
from synth_assets.core.kinds import ColumnKind, TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.schema import SchemaModel, Table

from .budget import Budget
from .columns import ColumnModel
from .sql import TableSQL, one_way_counts
from .temps import Temps


@dataclass
class Source:
    """The profile-wide state: connection, schema, plans, config and what is measured so far."""

    conn: psycopg.Connection
    model: SchemaModel
    plans: dict[str, TablePlan]
    roles: dict[str, dict[str, str]]
    cfg: SynthConfig
    params: dict  # holdout key and cut, clipping seed (SQL parameters)
    # The categorical attribute of each reference table that children are conditioned on.
    ref_attr_of: dict[str, str | None]
    temps: Temps | None = None
    units: str | None = None  # temp table of training unit ids
    order: list[str] = field(default_factory=list)  # references first, then the unit tree
    colmodels: dict[str, dict[str, ColumnModel]] = field(default_factory=dict)
    public: set[str] = field(default_factory=set)  # tables declared public (copied)
    tables: dict[str, Any] = field(default_factory=dict)  # pack entries measured so far
    bounds_m: dict[str, int] = field(default_factory=dict)  # contribution bounds chosen with DP
    # Mean rows a unit keeps under its bound, from the same DP histogram (see ranges.rows_per_count).
    unit_rows: dict[str, float] = field(default_factory=dict)

    def rows_per_unit(self, name: str) -> int:
        """The contribution bound of ``name``: 1 where a unit owns one row, else DP-chosen or
        configured."""
        kind = self.plans[name].kind
        if kind in (TableKind.ROOT, TableKind.REFERENCE):
            return 1
        return self.bounds_m.get(name, self.cfg.privacy.rows_per_unit(name))


@dataclass
class TableRun:
    """One table's measurement: its rows as SQL, column models, budget, and its pack entry."""

    src: Source
    ts: TableSQL
    cms: dict[str, ColumnModel]
    budget: Budget
    delta_each: float  # delta of one threshold release
    out: dict[str, Any]
    # rho held back for rescue looks at category columns that released nothing; what they do
    # not spend goes to the one-way marginals (see table.thin_table)
    reserve: float = 0.0
    # Exact counts already read, by (expression, shares): a refinement round that narrowed
    # nothing asks the same question again (a fresh noisy release of the same exact counts).
    counted: dict[tuple[str, int], dict[tuple, int]] = field(default_factory=dict)

    @property
    def table(self) -> Table:
        return self.ts.table

    @property
    def name(self) -> str:
        return self.ts.table.name

    @property
    def plan(self) -> TablePlan:
        return self.ts.plan

    @property
    def sens(self) -> int:
        """L2 sensitivity of any histogram of this table's measured rows."""
        return self.ts.m

    @property
    def acc(self) -> dp.Accountant:
        return self.budget.acc

    @property
    def pcfg(self) -> PrivacyConfig:
        return self.src.cfg.privacy

    def cols(self, kind: ColumnKind) -> list[str]:
        """The columns measured as ``kind``, in table order."""
        return [c for c, cm in self.cms.items() if cm.kind == kind]

    def counts(self, exprs: list[str], shares: int = 0) -> list[dict[tuple, int]]:
        """One-way counts of ``exprs`` over the measured rows (rows, or distinct units, or each
        unit's row shares in ``shares``-ths: see :func:`.sql.one_way_counts`). The measured
        rows do not change while a table is measured, so each expression is read once."""
        todo = list(dict.fromkeys(e for e in exprs if (e, shares) not in self.counted))
        got = one_way_counts(self.src.conn, self.ts, self.src.params, todo, shares)
        self.counted.update({(e, shares): c for e, c in zip(todo, got, strict=True)})
        return [self.counted[(e, shares)] for e in exprs]
