"""Check digits: the one Luhn (cards, also read by roles and gates) and ISO 13616 IBANs."""

from __future__ import annotations

import numpy as np

from .words import IBAN_BANK_CODE

_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)


def luhn_check_digit(digits: np.ndarray) -> np.ndarray:
    """Luhn check digit for each row of an (n, k) matrix of payload digits (0-9)."""
    d = np.asarray(digits)
    if d.ndim != 2:
        raise ValueError(f"luhn_check_digit expects an (n, k) digit matrix, got shape {d.shape}")
    d = d.astype(np.uint8, copy=False)
    k = d.shape[1]
    # The payload's rightmost digit sits next to the check digit, so it is the one doubled.
    doubled = (k - 1 - np.arange(k)) % 2 == 0
    contrib = np.where(doubled, _LUHN_DOUBLE[d], d)
    total = contrib.sum(axis=1, dtype=np.int64)
    return ((10 - total % 10) % 10).astype(np.uint8)


def is_luhn_valid(number: str) -> bool:
    """True when ``number`` (digits, optionally separated by spaces or hyphens) passes Luhn."""
    digits = number.replace(" ", "").replace("-", "")
    if len(digits) < 2 or not (digits.isascii() and digits.isdigit()):
        return False
    payload = np.frombuffer(digits[:-1].encode(), dtype=np.uint8) - ord("0")
    return int(luhn_check_digit(payload[None, :])[0]) == int(digits[-1])


def _iban_numeric(text: str) -> str:
    """ISO 13616 letter expansion: A=10 ... Z=35, digits unchanged."""
    return "".join(str(int(ch, 36)) for ch in text)


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 check: 2 letters, 2 digits, alphanumeric BBAN, and mod-97 of the rearranged
    number equals 1."""
    s = iban.replace(" ", "").upper()
    if not (
        5 <= len(s) <= 34 and s.isascii() and s.isalnum() and s[:2].isalpha() and s[2:4].isdigit()
    ):
        return False
    return int(_iban_numeric(s[4:] + s[:4])) % 97 == 1


def _iban_check_digits(sort_code: np.ndarray, account: np.ndarray) -> np.ndarray:
    """Vectorized ISO 7064 mod-97-10 check digits for GB ``SYNT`` IBANs.

    The rearranged number is ``num(SYNT) || sort(6) || account(8) || num(GB) || 00``; its value
    mod 97 is a sum of each chunk's residue times the residue of its power of ten.
    """
    bank = int(_iban_numeric(IBAN_BANK_CODE))
    tail = int(_iban_numeric("GB") + "00")
    tail_len = len(str(tail))
    const = (bank * pow(10, 6 + 8 + tail_len, 97) + tail) % 97
    r = (
        const
        + (sort_code % 97) * pow(10, 8 + tail_len, 97)
        + (account % 97) * pow(10, tail_len, 97)
    ) % 97
    return 98 - r
