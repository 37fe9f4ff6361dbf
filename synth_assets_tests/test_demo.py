"""The demo bank: referential integrity, uniqueness, time order, skew, planted rare records,
valid identifiers and determinism, on a small build (500 customers) in an embedded PostgreSQL."""

from __future__ import annotations

import re

import pytest

from synth_assets.core.errors import ConfigError
from synth_assets.core.pg import connect, resolve_url
from synth_assets.demo import (
    DEMO_END,
    DEMO_TABLES,
    OUTLIER_AMOUNTS,
    build_demo,
    demo_exists,
    generate_demo,
)
from synth_assets_tests.conftest import stop_embedded_server

N_CUSTOMERS = 500


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo_pg")
    yield path
    stop_embedded_server(path)


@pytest.fixture(scope="module")
def bank(workdir):
    url = resolve_url("embedded:///bank_test", workdir)
    rows = build_demo(url, customers=N_CUSTOMERS, seed=7)
    return url, rows


@pytest.fixture(scope="module")
def conn(bank):
    url, _ = bank
    with connect(url, autocommit=True) as c:
        yield c


def _one(conn, query: str, params=None):
    return conn.execute(query, params).fetchone()[0]


def _fingerprint(url: str, schema: str = "public") -> dict[str, str]:
    with connect(url) as c:
        return {
            t: _one(
                c, f'SELECT md5(string_agg(x::text, \'|\' ORDER BY x.id)) FROM "{schema}"."{t}" x'
            )
            for t in DEMO_TABLES
        }


def test_row_counts_and_exists(bank, conn):
    url, rows = bank
    assert tuple(rows) == DEMO_TABLES
    for t, n in rows.items():
        assert _one(conn, f"SELECT count(*) FROM {t}") == n > 0
    assert rows["customers"] == N_CUSTOMERS
    assert rows["merchants"] == 200
    assert demo_exists(url)
    assert not demo_exists(url, schema="no_such_schema")
    # roughly the default shape, scaled: ~15-35 transactions per customer
    assert 15 * N_CUSTOMERS <= rows["transactions"] <= 35 * N_CUSTOMERS


def test_constraints_and_indexes_declared(conn):
    kinds = dict(
        conn.execute(
            "SELECT contype, count(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
            "WHERE r.relnamespace = 'public'::regnamespace AND r.relname = ANY(%s) GROUP BY 1",
            (list(DEMO_TABLES),),
        ).fetchall()
    )
    assert kinds["p"] == 5 and kinds["f"] == 5 and kinds["u"] == 4 and kinds["c"] >= 8
    indexed = {
        (t, col)
        for t, col in conn.execute(
            "SELECT t.relname, a.attname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] "
            "WHERE t.relnamespace = 'public'::regnamespace"
        ).fetchall()
    }
    for fk in [
        ("customers", "referred_by"),
        ("accounts", "customer_id"),
        ("cards", "account_id"),
        ("transactions", "account_id"),
        ("transactions", "merchant_id"),
        ("transactions", "ts"),
    ]:
        assert fk in indexed


@pytest.mark.parametrize(
    "child, col, parent",
    [
        ("customers", "referred_by", "customers"),
        ("accounts", "customer_id", "customers"),
        ("cards", "account_id", "accounts"),
        ("transactions", "account_id", "accounts"),
        ("transactions", "merchant_id", "merchants"),
    ],
)
def test_foreign_keys_resolve(conn, child, col, parent):
    orphans = _one(
        conn,
        f"SELECT count(*) FROM {child} c LEFT JOIN {parent} p ON p.id = c.{col} "
        f"WHERE c.{col} IS NOT NULL AND p.id IS NULL",
    )
    assert orphans == 0


@pytest.mark.parametrize(
    "table, col",
    [
        ("customers", "email"),
        ("customers", "national_id"),
        ("customers", "phone"),
        ("accounts", "iban"),
        ("cards", "card_number"),
    ],
)
def test_unique_columns(conn, table, col):
    total, distinct = conn.execute(
        f"SELECT count({col}), count(DISTINCT {col}) FROM {table}"
    ).fetchone()
    assert total == distinct > 0


def test_time_order(conn):
    assert (
        _one(
            conn,
            "SELECT count(*) FROM transactions t JOIN accounts a ON a.id = t.account_id "
            "WHERE t.ts <= a.opened_at",
        )
        == 0
    )
    assert (
        _one(
            conn,
            "SELECT count(*) FROM accounts a JOIN customers c ON c.id = a.customer_id "
            "WHERE a.opened_at <= c.created_at",
        )
        == 0
    )
    assert (
        _one(
            conn,
            "SELECT count(*) FROM customers c JOIN customers r ON r.id = c.referred_by "
            "WHERE r.created_at >= c.created_at",
        )
        == 0
    )
    referred = _one(conn, "SELECT avg((referred_by IS NOT NULL)::int)::float FROM customers")
    assert 0.22 <= referred <= 0.38
    lo, hi = conn.execute("SELECT min(ts), max(ts) FROM transactions").fetchone()
    assert lo.year == 2023 and hi.timestamp() <= DEMO_END.astype(int) and hi.year == 2025
    ages = conn.execute(
        "SELECT min(age(%s::date, date_of_birth)), max(age(%s::date, date_of_birth)) "
        "FROM customers",
        (str(DEMO_END.astype("datetime64[D]")),) * 2,
    ).fetchone()
    assert ages[0].days >= 18 * 365 and ages[1].days <= 96 * 366


def test_fanout_is_skewed(conn):
    med, top = conn.execute(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n), max(n) "
        "FROM (SELECT count(*) n FROM accounts GROUP BY customer_id) x"
    ).fetchone()
    assert top >= 4 * med and top <= 25
    med_tx, top_tx = conn.execute(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n), max(n) "
        "FROM (SELECT count(*) n FROM transactions GROUP BY account_id) x"
    ).fetchone()
    assert top_tx >= 8 * med_tx


def test_time_patterns(conn):
    # diurnal: the lunch hour is much busier than the small hours
    night, lunch = conn.execute(
        "SELECT count(*) FILTER (WHERE extract(hour FROM ts) BETWEEN 2 AND 4), "
        "count(*) FILTER (WHERE extract(hour FROM ts) BETWEEN 12 AND 14) FROM transactions"
    ).fetchone()
    assert lunch > 5 * night
    # weekly: a smaller share of transfers at weekends than on weekdays
    wd, we = conn.execute(
        "SELECT avg((channel = 'transfer')::int) FILTER (WHERE extract(isodow FROM ts) < 6)::float, "
        "avg((channel = 'transfer')::int) FILTER (WHERE extract(isodow FROM ts) >= 6)::float "
        "FROM transactions"
    ).fetchone()
    assert we < 0.7 * wd
    # trend: the last year is busier than the first
    first, last = conn.execute(
        "SELECT count(*) FILTER (WHERE ts < '2024-07-01'), count(*) FILTER (WHERE ts >= "
        "'2024-07-01') FROM transactions"
    ).fetchone()
    assert last > 1.2 * first
    # pending only in the last days
    assert _one(conn, "SELECT count(*) FROM transactions WHERE status = 'pending' AND ts < "
                "'2025-06-27'") == 0  # fmt: skip


def test_outliers_and_rare_combinations(conn):
    big = [
        float(x)
        for (x,) in conn.execute(
            "SELECT amount FROM transactions WHERE amount >= 1000000 ORDER BY amount"
        ).fetchall()
    ]
    assert big == sorted(OUTLIER_AMOUNTS)
    elderly = _one(
        conn,
        "SELECT count(DISTINCT c.id) FROM customers c JOIN accounts a ON a.customer_id = c.id "
        "WHERE c.segment = 'private' AND c.date_of_birth < '1935-01-01' "
        "AND a.account_type = 'loan'",
    )
    assert 1 <= elderly <= 10
    assert (
        _one(conn, "SELECT count(*) FROM customers WHERE date_of_birth < '1935-01-01'") == elderly
    )
    atm_reversed = _one(
        conn, "SELECT count(*) FROM transactions WHERE channel = 'atm' AND status = 'reversed'"
    )
    assert 1 <= atm_reversed <= 10
    assert _one(conn, "SELECT count(*) FROM transactions WHERE amount = 0") == 0


def test_memo_null_rate(conn):
    rate = _one(conn, "SELECT avg((memo IS NULL)::int)::float FROM transactions")
    assert 0.7 <= rate <= 0.9
    memos = [m for (m,) in conn.execute("SELECT DISTINCT memo FROM transactions").fetchall()]
    assert any(m and m.startswith("gift for ") for m in memos)


def _iban_ok(iban: str) -> bool:
    s = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in s)) % 97 == 1


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def test_identifiers_look_real(conn):
    ibans = [r[0] for r in conn.execute("SELECT iban FROM accounts").fetchall()]
    assert all(re.fullmatch(r"GB\d{2}[A-Z]{4}\d{14}", i) and _iban_ok(i) for i in ibans)
    assert not any("SYNT" in i for i in ibans)
    cards = conn.execute("SELECT card_number, network FROM cards").fetchall()
    assert all(_luhn_ok(n) for n, _ in cards)
    assert all(n[0] == ("4" if net == "visa" else "5") for n, net in cards)
    assert not any(n[:6] in ("400000", "510510", "222300", "411111", "555555") for n, _ in cards)
    ids = [r[0] for r in conn.execute("SELECT national_id FROM customers").fetchall()]
    for nid in ids:
        area, group, serial = nid.split("-")
        assert len(area) == 3 and len(group) == 2 and len(serial) == 4
        assert 1 <= int(area) <= 899 and int(area) != 666
        assert int(group) >= 1 and int(serial) >= 1
    emails = [r[0] for r in conn.execute("SELECT email FROM customers").fetchall()]
    assert all(re.fullmatch(r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]{2,}", e) for e in emails)


def test_deterministic_and_schema_option(bank, workdir):
    url, rows = bank
    reference = _fingerprint(url)
    other = resolve_url("embedded:///bank_test_again", workdir)
    assert build_demo(other, customers=N_CUSTOMERS, seed=7) == rows
    assert _fingerprint(other) == reference
    # a different seed in another schema gives different data and leaves public alone
    build_demo(other, customers=N_CUSTOMERS, seed=8, schema="alt")
    assert demo_exists(other, schema="alt")
    alt = _fingerprint(other, "alt")
    assert all(alt[t] != reference[t] for t in DEMO_TABLES)
    # rebuilding over existing tables drops and recreates them identically
    build_demo(other, customers=N_CUSTOMERS, seed=7)
    assert _fingerprint(other) == reference


def test_generate_is_pure_and_validates():
    a = generate_demo(customers=100, seed=3)
    b = generate_demo(customers=100, seed=3)
    assert all(a[t].equals(b[t]) for t in DEMO_TABLES)
    with pytest.raises(ConfigError):
        generate_demo(customers=0)
    with pytest.raises(ConfigError):
        generate_demo(customers=100, seed=-1)
