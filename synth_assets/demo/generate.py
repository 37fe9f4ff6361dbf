"""The demo bank's five tables in memory: one independent random stream per table, spawned from
one seed, so the same seed and size always produce byte-identical tables."""

import numpy as np
import polars as pl

from synth_assets.core.errors import ConfigError

from .accounts import gen_accounts, gen_cards, gen_merchants
from .customers import gen_customers
from .transactions import gen_transactions


def generate_demo(customers: int = 20_000, seed: int = 7) -> dict[str, pl.DataFrame]:
    """Generate the five demo tables in memory (no database); same seed -> same frames."""
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 50:
        raise ConfigError(f"customers must be an integer >= 50, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    root = np.random.default_rng(seed)
    r_cust, r_merch, r_acct, r_card, r_tx = root.spawn(5)
    cust_df, cust = gen_customers(r_cust, customers)
    merch_df, merch = gen_merchants(r_merch, customers)
    acc_df, acc = gen_accounts(r_acct, cust)
    card_df = gen_cards(r_card, acc)
    tx_df = gen_transactions(r_tx, acc, cust, merch)
    return {
        "customers": cust_df,
        "merchants": merch_df,
        "accounts": acc_df,
        "cards": card_df,
        "transactions": tx_df,
    }


# --------------------------------------------------------------------------------------------
# DDL and loading
