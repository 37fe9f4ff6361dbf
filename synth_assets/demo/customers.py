"""The demo bank's customers: trending sign-ups, planted elderly private customers, direct
identifiers (names, unique e-mails and phones, national ids, addresses) and a referral chain.

Each step draws from the one generator in a fixed order: the same seed gives the same table.
"""

import numpy as np
import polars as pl

from .draw import categorical, take
from .vocab import (
    COMPANY_DOMAINS,
    CUST_END,
    CUST_START,
    DAY,
    EMAIL_DOMAIN_P,
    EMAIL_DOMAINS,
    END_D,
    FIRST_NAMES,
    GB_CITIES,
    HOURS_WEEKDAY,
    LAST_NAMES,
    RARE_ELDERLY_PRIVATE,
    SEGMENTS,
    STREET_TYPE_P,
    STREET_TYPES,
    STREETS,
    YEAR_D,
)

POSTCODE_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))


def signup_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sign-up seconds: density ~ (1 + t) over three years, in daytime hours, strictly increasing."""
    span = CUST_END - CUST_START
    u = np.sort(rng.random(n))
    frac = np.sqrt(1.0 + 3.0 * u) - 1.0  # inverse CDF of (1 + t) on [0, 1]
    created = (CUST_START + frac * span).astype(np.int64)
    # daytime sign-ups: move the clock time onto a diurnal profile
    day0 = created // DAY
    hour = categorical(rng, HOURS_WEEKDAY, n)
    created = day0 * DAY + hour * 3600 + rng.integers(0, 3600, n)
    created.sort()
    created = np.maximum.accumulate(created - np.arange(n)) + np.arange(n)
    return np.minimum(created, CUST_END - 1 - (n - 1 - np.arange(n)))


def segments_and_births(
    rng: np.random.Generator, n: int, created: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment, rare, date of birth): every customer an adult at sign-up; the rare records are
    a handful of private customers born before 1935 (each later gets a loan account)."""
    created_d = created // DAY
    segment = categorical(rng, [0.78, 0.14, 0.02, 0.06], n)
    n_rare = min(RARE_ELDERLY_PRIVATE, n // 2)
    rare = np.sort(rng.choice(np.arange(n // 10, n), size=n_rare, replace=False))
    segment[rare] = SEGMENTS.index("private")

    age_mean = np.array([43.0, 50.0, 58.0, 47.0])[segment]
    age = np.clip(rng.normal(age_mean, 15.0), 18.2, 89.0)
    end_d = END_D - 1
    dob = (end_d - age * YEAR_D).astype(np.int64)
    dob = np.minimum(dob, (created_d - 18 * YEAR_D - 1).astype(np.int64))
    dob_floor = int(np.datetime64("1935-07-01", "D").astype(np.int64))
    dob = np.maximum(dob, dob_floor)
    lo = int(np.datetime64("1930-07-01", "D").astype(np.int64))
    hi = int(np.datetime64("1934-12-31", "D").astype(np.int64))
    dob[rare] = rng.integers(lo, hi, len(rare))
    return segment, rare, dob


def names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, middle or None, last): Zipf-skewed surnames, a middle name for about 12%."""
    first_i = rng.integers(0, len(FIRST_NAMES), n)
    last_i = categorical(rng, 1.0 / np.arange(1, len(LAST_NAMES) + 1) ** 0.6, n)
    first = take(FIRST_NAMES, first_i)
    last = take(LAST_NAMES, last_i)
    middle = np.where(
        rng.random(n) < 0.12, take(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), n)), None
    )
    return first, middle, last


def contact_parts(rng: np.random.Generator, n: int, segment: np.ndarray) -> dict[str, np.ndarray]:
    """The parts of unique e-mails (pattern, number, domain) and phones (some missing)."""
    # e-mail: pattern + unique number (a random permutation keeps numbers unique).
    num = rng.permutation(n) + rng.integers(1, 90)
    pattern = categorical(rng, [40, 20, 15, 15, 10], n)
    is_business = segment == SEGMENTS.index("business")
    domain = take(EMAIL_DOMAINS, categorical(rng, EMAIL_DOMAIN_P, n))
    company = take(COMPANY_DOMAINS, rng.integers(0, len(COMPANY_DOMAINS), n))
    domain = np.where(is_business & (rng.random(n) < 0.7), company, domain)
    # phones: unique 9-digit subscriber numbers after the leading 7; some missing.
    sub = rng.choice(np.int64(10**9 - 10**8), size=n, replace=False) + 10**8
    intl = rng.random(n) < 0.8
    phone_null = rng.random(n) < 0.06
    return {
        "num": num.astype(np.int64),
        "pattern": pattern.astype(np.int64),
        "domain": domain.astype(str),
        "sub": sub.astype(np.int64),
        "intl": intl,
        "phone_null": phone_null,
    }


def national_id_parts(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Unique SSN-like ids: areas 001-665, 667-899, groups 01-99, serials 0001-9999."""
    x = rng.choice(np.int64(898 * 99 * 9999), size=n, replace=False)
    area = x // (99 * 9999) + 1
    area = area + (area >= 666)
    return {"area": area, "group": (x // 9999) % 99 + 1, "serial": x % 9999 + 1}


def address_parts(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """GB postcodes weighted by town, and street addresses (some with a flat number)."""
    city_i = categorical(rng, [c[2] for c in GB_CITIES], n)
    area_choices = [c[1].split() for c in GB_CITIES]
    area_k = rng.integers(0, 8, n)
    pc_area = np.array(
        [area_choices[c][k % len(area_choices[c])] for c, k in zip(city_i, area_k, strict=True)]
    )
    pc_district = rng.integers(1, 30, n)
    pc_unit = (
        rng.integers(0, 10, n).astype(str)
        + POSTCODE_LETTERS[rng.integers(0, 20, n)]
        + POSTCODE_LETTERS[rng.integers(0, 20, n)]
    )
    house = np.maximum(1, np.round(rng.lognormal(2.7, 0.9, n))).astype(np.int64)
    street = take(STREETS, rng.integers(0, len(STREETS), n))
    stype = STREET_TYPES[categorical(rng, STREET_TYPE_P, n)]
    flat = np.where(rng.random(n) < 0.18, rng.integers(1, 40, n), 0)
    return {
        "pc_area": pc_area,
        "pc_district": pc_district,
        "pc_unit": pc_unit,
        "house": house,
        "street": street.astype(str),
        "stype": stype,
        "flat": flat,
    }


def referrals(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, referred_by): ~30% referred by an EARLIER customer; early customers refer more
    (u**2 skew); 0 where nobody referred."""
    ids = np.arange(1, n + 1, dtype=np.int64)
    referred = (rng.random(n) < 0.30) & (ids > 1)
    ref_id = np.floor((ids - 1) * rng.random(n) ** 2).astype(np.int64) + 1
    return ids, np.where(referred, ref_id, 0)


def _email() -> pl.Expr:
    f = pl.col("first").str.to_lowercase()
    la = pl.col("last").str.to_lowercase().str.replace_all(r"[^a-z]", "")
    n_ = pl.col("num").cast(pl.String)
    local = (
        pl.when(pl.col("pattern") == 0)
        .then(pl.concat_str(f, pl.lit("."), la, n_))
        .when(pl.col("pattern") == 1)
        .then(pl.concat_str(f.str.slice(0, 1), la, n_))
        .when(pl.col("pattern") == 2)
        .then(pl.concat_str(f, pl.lit("_"), la, n_))
        .when(pl.col("pattern") == 3)
        .then(pl.concat_str(la, pl.lit("."), f, n_))
        .otherwise(pl.concat_str(f, la.str.slice(0, 1), n_))
    )
    return pl.concat_str(local, pl.lit("@"), pl.col("domain"))


def _phone() -> pl.Expr:
    s = pl.col("sub").cast(pl.String)
    return (
        pl.when(pl.col("phone_null"))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("intl"))
        .then(pl.concat_str(pl.lit("+44 7"), s.str.slice(0, 3), pl.lit(" "), s.str.slice(3)))
        .otherwise(pl.concat_str(pl.lit("07"), s.str.slice(0, 3), pl.lit(" "), s.str.slice(3)))
    )


def _zfill(c: str, w: int) -> pl.Expr:
    return pl.col(c).cast(pl.String).str.zfill(w)


def _street_address() -> pl.Expr:
    return pl.concat_str(
        pl.when(pl.col("flat") > 0)
        .then(pl.concat_str(pl.lit("Flat "), pl.col("flat").cast(pl.String), pl.lit(", ")))
        .otherwise(pl.lit("")),
        pl.col("house").cast(pl.String),
        pl.lit(" "),
        pl.col("street"),
        pl.lit(" "),
        pl.col("stype"),
    )


def _postal_code() -> pl.Expr:
    district = (
        pl.when(pl.col("pc_area").is_in(["EC", "WC"]))
        .then(pl.col("pc_district") % 4 + 1)
        .otherwise(pl.col("pc_district"))
    )
    return pl.concat_str("pc_area", district.cast(pl.String), pl.lit(" "), "pc_unit")


def customer_frame(parts: pl.DataFrame) -> pl.DataFrame:
    """The customers table, formatted from the drawn parts."""
    return parts.select(
        "id",
        pl.when(pl.col("middle").is_not_null())
        .then(pl.concat_str("first", pl.lit(" "), "middle", pl.lit(" "), "last"))
        .otherwise(pl.concat_str("first", pl.lit(" "), "last"))
        .alias("full_name"),
        _email().alias("email"),
        _phone().alias("phone"),
        pl.col("dob").cast(pl.Int32).cast(pl.Date).alias("date_of_birth"),
        pl.concat_str(
            _zfill("area", 3), pl.lit("-"), _zfill("group", 2), pl.lit("-"), _zfill("serial", 4)
        ).alias("national_id"),
        _street_address().alias("street_address"),
        _postal_code().alias("postal_code"),
        "segment",
        pl.from_epoch("created", time_unit="s").alias("created_at"),
        pl.when(pl.col("referred_by") > 0).then(pl.col("referred_by")).alias("referred_by"),
    )


def gen_customers(rng: np.random.Generator, n: int) -> tuple[pl.DataFrame, dict]:
    """The customers table and what the later tables draw on (sign-up times, segments, the
    rare customers, first names)."""
    created = signup_times(rng, n)
    segment, rare, dob = segments_and_births(rng, n, created)
    first, middle, last = names(rng, n)
    contacts = contact_parts(rng, n, segment)
    national = national_id_parts(rng, n)
    address = address_parts(rng, n)
    ids, referred_by = referrals(rng, n)
    parts = pl.DataFrame(
        {
            "id": ids,
            "first": first.astype(str),
            "middle": middle.tolist(),
            "last": last.astype(str),
            **contacts,
            **national,
            **address,
            "segment": np.array(SEGMENTS)[segment],
            "created": created,
            "dob": dob,
            "referred_by": referred_by,
        },
        schema_overrides={"middle": pl.String},
    )
    aux = {"created": created, "segment": segment, "rare": rare, "first_names": first}
    return customer_frame(parts), aux
