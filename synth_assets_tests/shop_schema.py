"""A second, non-demo schema for generic tests: self-reference, an FK cycle, a reference table,
composite unique, enum, uuid and varchar limits."""

from __future__ import annotations

import numpy as np
import psycopg

DDL = """
DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
CREATE TYPE shop.tier AS ENUM ('free', 'plus', 'pro');
CREATE TABLE shop.stores (
  id integer PRIMARY KEY, store_name varchar(60) NOT NULL, region text NOT NULL, opened date NOT NULL);
CREATE TABLE shop.users (
  id bigint PRIMARY KEY, email varchar(80) NOT NULL UNIQUE, display_name text NOT NULL,
  country text NOT NULL, tier shop.tier NOT NULL, signup_at timestamp NOT NULL,
  referrer_id bigint REFERENCES shop.users(id), home_store integer REFERENCES shop.stores(id),
  vip boolean);
CREATE TABLE shop.teams (id bigint PRIMARY KEY, label text NOT NULL, lead_member_id bigint);
CREATE TABLE shop.members (
  id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES shop.users(id),
  team_id bigint NOT NULL REFERENCES shop.teams(id), joined_at timestamptz NOT NULL,
  token uuid NOT NULL UNIQUE);
ALTER TABLE shop.teams ADD CONSTRAINT teams_lead_fk FOREIGN KEY (lead_member_id) REFERENCES shop.members(id);
CREATE TABLE shop.orders (
  id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES shop.users(id),
  store_id integer NOT NULL REFERENCES shop.stores(id), placed_at timestamptz NOT NULL,
  total numeric(10,2) NOT NULL, status text NOT NULL, note text);
CREATE TABLE shop.order_items (
  order_id bigint NOT NULL REFERENCES shop.orders(id), line_no smallint NOT NULL,
  sku text NOT NULL, qty integer NOT NULL, PRIMARY KEY (order_id, line_no));
CREATE INDEX orders_user_idx ON shop.orders (user_id);
"""


def build_shop(url: str, users: int = 400, seed: int = 11) -> None:
    """Create and fill the `shop` schema (fixed seed: this is test *source* data)."""
    rng = np.random.default_rng(seed)
    regions = np.array(["north", "south", "east", "west"])
    countries = np.array(["NL", "DE", "FR", "BE", "ES"])
    statuses = np.array(["paid", "shipped", "returned", "cancelled"])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
        n_stores = 30
        with conn.cursor().copy("COPY shop.stores FROM STDIN") as cp:
            for i in range(n_stores):
                cp.write_row(
                    (i + 1, f"Store {i}", regions[i % 4], f"20{10 + i % 10}-0{1 + i % 9}-15")
                )
        with conn.cursor().copy("COPY shop.users FROM STDIN") as cp:
            for i in range(users):
                ref = int(rng.integers(1, i + 1)) if i > 0 and rng.random() < 0.3 else None
                cp.write_row(
                    (
                        i + 1,
                        f"user{i}@mail{i % 7}.com",
                        f"Person {i} Name",
                        countries[rng.integers(0, 5)],
                        ["free", "plus", "pro"][int(rng.integers(0, 3))],
                        f"2023-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:15:00",
                        ref,
                        int(rng.integers(1, n_stores + 1)) if rng.random() < 0.8 else None,
                        bool(rng.random() < 0.1) if rng.random() < 0.9 else None,
                    )
                )
        # teams and members form a cycle: members.team_id -> teams, teams.lead_member_id -> members
        n_teams = max(2, users // 20)
        with conn.cursor().copy("COPY shop.teams (id, label) FROM STDIN") as cp:
            for i in range(n_teams):
                cp.write_row((i + 1, f"team-{i}"))
        mid = 0
        with conn.cursor().copy("COPY shop.members FROM STDIN") as cp:
            for u in range(users):
                for _ in range(int(rng.integers(0, 3))):
                    mid += 1
                    cp.write_row(
                        (
                            mid,
                            u + 1,
                            int(rng.integers(1, n_teams + 1)),
                            f"2024-0{1 + mid % 9}-10 10:00:00+00",
                            f"00000000-0000-4000-8000-{mid:012d}",
                        )
                    )
        conn.execute(
            "UPDATE shop.teams SET lead_member_id = (SELECT min(id) FROM shop.members m WHERE m.team_id = teams.id)"
        )
        oid = 0
        orders, items = [], []
        for u in range(users):
            for _ in range(int(rng.geometric(0.3))):
                oid += 1
                orders.append(
                    (
                        oid,
                        u + 1,
                        int(rng.integers(1, n_stores + 1)),
                        f"2024-{1 + oid % 12:02d}-{1 + oid % 28:02d} {oid % 24:02d}:30:00+00",
                        round(float(rng.lognormal(3, 1)), 2),
                        statuses[min(3, int(rng.geometric(0.6)) - 1)],
                        "gift wrap please" if rng.random() < 0.1 else None,
                    )
                )
                for line in range(int(rng.integers(1, 4))):
                    items.append(
                        (
                            oid,
                            line + 1,
                            f"SKU-{int(rng.integers(0, 50)):03d}",
                            int(rng.integers(1, 5)),
                        )
                    )
        with conn.cursor().copy("COPY shop.orders FROM STDIN") as cp:
            for r in orders:
                cp.write_row(r)
        with conn.cursor().copy("COPY shop.order_items FROM STDIN") as cp:
            for r in items:
                cp.write_row(r)
        conn.execute("ANALYZE")


# The shop's public catalogue, declared as a user would (its 30 stores and 50 SKUs are far too
# few units per value to release at epsilon = 1): domains cost no budget, frequencies stay DP.
SHOP_PUBLIC = {
    "values": {
        "stores.store_name": [f"Store {i}" for i in range(30)],
        "stores.region": ["north", "south", "east", "west"],
        "users.country": ["NL", "DE", "FR", "BE", "ES"],
        "orders.status": ["paid", "shipped", "returned", "cancelled"],
        "order_items.sku": [f"SKU-{i:03d}" for i in range(50)],
    }
}
SHOP_BOUNDS = {"stores.opened": ["2010-01-01", "2019-12-31"]}
