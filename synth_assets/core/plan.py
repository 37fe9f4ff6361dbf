"""The unit tree: which table is the privacy unit, how every other table hangs off it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError, SchemaError
from .roles import PII_ROLES
from .schema import ForeignKey, SchemaModel


@dataclass
class TablePlan:
    name: str
    kind: str  # "root", "child" (owned by a unit through FKs) or "reference"
    parent_fk: ForeignKey | None = None  # primary parent (child tables)
    path: list[ForeignKey] = field(default_factory=list)  # FKs from this table up to the root
    depth: int = 0

    @property
    def parent(self) -> str | None:
        return self.parent_fk.ref_table if self.parent_fk else None

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "parent": self.parent,
            "parent_fk": self.parent_fk.name if self.parent_fk else None,
            "path": [fk.name for fk in self.path],
            "depth": self.depth,
        }


def _nullable(model: SchemaModel, table: str, fk: ForeignKey) -> bool:
    t = model.tables[table]
    return any(t.column(c).nullable for c in fk.columns)


def _descendants(model: SchemaModel, root: str, required_only: bool = False) -> set[str]:
    seen = {root}
    changed = True
    while changed:
        changed = False
        for t in model.tables.values():
            if t.name in seen:
                continue
            if any(
                fk.ref_table in seen
                and fk.ref_table != t.name
                and not (required_only and _nullable(model, t.name, fk))
                for fk in t.foreign_keys
            ):
                seen.add(t.name)
                changed = True
    return seen - {root}


def detect_unit_table(model: SchemaModel, roles: dict[str, dict[str, str]]) -> str:
    """Default privacy unit: a table with a one-column key and no required parent, owning the most tables."""
    best: tuple | None = None
    for t in model.tables.values():
        if len(t.primary_key) != 1:
            continue
        if any(
            fk.ref_table != t.name and not _nullable(model, t.name, fk) for fk in t.foreign_keys
        ):
            continue
        pii = sum(r in PII_ROLES for r in roles.get(t.name, {}).values())
        score = (
            len(_descendants(model, t.name, required_only=True)),
            pii,
            len(_descendants(model, t.name)),
            -len(t.name),
        )
        if best is None or score > best[0]:
            best = (score, t.name)
    if best is None:
        raise SchemaError(
            "no table qualifies as the privacy unit (one-column primary key, no required parent); "
            "set privacy.unit_table in synth.yaml"
        )
    return best[1]


def build_plan(
    model: SchemaModel, roles: dict[str, dict[str, str]], unit_table: str | None
) -> dict[str, TablePlan]:
    """Assign every table a kind and, for unit-owned tables, the FK path to the unit."""
    root = unit_table or detect_unit_table(model, roles)
    if root not in model.tables:
        raise ConfigError(
            f"privacy.unit_table {root!r} is not a modelled table; tables: {', '.join(model.tables)}"
        )
    if len(model.tables[root].primary_key) != 1:
        raise ConfigError(f"privacy.unit_table {root!r} needs a one-column primary key")
    plans = {root: TablePlan(root, "root")}
    changed = True
    while changed:
        changed = False
        for t in model.tables.values():
            if t.name in plans:
                continue
            # Ownership needs a required FK: a row that may have no parent is not part of a unit
            # (such tables are generated once, as reference tables, with row-level measurements).
            options = [
                (plans[fk.ref_table].depth, fk.name, fk)
                for fk in t.foreign_keys
                if fk.ref_table in plans
                and fk.ref_table != t.name
                and not _nullable(model, t.name, fk)
                and model.tables[fk.ref_table].primary_key == fk.ref_columns
            ]
            if options:
                depth, _, fk = min(options, key=lambda o: o[:2])
                parent = plans[fk.ref_table]
                plans[t.name] = TablePlan(t.name, "child", fk, [fk, *parent.path], depth + 1)
                changed = True
    for t in model.tables.values():
        plans.setdefault(t.name, TablePlan(t.name, "reference"))
    return plans
