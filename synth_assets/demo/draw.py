"""Vectorized draws and formatters the demo's table generators share (numpy in, polars out)."""

import numpy as np
import polars as pl

from synth_assets.core.fakes import luhn_check_digit

from .vocab import END_D, MONTH_W, TREND, TX_START_D, WEEKDAY_W


def normalised(w) -> np.ndarray:
    """Weights scaled to sum to 1."""
    w = np.asarray(w, dtype=float)
    return w / w.sum()


def categorical(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """Draw ``size`` category indices from probability vector ``p``."""
    return np.searchsorted(np.cumsum(normalised(p)), rng.random(size), side="right").clip(
        0, len(p) - 1
    )


def rowwise_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of the (n, k) probability matrix ``probs`` (rows need not sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return (cum <= u[:, None]).sum(axis=1).clip(0, probs.shape[1] - 1)


def cents_text(cents: np.ndarray) -> pl.Series:
    """Integer cents -> exact decimal text ("-12.05"), avoiding float formatting."""
    cents = np.asarray(cents, dtype=np.int64)
    a = np.abs(cents)
    df = pl.DataFrame(
        {"neg": cents < 0, "whole": a // 100, "frac": a % 100},
    )
    return df.select(
        pl.concat_str(
            pl.when(pl.col("neg")).then(pl.lit("-")).otherwise(pl.lit("")),
            pl.col("whole").cast(pl.String),
            pl.lit("."),
            pl.col("frac").cast(pl.String).str.zfill(2),
        )
    ).to_series()


def timestamps(seconds: np.ndarray) -> pl.Series:
    """Epoch seconds as a polars datetime series."""
    return pl.from_epoch(pl.Series(np.asarray(seconds, dtype=np.int64)), time_unit="s")


def dates(days: np.ndarray) -> pl.Series:
    """Epoch days as a polars date series."""
    return pl.Series(np.asarray(days, dtype=np.int32)).cast(pl.Date)


def take(values, idx: np.ndarray) -> np.ndarray:
    """``values[idx]`` for a plain list (as an object array, strings kept whole)."""
    return np.asarray(values, dtype=object)[idx]


def month_end(days: np.ndarray) -> np.ndarray:
    """Last day of the month containing each epoch day."""
    m = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]")
    return ((m + 1).astype("datetime64[D]") - 1).astype(np.int64)


def iban_check(bank_num: np.ndarray, bban_digits: np.ndarray) -> np.ndarray:
    """ISO 13616 check digits for GB IBANs: letters of the bank code as numbers, 14 digits."""
    m = bank_num % 97
    m = (m * (10**14 % 97) + bban_digits % 97) % 97
    m = (m * (10**6 % 97) + 161100) % 97  # "GB00" -> 16 11 00
    return 98 - m


def luhn_digit(payload: np.ndarray) -> np.ndarray:
    """Luhn check digit for 15-digit payloads given as int64 (the engine's one Luhn)."""
    digits = np.stack([(payload // 10**k) % 10 for k in range(14, -1, -1)], axis=1)
    return luhn_check_digit(digits).astype(np.int64)


def sample_days(rng, lo_d: np.ndarray, hi_d: np.ndarray) -> np.ndarray:
    """One day in [lo_d, hi_d) per element, with trend, weekly and seasonal modulation."""
    base = TX_START_D
    width = END_D - base
    lo = (lo_d - base) / width
    hi = (hi_d - base) / width
    out = np.empty(len(lo_d), dtype=np.int64)
    todo = np.arange(len(lo_d))
    wmax = WEEKDAY_W.max() * MONTH_W.max()
    while len(todo):
        a, b = lo[todo], hi[todo]
        u = rng.random(len(todo))
        # inverse CDF of the density (1 + TREND * t) on [a, b]
        c = a + TREND / 2 * a * a + u * ((b - a) + TREND / 2 * (b * b - a * a))
        x = (np.sqrt(1.0 + 2.0 * TREND * c) - 1.0) / TREND
        d = np.clip((base + x * width).astype(np.int64), lo_d[todo], hi_d[todo] - 1)
        month = d.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        w = WEEKDAY_W[(d + 3) % 7] * MONTH_W[month]
        ok = rng.random(len(todo)) * wmax < w
        out[todo[ok]] = d[ok]
        todo = todo[~ok]
    return out
