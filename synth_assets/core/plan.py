"""The unit tree: which table is the privacy unit, how every other table hangs off it."""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field

from .errors import ConfigError, SchemaError
from .kinds import TableKind
from .roles import PII_ROLES
from .schema import ForeignKey, SchemaModel, Table

# PII that identifies a person rather than a place or an organisation (a district, airport or
# airline table has a "name", a city, an address): the evidence that a table is the unit.
PERSONAL_ROLES = PII_ROLES - {"person_name", "address", "postal_code", "city", "company_name"}


@dataclass
class TablePlan:
    name: str
    kind: TableKind  # the unit, a table a unit owns through FKs, or a reference table
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


def _close(model: SchemaModel, reached: Container[str], admit: Callable[[Table], bool]) -> None:
    """Pass over the tables not yet ``reached`` until a pass admits none: the closure along
    foreign keys. ``admit`` decides a table and, when it does, records it in ``reached``
    (visible to the rest of the same pass)."""
    changed = True
    while changed:
        changed = False
        for t in model.tables.values():
            if t.name not in reached and admit(t):
                changed = True


def _descendants(model: SchemaModel, root: str, required_only: bool = False) -> set[str]:
    seen = {root}

    def admit(t: Table) -> bool:
        if any(
            fk.ref_table in seen
            and fk.ref_table != t.name
            and not (required_only and _nullable(model, t.name, fk))
            for fk in t.foreign_keys
        ):
            seen.add(t.name)
            return True
        return False

    _close(model, seen, admit)
    return seen - {root}


def _entity_score(model: SchemaModel, roles: dict[str, dict[str, str]], name: str) -> tuple:
    """How much a table looks like the entity a person is: personal PII (emails, phones, birth
    dates, first and last names; a bare "name", city or address also names places), then
    its own datetime columns (opened, born, joined), then how many tables it owns through
    required FKs. A dimension table (a district or country list) has none of the first two."""
    r = roles.get(name, {})
    pii = sum(v in PERSONAL_ROLES for v in r.values())
    dated = any(v == "datetime" for v in r.values())
    return (pii > 0, dated, len(_descendants(model, name, required_only=True)), pii)


def unit_candidates(model: SchemaModel, roles: dict[str, dict[str, str]]) -> list[tuple]:
    """(score, table) of every table that can be the privacy unit, best first.

    A candidate has a one-column key and no required parent that is itself an entity; a
    required parent that is only a dimension (no PII, no datetime) does not disqualify it, so
    accounts under a 77-row district table stay candidates.
    """
    out = []
    for t in model.tables.values():
        if len(t.primary_key) != 1:
            continue
        parents = {
            fk.ref_table
            for fk in t.foreign_keys
            if fk.ref_table != t.name and not _nullable(model, t.name, fk)
        }
        if any(_entity_score(model, roles, p)[:2] != (False, False) for p in parents):
            continue
        score = _entity_score(model, roles, t.name)
        out.append((score + (len(_descendants(model, t.name)), -len(t.name)), t.name))
    return sorted(out, reverse=True)


def detect_unit_table(model: SchemaModel, roles: dict[str, dict[str, str]]) -> str:
    """Default privacy unit: the entity table (PII, its own dates) owning the most tables.

    Two candidates that differ only by tie-breaks are refused: the user names the unit.
    """
    cands = unit_candidates(model, roles)
    if not cands:
        raise SchemaError(
            "no table qualifies as the privacy unit (one-column primary key, not owned by "
            "another entity); set privacy.unit_table in synth.yaml"
        )
    if len(cands) > 1 and cands[0][0][:3] == cands[1][0][:3]:
        close = [n for s, n in cands if s[:3] == cands[0][0][:3]]
        raise SchemaError(
            f"the privacy unit is ambiguous: {', '.join(close)} look equally like the entity "
            "a person is (same PII, dates and owned tables); set privacy.unit_table in synth.yaml "
            "to the table whose rows are the people or accounts to protect"
        )
    return cands[0][1]


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
    plans = {root: TablePlan(root, TableKind.ROOT)}

    def admit(t: Table) -> bool:
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
        if not options:
            return False
        depth, _, fk = min(options, key=lambda o: o[:2])
        parent = plans[fk.ref_table]
        plans[t.name] = TablePlan(t.name, TableKind.CHILD, fk, [fk, *parent.path], depth + 1)
        return True

    _close(model, plans, admit)
    for t in model.tables.values():
        plans.setdefault(t.name, TablePlan(t.name, TableKind.REFERENCE))
    return plans
