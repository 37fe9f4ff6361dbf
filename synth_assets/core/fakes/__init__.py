"""Vectorized, format-valid fake values for PII column roles.

Every value is built column-at-a-time with numpy draws and polars string expressions; there is
no per-row Python on the hot path. Randomness comes only from the ``np.random.Generator`` passed
in, so the output is a pure function of (generator state, ordinals, arguments).

Where a reserved range exists the values are provably not real:

* emails use the RFC 2606 domains example.com / example.net / example.org;
* phone numbers use the NANP fiction block 555-0100..0199, or the unassigned ``+999`` code;
* SSNs use areas 900-999, which the SSA never issues;
* card numbers use well-known test BINs; IBANs use the bank code ``SYNT``;
* IPv4 addresses come from the RFC 5737 documentation blocks, IPv6 from 2001:db8::/32.

Uniqueness (``unique=True``) is derived from the row ordinal through a fixed injective mapping,
never from retries, so shards that generate disjoint ordinals never collide.

A leaf: it imports nothing of the package but its errors, so a shard worker loads it alone.
"""

from .checkdigits import iban_is_valid, is_luhn_valid, luhn_check_digit
from .column import PII_KINDS, fake_column
from .words import CARD_TEST_BINS as CARD_TEST_BINS
from .words import CITIES as CITIES
from .words import COMPANY_SUFFIXES as COMPANY_SUFFIXES
from .words import COMPANY_WORDS_1 as COMPANY_WORDS_1
from .words import COMPANY_WORDS_2 as COMPANY_WORDS_2
from .words import EMAIL_DOMAINS as EMAIL_DOMAINS
from .words import FIRST_NAMES as FIRST_NAMES
from .words import IBAN_BANK_CODE as IBAN_BANK_CODE
from .words import LAST_NAMES as LAST_NAMES
from .words import LOREM_WORDS as LOREM_WORDS
from .words import STREET_NAMES as STREET_NAMES
from .words import STREET_SUFFIXES as STREET_SUFFIXES

__all__ = [
    "PII_KINDS",
    "fake_column",
    "iban_is_valid",
    "is_luhn_valid",
    "luhn_check_digit",
]
