"""What is evaluated: options, and the views (a table, or a child joined to its parent).

A view names its columns, how each is compared (categorical, numeric, datetime) and its
quasi-identifiers; the samplers and metrics read nothing else about the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from synth_assets.core.errors import ConfigError
from synth_assets.core.kinds import EvalKind, TableKind
from synth_assets.core.plan import TablePlan
from synth_assets.core.roles import DATETIME_TYPES
from synth_assets.core.schema import ForeignKey, SchemaModel

#: PII roles that act as quasi-identifiers (an attacker may know them), compared at full precision.
QI_PII_ROLES = frozenset({"birth_date", "postal_code", "city"})


@dataclass(frozen=True)
class EvalOptions:
    """Sampling and reporting knobs of one evaluation."""

    sample_rows: int = 50_000  # holdout rows and synthetic query rows per table / join
    reference_rows: int = 200_000  # training and synthetic rows searched for neighbours
    quasi_identifiers: dict[str, list[str]] = field(default_factory=dict)  # table -> own columns
    max_categories: int = 30
    min_cell: int = 10  # real plot cells with fewer sampled rows are suppressed
    nndr_percentile: float = 5.0

    def __post_init__(self) -> None:
        if self.sample_rows < 100:
            raise ConfigError(
                f"evaluation sample_rows must be at least 100 (got {self.sample_rows})"
            )
        if self.reference_rows < self.sample_rows:
            raise ConfigError(
                f"evaluation reference_rows ({self.reference_rows}) must be at least "
                f"sample_rows ({self.sample_rows})"
            )
        if not 0 < self.nndr_percentile < 50:
            raise ConfigError(f"nndr_percentile must be in (0, 50) (got {self.nndr_percentile})")


@dataclass(frozen=True)
class Col:
    """An evaluated column of a view: where it comes from and how it is compared."""

    name: str  # name inside the view ("segment" or "customers.segment")
    table: str
    column: str
    kind: EvalKind
    base_type: str
    date_only: bool = False
    parent: bool = False  # comes from the joined parent


@dataclass
class View:
    """A table, or a child table joined one level up to its primary parent."""

    name: str
    table: str
    kind: TableKind
    cols: list[Col]
    fk: ForeignKey | None = None  # the join (child views only)
    qis: list[tuple[str, str, str]] = field(default_factory=list)  # (name in view, table, column)

    @property
    def is_join(self) -> bool:
        return self.fk is not None


def _eval_kind(role: str, base_type: str) -> EvalKind | None:
    """How a column of this role is compared (None: not evaluated, e.g. PII and keys)."""
    if role in ("categorical", "boolean"):
        return EvalKind.CATEGORICAL
    if role == "numeric":
        return EvalKind.NUMERIC
    if role == "datetime" and base_type in DATETIME_TYPES:
        return EvalKind.DATETIME
    return None


def table_columns(
    model: SchemaModel, roles: dict[str, dict[str, str]], table: str, prefix: str = ""
) -> list[Col]:
    """The modelled (categorical, numeric, boolean, datetime) non-unique columns of ``table``."""
    t = model.tables[table]
    out = []
    for c in t.columns:
        kind = _eval_kind(roles[table][c.name], c.base_type)
        if kind is None or any(set(u) == {c.name} for u in t.unique_sets) or t.fk_for(c.name):
            continue
        out.append(
            Col(
                prefix + c.name,
                table,
                c.name,
                kind,
                c.base_type,
                c.base_type == "date",
                bool(prefix),
            )
        )
    return out


def _default_qis(model: SchemaModel, roles: dict[str, dict[str, str]], table: str) -> list[str]:
    """QI-role PII columns (birth date, postal code, city) and the categorical columns beside them."""
    t = model.tables[table]
    pii = [c.name for c in t.columns if roles[table][c.name] in QI_PII_ROLES]
    cats = [
        c.name
        for c in t.columns
        if roles[table][c.name] in ("categorical", "boolean")
        and not any(set(u) == {c.name} for u in t.unique_sets)
    ]
    return pii + cats


def _has_pii_qi(model: SchemaModel, roles: dict[str, dict[str, str]], table: str) -> bool:
    """Whether the table holds a QI-role PII column (birth date, postal code, city)."""
    return any(roles[table][c.name] in QI_PII_ROLES for c in model.tables[table].columns)


def build_views(
    model: SchemaModel,
    roles: dict[str, dict[str, str]],
    plans: dict[str, TablePlan],
    order: Sequence[str],
    options: EvalOptions,
) -> list[View]:
    """One view per table, plus one per child table joined to its primary parent."""
    for t, cols in options.quasi_identifiers.items():
        if t not in model.tables:
            raise ConfigError(
                f"quasi_identifiers names unknown table {t!r}; tables: {', '.join(model.tables)}"
            )
        unknown = [c for c in cols if c not in {x.name for x in model.tables[t].columns}]
        if unknown:
            raise ConfigError(f"quasi_identifiers[{t!r}] names unknown column(s) {unknown}")

    def qis(table: str, with_defaults: bool) -> list[str]:
        if table in options.quasi_identifiers:
            return list(options.quasi_identifiers[table])
        return _default_qis(model, roles, table) if with_defaults else []

    # By default a view has quasi-identifiers only when it holds a QI-role PII column (its own or
    # its parent's): combinations of a few low-cardinality categories are rare through DP noise,
    # not memorisation, and the holdout of a small source cannot tell the two apart.
    views = []
    for name in order:
        plan = plans[name]
        own = table_columns(model, roles, name)
        own_pii = _has_pii_qi(model, roles, name)
        views.append(
            View(name, name, plan.kind, own, None, [(c, name, c) for c in qis(name, own_pii)])
        )
        if plan.kind == TableKind.CHILD and plan.parent_fk is not None and plan.parent != name:
            parent = plan.parent
            pcols = table_columns(model, roles, parent, prefix=f"{parent}.")
            if own and pcols:
                any_pii = own_pii or _has_pii_qi(model, roles, parent)
                vq = [(c, name, c) for c in qis(name, any_pii)] + [
                    (f"{parent}.{c}", parent, c) for c in qis(parent, any_pii)
                ]
                views.append(
                    View(f"{name}+{parent}", name, plan.kind, own + pcols, plan.parent_fk, vq)
                )
    return views
