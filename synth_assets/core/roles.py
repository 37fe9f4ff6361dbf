"""Column roles, inferred from names, types and value patterns read inside the boundary.

Only the role leaves the boundary; the sampled values are discarded after inference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

import psycopg

from .errors import ConfigError
from .fakes import PII_KINDS, is_luhn_valid
from .schema import Column, SchemaModel, Table


class Role(StrEnum):
    """Every column role, in the order ``synth.yaml``'s error messages list them.

    The one home of the vocabulary: a member equals its plain string, so roles read from
    YAML, JSON or the roles map compare and hash as before.
    """

    KEY = "key"
    FOREIGN_KEY = "foreign_key"
    EMAIL = "email"
    PERSON_NAME = "person_name"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    PHONE = "phone"
    ADDRESS = "address"
    POSTAL_CODE = "postal_code"
    BIRTH_DATE = "birth_date"
    NATIONAL_ID = "national_id"
    CARD_NUMBER = "card_number"
    IBAN = "iban"
    IP_ADDRESS = "ip_address"
    CITY = "city"
    COMPANY_NAME = "company_name"
    FREE_TEXT = "free_text"
    BINARY = "binary"
    CATEGORICAL = "categorical"
    NUMERIC = "numeric"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    IGNORE = "ignore"


ROLE_NAMES: tuple[str, ...] = tuple(r.value for r in Role)  # plain strings, in Role's order
# Personal data: every value is faked (core/fakes/ has a generator for each, and free text).
PII_ROLES: frozenset[str] = frozenset(
    r.value
    for r in (
        Role.EMAIL,
        Role.PERSON_NAME,
        Role.FIRST_NAME,
        Role.LAST_NAME,
        Role.PHONE,
        Role.ADDRESS,
        Role.POSTAL_CODE,
        Role.BIRTH_DATE,
        Role.NATIONAL_ID,
        Role.CARD_NUMBER,
        Role.IBAN,
        Role.IP_ADDRESS,
        Role.CITY,
        Role.COMPANY_NAME,
    )
)
# Never measured beyond null rates and lengths ("binary": bytea, its octet lengths only).
SYNTHESIZED_ROLES = PII_ROLES | {"free_text", "binary"}
LENGTH_ROLES = frozenset({"free_text", "binary"})  # measured as a null rate and a length histogram
MODELLED_ROLES = frozenset({"categorical", "numeric", "boolean"})
# core/fakes/ stays a leaf the shard worker loads alone (this module imports its Luhn), so its
# generator table is checked against the vocabulary here rather than imported from it.
assert frozenset(PII_KINDS) == PII_ROLES | {Role.FREE_TEXT}, "fakes.PII_KINDS drifted from Role"

NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8", "money", "oid"})
INTEGER_TYPES = frozenset({"int2", "int4", "int8"})
DATETIME_TYPES = frozenset({"timestamp", "timestamptz", "date"})
TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "citext", "name"})
# Times of day and durations are modelled as numbers: their seconds (extract(epoch from ...)).
EPOCH_TYPES = frozenset({"time", "timetz", "interval"})
JSON_TYPES = frozenset({"json", "jsonb"})  # modelled as categories of their shape (json_shape_sql)


def is_array(base_type: str) -> bool:
    """PostgreSQL names an array type after its element type with a leading underscore."""
    return base_type.startswith("_")


def json_shape_sql(x: str) -> str:
    """A JSON value's shape: an object keeps its top-level keys with each value replaced by its
    type's empty value (0, "", false, [], {}, null); any other value becomes that empty value.
    Keys are released only when a whole shape clears the DP threshold like any category; no
    value ever does."""
    j = f"({x})::jsonb"

    def empty(v: str) -> str:
        return (
            f"CASE jsonb_typeof({v}) WHEN 'object' THEN '{{}}'::jsonb WHEN 'array' THEN "
            "'[]'::jsonb WHEN 'string' THEN '\"\"'::jsonb WHEN 'number' THEN '0'::jsonb "
            "WHEN 'boolean' THEN 'false'::jsonb ELSE 'null'::jsonb END"
        )

    obj = f"(SELECT coalesce(jsonb_object_agg(e.k, {empty('e.v')}), '{{}}'::jsonb) FROM jsonb_each({j}) AS e(k, v))"
    return (
        f"CASE WHEN {x} IS NULL THEN NULL WHEN jsonb_typeof({j}) = 'object' THEN {obj}::text "
        f"ELSE ({empty(j)})::text END"
    )


_NAME_RULES: list[tuple[str, str]] = [
    (r"(^|_)e?mail(_?address)?$", "email"),
    (r"(^|_)(first|given|fore)_?name$|(^|_)name_?(first|given)$", "first_name"),
    (r"(^|_)(last|family|sur)_?name$|^surname$|(^|_)name_?(last|family)$", "last_name"),
    (r"(^|_)(full|person|customer|contact|holder|display|user)_?name$", "person_name"),
    (r"(^|_)(phone|mobile|telephone|tel|fax|msisdn)(_?(number|no))?$", "phone"),
    (r"(^|_)(ip|ip_?address|ipv4|ipv6|client_ip|remote_addr)$", "ip_address"),
    (r"(^|_)(street|address|addr)(_?(line)?_?\d?)?$|street_address", "address"),
    (r"(^|_)(zip|postal|post)_?(code)?$|^postcode$", "postal_code"),
    (r"(^|_)(dob|birth_?date|date_of_birth|birthday)$", "birth_date"),
    (
        r"(^|_)(ssn|national_?id|tax_?id|nin|passport(_?no)?|social_security(_number)?|sin|nino)$",
        "national_id",
    ),
    (r"(^|_)(card_?number|pan|cc_?number|credit_?card)$", "card_number"),
    (r"(^|_)(iban|account_?number|bank_?account|acct_?no)$", "iban"),
    (
        r"(^|_)(memo|description|desc|comment|comments|note|notes|message|body|remarks|free_?text|narrative)$",
        "free_text",
    ),
]
_COMPANY_TABLES = re.compile(
    r"merchant|company|compan|vendor|supplier|org|store|shop|bank|partner|employer|brand"
)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)),
    ("iban", re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")),
    ("national_id", re.compile(r"^\d{3}-\d{2}-\d{4}$")),
    ("ip_address", re.compile(r"^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-f:]+:[0-9a-f:]+$", re.I)),
    ("phone", re.compile(r"^\+?[\d\s().-]{7,20}$")),
]


def _luhn(s: str) -> bool:
    """A card-shaped value: 13-19 digits (spaces and hyphens allowed) that pass Luhn."""
    compact = s.replace(" ", "").replace("-", "")
    return 13 <= len(compact) <= 19 and is_luhn_valid(compact)


def role_from_name(table: Table, col: Column) -> str | None:
    """A role suggested by the column name alone."""
    name = col.name.lower()
    if name in ("name", "title") and col.base_type in TEXT_TYPES:
        return "company_name" if _COMPANY_TABLES.search(table.name.lower()) else "person_name"
    if name == "city" or name.endswith("_city"):
        return "categorical"
    for pattern, role in _NAME_RULES:
        if re.search(pattern, name):
            if role == "birth_date" and col.base_type not in DATETIME_TYPES | TEXT_TYPES:
                continue
            return role
    return None


def role_from_values(values: list[str]) -> str | None:
    """A PII role when most sampled values match a known format."""
    if len(values) < 5:
        return None
    luhn_share = sum(_luhn(v) for v in values) / len(values)
    if luhn_share > 0.9:
        return "card_number"
    for role, pattern in _PATTERNS:
        share = sum(bool(pattern.match(v.strip())) for v in values) / len(values)
        if share > 0.8:
            if (
                role == "phone"
                and sum(c.isdigit() for v in values for c in v) / max(1, sum(map(len, values)))
                < 0.6
            ):
                continue
            return role
    return None


def infer_role(table: Table, col: Column, sample: list[str] | None) -> str:
    """Role of one column from constraints, name, type and (inside the boundary) sampled values."""
    if col.name in table.primary_key and not table.fk_for(col.name):
        return "key"
    if table.fk_for(col.name):
        return "foreign_key"
    alone_unique = any(set(u) == {col.name} for u in table.unique_sets)
    role = _infer_unconstrained(table, col, sample)
    if alone_unique and role in ("categorical", "numeric", "datetime", "boolean"):
        return "key"  # a unique column cannot be sampled from a marginal: generate it as a key
    return role


def _infer_unconstrained(table: Table, col: Column, sample: list[str] | None) -> str:
    t = col.base_type
    if t == "bool":
        return "boolean"
    by_name = role_from_name(table, col)
    by_type = _role_from_type(col, by_name)
    if by_type is not None:
        return by_type
    values = [v for v in (sample or []) if v is not None]
    if t in NUMERIC_TYPES:
        return _numeric_role(col, by_name)
    if t in TEXT_TYPES:
        return _text_role(by_name, values)
    return "ignore"


def _role_from_type(col: Column, by_name: str | None) -> str | None:
    """The role a column's type alone decides (None for numbers and text, which need more)."""
    t = col.base_type
    if t in DATETIME_TYPES:
        return "birth_date" if by_name == "birth_date" else "datetime"
    if t in EPOCH_TYPES:
        return "numeric"
    if t in JSON_TYPES or is_array(t):
        return "categorical"  # JSON by its shape, an array by its whole value
    if t == "bytea":
        return "binary"
    if col.enum_labels:
        return "categorical"
    if t == "uuid":
        return "key"
    return None


def _numeric_role(col: Column, by_name: str | None) -> str:
    """A number is an identifier when its name says so, a category when it is an integer code."""
    if by_name in ("postal_code", "national_id", "card_number", "iban", "phone"):
        return by_name
    # Integer codes named as such are categories; other integers are numbers (small ranges
    # get one bin per value, so no category threshold is needed).
    if col.base_type in INTEGER_TYPES and re.search(
        r"(^|_)(code|type|status|kind|category|class|flag)$", col.name.lower()
    ):
        return "categorical"
    return "numeric"


def _text_role(by_name: str | None, values: list[str]) -> str:
    """Text: a PII role by name, then by value; else long or mostly distinct text is free text
    and the rest categories."""
    if by_name and by_name != "categorical":
        return by_name
    by_value = role_from_values(values)
    if by_value:
        return by_value
    if by_name == "categorical" or not values:
        return "categorical"
    distinct = len(set(values))
    mean_len = sum(map(len, values)) / len(values)
    if mean_len > 40 or (distinct > 0.5 * len(values) and len(values) >= 50):
        return "free_text"
    return "categorical"


def _sample(
    conn: psycopg.Connection, schema: str, table: Table, limit: int
) -> dict[str, list[str]]:
    cols = [c for c in table.columns if c.base_type not in ("bytea", "json", "jsonb")]
    if not cols:
        return {}
    exprs = ", ".join(f"{qi(c.name)}::text" for c in cols)
    rows = conn.execute(
        f"SELECT {exprs} FROM {qi(schema)}.{qi(table.name)} LIMIT {int(limit)}"
    ).fetchall()
    return {c.name: [r[i] for r in rows if r[i] is not None] for i, c in enumerate(cols)}


def infer_roles(
    conn: psycopg.Connection,
    model: SchemaModel,
    overrides: dict[str, str] | None = None,
    sample_rows: int = 2000,
) -> dict[str, dict[str, str]]:
    """Roles for every column of every table; ``overrides`` ("table.column" -> role) win."""
    overrides = dict(overrides or {})
    for key in overrides:
        tname, cname = key.split(".")
        if tname not in model.tables:
            raise ConfigError(
                f"columns: {key!r} names unknown table {tname!r}; tables: {', '.join(model.tables)}"
            )
        if cname not in {c.name for c in model.tables[tname].columns}:
            raise ConfigError(f"columns: {key!r} names unknown column {cname!r} of table {tname}")
    roles: dict[str, dict[str, str]] = {}
    for t in model.tables.values():
        sample = _sample(conn, model.schema, t, sample_rows)
        roles[t.name] = {}
        for c in t.columns:
            key = f"{t.name}.{c.name}"
            if c.generated:  # computed by PostgreSQL from the other columns: never measured
                roles[t.name][c.name] = "ignore"
                continue
            roles[t.name][c.name] = overrides.get(key) or infer_role(t, c, sample.get(c.name))
    return roles


def qi(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def pii_columns(roles: dict[str, dict[str, str]]) -> Iterable[tuple[str, str, str]]:
    """(table, column, role) of every column whose raw values must never leave the boundary."""
    for t, cols in roles.items():
        for c, r in cols.items():
            if r in SYNTHESIZED_ROLES or r == "key":
                yield t, c, r
