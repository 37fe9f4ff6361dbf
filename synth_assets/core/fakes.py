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
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from functools import cache

import numpy as np
import polars as pl

from .errors import GenerationError

__all__ = [
    "PII_KINDS",
    "fake_column",
    "iban_is_valid",
    "is_luhn_valid",
    "luhn_check_digit",
]


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """Split an embedded list, drop blanks and duplicates, keep first-seen order."""
    items = (w.strip() for w in text.split(sep))
    return tuple(dict.fromkeys(w for w in items if w))


# --------------------------------------------------------------------------------------------
# Embedded word lists (ASCII letters only for names, so they can be lowercased into emails).
# --------------------------------------------------------------------------------------------

FIRST_NAMES: tuple[str, ...] = _words(
    """
    James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara
    Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Nancy Daniel Lisa
    Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew
    Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy
    Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob
    Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela
    Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine
    Alexander Rachel Frank Carolyn Patrick Janet Raymond Catherine Jack Maria Dennis Heather
    Tyler Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry Victoria Zachary Kelly
    Peter Lauren Kyle Christina Ethan Joan Walter Evelyn Noah Judith Jeremy Megan Christian
    Andrea Keith Hannah Roger Jacqueline Gerald Martha Harold Gloria Sean Teresa Austin Sara
    Arthur Madison Lawrence Frances Dylan Kathryn Jesse Abigail Jordan Alice Bruce Sophia
    Gabriel Grace Logan Amber Alan Danielle Elijah Isabella Vincent Natalie Russell Charlotte
    Mason Alexis Philip Louis
    Aisha Fatima Omar Ahmed Yusuf Layla Hassan Mariam Ali Zainab Khalid Noor Tariq Leila Karim
    Yasmin Ibrahim Amina Priya Arjun Ananya Rohan Vikram Lakshmi Deepak Kavya Rahul Sanjay
    Aditi Ravi Meera Anil Sunita Wei Mei Jun Xiu Lei Ying Hao Jing Hiroshi Yuki Haruto Sakura
    Kenji Aiko Takeshi Yumi Minjun Jiwoo Seoyeon Hyun Jisoo Linh Minh Thao Duc Carlos Sofia
    Diego Valentina Mateo Camila Luis Lucia Javier Isabel Miguel Elena Pablo Carmen Andres
    Paula Joao Ana Pedro Beatriz Rafael Ines Giulia Marco Francesca Luca Chiara Giovanni
    Alessandro Pierre Camille Antoine Chloe Manon Julien Hans Greta Lukas Lena Felix Anja
    Jonas Sven Ingrid Lars Astrid Erik Freya Olga Ivan Dmitri Natasha Sergei Katya Piotr
    Agnieszka Tomasz Zofia Kwame Ama Kofi Abena Chinedu Ngozi Oluwaseun Amara Tendai Thandiwe
    Sipho Zanele Mehmet Ayse Emre Elif Dariush Shirin Reza Moshe Miriam Avi Tamar Aroha Tane
    Kai Leilani Malia Keanu Ayla Nikolai Mila
    """
)

LAST_NAMES: tuple[str, ...] = _words(
    """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
    Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
    Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
    Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
    Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook
    Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
    Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez
    Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
    Bell Coleman Butler Henderson Barnes Fisher Vasquez Simmons Romero Jordan Patterson
    Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera
    Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
    Fernandez Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns
    Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt
    Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer
    Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Gardner Payne Grant Dunn
    Spencer Hawkins Arnold Pierce Hansen Peters Santos Hart Bradley Knight Elliott Cunningham
    Duncan Armstrong Hudson Carroll Lane Riley Andrews Delgado Berry Perkins Hoffman Johnston
    Matthews Richards Contreras Willis Carpenter Lawrence Sandoval
    Wang Zhang Liu Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Tanaka Suzuki Takahashi Watanabe Ito
    Yamamoto Nakamura Kobayashi Sato Park Choi Jung Kang Cho Yoon Lim Singh Kumar Sharma Gupta
    Reddy Iyer Rao Mehta Das Joshi Khan Ahmed Hussain Rahman Malik Chaudhry Qureshi Okafor
    Mensah Adeyemi Okonkwo Nkosi Dlamini Mwangi Kariuki Haddad Nasser Farouk Yilmaz Kaya Demir
    Cohen Levi Mizrahi Novak Kowalski Nowak Wisniewski Ivanov Petrov Smirnov Popescu Horvath
    Nagy Muller Schneider Fischer Weber Becker Rossi Russo Ferrari Esposito Bianchi Dubois
    Lefebvre Moreau Laurent Bernard Jansen Bakker Andersson Johansson Nilsson Larsen Nielsen
    Virtanen Korhonen Byrne Walsh Costa Oliveira Pereira Ferreira Nunez Pham Hoang Le Vu
    """
)

STREET_NAMES: tuple[str, ...] = _words(
    """
    Elm Oak Maple Pine Cedar Birch Walnut Willow Spruce Chestnut Hickory Magnolia Sycamore
    Aspen Juniper Cherry Poplar Laurel Hawthorn Linden Main Park Lake Hill River Spring Meadow
    Forest Sunset Highland Ridge Valley Church Mill Market Bridge Harbor Station Garden Orchard
    Prospect Franklin Washington Lincoln Jefferson Madison Jackson Adams Monroe Union Liberty
    Center Railroad Canal School Academy Water Cross Victoria Kings Queens Albert Windsor
    Greenfield Fairview Brookside Lakeview Riverside Westwood Hillcrest Woodland Cambridge
    """
)

STREET_SUFFIXES: tuple[str, ...] = _words(
    "Street Avenue Road Lane Drive Court Place Boulevard Way Terrace Circle Trail Parkway Row"
)

CITIES: tuple[str, ...] = _words(
    """
    Springfield, Riverside, Franklin, Greenville, Bristol, Clinton, Fairview, Salem, Madison,
    Georgetown, Arlington, Ashland, Dover, Oxford, Burlington, Manchester, Milton, Newport,
    Auburn, Dayton, Lexington, Milford, Winchester, Kingston, Mount Vernon, London, Paris,
    Berlin, Madrid, Lisbon, Rome, Vienna, Prague, Warsaw, Dublin, Oslo, Stockholm, Helsinki,
    Copenhagen, Amsterdam, Brussels, Zurich, Geneva, Athens, Istanbul, Cairo, Nairobi, Lagos,
    Accra, Johannesburg, Cape Town, Casablanca, Dubai, Mumbai, Delhi, Bangalore, Chennai,
    Karachi, Lahore, Dhaka, Bangkok, Hanoi, Manila, Jakarta, Singapore, Kuala Lumpur, Seoul,
    Busan, Tokyo, Osaka, Kyoto, Beijing, Shanghai, Shenzhen, Hong Kong, Taipei, Sydney,
    Melbourne, Auckland, Toronto, Montreal, Vancouver, Chicago, Houston, Phoenix, Denver,
    Seattle, Boston, Atlanta, Miami, Portland, Austin, Nashville, Mexico City, Bogota, Lima,
    Santiago, Buenos Aires, Sao Paulo, Rio de Janeiro, Montevideo, Quito
    """,
    sep=",",
)

COMPANY_WORDS_1: tuple[str, ...] = _words(
    """
    Northwind Contoso Fabrikam Tailspin Wingtip Acme Apex Summit Pioneer Granite Silver Golden
    Blue Iron Cedar Harbor Horizon Evergreen Keystone Liberty Meridian Pinnacle Sterling Atlas
    Beacon Cascade Crescent Eagle Falcon Frontier Heritage Lakeside Nova Orion Pacific Atlantic
    Prairie Quantum Redwood Riverbend Sequoia Skyline Sunrise Titan Trident Vertex Vista
    Westfield Zenith
    """
)

COMPANY_WORDS_2: tuple[str, ...] = _words(
    """
    Supply Logistics Systems Foods Labs Partners Analytics Dynamics Industries Solutions
    Consulting Ventures Manufacturing Energy Health Capital Media Networks Software Robotics
    Outfitters Traders Builders Farms Freight Textiles Pharma Motors Studios Works Designs
    Markets Brands Electronics Instruments Materials Services Technologies
    """
)

COMPANY_SUFFIXES: tuple[str, ...] = _words("Co Inc LLC Ltd Corp Group Holdings PLC LLP Company")

LOREM_WORDS: tuple[str, ...] = _words(
    """
    lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut
    labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco
    laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate
    velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt
    culpa qui officia deserunt mollit anim id est laborum at vero eos accusamus iusto odio
    dignissimos ducimus blanditiis praesentium voluptatum deleniti atque corrupti quos dolores
    quas molestias obcaecati cupiditate provident similique mollitia animi harum quidem rerum
    facilis expedita distinctio nam libero tempore cum soluta nobis eligendi optio cumque nihil
    impedit quo minus maxime placeat facere possimus omnis voluptas assumenda repellendus
    temporibus autem quibusdam officiis debitis aut necessitatibus saepe eveniet voluptates
    repudiandae recusandae itaque earum hic tenetur sapiente delectus reiciendis maiores alias
    perferendis doloribus asperiores repellat
    """
)

# Geographic NANP area codes; the 555-0100..0199 line block is fictional in every one of them.
_NPAS: tuple[str, ...] = _words(
    """
    201 202 203 205 206 207 208 210 212 213 214 215 216 217 301 302 303 304 305 307 310 312
    313 314 315 316 317 401 402 404 405 406 407 408 409 410 412 413 414 415 501 502 503 504
    505 507 508 509 510 512 513 515 516 601 602 603 605 606 607 608 609 610 612 614 615 617
    702 703 704 706 707 708 712 713 714 715 716 717 718 801 802 803 804 805 806 808 810 812
    813 814 815 816 817 818 901 903 904 906 907 908 909 910 912 913 914 915 916 917 918 919
    """
)

EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org")  # RFC 2606
_DOMAIN_LEN = len(EMAIL_DOMAINS[0])
assert all(len(d) == _DOMAIN_LEN for d in EMAIL_DOMAINS)  # max_length maths relies on this

# Test BINs published by the card schemes / processors (Visa 400000, Mastercard 510510, 222300).
CARD_TEST_BINS: tuple[int, ...] = (400000, 510510, 222300)

IBAN_BANK_CODE = "SYNT"  # not an issued UK bank code (BIC prefix)
_IBAN_LEN = 22  # GB: 2 country + 2 check + 4 bank + 6 sort code + 8 account

# RFC 5737 documentation prefixes (TEST-NET-1/2/3).
_IPV4_DOC_NETS: tuple[str, ...] = ("192.0.2.", "198.51.100.", "203.0.113.")
_IPV6_DOC_PREFIX = "2001:db8::"  # RFC 3849 documentation prefix 2001:db8::/32

_SSN_CAPACITY = 100 * 99 * 9999  # areas 900-999 x groups 01-99 x serials 0001-9999
_CARD_MIDDLE = 10**9  # digits 7-15
_IBAN_ACCOUNT = 10**8
_IBAN_CAPACITY = 10**6 * _IBAN_ACCOUNT
_PHONE_UNIQUE_DIGITS = 12  # +999 plus 12 digits = 15 digits, the E.164 maximum
_DEFAULT_REFERENCE_DATE = _dt.date(2025, 1, 1)
_EPOCH = _dt.date(1970, 1, 1)
_US_PER_DAY = 86_400 * 1_000_000


def _series(name: str, values: tuple[str, ...]) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Utf8)


_S_FIRST = _series("first", FIRST_NAMES)
_S_LAST = _series("last", LAST_NAMES)
_S_FIRST_LOWER = _S_FIRST.str.to_lowercase()
_S_LAST_LOWER = _S_LAST.str.to_lowercase()
_S_STREET = _series("street", STREET_NAMES)
_S_STREET_SUFFIX = _series("suffix", STREET_SUFFIXES)
_S_CITY = _series("city", CITIES)
_S_CO1 = _series("co1", COMPANY_WORDS_1)
_S_CO2 = _series("co2", COMPANY_WORDS_2)
_S_CO_SUFFIX = _series("co_suffix", COMPANY_SUFFIXES)
_S_DOMAIN = _series("domain", EMAIL_DOMAINS)
_S_NPA = _series("npa", _NPAS)
_S_IPV4_NET = _series("net", _IPV4_DOC_NETS)
# Lower-case words followed by their capitalised forms (sentence starts index into the 2nd half).
_S_LOREM = _series("w", LOREM_WORDS + tuple(w.capitalize() for w in LOREM_WORDS))
_LOREM_LEN = np.array([len(w) for w in LOREM_WORDS] * 2, dtype=np.int64)


@cache
def _hex16() -> pl.Series:
    """Lower-case hex text of every 16-bit value (an IPv6 group), built once on first use."""
    return pl.Series("hex", [format(i, "x") for i in range(1 << 16)], dtype=pl.Utf8)


# --------------------------------------------------------------------------------------------
# Small vectorized helpers.
# --------------------------------------------------------------------------------------------


def _pick(values: pl.Series, rng: np.random.Generator, n: int) -> pl.Series:
    """n uniform draws from a word list (numpy indices, one polars gather)."""
    return values.gather(rng.integers(0, len(values), size=n))


def _text(ints: np.ndarray, width: int | None = None) -> pl.Series:
    """Decimal text of non-negative integers, optionally zero-padded to ``width``."""
    s = pl.Series(ints).cast(pl.Utf8)
    return s.str.zfill(width) if width else s


def _cat(*parts: pl.Series | str, sep: str = "") -> pl.Series:
    """Row-wise concatenation of Series and string literals via ``pl.concat_str``."""
    cols: dict[str, pl.Series] = {}
    exprs: list[pl.Expr] = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            exprs.append(pl.lit(part))
        else:
            cols[f"c{i}"] = part
            exprs.append(pl.col(f"c{i}"))
    return pl.DataFrame(cols).select(pl.concat_str(exprs, separator=sep).alias("v")).to_series()


def _truncate(s: pl.Series, max_length: int | None) -> pl.Series:
    """Cut to ``max_length`` characters (non-unique kinds) and drop dangling spaces."""
    if max_length is None:
        return s
    return s.str.head(max_length).str.strip_chars_end(" ")


@cache
def _affine(m: int) -> tuple[int, int]:
    """Multiplier/offset of a fixed bijection x -> (a*x + c) mod m on [0, m)."""
    a = max(1, int(m * 0.6180339887498949))
    while math.gcd(a, m) != 1:
        a += 1
    if m * a + m >= 2**63:  # keep the int64 product exact
        raise ValueError(f"affine scramble modulus {m} is too large for int64 arithmetic")
    return a, int(m * 0.3819660112501051)


def _scramble(x: np.ndarray, m: int) -> np.ndarray:
    """Injective, rng-free shuffle of ordinals in [0, m) so consecutive rows don't look serial."""
    a, c = _affine(m)
    return (x.astype(np.int64) * a + c) % m


def _max_ordinal(ordinals: np.ndarray) -> int:
    return int(ordinals.max()) if len(ordinals) else -1


def _check_capacity(kind: str, ordinals: np.ndarray, capacity: int, what: str) -> None:
    top = _max_ordinal(ordinals)
    if top >= capacity:
        raise GenerationError(
            f"{kind}: unique=True can only produce {capacity:,} distinct values ({what}), "
            f"but got ordinal {top:,}; fix: drop unique for this column or generate fewer "
            f"than {capacity:,} rows"
        )


def _need_length(
    kind: str, max_length: int | None, need: int, what: str, *, unique: bool = True
) -> None:
    if max_length is not None and max_length < need:
        alternative = " or drop unique" if unique else ""
        raise GenerationError(
            f"{kind}: max_length={max_length} cannot hold {what} (needs {need} characters); "
            f"fix: widen the column to at least {need} characters{alternative}"
        )


def _suffix_unique(
    kind: str,
    base: pl.Series,
    ordinals: np.ndarray,
    max_length: int | None,
) -> pl.Series:
    """``base + " " + ordinal``: unique because the text after the last space is the ordinal.

    The base is shortened (never the ordinal) to fit ``max_length``; when nothing of the base
    fits, the value is the bare ordinal, which still cannot collide (it has no space).
    """
    suffix = _text(ordinals)
    if max_length is None:
        return _cat(base, " ", suffix)
    width = int(suffix.str.len_chars().max() or 0)
    _need_length(kind, max_length, width, f"the ordinal-derived unique part of {width} digits")
    frame = pl.DataFrame({"b": base, "s": suffix})
    budget = pl.lit(max_length) - pl.col("s").str.len_chars().cast(pl.Int64) - 1
    budget = pl.when(budget > 0).then(budget).otherwise(0)
    head = pl.col("b").str.head(budget).str.strip_chars_end(" ")
    value = (
        pl.when(head.str.len_chars() > 0)
        .then(pl.concat_str([head, pl.lit(" "), pl.col("s")]))
        .otherwise(pl.col("s"))
    )
    return frame.select(value.alias("v")).to_series()


# --------------------------------------------------------------------------------------------
# Check digits.
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Generators, one per kind: (rng, ordinals, unique, max_length, pg_type, params) -> Series.
# --------------------------------------------------------------------------------------------


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


def _length_words(params: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    spec = params.get("length_words")
    if spec is None:
        return rng.integers(3, 13, size=n)
    try:
        if isinstance(spec, dict):
            bins, probs = spec["bins"], spec["probs"]
        else:
            bins, probs = spec
        bins = np.asarray(bins, dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise GenerationError(
            f"free_text: params['length_words'] must be (bins, probs) lists, got {spec!r}; "
            "fix: pass e.g. ([3, 8, 15], [0.5, 0.5])"
        ) from exc
    total = probs.sum() if probs.size else 0.0
    if (
        probs.ndim != 1
        or bins.ndim != 1
        or len(bins) not in (len(probs), len(probs) + 1)
        or not np.all(np.isfinite(probs))
        or np.any(probs < 0)
        or not total > 0
        or np.any(bins < 0)
    ):
        raise GenerationError(
            f"free_text: params['length_words'] {spec!r} is not a valid histogram; fix: give "
            "non-negative word counts and non-negative probabilities with a positive sum, "
            "either one count per probability or len(probs)+1 bin edges"
        )
    which = rng.choice(len(probs), size=n, p=probs / total)
    if len(bins) == len(probs):  # one word count per probability
        return bins[which]
    lo, hi = bins[which], bins[which + 1]  # bin edges: uniform in [lo, hi)
    return rng.integers(lo, np.maximum(hi, lo + 1))


def _fit_words(
    counts: np.ndarray, offsets: np.ndarray, idx: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How many leading words of each row fit in ``limit`` characters (numpy, no regex).

    Returns (words kept per row, whether the final "." still fits, flat keep-mask). A row whose
    first word alone is too long keeps that word; the caller then hard-cuts it to ``limit``.
    """
    n = len(counts)
    row = np.repeat(np.arange(n), counts)
    pos = np.arange(len(idx)) - offsets[:-1][row]  # word position within its row
    csum = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(_LOREM_LEN[idx], out=csum[1:])
    end = csum[1:] - csum[offsets[:-1][row]] + pos  # end of word incl. separating spaces
    kept = np.bincount(row, weights=end <= limit[row], minlength=n).astype(np.int64)
    last_end = np.zeros(n, dtype=np.int64)
    has = counts > 0
    last_end[has] = end[offsets[1:][has] - 1]
    period = has & (kept == counts) & (last_end + 1 <= limit)
    kept[has & (kept == 0) & (limit > 0)] = 1  # first word longer than the limit
    return kept, period, pos < kept[row]


def _free_text(rng, ordinals, unique, max_length, pg_type, params):
    import pyarrow as pa  # a declared dependency; only needed to assemble ragged rows

    n = len(ordinals)
    counts = _length_words(params, n, rng).astype(np.int64)
    limit = None
    if max_length is not None:
        if unique:  # room left for the base once " <ordinal>" is appended
            width = _text(ordinals).str.len_chars().to_numpy().astype(np.int64)
            limit = np.maximum(max_length - width - 1, 0)
        else:
            limit = np.full(n, max_length, dtype=np.int64)
        counts = np.minimum(counts, limit // 2 + 1)  # words are >= 1 char + a space
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n_lower = len(LOREM_WORDS)
    idx = rng.integers(0, n_lower, size=int(offsets[-1]))
    idx[offsets[:-1][counts > 0]] += n_lower  # capitalise each sentence's first word
    period = counts > 0
    if limit is not None:
        counts, period, keep = _fit_words(counts, offsets, idx, limit)
        idx = idx[keep]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
    words = _S_LOREM.gather(idx).to_arrow()
    # 32-bit list offsets while they fit: polars 1.x (which OpenDP's mbi extra pins) panics in
    # `list.join` over a LargeList built from Arrow ("len == bitmap.len()")
    if offsets[-1] < 2**31:
        lists = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), words)
    else:
        lists = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), words)
    frame = pl.DataFrame({"w": pl.Series(pl.from_arrow(lists)), "p": pl.Series(period)})
    if limit is not None:
        frame = frame.with_columns(k=pl.Series(limit))
    text = pl.concat_str(
        [pl.col("w").list.join(" "), pl.when("p").then(pl.lit(".")).otherwise(pl.lit(""))]
    )
    if limit is not None:
        text = text.str.head(pl.col("k"))  # only bites on a single over-long first word
    text = frame.select(text.alias("v")).to_series()
    if unique:
        return _suffix_unique("free_text", text, ordinals, max_length)
    return text


_GENERATORS: dict[str, Callable[..., pl.Series]] = {
    "email": _email,
    "person_name": _names("person_name"),
    "first_name": _names("first_name"),
    "last_name": _names("last_name"),
    "phone": _phone,
    "address": _address,
    "postal_code": _postal_code,
    "birth_date": _birth_date,
    "national_id": _national_id,
    "card_number": _card_number,
    "iban": _iban,
    "ip_address": _ip_address,
    "free_text": _free_text,
    "city": _names("city"),
    "company_name": _names("company_name"),
}
# The PII kinds, in the order messages list them; core/roles.py checks them against its Role.
PII_KINDS: tuple[str, ...] = tuple(_GENERATORS)


def fake_column(
    kind: str,
    rng: np.random.Generator,
    ordinals: np.ndarray,
    *,
    unique: bool = False,
    max_length: int | None = None,
    pg_type: str = "text",
    params: dict | None = None,
) -> pl.Series:
    """n = len(ordinals) fake values of `kind`. `ordinals` are int64 row numbers that are unique
    across the whole dataset (all shards); when unique=True the values must be unique across
    any set of calls whose ordinals are disjoint — derive uniqueness from the ordinal (e.g. embed
    it), never from a retry loop.

    Returns a Utf8 Series named ``kind`` (``birth_date``: Date, or Datetime when ``pg_type``
    mentions "timestamp"; UTC-aware for timestamptz). Raises GenerationError for an unknown
    kind, a ``max_length`` too short for the (unique) format, or ordinals past the capacity of
    a reserved range.
    """
    gen = _GENERATORS.get(kind)
    if gen is None:
        raise GenerationError(f"unknown PII kind {kind!r}; fix: use one of {', '.join(PII_KINDS)}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fake_column({kind!r}) needs a numpy.random.Generator, got {rng!r}")
    if max_length is not None and (isinstance(max_length, bool) or int(max_length) < 1):
        raise GenerationError(
            f"{kind}: max_length must be a positive integer, got {max_length!r}; "
            "fix: pass the column's character limit or None"
        )
    ords = np.asarray(ordinals)
    if ords.ndim != 1 or (ords.size and not np.issubdtype(ords.dtype, np.integer)):
        raise GenerationError(
            f"{kind}: ordinals must be a 1-D integer array, got dtype {ords.dtype} and shape "
            f"{ords.shape}; fix: pass np.arange(start, stop, dtype=np.int64)"
        )
    ords = ords.astype(np.int64, copy=False)
    if ords.size and int(ords.min()) < 0:
        raise GenerationError(
            f"{kind}: ordinals must be non-negative row numbers, got {int(ords.min())}; "
            "fix: number rows from 0"
        )
    out = gen(
        rng,
        ords,
        bool(unique),
        None if max_length is None else int(max_length),
        pg_type or "text",
        params or {},
    )
    return out.alias(kind)
