"""The demo bank's merchants, accounts and cards: skewed fan-out (most customers hold one or
two accounts, a few up to 25), valid GB IBANs, Luhn-valid card numbers on real-looking BINs.

Each step draws from the table's own generator in a fixed order: the same seed, the same rows.
"""

import numpy as np
import polars as pl

from .draw import (
    categorical,
    cents_text,
    dates,
    iban_check,
    luhn_digit,
    month_end,
    rowwise_categorical,
    take,
    timestamps,
)
from .vocab import (
    ACCOUNT_STATUSES,
    ACCOUNT_TYPES,
    BANK_CODES,
    BANK_P,
    BANK_SORT_PREFIX,
    CAT_ATM,
    CAT_CODE,
    CAT_LABEL,
    CAT_MERCHANT_SHARE,
    CAT_TRANSFER,
    COUNTRY_CODES,
    DAY,
    END,
    END_D,
    FOREIGN_CITIES,
    GB_CITIES,
    LAST_NAMES,
    MC_BINS,
    MERCHANT_SUFFIX,
    MERCHANT_WORDS,
    N_CAT,
    SEGMENTS,
    TRAVEL,
    VISA_BINS,
    YEAR_D,
)


def gen_merchants(rng: np.random.Generator, n_customers: int) -> tuple[pl.DataFrame, dict]:
    """Merchants of every category (one in twenty customers, at least 200): mostly GB, named
    by category, with a Zipf-like popularity the transactions draw on."""
    m = max(200, n_customers // 20)
    cat = np.concatenate([np.arange(N_CAT), categorical(rng, CAT_MERCHANT_SHARE, m - N_CAT)])
    cat = cat[rng.permutation(m)]
    travel = np.isin(cat, TRAVEL)
    p_home = np.where(travel, 0.45, np.where(cat == CAT_TRANSFER, 0.9, 0.93))
    home = rng.random(m) < p_home
    foreign = categorical(rng, [14, 12, 16, 9, 7, 8, 10, 6], m)  # IE FR ES DE NL IT US PT
    country = np.where(home, "GB", np.array(COUNTRY_CODES[1:])[foreign])
    gb_city = np.array([c[0] for c in GB_CITIES])[categorical(rng, [c[2] for c in GB_CITIES], m)]
    pick = rng.integers(0, 4, m)
    city = gb_city.astype(object)
    for i in np.flatnonzero(~home):
        options = FOREIGN_CITIES[country[i]]
        city[i] = options[pick[i] % len(options)]
    city = city.astype(str)
    word = take(MERCHANT_WORDS, rng.integers(0, len(MERCHANT_WORDS), m))
    surname = take(LAST_NAMES, rng.integers(0, len(LAST_NAMES), m))
    sfx_pick = rng.integers(0, 7, m)
    owner = rng.random(m) < 0.25
    names = []
    for i in range(m):
        sfx = MERCHANT_SUFFIX[CAT_LABEL[cat[i]]]
        base = f"{surname[i]}'s" if owner[i] and cat[i] not in (CAT_ATM, CAT_TRANSFER) else word[i]
        names.append(f"{base} {sfx[sfx_pick[i] % len(sfx)]}")
    names = np.array(names)
    branch = rng.random(m) < 0.3
    names = np.where(branch, np.char.add(np.char.add(names, " "), city), names)
    # popularity within category: Zipf-like with a random rank; foreign merchants rarer
    pop = (1.0 / (rng.permutation(m) + 1.0) ** 0.9) * np.where(home, 1.0, 0.35)
    df = pl.DataFrame(
        {
            "id": np.arange(1, m + 1, dtype=np.int32),
            "name": names,
            "category_code": CAT_CODE[cat],
            "city": city,
            "country": country,
        }
    )
    return df, {"cat": cat, "pop": pop}


def account_counts(rng: np.random.Generator, segment: np.ndarray, rare: np.ndarray) -> np.ndarray:
    """Accounts per customer: mostly 1-2, a Zipf tail up to 25, two at least for the rare ones."""
    n = len(segment)
    business = segment == SEGMENTS.index("business")
    k = np.where(business, rng.geometric(0.5, n), rng.geometric(0.74, n))
    k = np.minimum(k, 4)
    # a few customers with very many accounts (Zipf tail, capped at 25)
    n_heavy = max(2, n // 400)
    heavy = rng.choice(n, size=n_heavy, replace=False)
    k[heavy] = np.minimum(25, 5 + rng.zipf(1.6, n_heavy))
    k[rare] = np.maximum(k[rare], 2)
    return k


def opening_times(rng: np.random.Generator, c_created: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Opening seconds: the first account within hours of sign-up, later ones months after;
    always before the window ends."""
    a = len(c_created)
    delay_first = 60 + rng.exponential(3 * 3600, a)
    delay_more = 60 + rng.exponential(250 * DAY, a)
    opened = c_created + np.where(first, delay_first, delay_more).astype(np.int64)
    late = opened >= END - DAY
    span = np.maximum(END - DAY - c_created - 60, 1)
    return np.where(late, c_created + 60 + (rng.random(a) * span).astype(np.int64), opened)


def types_and_statuses(
    rng: np.random.Generator, first: np.ndarray, rare_second: np.ndarray, opened: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(type, status): first accounts mostly checking; each rare customer's second a live loan."""
    a = len(first)
    p_first = np.array([0.86, 0.12, 0.02, 0.0])
    p_more = np.array([0.30, 0.36, 0.24, 0.10])
    types = np.where(first, categorical(rng, p_first, a), categorical(rng, p_more, a))
    types[rare_second] = ACCOUNT_TYPES.index("loan")
    status = categorical(rng, [0.87, 0.08, 0.05], a)
    recent = opened > END - 120 * DAY
    status[recent] = 0
    status[rare_second] = 0
    return types, status


def balances(
    rng: np.random.Generator, types: np.ndarray, seg_o: np.ndarray, status: np.ndarray
) -> np.ndarray:
    """Balances in cents: log-normal by type and segment; credit and loans owed; closed at 0."""
    a = len(types)
    t_checking, t_savings, t_credit, t_loan = range(4)
    mult = np.array([1.0, 3.0, 10.0, 5.0])[seg_o]
    bal = np.zeros(a)
    z = rng.standard_normal(a)
    bal = np.where(types == t_checking, np.exp(np.log(1400) + 1.1 * z), bal)
    bal = np.where((types == t_checking) & (rng.random(a) < 0.08), -np.exp(5.5 + 0.9 * z), bal)
    bal = np.where(types == t_savings, np.exp(np.log(6500) + 1.4 * z), bal)
    bal = np.where(types == t_credit, -np.exp(np.log(900) + 1.0 * z) * (rng.random(a) < 0.8), bal)
    bal = np.where(types == t_loan, -np.exp(np.log(11000) + 0.8 * z), bal)
    cents = np.round(bal * mult * 100).astype(np.int64)
    cents[status == 2] = 0
    return cents


def iban_parts(rng: np.random.Generator, a: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(check digits, bank code, BBAN digits) of unique GB IBANs: bank code + sort code (prefix
    + 4 digits) + unique 8-digit account number."""
    bank = categorical(rng, BANK_P, a)
    codes = BANK_CODES[bank]
    bank_num = np.array(
        [int("".join(str(ord(ch) - 55) for ch in c)) for c in BANK_CODES], dtype=np.int64
    )[bank]
    sort = BANK_SORT_PREFIX[bank] * 10_000 + rng.integers(0, 10_000, a)
    acct_no = rng.choice(np.int64(10**8), size=a, replace=False)
    bban = sort.astype(np.int64) * 10**8 + acct_no
    return iban_check(bank_num, bban), codes, bban


def _iban(check: np.ndarray, codes: np.ndarray, bban: np.ndarray) -> pl.Series:
    return (
        pl.DataFrame({"c": check, "b": codes, "n": bban})
        .select(
            pl.concat_str(
                pl.lit("GB"),
                pl.col("c").cast(pl.String).str.zfill(2),
                pl.col("b"),
                pl.col("n").cast(pl.String).str.zfill(14),
            )
        )
        .to_series()
    )


def gen_accounts(rng: np.random.Generator, cust: dict) -> tuple[pl.DataFrame, dict]:
    """The accounts table (ids in opening order) and what cards and transactions draw on."""
    created, segment, rare = cust["created"], cust["segment"], cust["rare"]
    k = account_counts(rng, segment, rare)
    owner = np.repeat(np.arange(len(created)), k)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k)  # 0 = first account
    a = len(owner)
    first = rank == 0
    opened = opening_times(rng, created[owner], first)
    # rare: each elderly private customer's second account is a loan
    rare_second = np.isin(owner, rare) & (rank == 1)
    types, status = types_and_statuses(rng, first, rare_second, opened)
    cents = balances(rng, types, segment[owner], status)
    check, codes, bban = iban_parts(rng, a)
    # ids follow opening order
    order = np.lexsort((np.arange(a), opened))
    owner, opened, types, status, cents = (x[order] for x in (owner, opened, types, status, cents))
    df = pl.DataFrame(
        {
            "id": np.arange(1, a + 1, dtype=np.int64),
            "customer_id": owner.astype(np.int64) + 1,
            "iban": _iban(check[order], codes[order], bban[order]),
            "account_type": np.array(ACCOUNT_TYPES)[types],
            "status": np.array(ACCOUNT_STATUSES)[status],
            "opened_at": timestamps(opened),
            "balance": cents_text(cents),
        }
    )
    aux = {"owner": owner, "opened": opened, "type": types, "status": status}
    return df, aux


def gen_cards(rng: np.random.Generator, acc: dict) -> pl.DataFrame:
    """Luhn-valid cards on real-looking BINs; active accounts' cards reissued, so still valid."""
    types, status, opened = acc["type"], acc["status"], acc["opened"]
    a = len(types)
    # cards per account by type: checking, savings, credit, loan
    p = np.array(
        [[0.12, 0.62, 0.21, 0.05], [0.9, 0.1, 0, 0], [0.04, 0.72, 0.2, 0.04], [1.0, 0, 0, 0]]
    )
    n_cards = rowwise_categorical(rng, p[types])
    acct = np.repeat(np.arange(a), n_cards)
    c = len(acct)
    visa = rng.random(c) < 0.62
    bins = np.where(
        visa,
        VISA_BINS[rng.integers(0, len(VISA_BINS), c)],
        MC_BINS[rng.integers(0, len(MC_BINS), c)],
    )
    suffix = rng.choice(np.int64(10**9), size=c, replace=False)
    payload = bins.astype(np.int64) * 10**9 + suffix
    number = payload * 10 + luhn_digit(payload)

    issue_d = (
        opened[acct] // DAY
        + rng.integers(3, 30, c)
        + rng.integers(0, 2, c) * rng.integers(0, 700, c)
    )
    validity = np.where(rng.random(c) < 0.7, 3, 4) * YEAR_D
    expiry = issue_d + validity
    # active accounts get reissued cards, so their cards are (almost all) still valid
    active = status[acct] == 0
    periods = np.ceil(np.maximum(END_D + 30 - expiry, 0) / validity)
    expiry = np.where(active, expiry + periods * validity, expiry)
    expiry = month_end(expiry.astype(np.int64))
    return pl.DataFrame(
        {
            "id": np.arange(1, c + 1, dtype=np.int64),
            "account_id": acct.astype(np.int64) + 1,
            "card_number": number.astype(str),
            "network": np.where(visa, "visa", "mastercard"),
            "expiry": dates(expiry),
        }
    )
