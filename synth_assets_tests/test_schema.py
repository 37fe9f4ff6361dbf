import pytest

from synth_assets.core import pg
from synth_assets.core.errors import SchemaError
from synth_assets.core.schema import (
    Column,
    Constraint,
    Domain,
    ForeignKey,
    SchemaModel,
    Table,
    reflect,
    value_as_column,
)


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


DOMAINS = """
DROP SCHEMA IF EXISTS dom CASCADE;
CREATE SCHEMA dom;
CREATE DOMAIN dom.code AS varchar(12) CONSTRAINT code_check CHECK (VALUE ~ '^[A-Z]');
CREATE DOMAIN dom.short_code AS dom.code NOT NULL DEFAULT 'AAA'
  CONSTRAINT short_check CHECK (length(VALUE) <= 6);
CREATE TABLE dom.item (id int PRIMARY KEY, code dom.short_code, plain dom.code NOT NULL);
"""


def test_a_domain_column_is_its_base_type_with_every_level_of_its_domains(pg_workdir):
    url = pg.resolve_url("embedded:///schema_domains", pg_workdir)
    with pg.connect(url) as conn:
        conn.execute(DOMAINS)
        m = reflect(conn, "dom")
        conn.rollback()
    code, plain = m.tables["item"].column("code"), m.tables["item"].column("plain")
    assert (code.pg_type, code.base_type, code.max_length) == (
        "character varying(12)",
        "varchar",
        12,
    )
    assert [(d.schema, d.name, d.not_null, d.default) for d in code.domains] == [
        ("dom", "short_code", True, "'AAA'::character varying"),
        ("dom", "code", False, None),
    ]
    assert [n for n, _ in code.domain_checks] == ["short_check", "code_check"]
    assert code.declared_type == "dom.short_code"  # what the UI's column schema shows
    # a NOT NULL domain: NOT NULL for generation, declared nullable as in the source
    assert (code.nullable, code.declared_nullable) == (False, True)
    assert (plain.nullable, plain.declared_nullable) == (False, False)
    assert m.tables["item"].column("id").domains == ()
    assert SchemaModel.from_dict(m.to_dict()).tables == m.tables


def test_a_domain_check_reads_as_the_same_check_on_the_column():
    chk = "CHECK (((VALUE >= 1901) AND (VALUE <> 'VALUE'::text) AND (\"VALUE\" > 0)))"
    assert value_as_column(chk, "year") == (
        "CHECK (((year >= 1901) AND (year <> 'VALUE'::text) AND (\"VALUE\" > 0)))"
    )
    assert value_as_column("CHECK ((VALUE > 0))", "Year") == 'CHECK (("Year" > 0))'
    col = Column("y", "integer", "int4", True, domains=(Domain("s", "d", checks=(("d_c", chk),)),))
    t = Table("t", [col], constraints=[Constraint("t_y", "c", ("y",), "CHECK ((y < 2000))")])
    assert t.column_checks("y") == ["CHECK ((y < 2000))", value_as_column(chk, "y")]


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
