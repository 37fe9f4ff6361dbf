"""The kinds (core/kinds.py): one home for what a table is to the unit, how a column is
measured and how the evaluation compares it; members serialise as the plain strings the
artifacts have always held."""

import ast
import json
from pathlib import Path

import pytest

from synth_assets.core.digest import canonical_json
from synth_assets.core.kinds import MODELLED_KINDS, ColumnKind, EvalKind, TableKind
from synth_assets.core.plan import build_plan
from synth_assets.core.profile.columns import column_models
from synth_assets.core.schema import Column, ForeignKey, SchemaModel, Table

PACKAGE = Path(__file__).resolve().parents[1] / "synth_assets"
ENUMS = {"TableKind": TableKind, "ColumnKind": ColumnKind, "EvalKind": EvalKind}
SPELLINGS = {k.value for e in ENUMS.values() for k in e}
# Modules where ``kind`` names another vocabulary: PostgreSQL types and constraints, audit
# events, PII generators, secrets engines.
OTHER_KINDS = ("core/load/", "core/schema.py", "core/audit/", "core/fakes/", "core/vault.py")


def _shop() -> tuple[SchemaModel, dict[str, dict[str, str]]]:
    """customers (the unit) -> orders -> a reference table of products."""
    fk = ForeignKey("orders_customer_fk", ("customer_id",), "customers", ("id",), "FOREIGN KEY")
    model = SchemaModel(
        "s",
        {
            "customers": Table(
                "customers",
                [Column("id", "int8", "int8", False), Column("email", "text", "text", False)],
                ("id",),
                [],
            ),
            "orders": Table(
                "orders",
                [
                    Column("id", "int8", "int8", False),
                    Column("customer_id", "int8", "int8", False),
                    Column("total", "numeric", "numeric", True),
                    Column("paid", "bool", "bool", True),
                    Column("at", "timestamp", "timestamp", True),
                    Column("note", "text", "text", True),
                ],
                ("id",),
                [fk],
            ),
            "products": Table("products", [Column("id", "int8", "int8", False)], ("id",), []),
        },
    )
    roles = {
        "customers": {"id": "key", "email": "email"},
        "orders": {
            "id": "key",
            "customer_id": "foreign_key",
            "total": "numeric",
            "paid": "boolean",
            "at": "datetime",
            "note": "ignore",
        },
        "products": {"id": "key"},
    }
    return model, roles


def test_each_vocabulary_holds_exactly_its_spellings():
    assert [k.value for k in TableKind] == ["root", "child", "reference"]
    assert {k.value for k in ColumnKind} == {
        "key",
        "fk",
        "synth",
        "categorical",
        "numeric",
        "boolean",
        "datetime",
        "ignore",
        "ref_attribute",
        "public",
    }
    assert {k.value for k in EvalKind} == {"categorical", "numeric", "datetime"}
    assert MODELLED_KINDS == ("categorical", "numeric", "boolean")


@pytest.mark.parametrize("kind", [*TableKind, *ColumnKind, *EvalKind])
def test_a_member_serialises_and_compares_as_its_plain_string(kind):
    assert json.dumps(kind) == f'"{kind.value}"'
    assert canonical_json({kind: kind}) == canonical_json({kind.value: kind.value})
    assert kind == kind.value and f"{kind}" == kind.value and hash(kind) == hash(kind.value)


def test_the_plan_serialises_to_the_bytes_of_plain_strings():
    plans = build_plan(*_shop(), None)
    assert {n: p.kind for n, p in plans.items()} == {
        "customers": TableKind.ROOT,
        "orders": TableKind.CHILD,
        "products": TableKind.REFERENCE,
    }
    assert all(type(p.kind) is TableKind for p in plans.values())
    written = canonical_json({n: p.to_dict() for n, p in plans.items()})
    plain = {n: {**p.to_dict(), "kind": p.kind.value} for n, p in plans.items()}
    assert written == canonical_json(plain)
    assert '"orders":{"depth":1,"kind":"child"' in written


def test_column_models_carry_column_kinds():
    model, roles = _shop()
    kinds = {c: m.kind for c, m in column_models(model.tables["orders"], roles["orders"]).items()}
    assert kinds == {
        "id": ColumnKind.KEY,
        "customer_id": ColumnKind.FK,
        "total": ColumnKind.NUMERIC,
        "paid": ColumnKind.BOOLEAN,
        "at": ColumnKind.DATETIME,
        "note": ColumnKind.IGNORE,
    }
    assert all(type(k) is ColumnKind for k in kinds.values())


def _is_kind(node: ast.AST) -> bool:
    """``kind``, ``x.kind``, ``x["kind"]`` or ``x.get("kind")``."""
    if isinstance(node, ast.Name | ast.Attribute):
        return getattr(node, "id", getattr(node, "attr", None)) == "kind"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "kind"
    )


def _spelled(node: ast.AST) -> bool:
    """A bare string literal of a kind, alone or in a tuple, list or set."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_spelled(e) for e in node.elts)
    return isinstance(node, ast.Constant) and node.value in SPELLINGS


def _bare_kinds(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(map(_is_kind, sides)) and any(map(_spelled, sides)):
                out.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "kind" and _spelled(v):
                    out.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return out


def _modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not str(p.relative_to(PACKAGE)).startswith(OTHER_KINDS)
    ]


def test_no_module_spells_a_kind_as_a_bare_string():
    assert [hit for p in _modules() for hit in _bare_kinds(p)] == []


def test_every_member_is_used_by_the_package():
    used = {
        (node.value.id, node.attr)
        for p in _modules()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ENUMS
    }
    members = {(name, k.name) for name, e in ENUMS.items() for k in e}
    assert members - used == set()
