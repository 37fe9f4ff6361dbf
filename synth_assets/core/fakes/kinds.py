"""Generators, one per PII kind: (rng, ordinals, unique, max_length, pg_type, params) -> Series."""

from __future__ import annotations

import datetime as _dt

import numpy as np
import polars as pl

from synth_assets.core.errors import GenerationError

from .checkdigits import _iban_check_digits, luhn_check_digit
from .helpers import (
    _cat,
    _check_capacity,
    _max_ordinal,
    _need_length,
    _pick,
    _scramble,
    _suffix_unique,
    _text,
    _truncate,
)
from .words import (
    _DOMAIN_LEN,
    _IBAN_LEN,
    _IPV6_DOC_PREFIX,
    _S_CITY,
    _S_CO1,
    _S_CO2,
    _S_CO_SUFFIX,
    _S_DOMAIN,
    _S_FIRST,
    _S_FIRST_LOWER,
    _S_IPV4_NET,
    _S_LAST,
    _S_LAST_LOWER,
    _S_NPA,
    _S_STREET,
    _S_STREET_SUFFIX,
    CARD_TEST_BINS,
    IBAN_BANK_CODE,
    _hex16,
)

_SSN_CAPACITY = 100 * 99 * 9999  # areas 900-999 x groups 01-99 x serials 0001-9999
_CARD_MIDDLE = 10**9  # digits 7-15
_IBAN_ACCOUNT = 10**8
_IBAN_CAPACITY = 10**6 * _IBAN_ACCOUNT
_PHONE_UNIQUE_DIGITS = 12  # +999 plus 12 digits = 15 digits, the E.164 maximum
_DEFAULT_REFERENCE_DATE = _dt.date(2025, 1, 1)
_EPOCH = _dt.date(1970, 1, 1)
_US_PER_DAY = 86_400 * 1_000_000


def _email(rng, ordinals, unique, max_length, pg_type, params):
    n = len(ordinals)
    first = _pick(_S_FIRST_LOWER, rng, n)
    last = _pick(_S_LAST_LOWER, rng, n)
    domain = _pick(_S_DOMAIN, rng, n)
    suffix = _text(ordinals)
    # Names are letters only and the suffix is the ordinal's digits, so the local part splits
    # unambiguously into (letters, ordinal): distinct ordinals give distinct emails.
    at_domain_len = 1 + _DOMAIN_LEN
    # A cut email would leave the reserved domain, so a too-short column is an error even
    # when unique=False.
    _need_length(
        "email", max_length, at_domain_len + 1, "a local part + a reserved domain", unique=unique
    )
    if max_length is None:
        return _cat(first, ".", last, suffix, "@", domain)
    budget = max_length - at_domain_len
    frame = pl.DataFrame({"f": first, "l": last, "s": suffix, "d": domain})
    name = pl.concat_str([pl.col("f"), pl.lit("."), pl.col("l")])
    if unique:
        width = int(suffix.str.len_chars().max() or 0)
        _need_length(
            "email", max_length, at_domain_len + width, f"a {width}-digit unique suffix + domain"
        )
        keep = pl.lit(budget) - pl.col("s").str.len_chars().cast(pl.Int64)
        name = name.str.head(pl.when(keep > 0).then(keep).otherwise(0))
        local = pl.concat_str([name.str.strip_chars_end("."), pl.col("s")])
    else:
        local = pl.concat_str([name, pl.col("s")]).str.head(budget).str.strip_chars_end(".")
    value = pl.concat_str([local, pl.lit("@"), pl.col("d")])
    return frame.select(value.alias("v")).to_series()


def _names(kind: str):
    def gen(rng, ordinals, unique, max_length, pg_type, params):
        n = len(ordinals)
        if kind == "first_name":
            base = _pick(_S_FIRST, rng, n)
        elif kind == "last_name":
            base = _pick(_S_LAST, rng, n)
        elif kind == "person_name":
            base = _cat(_pick(_S_FIRST, rng, n), " ", _pick(_S_LAST, rng, n))
        elif kind == "city":
            base = _pick(_S_CITY, rng, n)
        else:  # company_name
            base = _cat(
                _pick(_S_CO1, rng, n), " ", _pick(_S_CO2, rng, n), " ", _pick(_S_CO_SUFFIX, rng, n)
            )
        if unique:
            return _suffix_unique(kind, base, ordinals, max_length)
        return _truncate(base, max_length)

    return gen


def _phone(rng, ordinals, unique, max_length, pg_type, params):
    if unique:
        # The NANP fiction block (555-0100..0199) only has 100 numbers per area code, far too
        # few for unique columns. +999 is an ITU-T E.164 code reserved for future use and
        # assigned to no country, so "+999" + ordinal can never ring a real subscriber.
        _need_length("phone", max_length, 5, "'+999' and at least one ordinal digit")
        width = _PHONE_UNIQUE_DIGITS
        if max_length is not None:
            width = min(width, max_length - 4)
        _check_capacity("phone", ordinals, 10**width, f"'+999' + {width} ordinal digits")
        return _cat("+999", _text(ordinals, width))
    n = len(ordinals)
    npa = _pick(_S_NPA, rng, n)
    line = _text(rng.integers(0, 100, size=n), 2)
    # Pick the richest format that fits the column, falling back to a plain cut.
    if max_length is None or max_length >= 17:
        return _cat("+1 (", npa, ") 555-01", line)
    if max_length >= 15:
        return _cat("+1-", npa, "-555-01", line)
    if max_length >= 12:
        return _cat("+1", npa, "55501", line)
    return _truncate(_cat(npa, "55501", line), max_length)


def _address(rng, ordinals, unique, max_length, pg_type, params):
    n = len(ordinals)
    if unique:
        # The house number is ordinal + 1: the leading digits identify the row.
        width = len(str(_max_ordinal(ordinals) + 1))
        _need_length("address", max_length, width, f"a {width}-digit ordinal house number")
        number = _text(ordinals + 1)
    else:
        number = _text(rng.integers(1, 10_000, size=n))
    street = _pick(_S_STREET, rng, n)
    suffix = _pick(_S_STREET_SUFFIX, rng, n)
    return _truncate(_cat(number, " ", street, " ", suffix), max_length)


def _postal_code(rng, ordinals, unique, max_length, pg_type, params):
    if unique:
        _need_length("postal_code", max_length, 5, "a 5-digit postal code")
        _check_capacity("postal_code", ordinals, 100_000, "5-digit codes")
        return _text(_scramble(ordinals, 100_000), 5)
    codes = rng.integers(501, 99_951, size=len(ordinals))  # the span of ZIP codes in use
    return _truncate(_text(codes, 5), max_length)


def _years_before(day: _dt.date, years: int) -> _dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February -> 28 February
        return day.replace(year=day.year - years, day=28)


def _birth_date(rng, ordinals, unique, max_length, pg_type, params):
    ref = params.get("reference_date", _DEFAULT_REFERENCE_DATE)
    if isinstance(ref, _dt.datetime):
        ref = ref.date()
    if not isinstance(ref, _dt.date):
        raise GenerationError(
            f"birth_date: params['reference_date'] must be a datetime.date, got {ref!r}; "
            "fix: pass e.g. datetime.date(2025, 1, 1)"
        )
    # Ages 18..90 on the reference date: born in (ref - 91y, ref - 18y].
    first = (_years_before(ref, 91) - _EPOCH).days + 1
    last = (_years_before(ref, 18) - _EPOCH).days
    n_days = last - first + 1
    timestamp = "timestamp" in pg_type.lower()
    if unique and not timestamp:
        _check_capacity("birth_date", ordinals, n_days, "days with an age of 18-90")
        days = first + _scramble(ordinals, n_days)
    elif unique:
        # Distinct (day, second-of-day) pairs: day = x mod n_days, second = x div n_days.
        capacity = n_days * 86_400
        _check_capacity("birth_date", ordinals, capacity, "seconds with an age of 18-90")
        x = _scramble(ordinals, capacity)
        days = first + x % n_days
        seconds = x // n_days
    else:
        days = rng.integers(first, last + 1, size=len(ordinals))
    if not timestamp:
        return pl.Series(days.astype(np.int32)).cast(pl.Date)
    micros = days.astype(np.int64) * _US_PER_DAY
    if unique:
        micros = micros + seconds * 1_000_000
    out = pl.Series(micros).cast(pl.Datetime("us"))
    if "tz" in pg_type.lower() or "with time zone" in pg_type.lower():
        out = out.dt.replace_time_zone("UTC")
    return out


def _national_id(rng, ordinals, unique, max_length, pg_type, params):
    n = len(ordinals)
    if unique:
        _need_length("national_id", max_length, 9, "a 9-digit SSN")
        _check_capacity("national_id", ordinals, _SSN_CAPACITY, "SSN areas 900-999")
        x = _scramble(ordinals, _SSN_CAPACITY)
        area = 900 + x // (99 * 9999)
        rest = x % (99 * 9999)
        group = 1 + rest // 9999
        serial = 1 + rest % 9999
    else:
        area = rng.integers(900, 1000, size=n)
        group = rng.integers(1, 100, size=n)
        serial = rng.integers(1, 10_000, size=n)
    sep = "-" if max_length is None or max_length >= 11 else ""
    value = _cat(_text(area), _text(group, 2), _text(serial, 4), sep=sep)
    return value if unique else _truncate(value, max_length)


def _card_number(rng, ordinals, unique, max_length, pg_type, params):
    n = len(ordinals)
    if unique:
        _need_length("card_number", max_length, 16, "a 16-digit card number")
        capacity = len(CARD_TEST_BINS) * _CARD_MIDDLE
        _check_capacity("card_number", ordinals, capacity, "test BINs x 9 ordinal digits")
        bin_idx = ordinals % len(CARD_TEST_BINS)
        middle = _scramble(ordinals // len(CARD_TEST_BINS), _CARD_MIDDLE)
    else:
        bin_idx = rng.integers(0, len(CARD_TEST_BINS), size=n)
        middle = rng.integers(0, _CARD_MIDDLE, size=n)
    bins = np.asarray(CARD_TEST_BINS, dtype=np.int64)[bin_idx]
    payload = bins * _CARD_MIDDLE + middle  # 15 digits, first digit never 0
    digits = np.empty((n, 15), dtype=np.uint8)
    rem = payload.copy()
    for j in range(14, -1, -1):
        digits[:, j] = rem % 10
        rem //= 10
    number = payload * 10 + luhn_check_digit(digits)
    return _truncate(_text(number), max_length)


def _iban(rng, ordinals, unique, max_length, pg_type, params):
    n = len(ordinals)
    if unique:
        _need_length("iban", max_length, _IBAN_LEN, "a 22-character GB IBAN")
        _check_capacity("iban", ordinals, _IBAN_CAPACITY, "sort code x account number")
        sort_code = _scramble(ordinals // _IBAN_ACCOUNT, _IBAN_CAPACITY // _IBAN_ACCOUNT)
        account = _scramble(ordinals % _IBAN_ACCOUNT, _IBAN_ACCOUNT)
    else:
        sort_code = rng.integers(0, 10**6, size=n)
        account = rng.integers(0, _IBAN_ACCOUNT, size=n)
    check = _iban_check_digits(sort_code, account)
    value = _cat("GB", _text(check, 2), IBAN_BANK_CODE, _text(sort_code, 6), _text(account, 8))
    return _truncate(value, max_length)


def _ip_address(rng, ordinals, unique, max_length, pg_type, params):
    # inet/cidr columns get text too: the loader casts, and a host address is a valid /32.
    if unique:
        # 2001:db8::/32 with the ordinal as the low 64 bits; leading zero groups are dropped
        # (the "::" absorbs them), so the text is a fixed function of the ordinal.
        hex16 = _hex16()
        cols: dict[str, pl.Series] = {}
        exprs = []
        higher_nonzero = np.zeros(len(ordinals), dtype=bool)
        for g, shift in enumerate((48, 32, 16, 0)):
            group = (ordinals >> shift) & 0xFFFF
            higher_nonzero |= group != 0
            cols[f"g{g}"] = hex16.gather(group)
            cols[f"k{g}"] = pl.Series(higher_nonzero | (shift == 0))
            exprs.append(pl.when(pl.col(f"k{g}")).then(pl.col(f"g{g}")))
        joined = pl.concat_str(exprs, separator=":", ignore_nulls=True)
        value = pl.concat_str([pl.lit(_IPV6_DOC_PREFIX), joined])
        out = pl.DataFrame(cols).select(value.alias("v")).to_series()
        if max_length is not None:
            longest = int(out.str.len_chars().max() or 0)
            _need_length("ip_address", max_length, longest, "an ordinal-derived IPv6 address")
        return out
    n = len(ordinals)
    net = _pick(_S_IPV4_NET, rng, n)
    host = _text(rng.integers(1, 255, size=n))
    return _truncate(_cat(net, host), max_length)
