"""The demo "production" database: a fictional UK retail bank in PostgreSQL.

This is the fake source the product is demonstrated and tested against, NOT the synthetic
generator. It is deliberately realistic, including the hard cases a leaky generator would copy:

* skewed fan-out (most customers hold 1-2 accounts, a few hold up to 25; heavy-tailed
  transactions per account) and a self-referencing ``customers.referred_by`` chain;
* time structure: customer sign-ups trend upwards over three years, transactions carry a
  diurnal cycle, a weekly cycle (fewer transfers, more card-present spending at weekends),
  a seasonal December bump and an upward trend, always after the account was opened;
  ``pending`` transactions only in the last days before :data:`DEMO_END`;
* heavy-tailed amounts by merchant category, channel depending on category and weekday;
* rare records (each at most ten rows): :data:`OUTLIER_AMOUNTS` (three transfers of a million
  or more), a handful of ``private`` customers born before 1935 holding a ``loan`` account, and
  a few ``atm`` x ``reversed`` transactions (a combination that never occurs otherwise);
* direct identifiers: names (with apostrophes and hyphens), unique e-mails and phones,
  SSN-like national ids, street addresses with commas, valid GB IBANs, Luhn-valid card numbers
  on real-looking BINs, and free-text memos that sometimes name a person.

Everything derives from ``np.random.default_rng(seed)``; nothing reads the clock, so the same
``seed`` and size always produce byte-identical tables.
"""

from .database import build_demo, demo_exists
from .generate import generate_demo
from .vocab import (
    ACCOUNT_STATUSES,
    ACCOUNT_TYPES,
    CHANNELS,
    DEMO_END,
    DEMO_TABLES,
    NETWORKS,
    OUTLIER_AMOUNTS,
    RARE_ATM_REVERSED,
    RARE_ELDERLY_PRIVATE,
    SEGMENTS,
    TX_STATUSES,
)

__all__ = [
    "ACCOUNT_STATUSES",
    "ACCOUNT_TYPES",
    "CHANNELS",
    "DEMO_END",
    "DEMO_TABLES",
    "NETWORKS",
    "OUTLIER_AMOUNTS",
    "RARE_ATM_REVERSED",
    "RARE_ELDERLY_PRIVATE",
    "SEGMENTS",
    "TX_STATUSES",
    "build_demo",
    "demo_exists",
    "generate_demo",
]
