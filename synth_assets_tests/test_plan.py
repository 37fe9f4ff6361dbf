"""The unit tree (core/plan.py): which table is the privacy unit, and how every other table
hangs off it (a child through required FKs up to the unit, or a reference table)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synth_assets.core.errors import ConfigError, SchemaError
from synth_assets.core.plan import build_plan, detect_unit_table, unit_candidates
from synth_assets.core.schema import Column, ForeignKey, SchemaModel, Table


def _col(name: str, base: str = "int8", nullable: bool = False) -> Column:
    return Column(name, base, base, nullable)


def _fk(name: str, column: str, ref: str, ref_column: str = "id") -> ForeignKey:
    return ForeignKey(name, (column,), ref, (ref_column,), "FOREIGN KEY")


def _table(name: str, *cols: Column, fks=(), pk=("id",)) -> Table:
    return Table(name, [_col("id"), *cols], pk, list(fks))


def _model(*tables: Table) -> SchemaModel:
    return SchemaModel("s", {t.name: t for t in tables})


def _bank() -> tuple[SchemaModel, dict[str, dict[str, str]]]:
    """customers -> accounts -> cards, transactions -> merchants (a reference table)."""
    model = _model(
        _table("customers", _col("email", "text"), _col("created_at", "timestamp")),
        _table(
            "accounts",
            _col("customer_id"),
            _col("opened", "timestamp"),
            fks=[_fk("accounts_customer_fk", "customer_id", "customers")],
        ),
        _table(
            "cards", _col("account_id"), fks=[_fk("cards_account_fk", "account_id", "accounts")]
        ),
        _table("merchants", _col("name", "text")),
        _table(
            "transactions",
            _col("account_id"),
            _col("merchant_id"),
            fks=[
                _fk("tx_account_fk", "account_id", "accounts"),
                _fk("tx_merchant_fk", "merchant_id", "merchants"),
            ],
        ),
    )
    roles = {
        "customers": {"id": "key", "email": "email", "created_at": "datetime"},
        "accounts": {"id": "key", "customer_id": "foreign_key", "opened": "datetime"},
        "cards": {"id": "key", "account_id": "foreign_key"},
        "merchants": {"id": "key", "name": "company_name"},
        "transactions": {"id": "key", "account_id": "foreign_key", "merchant_id": "foreign_key"},
    }
    return model, roles


# ---- the unit --------------------------------------------------------------------------------


def test_the_unit_is_the_table_with_personal_pii_that_owns_the_most():
    assert detect_unit_table(*_bank()) == "customers"


def test_a_table_owned_by_an_entity_is_not_a_candidate():
    names = [name for _, name in unit_candidates(*_bank())]
    assert "customers" in names and "accounts" not in names and "cards" not in names


def test_a_required_dimension_parent_does_not_disqualify_the_entity_under_it():
    """Accounts under a district list (no PII, no dates) are still the unit."""
    model = _model(
        _table("district", _col("region", "text")),
        _table(
            "account",
            _col("district_id"),
            _col("opened", "date"),
            fks=[_fk("account_district_fk", "district_id", "district")],
        ),
        _table("trans", _col("account_id"), fks=[_fk("trans_account_fk", "account_id", "account")]),
    )
    roles = {
        "district": {"id": "key", "region": "categorical"},
        "account": {"id": "key", "district_id": "foreign_key", "opened": "datetime"},
        "trans": {"id": "key", "account_id": "foreign_key"},
    }
    assert detect_unit_table(model, roles) == "account"


def test_equally_plausible_units_are_refused_naming_both():
    model = _model(
        _table("patients", _col("email", "text")), _table("doctors", _col("email", "text"))
    )
    roles = {t: {"id": "key", "email": "email"} for t in ("patients", "doctors")}
    with pytest.raises(SchemaError, match="ambiguous") as err:
        detect_unit_table(model, roles)
    assert "patients" in str(err.value) and "doctors" in str(err.value)


def test_a_schema_without_a_one_column_key_has_no_unit():
    model = _model(_table("pairs", _col("a"), pk=("id", "a")))
    with pytest.raises(SchemaError, match="no table qualifies"):
        detect_unit_table(model, {"pairs": {"id": "key", "a": "numeric"}})


# ---- the tree --------------------------------------------------------------------------------


def test_tables_below_the_unit_are_children_and_the_rest_reference_tables():
    plans = build_plan(*_bank(), None)
    kinds = {name: p.kind for name, p in plans.items()}
    assert kinds == {
        "customers": "root",
        "accounts": "child",
        "cards": "child",
        "transactions": "child",
        "merchants": "reference",
    }


def test_a_child_path_runs_from_its_own_fk_up_to_the_unit():
    plans = build_plan(*_bank(), None)
    cards = plans["cards"]
    assert [fk.name for fk in cards.path] == ["cards_account_fk", "accounts_customer_fk"]
    assert cards.depth == 2 and cards.parent == "accounts"
    assert cards.to_dict() == {
        "kind": "child",
        "parent": "accounts",
        "parent_fk": "cards_account_fk",
        "path": ["cards_account_fk", "accounts_customer_fk"],
        "depth": 2,
    }
    assert plans["customers"].to_dict()["path"] == [] and plans["customers"].parent is None


def test_a_nullable_fk_does_not_make_a_table_part_of_a_unit():
    model, roles = _bank()
    model.tables["notes"] = _table(
        "notes",
        _col("customer_id", nullable=True),
        fks=[_fk("notes_customer_fk", "customer_id", "customers")],
    )
    assert build_plan(model, roles, "customers")["notes"].kind == "reference"


def test_an_fk_to_a_column_other_than_the_key_does_not_own():
    model, roles = _bank()
    model.tables["logins"] = _table(
        "logins", _col("email", "text"), fks=[_fk("logins_email_fk", "email", "customers", "email")]
    )
    assert build_plan(model, roles, "customers")["logins"].kind == "reference"


def test_the_shallowest_required_parent_is_the_primary_one():
    model, roles = _bank()
    model.tables["transfers"] = _table(
        "transfers",
        _col("account_id"),
        _col("customer_id"),
        fks=[
            _fk("a_transfer_account_fk", "account_id", "accounts"),
            _fk("z_transfer_customer_fk", "customer_id", "customers"),
        ],
    )
    transfers = build_plan(model, roles, "customers")["transfers"]
    assert transfers.parent == "customers" and transfers.depth == 1


def test_between_parents_at_one_depth_the_fk_name_decides():
    model, roles = _bank()
    model.tables["links"] = _table(
        "links",
        _col("to_id"),
        _col("from_id"),
        fks=[
            _fk("links_to_fk", "to_id", "customers"),
            _fk("links_from_fk", "from_id", "customers"),
        ],
    )
    assert build_plan(model, roles, "customers")["links"].parent_fk.name == "links_from_fk"


def test_a_self_reference_leaves_the_unit_the_root():
    model, roles = _bank()
    customers = model.tables["customers"]
    customers.columns.append(_col("referred_by", nullable=True))
    customers.foreign_keys.append(_fk("customers_referred_by_fk", "referred_by", "customers"))
    plans = build_plan(model, roles, None)
    assert plans["customers"].kind == "root" and plans["customers"].parent_fk is None


def test_a_required_fk_cycle_outside_the_unit_stays_reference_tables():
    model, roles = _bank()
    model.tables["store"] = _table(
        "store", _col("manager_id"), fks=[_fk("store_manager_fk", "manager_id", "staff")]
    )
    model.tables["staff"] = _table(
        "staff", _col("store_id"), fks=[_fk("staff_store_fk", "store_id", "store")]
    )
    plans = build_plan(model, roles, "customers")
    assert plans["store"].kind == plans["staff"].kind == "reference"


def test_a_named_unit_overrides_detection():
    plans = build_plan(*_bank(), "accounts")
    assert plans["accounts"].kind == "root" and plans["cards"].path[-1].ref_table == "accounts"
    assert plans["customers"].kind == "reference"


def test_an_unknown_unit_table_is_refused_naming_the_tables():
    with pytest.raises(ConfigError, match="not a modelled table; tables: customers"):
        build_plan(*_bank(), "people")


def test_a_unit_table_needs_a_one_column_key():
    model, roles = _bank()
    model.tables["pairs"] = _table("pairs", _col("b"), pk=("id", "b"))
    with pytest.raises(ConfigError, match="one-column primary key"):
        build_plan(model, roles, "pairs")


@st.composite
def _random_schema(draw) -> SchemaModel:
    """Tables t0..tn; each has FKs (required or nullable) to earlier tables, t0 the unit."""
    n = draw(st.integers(2, 8))
    tables = [_table("t0")]
    for i in range(1, n):
        parents = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True))
        cols, fks = [], []
        for j in parents:
            nullable = draw(st.booleans())
            cols.append(_col(f"p{j}", nullable=nullable))
            fks.append(_fk(f"t{i}_p{j}_fk", f"p{j}", f"t{j}"))
        tables.append(_table(f"t{i}", *cols, fks=fks))
    return _model(*tables)


@given(_random_schema())
def test_every_child_hangs_off_the_unit_by_a_chain_of_required_fks(model):
    plans = build_plan(model, {}, "t0")
    owned = {"t0"}  # reachable from the unit through required FKs, by a plain fixpoint
    while more := {
        t.name
        for t in model.tables.values()
        if t.name not in owned
        and any(
            fk.ref_table in owned and not t.column(fk.columns[0]).nullable for fk in t.foreign_keys
        )
    }:
        owned |= more
    for name, plan in plans.items():
        assert (plan.kind != "reference") == (name in owned), name
        if plan.kind != "child":
            continue
        assert plan.path[0] is plan.parent_fk and plan.depth == len(plan.path)
        assert plan.path[-1].ref_table == "t0"
        owner = name
        for fk in plan.path:  # each FK belongs to the table the previous one points at
            assert fk in model.tables[owner].foreign_keys
            assert not model.tables[owner].column(fk.columns[0]).nullable
            owner = fk.ref_table
