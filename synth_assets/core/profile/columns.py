"""How each column is measured: its kind, from its role and type."""

from __future__ import annotations

from dataclasses import dataclass

from synth_assets.core.kinds import MODELLED_KINDS, ColumnKind
from synth_assets.core.roles import DATETIME_TYPES, SYNTHESIZED_ROLES
from synth_assets.core.schema import Column, Table


@dataclass
class ColumnModel:
    """How one column is measured: its role and, for modelled columns, its code domain."""

    name: str
    role: str
    kind: ColumnKind
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
        return ColumnModel(c.name, role, ColumnKind.KEY)
    if role == "foreign_key" or t.fk_for(c.name) is not None:
        return ColumnModel(c.name, "foreign_key", ColumnKind.FK)
    if role in SYNTHESIZED_ROLES:
        return ColumnModel(c.name, role, ColumnKind.SYNTH)
    if role in MODELLED_KINDS:
        return ColumnModel(c.name, role, ColumnKind(role))
    if role == "datetime" and c.base_type in DATETIME_TYPES:
        return ColumnModel(c.name, role, ColumnKind.DATETIME)
    return ColumnModel(c.name, "ignore", ColumnKind.IGNORE)


def column_models(t: Table, roles: dict[str, str]) -> dict[str, ColumnModel]:
    """Every column of ``t`` with its measurement kind, in table order."""
    return {c.name: column_model(t, c, roles[c.name]) for c in t.columns}
