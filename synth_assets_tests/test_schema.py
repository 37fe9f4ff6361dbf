import pytest

from synth_assets.core import pg
from synth_assets.core.errors import SchemaError
from synth_assets.core.schema import Column, ForeignKey, SchemaModel, Table, reflect


def _fk(name, col, ref):
    return ForeignKey(name, (col,), ref, ("id",), "")


def test_reflection_reads_keys_constraints_enums_and_indexes(shop_url):
    with pg.connect(shop_url) as conn:
        m = reflect(conn, "shop")
    assert set(m.tables) == {"stores", "users", "teams", "members", "orders", "order_items"}
    assert m.tables["order_items"].primary_key == ("order_id", "line_no")
    assert m.tables["users"].column("tier").enum_labels == ("free", "plus", "pro")
    assert ("email",) in m.tables["users"].unique_sets
    assert any(fk.ref_table == "users" for fk in m.tables["users"].foreign_keys)  # self-reference
    assert [i for i, _ in m.tables["orders"].indexes] == ["orders_user_idx"]
    assert m.tables["users"].column("email").max_length == 80
    assert SchemaModel.from_dict(m.to_dict()).to_dict() == m.to_dict()


def test_generation_order_breaks_the_cycle_at_the_nullable_fk(shop_url):
    with pg.connect(shop_url) as conn:
        m = reflect(conn, "shop")
    order, deferred = m.generation_order()
    assert {(t, fk.name) for t, fk in deferred} == {
        ("users", "users_referrer_id_fkey"),
        ("teams", "teams_lead_fk"),
    }
    assert order.index("teams") < order.index("members")
    assert order.index("users") < order.index("orders") < order.index("order_items")


def test_unknown_table_in_include_list_is_named(shop_url):
    with pg.connect(shop_url) as conn, pytest.raises(SchemaError, match="unknown table.*nope"):
        reflect(conn, "shop", tables=["users", "nope"])


def test_a_cycle_of_required_fks_is_broken_at_one_of_them():
    a = Table(
        "a",
        [Column("id", "bigint", "int8", False), Column("b_id", "bigint", "int8", False)],
        ("id",),
        [_fk("a_b", "b_id", "b")],
    )
    b = Table(
        "b",
        [Column("id", "bigint", "int8", False), Column("a_id", "bigint", "int8", False)],
        ("id",),
        [_fk("b_a", "a_id", "a")],
    )
    order, deferred = SchemaModel("s", {"a": a, "b": b}).generation_order()
    assert sorted(order) == ["a", "b"]
    assert [(t, fk.name) for t, fk in deferred] == [("a", "a_b")]  # filled once b has its keys
