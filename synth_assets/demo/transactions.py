"""The demo bank's transactions: heavy-tailed counts per account, a trend with diurnal, weekly
and seasonal cycles, amounts by merchant category, and the planted rare records (three huge
transfers, a few reversed ATM withdrawals) and memos that sometimes name a person.

Each step draws from the table's own generator in a fixed order: the same seed, the same rows.
"""

import numpy as np
import polars as pl

from .draw import categorical, cents_text, rowwise_categorical, sample_days, timestamps
from .vocab import (
    CAT_ATM,
    CAT_CHANNEL,
    CAT_LABEL,
    CAT_MEDIAN,
    CAT_SIGMA,
    CAT_TRANSFER,
    CAT_W,
    CHANNELS,
    DAY,
    END,
    END_D,
    FIRST_NAMES,
    HOURS_TRANSFER,
    HOURS_WEEKDAY,
    HOURS_WEEKEND,
    MEMO_TEMPLATES,
    MONTHS,
    N_CAT,
    OUTLIER_AMOUNTS,
    RARE_ATM_REVERSED,
    SEGMENTS,
    TRAVEL,
    TX_START_D,
    TX_STATUSES,
)

C_CP, C_ONLINE, C_ATM, C_TRANSFER = range(4)  # channel indices, as in CHANNELS


def windows(
    rng: np.random.Generator, opened: np.ndarray, status: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(first day, end day) per account: whole days strictly after opened_at; dormant accounts
    stop half a year before the end, closed ones at some point in their window."""
    a = len(opened)
    lo_d = np.maximum(opened // DAY + 1, TX_START_D)
    hi_d = np.full(a, END_D, dtype=np.int64)
    dormant, closed = status == 1, status == 2
    dormant_end = END_D - 180
    hi_d = np.where(
        dormant, lo_d + (rng.uniform(0.2, 1.0, a) * (dormant_end - lo_d)).astype(np.int64), hi_d
    )
    hi_d = np.where(
        closed, lo_d + (rng.uniform(0.1, 1.0, a) * (END_D - lo_d)).astype(np.int64), hi_d
    )
    return lo_d, hi_d


def counts(
    rng: np.random.Generator, types: np.ndarray, seg: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """Transactions per account: Poisson around a log-normal activity, by type and segment."""
    a = len(types)
    type_factor = np.array([1.0, 0.12, 0.75, 0.14])[types]
    seg_factor = np.array([1.0, 1.3, 1.2, 2.5])[seg]
    sigma = 1.0
    activity = rng.lognormal(-sigma * sigma / 2, sigma, a)
    lam = 31.0 * type_factor * seg_factor * activity * days / (END_D - TX_START_D)
    count = np.minimum(rng.poisson(lam), 3000)
    count[days == 0] = 0
    return count


def categories(rng: np.random.Generator, t_type: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Merchant category given account type and weekend (savings and loans: transfers only)."""
    cat = np.empty(len(t_type), dtype=np.int64)
    credit_mult = np.ones(N_CAT)
    credit_mult[CAT_ATM] = 0.04
    credit_mult[CAT_TRANSFER] = 0.08
    credit_mult[TRAVEL] = 2.5
    credit_mult[CAT_LABEL.index("electronics")] = 2.0
    credit_mult[CAT_LABEL.index("utilities")] = 0.5
    for ty in range(4):
        for we in (0, 1):
            sel = np.flatnonzero((t_type == ty) & (weekend == we))
            if ty in (1, 3):  # savings / loan: transfers only
                cat[sel] = CAT_TRANSFER
                continue
            w = CAT_W[we] * (credit_mult if ty == 2 else 1.0)
            cat[sel] = categorical(rng, w, len(sel))
    return cat


def times_of_day(
    rng: np.random.Generator, day: np.ndarray, channel: np.ndarray, weekend: np.ndarray
) -> np.ndarray:
    """Timestamps: transfers follow business hours, the rest the diurnal profile."""
    hour = np.empty(len(day), dtype=np.int64)
    for prof, sel in (
        (HOURS_TRANSFER, channel == C_TRANSFER),
        (HOURS_WEEKDAY, (channel != C_TRANSFER) & (weekend == 0)),
        (HOURS_WEEKEND, (channel != C_TRANSFER) & (weekend == 1)),
    ):
        idx = np.flatnonzero(sel)
        hour[idx] = categorical(rng, prof, len(idx))
    return day * DAY + hour * 3600 + rng.integers(0, 3600, len(day))


def merchants_for(rng: np.random.Generator, cat: np.ndarray, merch: dict) -> np.ndarray:
    """Merchant id given category (Zipf-like popularity within category)."""
    merchant = np.empty(len(cat), dtype=np.int64)
    m_cat, m_pop = merch["cat"], merch["pop"]
    for c in range(N_CAT):
        idx = np.flatnonzero(cat == c)
        ids = np.flatnonzero(m_cat == c)
        merchant[idx] = ids[categorical(rng, m_pop[ids], len(idx))] + 1
    return merchant


def amounts(
    rng: np.random.Generator,
    cat: np.ndarray,
    t_type: np.ndarray,
    private: np.ndarray,
    channel: np.ndarray,
) -> np.ndarray:
    """Cents: log-normal by category; loans/savings their own scale; ATM in multiples of 10;
    some round transfers and card refunds."""
    t = len(cat)
    z = rng.standard_normal(t)
    amount = CAT_MEDIAN[cat] * np.exp(CAT_SIGMA[cat] * z)
    amount = np.where(t_type == 1, 250.0 * np.exp(1.1 * z), amount)
    amount = np.where(t_type == 3, 380.0 * np.exp(0.45 * z), amount)
    amount = amount * np.where(private, 2.5, 1.0)
    cents = np.clip(np.round(amount * 100), 1, 250_000_00).astype(np.int64)
    atm = channel == C_ATM
    cents[atm] = np.clip(np.round(cents[atm] / 1000), 1, 50) * 1000
    round_tr = (channel == C_TRANSFER) & (rng.random(t) < 0.35)
    cents[round_tr] = np.maximum(np.round(cents[round_tr] / 1000), 1) * 1000
    refund = np.isin(channel, (C_CP, C_ONLINE)) & (rng.random(t) < 0.012)
    cents[refund] = -cents[refund]
    return cents


def statuses(rng: np.random.Generator, channel: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Mostly settled; pending only in the last days; ATM is never reversed."""
    t = len(channel)
    declined_p = np.array([0.02, 0.045, 0.03, 0.01])[channel]
    reversed_p = np.array([0.006, 0.012, 0.0, 0.004])[channel]
    u = rng.random(t)
    tx_status = np.zeros(t, dtype=np.int64)
    tx_status[u < declined_p + reversed_p] = 3
    tx_status[u < declined_p] = 2
    recent = ts >= END - 3 * DAY
    pend = recent & (tx_status == 0) & (rng.random(t) < 0.7)
    tx_status[pend] = 1
    return tx_status


def plant_rare(
    rng: np.random.Generator,
    channel: np.ndarray,
    tx_status: np.ndarray,
    private: np.ndarray,
    cents: np.ndarray,
) -> None:
    """In place: three huge settled transfers (on private customers' accounts where possible)
    and a few reversed ATM withdrawals (otherwise never generated)."""
    t = len(channel)
    transfers = np.flatnonzero((channel == C_TRANSFER) & (tx_status == 0))
    if len(transfers) == 0:
        transfers = np.arange(t)
    on_private = private[transfers]
    pool = transfers[on_private] if on_private.sum() >= len(OUTLIER_AMOUNTS) else transfers
    big = rng.choice(pool, size=min(len(OUTLIER_AMOUNTS), len(pool)), replace=False)
    cents[big] = np.round(np.array(OUTLIER_AMOUNTS[: len(big)]) * 100).astype(np.int64)
    atm_idx = np.flatnonzero((channel == C_ATM) & (tx_status == 0))
    rev = rng.choice(atm_idx, size=min(RARE_ATM_REVERSED, len(atm_idx)), replace=False)
    tx_status[rev] = 3


def memos(
    rng: np.random.Generator, has_memo: np.ndarray, channel: np.ndarray, ts: np.ndarray
) -> np.ndarray:
    """Memo text (None where absent) from each channel's templates: months, first names,
    invoice and reference numbers."""
    memo_idx = np.flatnonzero(has_memo)
    memo = np.full(len(channel), None, dtype=object)
    first_names = np.asarray(FIRST_NAMES, dtype=object)
    for ch_i, ch_name in enumerate(CHANNELS):
        idx = memo_idx[channel[memo_idx] == ch_i]
        if not len(idx):
            continue
        tpl = MEMO_TEMPLATES[ch_name]
        which = rng.integers(0, len(tpl), len(idx))
        kind = np.array([x[1] for x in tpl])[which]
        arg = np.full(len(idx), "", dtype=object)
        month = (ts[idx] // DAY).astype("datetime64[D]").astype("datetime64[M]").astype(
            np.int64
        ) % 12
        arg[kind == 1] = np.asarray(MONTHS, dtype=object)[month[kind == 1]]
        names = first_names[rng.integers(0, len(first_names), len(idx))]
        arg[kind == 2] = names[kind == 2]
        arg[kind == 3] = rng.integers(1000, 10000, len(idx)).astype(str).astype(object)[kind == 3]
        arg[kind == 4] = rng.integers(10**6, 10**8, len(idx)).astype(str).astype(object)[kind == 4]
        pre = np.array([x[0] for x in tpl], dtype=object)[which]
        suf = np.array([x[2] for x in tpl], dtype=object)[which]
        memo[idx] = pre + arg + suf
    return memo


def gen_transactions(rng: np.random.Generator, acc: dict, cust: dict, merch: dict) -> pl.DataFrame:
    """The transactions table, ids in time order."""
    types, status, opened, owner = acc["type"], acc["status"], acc["opened"], acc["owner"]
    seg = cust["segment"][owner]
    lo_d, hi_d = windows(rng, opened, status)
    count = counts(rng, types, seg, np.maximum(hi_d - lo_d, 0))
    t_acct = np.repeat(np.arange(len(types)), count)
    t = len(t_acct)
    day = sample_days(rng, lo_d[t_acct], hi_d[t_acct])
    weekend = ((day + 3) % 7 >= 5).astype(np.int64)
    t_type = types[t_acct]
    cat = categories(rng, t_type, weekend)
    # channel given category and weekend (fewer transfers, more card-present at weekends)
    ch_w = CAT_CHANNEL[cat] * np.where(weekend[:, None] == 1, np.array([1.3, 1.1, 1.0, 0.3]), 1.0)
    channel = rowwise_categorical(rng, ch_w)
    ts = times_of_day(rng, day, channel, weekend)
    merchant = merchants_for(rng, cat, merch)
    private = seg[t_acct] == SEGMENTS.index("private")
    cents = amounts(rng, cat, t_type, private, channel)
    tx_status = statuses(rng, channel, ts)
    # memo: ~20% present, mostly on transfers
    memo_w = np.array([0.5, 0.8, 0.1, 6.0])[channel]
    has_memo = rng.random(t) < np.minimum(memo_w * 0.2 / memo_w.mean(), 0.95)
    plant_rare(rng, channel, tx_status, private, cents)
    memo = memos(rng, has_memo, channel, ts)
    order = np.lexsort((np.arange(t), ts))
    return pl.DataFrame(
        {
            "id": np.arange(1, t + 1, dtype=np.int64),
            "account_id": t_acct[order].astype(np.int64) + 1,
            "merchant_id": merchant[order].astype(np.int32),
            "ts": timestamps(ts[order]),
            "amount": cents_text(cents[order]),
            "channel": np.array(CHANNELS)[channel[order]],
            "status": np.array(TX_STATUSES)[tx_status[order]],
            "memo": pl.Series(memo[order].tolist(), dtype=pl.String),
        }
    )
