"""The demo bank in PostgreSQL: tables created, COPY-loaded, then constraints, indexes and
statistics added (faster after the data), or found already there."""

import io
import logging

import polars as pl
import psycopg
from psycopg import sql

from synth_assets.core.errors import SourceError
from synth_assets.core.pg import connect, redact

from .generate import generate_demo
from .vocab import DEMO_TABLES

log = logging.getLogger(__name__)

_CREATE = {
    "customers": """
        id bigint NOT NULL, full_name text NOT NULL, email text NOT NULL, phone text,
        date_of_birth date NOT NULL, national_id text NOT NULL, street_address text NOT NULL,
        postal_code text NOT NULL, segment text NOT NULL, created_at timestamptz NOT NULL,
        referred_by bigint""",
    "merchants": """
        id integer NOT NULL, name text NOT NULL, category_code text NOT NULL,
        city text NOT NULL, country text NOT NULL""",
    "accounts": """
        id bigint NOT NULL, customer_id bigint NOT NULL, iban text NOT NULL,
        account_type text NOT NULL, status text NOT NULL, opened_at timestamptz NOT NULL,
        balance numeric(14,2) NOT NULL""",
    "cards": """
        id bigint NOT NULL, account_id bigint NOT NULL, card_number text NOT NULL,
        network text NOT NULL, expiry date NOT NULL""",
    "transactions": """
        id bigint NOT NULL, account_id bigint NOT NULL, merchant_id integer NOT NULL,
        ts timestamptz NOT NULL, amount numeric(12,2) NOT NULL, channel text NOT NULL,
        status text NOT NULL, memo text""",
}

# Added after the data is loaded (faster), in this order. {s} is the quoted schema.
_CONSTRAINTS = {
    "customers": [
        "ADD CONSTRAINT customers_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT customers_email_key UNIQUE (email)",
        "ADD CONSTRAINT customers_national_id_key UNIQUE (national_id)",
        "ADD CONSTRAINT customers_segment_check "
        "CHECK (segment IN ('retail', 'premium', 'private', 'business'))",
        "ADD CONSTRAINT customers_referred_by_fkey FOREIGN KEY (referred_by) "
        "REFERENCES {s}.customers (id)",
        "ADD CONSTRAINT customers_referral_check CHECK (referred_by <> id)",
    ],
    "merchants": [
        "ADD CONSTRAINT merchants_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT merchants_category_code_check CHECK (category_code ~ '^[0-9]{{4}}$')",
        "ADD CONSTRAINT merchants_country_check CHECK (country ~ '^[A-Z]{{2}}$')",
    ],
    "accounts": [
        "ADD CONSTRAINT accounts_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT accounts_iban_key UNIQUE (iban)",
        "ADD CONSTRAINT accounts_customer_id_fkey FOREIGN KEY (customer_id) "
        "REFERENCES {s}.customers (id)",
        "ADD CONSTRAINT accounts_account_type_check "
        "CHECK (account_type IN ('checking', 'savings', 'credit', 'loan'))",
        "ADD CONSTRAINT accounts_status_check CHECK (status IN ('active', 'dormant', 'closed'))",
        "ADD CONSTRAINT accounts_closed_balance_check CHECK (status <> 'closed' OR balance = 0)",
    ],
    "cards": [
        "ADD CONSTRAINT cards_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT cards_card_number_key UNIQUE (card_number)",
        "ADD CONSTRAINT cards_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES {s}.accounts (id)",
        "ADD CONSTRAINT cards_network_check CHECK (network IN ('visa', 'mastercard'))",
        "ADD CONSTRAINT cards_card_number_check CHECK (card_number ~ '^[0-9]{{16}}$')",
    ],
    "transactions": [
        "ADD CONSTRAINT transactions_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT transactions_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES {s}.accounts (id)",
        "ADD CONSTRAINT transactions_merchant_id_fkey FOREIGN KEY (merchant_id) "
        "REFERENCES {s}.merchants (id)",
        "ADD CONSTRAINT transactions_amount_check CHECK (amount <> 0)",
        "ADD CONSTRAINT transactions_channel_check "
        "CHECK (channel IN ('card_present', 'online', 'atm', 'transfer'))",
        "ADD CONSTRAINT transactions_status_check "
        "CHECK (status IN ('settled', 'pending', 'declined', 'reversed'))",
    ],
}

_INDEXES = [
    ("customers_referred_by_idx", "customers", "referred_by"),
    ("accounts_customer_id_idx", "accounts", "customer_id"),
    ("cards_account_id_idx", "cards", "account_id"),
    ("transactions_account_id_idx", "transactions", "account_id"),
    ("transactions_merchant_id_idx", "transactions", "merchant_id"),
    ("transactions_ts_idx", "transactions", "ts"),
]

_COPY_CHUNK = 4 << 20


def _copy(cur: psycopg.Cursor, schema: str, table: str, df: pl.DataFrame) -> None:
    buf = io.BytesIO()
    df.write_csv(buf, include_header=False, null_value="", datetime_format="%Y-%m-%d %H:%M:%S+00")
    data = buf.getbuffer()
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, FREEZE true)").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, df.columns))
    )
    with cur.copy(stmt) as cp:
        for start in range(0, len(data), _COPY_CHUNK):
            cp.write(data[start : start + _COPY_CHUNK])


def build_demo(
    url: str, *, customers: int = 20_000, seed: int = 7, schema: str = "public"
) -> dict[str, int]:
    """Create the demo schema and data in the database at libpq `url` (drop and recreate the
    demo tables if present); return rows per table."""
    frames = generate_demo(customers=customers, seed=seed)
    s = sql.Identifier(schema)
    try:
        with connect(url) as conn, conn.cursor() as cur:
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            cur.execute(
                sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(schema, t) for t in DEMO_TABLES)
                )
            )
            for t in DEMO_TABLES:
                cur.execute(
                    sql.SQL("CREATE TABLE {} ({})").format(
                        sql.Identifier(schema, t), sql.SQL(_CREATE[t])
                    )
                )
                _copy(cur, schema, t, frames[t])
            for t in DEMO_TABLES:
                for clause in _CONSTRAINTS[t]:
                    cur.execute(
                        sql.SQL("ALTER TABLE {} ").format(sql.Identifier(schema, t))
                        + sql.SQL(clause).format(s=s)
                    )
            for name, t, col in _INDEXES:
                cur.execute(
                    sql.SQL("CREATE INDEX {} ON {} ({})").format(
                        sql.Identifier(name), sql.Identifier(schema, t), sql.Identifier(col)
                    )
                )
            for t in DEMO_TABLES:
                cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, t)))
    except psycopg.Error as exc:
        raise SourceError(
            f"building the demo bank in {redact(url)} (schema {schema!r}) failed: "
            f"{str(exc).strip().splitlines()[0]}. Check that the role may create tables there."
        ) from exc
    rows = {t: frames[t].height for t in DEMO_TABLES}
    log.info("demo bank built in schema %s: %s", schema, rows)
    return rows


def demo_exists(url: str, schema: str = "public") -> bool:
    """True when all five demo tables exist in ``schema`` and none is empty."""
    with connect(url) as conn:
        found = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)",
            (schema, list(DEMO_TABLES)),
        ).fetchall()
        if len(found) != len(DEMO_TABLES):
            return False
        for t in DEMO_TABLES:
            (nonempty,) = conn.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, t))
            ).fetchone()
            if not nonempty:
                return False
    return True
