"""How many measurements each share of the budget pays for, counted before any is made.

The refresh budget is split into shares (``privacy.split``); each share's rho is divided among
the (weighted) measurements it will pay for. Unit-owned tables and reference tables are counted
apart: reference tables run under their own accountant (``privacy.reference_epsilon``).
"""

from __future__ import annotations

from synth_assets.core import dp
from synth_assets.core.config import SynthConfig
from synth_assets.core.kinds import MODELLED_KINDS, ColumnKind, TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.roles import LENGTH_ROLES
from synth_assets.core.schema import Table

from .budget import WEIGHT, Budget, share_rho
from .columns import ColumnModel
from .context import Source
from .fanout import fanout_fks
from .public import public_domain
from .sql import conditions_on, deferred_fks

Measurements = list[tuple[str, float]]  # (share, weight) of each measurement, in order


def _column_measurements(
    cfg: SynthConfig, t: Table, plan: TablePlan, cm: ColumnModel
) -> Measurements:
    """The measurements one column will get, as (share, weight)."""
    bounded = f"{t.name}.{cm.name}" in cfg.bounds  # range declared: none measured
    if cm.kind == ColumnKind.FK:
        return [("one_way", WEIGHT["nulls"])] if t.fk_for(cm.name) is not plan.parent_fk else []
    if cm.kind == ColumnKind.SYNTH:
        return [("one_way", WEIGHT["length"] if cm.role in LENGTH_ROLES else WEIGHT["nulls"])]
    if cm.kind == ColumnKind.CATEGORICAL:
        values = [] if public_domain(cfg, t, cm.name) else [("bounds", WEIGHT["values"])]
        return [("one_way", 1), *values]
    if cm.kind == ColumnKind.NUMERIC:  # point masses are released like category values
        ranges = [] if bounded else [("bounds", WEIGHT["range"] + WEIGHT["refine"])]
        return [("one_way", 1), ("bounds", WEIGHT["point_masses"]), *ranges]
    if cm.kind == ColumnKind.BOOLEAN:
        return [("one_way", 1)]
    if cm.kind == ColumnKind.DATETIME:
        date_only = t.column(cm.name).base_type == "date"
        return [
            *([] if bounded else [("bounds", WEIGHT["range"] + WEIGHT["refine"])]),
            ("temporal", WEIGHT["day"] + (WEIGHT["how"] if not date_only else 0.0)),
            ("temporal", WEIGHT["after"] if plan.kind == TableKind.CHILD else 0.0),
        ]
    return []


def table_measurements(src: Source, name: str) -> Measurements:
    """The measurements one table will get: its columns', the referenced attributes'
    marginals, the tree's selections and pairs, its row count or rows-per-unit bound, and
    its fan-out histograms."""
    cfg, plans = src.cfg, src.plans
    t, plan, cms = src.model.tables[name], plans[name], src.colmodels[name]
    out: Measurements = []
    for cm in cms.values():
        out += _column_measurements(cfg, t, plan, cm)
    deferred = deferred_fks(src.model)
    pseudo = sum(
        1 for fk in t.foreign_keys if conditions_on(plans, t, fk, src.ref_attr_of, deferred)
    )
    out.append(("one_way", pseudo))  # marginal of the referenced row's attribute
    modelled = sum(cm.kind in MODELLED_KINDS for cm in cms.values()) + pseudo
    if modelled > 1:
        out += [("select", modelled - 1), ("pairs", modelled - 1)]
    if plan.kind in (TableKind.ROOT, TableKind.REFERENCE):
        out.append(("one_way", WEIGHT["rows"]))  # row count
    elif name not in cfg.privacy.max_rows_per_unit_by_table:
        out.append(("bounds", 1))  # rows-per-unit histogram for the contribution bound
    out.append(("fanout", len(fanout_fks(plans, t))))
    return out


def share_counts(src: Source) -> tuple[dict[str, float], dict[str, float]]:
    """Weighted measurements per share: (on unit-owned tables, row-level on reference tables).
    Tables declared public are copied and measure nothing."""
    counts_u = dict.fromkeys(src.cfg.privacy.split, 0.0)
    counts_r = dict.fromkeys(src.cfg.privacy.split, 0.0)
    for n in src.order:
        if n in src.public:
            continue
        counts = counts_r if src.plans[n].kind == TableKind.REFERENCE else counts_u
        for share, weight in table_measurements(src, n):
            counts[share] += weight
    return counts_u, counts_r


def make_budget(
    src: Source, acc: dp.Accountant, counts: dict[str, float], kinds: set[TableKind]
) -> tuple[Budget, float]:
    """(rho per measurement of each share, delta of one threshold release) for the tables of
    ``kinds`` under accountant ``acc``."""
    plans = src.plans
    per = share_rho(acc.rho_budget, src.cfg.privacy.split, counts)
    # Threshold releases: one per numeric column (point masses), two per private category
    # column: its first, and either a rescue look (``domain.rescue_empty``: the first found
    # nothing) or, in a table whose units own one row each, a second look (``second_look``).
    n_thr = sum(
        1 + (cm.kind == ColumnKind.CATEGORICAL)
        for n in src.order
        if plans[n].kind in kinds and n not in src.public
        for cm in src.colmodels[n].values()
        if cm.kind == ColumnKind.NUMERIC
        or (
            cm.kind == ColumnKind.CATEGORICAL
            and not public_domain(src.cfg, src.model.tables[n], cm.name)
        )
    )
    return Budget(acc, per), acc.delta_threshold / max(1, n_thr)
