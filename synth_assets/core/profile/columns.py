"""How each column is measured: its kind, from its role and type."""

from __future__ import annotations

from dataclasses import dataclass

from synth_assets.core.roles import DATETIME_TYPES, SYNTHESIZED_ROLES
from synth_assets.core.schema import Column, Table

# Kinds measured as one-way marginals and candidates for the pairs of the tree.
MODELLED_KINDS = ("categorical", "numeric", "boolean")


@dataclass
class ColumnModel:
    """How one column is measured: its role and, for modelled columns, its code domain."""

    name: str
    role: str
    kind: str  # categorical | numeric | boolean | datetime | synth | key | fk | ref
    domain: int = 0  # number of codes (modelled columns), null code included
    info: dict | None = None
    released: dict[str, int] | None = None  # threshold release that is also the marginal
    released_sigma: float = 0.0
    rescued: bool = False  # its values came from a rescue look (which took its second look)


def column_model(t: Table, c: Column, role: str) -> ColumnModel:
    """The measurement kind of column ``c`` with ``role``: keys are generated, foreign keys
    measured by null rate and fan-out, PII and free text by presence or length, modelled
    columns (categorical, numeric, boolean) by marginals and pairs, datetimes by histograms."""
    if role == "key":
        return ColumnModel(c.name, role, "key")
    if role == "foreign_key" or t.fk_for(c.name) is not None:
        return ColumnModel(c.name, "foreign_key", "fk")
    if role in SYNTHESIZED_ROLES:
        return ColumnModel(c.name, role, "synth")
    if role in MODELLED_KINDS:
        return ColumnModel(c.name, role, role)
    if role == "datetime" and c.base_type in DATETIME_TYPES:
        return ColumnModel(c.name, role, "datetime")
    return ColumnModel(c.name, "ignore", "ignore")


def column_models(t: Table, roles: dict[str, str]) -> dict[str, ColumnModel]:
    """Every column of ``t`` with its measurement kind, in table order."""
    return {c.name: column_model(t, c, roles[c.name]) for c in t.columns}
