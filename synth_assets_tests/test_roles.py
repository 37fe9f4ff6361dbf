import pytest

from synth_assets.core.roles import infer_role, role_from_values
from synth_assets.core.schema import Column, Constraint, ForeignKey, Table


def _t(*cols, pk=("id",), fks=(), uniques=()):
    columns = [Column("id", "bigint", "int8", False)] + list(cols)
    cons = [Constraint(f"u{i}", "u", u, "") for i, u in enumerate(uniques)]
    return Table("customers", columns, pk, list(fks), cons)


@pytest.mark.parametrize(
    "name,role",
    [
        ("email", "email"),
        ("full_name", "person_name"),
        ("phone", "phone"),
        ("street_address", "address"),
        ("postal_code", "postal_code"),
        ("national_id", "national_id"),
        ("card_number", "card_number"),
        ("iban", "iban"),
        ("memo", "free_text"),
        ("ip_address", "ip_address"),
        ("first_name", "first_name"),
        ("name_first", "first_name"),
        ("name_last", "last_name"),
        ("surname", "last_name"),
    ],
)
def test_pii_roles_from_names(name, role):
    col = Column(name, "text", "text", True)
    assert infer_role(_t(col), col, ["x"] * 10) == role


def test_values_reveal_pii_under_a_neutral_name():
    assert role_from_values([f"user{i}@corp.io" for i in range(20)]) == "email"
    assert role_from_values(["4539578763621486"] * 20) == "card_number"
    assert role_from_values(["GB82WEST12345698765432"] * 20) == "iban"


def test_low_cardinality_text_is_categorical_and_high_cardinality_is_free_text():
    col = Column("status", "text", "text", False)
    assert infer_role(_t(col), col, ["a", "b", "c"] * 40) == "categorical"
    col2 = Column("reference", "text", "text", False)
    assert infer_role(_t(col2), col2, [f"ref {i} of many words" for i in range(200)]) == "free_text"


def test_keys_and_foreign_keys():
    fk = ForeignKey("fk", ("parent_id",), "parents", ("id",), "")
    col = Column("parent_id", "bigint", "int8", False)
    t = _t(col, fks=[fk])
    assert infer_role(t, t.columns[0], []) == "key"
    assert infer_role(t, col, []) == "foreign_key"


def test_a_unique_numeric_column_is_generated_as_a_key():
    col = Column("account_no", "bigint", "int8", False)
    assert (
        infer_role(_t(col, uniques=[("account_no",)]), col, [str(i) for i in range(300)]) == "key"
    )


def test_birth_date_and_datetimes():
    dob = Column("date_of_birth", "date", "date", False)
    ts = Column("created_at", "timestamp with time zone", "timestamptz", False)
    assert infer_role(_t(dob), dob, []) == "birth_date"
    assert infer_role(_t(ts), ts, []) == "datetime"
