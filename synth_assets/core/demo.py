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

from __future__ import annotations

import io
import logging

import numpy as np
import polars as pl
import psycopg
from psycopg import sql

from .errors import ConfigError, SourceError
from .pg import connect, redact

log = logging.getLogger(__name__)

DEMO_TABLES = ("customers", "merchants", "accounts", "cards", "transactions")

# Fixed reference dates (UTC). Never "today": the demo must be reproducible.
DEMO_END = np.datetime64("2025-06-30T23:59:59", "s")
_DAY = 86_400
_END = int(DEMO_END.astype(np.int64)) + 1  # exclusive upper bound, seconds since epoch
_END_D = _END // _DAY  # first day after the window
_TX_START_D = int(np.datetime64("2023-07-01", "D").astype(np.int64))
_CUST_START = int(np.datetime64("2022-01-01T00:00:00", "s").astype(np.int64))
_CUST_END = int(np.datetime64("2025-01-01T00:00:00", "s").astype(np.int64))
_YEAR_D = 365.2425

#: The planted extreme transactions (amount, currency units); a leaky generator copies them.
OUTLIER_AMOUNTS = (1_250_000.00, 2_480_000.00, 4_125_000.50)
#: How many rare ``private`` customers born before 1935 hold a ``loan`` account.
RARE_ELDERLY_PRIVATE = 5
#: How many ``atm`` transactions are ``reversed`` (never generated otherwise).
RARE_ATM_REVERSED = 4

SEGMENTS = ("retail", "premium", "private", "business")
ACCOUNT_TYPES = ("checking", "savings", "credit", "loan")
ACCOUNT_STATUSES = ("active", "dormant", "closed")
CHANNELS = ("card_present", "online", "atm", "transfer")
TX_STATUSES = ("settled", "pending", "declined", "reversed")
NETWORKS = ("visa", "mastercard")

# --------------------------------------------------------------------------------------------
# Embedded reference lists (ASCII)
# --------------------------------------------------------------------------------------------

_FIRST_NAMES = """
Oliver George Harry Jack Jacob Noah Charlie Muhammad Thomas Oscar William James Henry Leo
Alfie Joshua Freddie Archie Ethan Isaac Alexander Joseph Edward Samuel Max Daniel Arthur Lucas
Mohammed Logan Theo Harrison Benjamin Mason Sebastian Finley Adam Dylan Zachary Riley Teddy
Theodore David Toby Jake Louie Elijah Reuben Arlo Hugo Luca Jaxon Matthew Harvey Reggie
Michael Tommy Jenson Frankie Ronnie Albert Stanley Elliot Frederick Liam Jude Rory Caleb
Peter Paul Mark Andrew Richard Christopher Stephen Anthony Kevin Gary Ian Simon Neil Graham
Colin Keith Trevor Nigel Derek Raymond Kenneth Brian Alan Malcolm Gordon Stuart Craig Darren
Olivia Amelia Isla Ava Emily Sophia Grace Mia Poppy Ella Lily Evie Isabella Sophie Ivy Freya
Harper Willow Charlotte Jessica Rosie Daisy Alice Florence Elsie Sienna Phoebe Evelyn Matilda
Ruby Isabelle Scarlett Esme Millie Maisie Emilia Layla Eliza Thea Chloe Luna Lucy Erin Holly
Mary Margaret Susan Sarah Karen Julie Helen Elizabeth Patricia Linda Jennifer Nicola Joanne
Claire Emma Rachel Rebecca Laura Hannah Amy Victoria Louise Catherine Anne Jane Janet Diane
Carol Christine Gillian Pauline Sandra Wendy Jacqueline Deborah Tracey Angela Lorraine Dawn
Anna Priya Aisha Fatima Zara Noor Amira Yasmin Leila Mei Ling Hana Sofia Maria Elena Chiara
Ana Ines Marta Zofia Agnieszka Olga Irina Nadia Ayesha Sana Deepa Kavita Anjali Meera Rohan
Arjun Vikram Rahul Sanjay Imran Bilal Omar Hamza Yusuf Ali Hassan Tariq Kwame Kofi Chidi
Emeka Tunde Femi Ade Jonas Lukas Mateusz Piotr Tomasz Andrei Marco Giovanni Pablo Diego
Santiago Joao Pedro Sean Ciaran Declan Niamh Siobhan Aoife Ciara Eilidh Morag Fiona Hamish
Angus Callum Euan Rhys Gareth Dafydd Cerys Bethan Megan Carys
""".split()

_LAST_NAMES = """
Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson Thompson
Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson Wood Turner
Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen James Scott
Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook Carter
Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall Anderson Simpson
Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers Gray Mason Ali Hunt
Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd Butler Russell
Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher Walsh Kaur
Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks
West Lawrence Cole Atkinson Bradley Spencer Gill Dawson Ball Burton O'Brien Watts Rose Booth
Perry Ryan Grant Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster Hunter
Gregory Carr Lowe Page Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland Hawkins
Harding Porter Robertson Newton Oliver Reed Kennedy Williamson Bird Gardner Shah Dean Lane
Cooke Bates Henderson Parry Burgess Bishop Walton Burns Nicholson Shepherd Ross Cross Long
Freeman Warren Nicholls Hamilton Byrne Sutton McDonald Yates Hodgson Robson Curtis Hopkins
O'Connor Harper Coleman Watkins Moss McCarthy Chambers O'Neill Griffin Sharp Hardy Wheeler
Potter Osborne Johnston Gordon Doyle Wallace George Jordan Hutchinson Rowe Burke May Pritchard
Gilbert Willis Higgins Read Miles Stevenson Stephenson Hammond Arnold Buckley Walters Hewitt
Barber Nelson Slater Austin Sullivan Whitehead Mann Frost Lambert Stephens Blake Akhtar Lynch
Goodwin Barton Woodward Thomson Cunningham Quinn Barnett Baxter Bibi Clayton Nash Greenwood
Jennings Holt Kemp Poole Gallagher Bond Stokes Tucker Davidson Fowler Heath Norman Middleton
Lawson Banks French Stanley Jarvis Gibbs Ferguson Hayward Carroll Douglas Hicks Vaughan
Smith-Jones Lloyd-Davies Fox-Pitt Ashworth-Clarke Nowak Kowalski Wisniewski Okafor Mensah
Adeyemi Nguyen Chen Wang Li Zhang Kim Park Tanaka Rossi Ferrari Garcia Rodriguez Fernandez
Lopez Martinez Silva Santos Costa Oliveira Muller Schmidt Schneider Fischer Weber Dubois
Moreau Laurent Leroy Jansen Visser Mahmood Iqbal Rahman Choudhury Sharma Gupta Mistry
""".split()

_STREETS = """
High Church Station Victoria Green Manor Park Queens Kings Grange Mill Springfield School
Windsor Highfield New London Alexandra York Albert Chapel Main Elm Oak Cedar Beech Willow
Ash Maple Birch Holly Rowan Hawthorn Chestnut Meadow Orchard Brook River Bridge Castle Abbey
Priory Moor Hill Valley Forest Wood Lake Marsh North South East West Mount Carlton Stanley
Cromwell Nelson Wellington Clarence Beaconsfield Salisbury Devonshire Cavendish Portland
Grosvenor Belmont Fairfield Ashfield Westfield Eastfield Broad Market Bank Cross Long Trinity
Hamilton Lansdowne Hanover Mayfield Rosebery Sandringham Balmoral Osborne Riverside Heathfield
Kingsway Tennyson Shelley Byron Milton Chaucer Darwin Newton Faraday Telford Brunel Stephenson
""".split()
_STREET_TYPES = np.array(
    ["Road", "Street", "Lane", "Avenue", "Close", "Drive", "Way", "Gardens", "Place", "Crescent",
     "Court", "Terrace", "Grove", "Mews", "Rise", "Walk", "Square", "Hill"],
)  # fmt: skip
_STREET_TYPE_P = np.array([28, 22, 12, 9, 7, 6, 3, 3, 2, 3, 2, 2, 2, 1, 1, 1, 0.5, 0.5])

# (town, postcode areas, weight) for customers and GB merchants.
_GB_CITIES = [
    ("London", "E N NW SE SW W EC WC", 16.0),
    ("Birmingham", "B", 4.5),
    ("Manchester", "M", 4.0),
    ("Leeds", "LS", 3.0),
    ("Glasgow", "G", 3.0),
    ("Liverpool", "L", 2.5),
    ("Sheffield", "S", 2.2),
    ("Bristol", "BS", 2.2),
    ("Edinburgh", "EH", 2.2),
    ("Newcastle upon Tyne", "NE", 1.8),
    ("Cardiff", "CF", 1.7),
    ("Nottingham", "NG", 1.6),
    ("Leicester", "LE", 1.5),
    ("Coventry", "CV", 1.3),
    ("Bradford", "BD", 1.3),
    ("Belfast", "BT", 1.3),
    ("Southampton", "SO", 1.1),
    ("Portsmouth", "PO", 1.0),
    ("Brighton", "BN", 1.0),
    ("Reading", "RG", 1.0),
    ("Oxford", "OX", 0.8),
    ("Cambridge", "CB", 0.8),
    ("Norwich", "NR", 0.7),
    ("Exeter", "EX", 0.6),
    ("Plymouth", "PL", 0.7),
    ("York", "YO", 0.6),
    ("Aberdeen", "AB", 0.7),
    ("Dundee", "DD", 0.5),
    ("Swansea", "SA", 0.6),
    ("Hull", "HU", 0.7),
    ("Stoke-on-Trent", "ST", 0.7),
    ("Derby", "DE", 0.7),
    ("Wolverhampton", "WV", 0.7),
    ("Milton Keynes", "MK", 0.6),
    ("Preston", "PR", 0.5),
    ("Bath", "BA", 0.4),
    ("Canterbury", "CT", 0.4),
    ("Inverness", "IV", 0.3),
    ("Carlisle", "CA", 0.3),
    ("Truro", "TR", 0.3),
]
_FOREIGN_CITIES = {
    "IE": ["Dublin", "Cork", "Galway"],
    "FR": ["Paris", "Lyon", "Nice", "Bordeaux"],
    "ES": ["Madrid", "Barcelona", "Malaga", "Palma"],
    "DE": ["Berlin", "Munich", "Frankfurt", "Hamburg"],
    "NL": ["Amsterdam", "Rotterdam", "Utrecht"],
    "IT": ["Rome", "Milan", "Florence"],
    "US": ["New York", "San Francisco", "Seattle", "Orlando"],
    "PT": ["Lisbon", "Faro", "Porto"],
}
_COUNTRY_CODES = ["GB", *_FOREIGN_CITIES]

_EMAIL_DOMAINS = np.array(
    ["gmail.com", "outlook.com", "hotmail.co.uk", "yahoo.com", "icloud.com", "btinternet.com",
     "sky.com", "yahoo.co.uk", "live.co.uk", "protonmail.com"],
)  # fmt: skip
_EMAIL_DOMAIN_P = np.array([38, 15, 12, 8, 8, 5, 4, 4, 4, 2], dtype=float)
_COMPANY_DOMAINS = np.array(
    ["hartwell-logistics.co.uk", "brightmoor.com", "kestrelconsulting.co.uk", "northgate-eng.com",
     "ashdownlegal.co.uk", "mapleleafdental.co.uk", "tidewaybuilders.co.uk", "quillandink.com",
     "fernbankfarm.co.uk", "corvusdigital.io", "redbrick-estates.co.uk", "sablewood.co.uk"],
)  # fmt: skip

# Bank codes with their sort-code prefixes (a fictional bank group settles through these).
_BANK_CODES = np.array(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"])
_BANK_SORT_PREFIX = np.array([60, 20, 30, 40, 40])
_BANK_P = np.array([0.42, 0.2, 0.2, 0.1, 0.08])

# Real-looking issuer BINs (none of the published test BINs 400000/510510/222300/411111...).
_VISA_BINS = np.array([465859, 475129, 492181, 454638, 446291, 434994, 476173, 448407])
_MC_BINS = np.array([535522, 542418, 552213, 516001, 529930, 557039])

# Merchant categories: (MCC, label, weekday weight, weekend weight, median amount, log-sigma,
# channel probabilities (card_present, online, atm, transfer), share of merchants).
_CATEGORIES = [
    ("5411", "grocery", 22.0, 24.0, 32.0, 0.80, (0.85, 0.15, 0, 0), 18),
    ("5812", "restaurants", 9.0, 13.0, 34.0, 0.60, (0.88, 0.12, 0, 0), 14),
    ("5814", "fast_food", 9.0, 10.0, 11.0, 0.50, (0.75, 0.25, 0, 0), 10),
    ("5541", "fuel", 6.0, 6.5, 52.0, 0.40, (1.0, 0, 0, 0), 6),
    ("5912", "pharmacy", 3.5, 3.0, 16.0, 0.70, (0.8, 0.2, 0, 0), 5),
    ("5311", "department_stores", 4.0, 6.0, 55.0, 0.90, (0.6, 0.4, 0, 0), 5),
    ("5651", "clothing", 4.0, 6.0, 62.0, 0.80, (0.55, 0.45, 0, 0), 7),
    ("5732", "electronics", 1.5, 2.0, 160.0, 1.00, (0.45, 0.55, 0, 0), 4),
    ("5999", "misc_retail", 6.0, 6.0, 28.0, 0.90, (0.5, 0.5, 0, 0), 8),
    ("4111", "transit", 8.0, 4.0, 5.5, 0.60, (0.7, 0.3, 0, 0), 4),
    ("4511", "airlines", 0.8, 0.9, 290.0, 0.70, (0.12, 0.88, 0, 0), 3),
    ("7011", "hotels", 0.8, 1.2, 210.0, 0.80, (0.35, 0.65, 0, 0), 5),
    ("4814", "telecom", 2.0, 0.7, 38.0, 0.40, (0.05, 0.55, 0, 0.4), 2),
    ("4900", "utilities", 3.0, 0.8, 85.0, 0.50, (0, 0.3, 0, 0.7), 2),
    ("6011", "atm_cash", 6.0, 5.5, 80.0, 0.60, (0, 0, 1.0, 0), 3),
    ("6012", "financial_transfers", 10.0, 3.0, 180.0, 1.20, (0, 0, 0, 1.0), 4),
]
_N_CAT = len(_CATEGORIES)
_CAT_CODE = np.array([c[0] for c in _CATEGORIES])
_CAT_LABEL = [c[1] for c in _CATEGORIES]
_CAT_W = np.array([[c[2] for c in _CATEGORIES], [c[3] for c in _CATEGORIES]])  # [weekend, cat]
_CAT_MEDIAN = np.array([c[4] for c in _CATEGORIES])
_CAT_SIGMA = np.array([c[5] for c in _CATEGORIES])
_CAT_CHANNEL = np.array([c[6] for c in _CATEGORIES], dtype=float)
_CAT_MERCHANT_SHARE = np.array([c[7] for c in _CATEGORIES], dtype=float)
_CAT_ATM = _CAT_LABEL.index("atm_cash")
_CAT_TRANSFER = _CAT_LABEL.index("financial_transfers")
_TRAVEL = [_CAT_LABEL.index(x) for x in ("airlines", "hotels")]

# Merchant name parts by category label.
_MERCHANT_SUFFIX = {
    "grocery": ["Market", "Grocers", "Foods", "Food Hall", "Superstore", "Local", "Express"],
    "restaurants": ["Kitchen", "Bistro", "Trattoria", "Brasserie", "Grill", "Dining Rooms", "Cafe"],
    "fast_food": ["Burgers", "Chicken", "Pizza", "Noodle Bar", "Fish & Chips", "Bakery", "Kebab"],
    "fuel": ["Service Station", "Fuels", "Petroleum", "Garage"],
    "pharmacy": ["Pharmacy", "Chemists", "Health"],
    "department_stores": ["& Co", "Department Store", "Home Store", "Emporium"],
    "clothing": ["Outfitters", "Clothing", "Boutique", "Apparel", "Tailoring"],
    "electronics": ["Electronics", "Tech", "Digital", "Computers"],
    "misc_retail": ["Books", "Gifts", "Hardware", "Garden Centre", "Toys", "Pet Supplies"],
    "transit": ["Travel", "Buses", "Rail", "Taxis", "Parking"],
    "airlines": ["Airways", "Air", "Airlines", "Jet"],
    "hotels": ["Hotel", "Inn", "Lodge", "Suites", "Guest House"],
    "telecom": ["Mobile", "Telecom", "Broadband", "Connect"],
    "utilities": ["Energy", "Water", "Power", "Gas & Electric"],
    "atm_cash": ["Cash Machine", "ATM", "Cashpoint"],
    "financial_transfers": ["Payments Ltd", "Building Society", "Finance", "Money Transfer"],
}
_MERCHANT_WORDS = """
Harbour Riverside Oakwood Kingfisher Redwood Meadowbank Northfield Lakeside Bluebell Heron
Fox Lark Wren Thistle Clover Juniper Saffron Olive Copper Silver Golden Crown Anchor Beacon
Compass Lantern Summit Horizon Granite Ember Willow Hazel Primrose Sterling Regal Union Central
Metro City Village Coastal Highland Pennine Cotswold Wessex Albion Mercia Thames Severn Tyne
Avon Orchard Harvest Acorn Falcon Swift Rook Badger Otter Pine Elm Ivy Jasmine Marigold Poppy
""".split()

_MONTHS = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
]  # fmt: skip
# Memo templates by channel: (prefix, argument kind, suffix); kinds: 0 none, 1 month,
# 2 first name, 3 short number, 4 long number.
_MEMO_TEMPLATES = {
    "transfer": [
        ("rent ", 1, ""), ("gift for ", 2, ""), ("invoice ", 3, ""), ("savings", 0, ""),
        ("loan repayment ", 1, ""), ("school fees", 0, ""), ("pocket money ", 2, ""),
        ("", 2, " birthday"), ("split bill ", 2, ""), ("holiday deposit", 0, ""),
        ("ref ", 4, ""), ("council tax ", 1, ""), ("car insurance", 0, ""),
        ("payback ", 2, ""), ("INV-", 3, ""), ("monthly transfer", 0, ""),
        ("wedding present ", 2, ""), ("childcare ", 1, ""),
    ],
    "online": [
        ("order ", 4, ""), ("gift for ", 2, ""), ("subscription", 0, ""),
        ("refund request ", 3, ""), ("present for ", 2, ""), ("tickets", 0, ""),
    ],
    "card_present": [
        ("lunch", 0, ""), ("dinner with ", 2, ""), ("groceries", 0, ""), ("coffee", 0, ""),
        ("team lunch", 0, ""), ("parking", 0, ""), ("drinks with ", 2, ""),
    ],
    "atm": [("cash", 0, ""), ("cash for ", 2, "")],
}  # fmt: skip

# Diurnal profiles (relative weight per UTC hour).
_HOURS_WEEKDAY = np.array(
    [0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.6, 1.4, 2.2, 2.4, 2.6, 3.0,
     4.2, 3.8, 2.8, 2.6, 2.8, 3.4, 4.0, 4.2, 3.6, 2.8, 1.8, 1.0]
)  # fmt: skip
_HOURS_WEEKEND = np.array(
    [0.9, 0.6, 0.4, 0.25, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.8, 3.4,
     4.0, 3.9, 3.4, 3.2, 3.2, 3.4, 3.8, 4.0, 3.6, 3.0, 2.2, 1.4]
)  # fmt: skip
_HOURS_TRANSFER = np.array(
    [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 1.0, 2.5, 3.5, 3.6, 3.4,
     3.6, 3.4, 3.2, 3.0, 2.6, 2.0, 1.6, 1.4, 1.2, 0.9, 0.6, 0.4]
)  # fmt: skip
_WEEKDAY_W = np.array([0.95, 0.97, 1.0, 1.03, 1.15, 1.05, 0.8])  # Mon..Sun volume
_MONTH_W = np.array([0.86, 0.9, 0.97, 0.98, 1.0, 0.99, 1.0, 1.02, 0.98, 1.0, 1.08, 1.25])
_TREND = 0.6  # intensity grows by 60% across the transaction window

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _p(w) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w / w.sum()


def _categorical(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """Draw ``size`` category indices from probability vector ``p``."""
    return np.searchsorted(np.cumsum(_p(p)), rng.random(size), side="right").clip(0, len(p) - 1)


def _rowwise_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of the (n, k) probability matrix ``probs`` (rows need not sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return (cum <= u[:, None]).sum(axis=1).clip(0, probs.shape[1] - 1)


def _cents_text(cents: np.ndarray) -> pl.Series:
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


def _ts(seconds: np.ndarray) -> pl.Series:
    return pl.from_epoch(pl.Series(np.asarray(seconds, dtype=np.int64)), time_unit="s")


def _date(days: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(days, dtype=np.int32)).cast(pl.Date)


def _pick(values, idx: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object)[idx]


def _month_end(days: np.ndarray) -> np.ndarray:
    """Last day of the month containing each epoch day."""
    m = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]")
    return ((m + 1).astype("datetime64[D]") - 1).astype(np.int64)


def _iban_check(bank_num: np.ndarray, bban_digits: np.ndarray) -> np.ndarray:
    """ISO 13616 check digits for GB IBANs: letters of the bank code as numbers, 14 digits."""
    m = bank_num % 97
    m = (m * (10**14 % 97) + bban_digits % 97) % 97
    m = (m * (10**6 % 97) + 161100) % 97  # "GB00" -> 16 11 00
    return 98 - m


def _luhn_digit(payload: np.ndarray) -> np.ndarray:
    """Luhn check digit for 15-digit payloads given as int64."""
    digits = np.stack([(payload // 10**k) % 10 for k in range(15)], axis=1)  # k=0 rightmost
    doubled = digits[:, 0::2] * 2
    total = (doubled // 10 + doubled % 10).sum(axis=1) + digits[:, 1::2].sum(axis=1)
    return (10 - total % 10) % 10


# --------------------------------------------------------------------------------------------
# Table generators
# --------------------------------------------------------------------------------------------


def _gen_customers(rng: np.random.Generator, n: int) -> tuple[pl.DataFrame, dict]:
    # Sign-ups trend upwards: density ~ (1 + t) over three years; strictly increasing seconds.
    span = _CUST_END - _CUST_START
    u = np.sort(rng.random(n))
    frac = np.sqrt(1.0 + 3.0 * u) - 1.0  # inverse CDF of (1 + t) on [0, 1]
    created = (_CUST_START + frac * span).astype(np.int64)
    # daytime sign-ups: move the clock time onto a diurnal profile
    day0 = created // _DAY
    hour = _categorical(rng, _HOURS_WEEKDAY, n)
    created = day0 * _DAY + hour * 3600 + rng.integers(0, 3600, n)
    created.sort()
    created = np.maximum.accumulate(created - np.arange(n)) + np.arange(n)
    created = np.minimum(created, _CUST_END - 1 - (n - 1 - np.arange(n)))
    created_d = created // _DAY

    segment = _categorical(rng, [0.78, 0.14, 0.02, 0.06], n)
    # Rare records: a handful of private customers born before 1935 (each gets a loan account).
    n_rare = min(RARE_ELDERLY_PRIVATE, n // 2)
    rare = np.sort(rng.choice(np.arange(n // 10, n), size=n_rare, replace=False))
    segment[rare] = SEGMENTS.index("private")

    age_mean = np.array([43.0, 50.0, 58.0, 47.0])[segment]
    age = np.clip(rng.normal(age_mean, 15.0), 18.2, 89.0)
    end_d = _END_D - 1
    dob = (end_d - age * _YEAR_D).astype(np.int64)
    dob = np.minimum(dob, (created_d - 18 * _YEAR_D - 1).astype(np.int64))
    dob_floor = int(np.datetime64("1935-07-01", "D").astype(np.int64))
    dob = np.maximum(dob, dob_floor)
    lo = int(np.datetime64("1930-07-01", "D").astype(np.int64))
    hi = int(np.datetime64("1934-12-31", "D").astype(np.int64))
    dob[rare] = rng.integers(lo, hi, len(rare))

    first_i = rng.integers(0, len(_FIRST_NAMES), n)
    last_i = _categorical(rng, 1.0 / np.arange(1, len(_LAST_NAMES) + 1) ** 0.6, n)
    first = _pick(_FIRST_NAMES, first_i)
    last = _pick(_LAST_NAMES, last_i)
    middle = np.where(
        rng.random(n) < 0.12, _pick(_FIRST_NAMES, rng.integers(0, len(_FIRST_NAMES), n)), None
    )

    # e-mail: pattern + unique number (a random permutation keeps numbers unique).
    num = rng.permutation(n) + rng.integers(1, 90)
    pattern = _categorical(rng, [40, 20, 15, 15, 10], n)
    is_business = segment == SEGMENTS.index("business")
    domain = _pick(_EMAIL_DOMAINS, _categorical(rng, _EMAIL_DOMAIN_P, n))
    company = _pick(_COMPANY_DOMAINS, rng.integers(0, len(_COMPANY_DOMAINS), n))
    domain = np.where(is_business & (rng.random(n) < 0.7), company, domain)

    # phones: unique 9-digit subscriber numbers after the leading 7; some missing.
    sub = rng.choice(np.int64(10**9 - 10**8), size=n, replace=False) + 10**8
    intl = rng.random(n) < 0.8
    phone_null = rng.random(n) < 0.06

    # SSN-like national ids: areas 001-665, 667-899, groups 01-99, serials 0001-9999.
    x = rng.choice(np.int64(898 * 99 * 9999), size=n, replace=False)
    area = x // (99 * 9999) + 1
    area = area + (area >= 666)
    group = (x // 9999) % 99 + 1
    serial = x % 9999 + 1

    city_i = _categorical(rng, [c[2] for c in _GB_CITIES], n)
    area_choices = [c[1].split() for c in _GB_CITIES]
    area_k = rng.integers(0, 8, n)
    pc_area = np.array(
        [area_choices[c][k % len(area_choices[c])] for c, k in zip(city_i, area_k, strict=True)]
    )
    pc_district = rng.integers(1, 30, n)
    pc_letters = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
    pc_unit = (
        rng.integers(0, 10, n).astype(str)
        + pc_letters[rng.integers(0, 20, n)]
        + pc_letters[rng.integers(0, 20, n)]
    )

    house = np.maximum(1, np.round(rng.lognormal(2.7, 0.9, n))).astype(np.int64)
    street = _pick(_STREETS, rng.integers(0, len(_STREETS), n))
    stype = _STREET_TYPES[_categorical(rng, _STREET_TYPE_P, n)]
    flat = np.where(rng.random(n) < 0.18, rng.integers(1, 40, n), 0)

    # ~30% referred by an EARLIER customer; early customers refer more (u**2 skew).
    ids = np.arange(1, n + 1, dtype=np.int64)
    referred = (rng.random(n) < 0.30) & (ids > 1)
    ref_id = np.floor((ids - 1) * rng.random(n) ** 2).astype(np.int64) + 1
    referred_by = np.where(referred, ref_id, 0)

    df = pl.DataFrame(
        {
            "id": ids,
            "first": first.astype(str),
            "middle": middle.tolist(),
            "last": last.astype(str),
            "num": num.astype(np.int64),
            "pattern": pattern.astype(np.int64),
            "domain": domain.astype(str),
            "sub": sub.astype(np.int64),
            "intl": intl,
            "phone_null": phone_null,
            "area": area,
            "group": group,
            "serial": serial,
            "pc_area": pc_area,
            "pc_district": pc_district,
            "pc_unit": pc_unit,
            "house": house,
            "street": street.astype(str),
            "stype": stype,
            "flat": flat,
            "segment": np.array(SEGMENTS)[segment],
            "created": created,
            "dob": dob,
            "referred_by": referred_by,
        },
        schema_overrides={"middle": pl.String},
    )
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
    s = pl.col("sub").cast(pl.String)
    phone = (
        pl.when(pl.col("phone_null"))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("intl"))
        .then(pl.concat_str(pl.lit("+44 7"), s.str.slice(0, 3), pl.lit(" "), s.str.slice(3)))
        .otherwise(pl.concat_str(pl.lit("07"), s.str.slice(0, 3), pl.lit(" "), s.str.slice(3)))
    )

    def z(c: str, w: int) -> pl.Expr:
        return pl.col(c).cast(pl.String).str.zfill(w)

    street_address = pl.concat_str(
        pl.when(pl.col("flat") > 0)
        .then(pl.concat_str(pl.lit("Flat "), pl.col("flat").cast(pl.String), pl.lit(", ")))
        .otherwise(pl.lit("")),
        pl.col("house").cast(pl.String),
        pl.lit(" "),
        pl.col("street"),
        pl.lit(" "),
        pl.col("stype"),
    )
    district = (
        pl.when(pl.col("pc_area").is_in(["EC", "WC"]))
        .then(pl.col("pc_district") % 4 + 1)
        .otherwise(pl.col("pc_district"))
    )
    out = df.select(
        "id",
        pl.when(pl.col("middle").is_not_null())
        .then(pl.concat_str("first", pl.lit(" "), "middle", pl.lit(" "), "last"))
        .otherwise(pl.concat_str("first", pl.lit(" "), "last"))
        .alias("full_name"),
        pl.concat_str(local, pl.lit("@"), pl.col("domain")).alias("email"),
        phone.alias("phone"),
        pl.col("dob").cast(pl.Int32).cast(pl.Date).alias("date_of_birth"),
        pl.concat_str(z("area", 3), pl.lit("-"), z("group", 2), pl.lit("-"), z("serial", 4)).alias(
            "national_id"
        ),
        street_address.alias("street_address"),
        pl.concat_str("pc_area", district.cast(pl.String), pl.lit(" "), "pc_unit").alias(
            "postal_code"
        ),
        "segment",
        pl.from_epoch("created", time_unit="s").alias("created_at"),
        pl.when(pl.col("referred_by") > 0).then(pl.col("referred_by")).alias("referred_by"),
    )
    aux = {"created": created, "segment": segment, "rare": rare, "first_names": first}
    return out, aux


def _gen_merchants(rng: np.random.Generator, n_customers: int) -> tuple[pl.DataFrame, dict]:
    m = max(200, n_customers // 20)
    cat = np.concatenate([np.arange(_N_CAT), _categorical(rng, _CAT_MERCHANT_SHARE, m - _N_CAT)])
    cat = cat[rng.permutation(m)]
    travel = np.isin(cat, _TRAVEL)
    p_home = np.where(travel, 0.45, np.where(cat == _CAT_TRANSFER, 0.9, 0.93))
    home = rng.random(m) < p_home
    foreign = _categorical(rng, [14, 12, 16, 9, 7, 8, 10, 6], m)  # IE FR ES DE NL IT US PT
    country = np.where(home, "GB", np.array(_COUNTRY_CODES[1:])[foreign])
    gb_city = np.array([c[0] for c in _GB_CITIES])[_categorical(rng, [c[2] for c in _GB_CITIES], m)]
    pick = rng.integers(0, 4, m)
    city = gb_city.astype(object)
    for i in np.flatnonzero(~home):
        options = _FOREIGN_CITIES[country[i]]
        city[i] = options[pick[i] % len(options)]
    city = city.astype(str)
    word = _pick(_MERCHANT_WORDS, rng.integers(0, len(_MERCHANT_WORDS), m))
    surname = _pick(_LAST_NAMES, rng.integers(0, len(_LAST_NAMES), m))
    sfx_pick = rng.integers(0, 7, m)
    owner = rng.random(m) < 0.25
    names = []
    for i in range(m):
        sfx = _MERCHANT_SUFFIX[_CAT_LABEL[cat[i]]]
        base = (
            f"{surname[i]}'s" if owner[i] and cat[i] not in (_CAT_ATM, _CAT_TRANSFER) else word[i]
        )
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
            "category_code": _CAT_CODE[cat],
            "city": city,
            "country": country,
        }
    )
    return df, {"cat": cat, "pop": pop}


def _gen_accounts(rng: np.random.Generator, cust: dict) -> tuple[pl.DataFrame, dict]:
    created = cust["created"]
    segment = cust["segment"]
    n = len(created)
    business = segment == SEGMENTS.index("business")
    k = np.where(business, rng.geometric(0.5, n), rng.geometric(0.74, n))
    k = np.minimum(k, 4)
    # a few customers with very many accounts (Zipf tail, capped at 25)
    n_heavy = max(2, n // 400)
    heavy = rng.choice(n, size=n_heavy, replace=False)
    k[heavy] = np.minimum(25, 5 + rng.zipf(1.6, n_heavy))
    rare = cust["rare"]
    k[rare] = np.maximum(k[rare], 2)

    owner = np.repeat(np.arange(n), k)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k)  # 0 = first account
    a = len(owner)
    first = rank == 0

    c_created = created[owner]
    delay_first = 60 + rng.exponential(3 * 3600, a)
    delay_more = 60 + rng.exponential(250 * _DAY, a)
    opened = c_created + np.where(first, delay_first, delay_more).astype(np.int64)
    late = opened >= _END - _DAY
    span = np.maximum(_END - _DAY - c_created - 60, 1)
    opened = np.where(late, c_created + 60 + (rng.random(a) * span).astype(np.int64), opened)

    seg_o = segment[owner]
    p_first = np.array([0.86, 0.12, 0.02, 0.0])
    p_more = np.array([0.30, 0.36, 0.24, 0.10])
    types = np.where(first, _categorical(rng, p_first, a), _categorical(rng, p_more, a))
    # rare: each elderly private customer's second account is a loan
    rare_second = np.isin(owner, rare) & (rank == 1)
    types[rare_second] = ACCOUNT_TYPES.index("loan")

    status = _categorical(rng, [0.87, 0.08, 0.05], a)
    recent = opened > _END - 120 * _DAY
    status[recent] = 0
    status[rare_second] = 0

    # balances in cents
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

    # IBAN: bank code + sort code (prefix + 4 digits) + unique 8-digit account number
    bank = _categorical(rng, _BANK_P, a)
    codes = _BANK_CODES[bank]
    bank_num = np.array(
        [int("".join(str(ord(ch) - 55) for ch in c)) for c in _BANK_CODES], dtype=np.int64
    )[bank]
    sort = _BANK_SORT_PREFIX[bank] * 10_000 + rng.integers(0, 10_000, a)
    acct_no = rng.choice(np.int64(10**8), size=a, replace=False)
    bban = sort.astype(np.int64) * 10**8 + acct_no
    check = _iban_check(bank_num, bban)

    # ids follow opening order
    order = np.lexsort((np.arange(a), opened))
    owner, opened, types, status, cents = (x[order] for x in (owner, opened, types, status, cents))
    codes, bban, check = codes[order], bban[order], check[order]
    ids = np.arange(1, a + 1, dtype=np.int64)

    iban = pl.DataFrame({"c": check, "b": codes, "n": bban}).select(
        pl.concat_str(
            pl.lit("GB"),
            pl.col("c").cast(pl.String).str.zfill(2),
            pl.col("b"),
            pl.col("n").cast(pl.String).str.zfill(14),
        )
    )
    df = pl.DataFrame(
        {
            "id": ids,
            "customer_id": owner.astype(np.int64) + 1,
            "iban": iban.to_series(),
            "account_type": np.array(ACCOUNT_TYPES)[types],
            "status": np.array(ACCOUNT_STATUSES)[status],
            "opened_at": _ts(opened),
            "balance": _cents_text(cents),
        }
    )
    aux = {"owner": owner, "opened": opened, "type": types, "status": status}
    return df, aux


def _gen_cards(rng: np.random.Generator, acc: dict) -> pl.DataFrame:
    types, status, opened = acc["type"], acc["status"], acc["opened"]
    a = len(types)
    # cards per account by type: checking, savings, credit, loan
    p = np.array(
        [[0.12, 0.62, 0.21, 0.05], [0.9, 0.1, 0, 0], [0.04, 0.72, 0.2, 0.04], [1.0, 0, 0, 0]]
    )
    n_cards = _rowwise_categorical(rng, p[types])
    acct = np.repeat(np.arange(a), n_cards)
    c = len(acct)
    visa = rng.random(c) < 0.62
    bins = np.where(
        visa,
        _VISA_BINS[rng.integers(0, len(_VISA_BINS), c)],
        _MC_BINS[rng.integers(0, len(_MC_BINS), c)],
    )
    suffix = rng.choice(np.int64(10**9), size=c, replace=False)
    payload = bins.astype(np.int64) * 10**9 + suffix
    number = payload * 10 + _luhn_digit(payload)

    issue_d = (
        opened[acct] // _DAY
        + rng.integers(3, 30, c)
        + rng.integers(0, 2, c) * rng.integers(0, 700, c)
    )
    validity = np.where(rng.random(c) < 0.7, 3, 4) * _YEAR_D
    expiry = issue_d + validity
    # active accounts get reissued cards, so their cards are (almost all) still valid
    active = status[acct] == 0
    periods = np.ceil(np.maximum(_END_D + 30 - expiry, 0) / validity)
    expiry = np.where(active, expiry + periods * validity, expiry)
    expiry = _month_end(expiry.astype(np.int64))
    return pl.DataFrame(
        {
            "id": np.arange(1, c + 1, dtype=np.int64),
            "account_id": acct.astype(np.int64) + 1,
            "card_number": number.astype(str),
            "network": np.where(visa, "visa", "mastercard"),
            "expiry": _date(expiry),
        }
    )


def _sample_days(rng, lo_d: np.ndarray, hi_d: np.ndarray) -> np.ndarray:
    """One day in [lo_d, hi_d) per element, with trend, weekly and seasonal modulation."""
    base = _TX_START_D
    width = _END_D - base
    lo = (lo_d - base) / width
    hi = (hi_d - base) / width
    out = np.empty(len(lo_d), dtype=np.int64)
    todo = np.arange(len(lo_d))
    wmax = _WEEKDAY_W.max() * _MONTH_W.max()
    while len(todo):
        a, b = lo[todo], hi[todo]
        u = rng.random(len(todo))
        # inverse CDF of the density (1 + TREND * t) on [a, b]
        c = a + _TREND / 2 * a * a + u * ((b - a) + _TREND / 2 * (b * b - a * a))
        x = (np.sqrt(1.0 + 2.0 * _TREND * c) - 1.0) / _TREND
        d = np.clip((base + x * width).astype(np.int64), lo_d[todo], hi_d[todo] - 1)
        month = d.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        w = _WEEKDAY_W[(d + 3) % 7] * _MONTH_W[month]
        ok = rng.random(len(todo)) * wmax < w
        out[todo[ok]] = d[ok]
        todo = todo[~ok]
    return out


def _gen_transactions(rng: np.random.Generator, acc: dict, cust: dict, merch: dict) -> pl.DataFrame:
    types, status, opened, owner = acc["type"], acc["status"], acc["opened"], acc["owner"]
    a = len(types)
    seg = cust["segment"][owner]

    # transaction window per account: whole days strictly after opened_at
    lo_d = np.maximum(opened // _DAY + 1, _TX_START_D)
    hi_d = np.full(a, _END_D, dtype=np.int64)
    dormant, closed = status == 1, status == 2
    dormant_end = _END_D - 180
    hi_d = np.where(
        dormant, lo_d + (rng.uniform(0.2, 1.0, a) * (dormant_end - lo_d)).astype(np.int64), hi_d
    )
    hi_d = np.where(
        closed, lo_d + (rng.uniform(0.1, 1.0, a) * (_END_D - lo_d)).astype(np.int64), hi_d
    )
    days = np.maximum(hi_d - lo_d, 0)

    type_factor = np.array([1.0, 0.12, 0.75, 0.14])[types]
    seg_factor = np.array([1.0, 1.3, 1.2, 2.5])[seg]
    sigma = 1.0
    activity = rng.lognormal(-sigma * sigma / 2, sigma, a)
    lam = 31.0 * type_factor * seg_factor * activity * days / (_END_D - _TX_START_D)
    count = np.minimum(rng.poisson(lam), 3000)
    count[days == 0] = 0
    t_acct = np.repeat(np.arange(a), count)
    t = len(t_acct)

    day = _sample_days(rng, lo_d[t_acct], hi_d[t_acct])
    weekend = ((day + 3) % 7 >= 5).astype(np.int64)
    t_type = types[t_acct]

    # category given account type and weekend
    cat = np.empty(t, dtype=np.int64)
    credit_mult = np.ones(_N_CAT)
    credit_mult[_CAT_ATM] = 0.04
    credit_mult[_CAT_TRANSFER] = 0.08
    credit_mult[_TRAVEL] = 2.5
    credit_mult[_CAT_LABEL.index("electronics")] = 2.0
    credit_mult[_CAT_LABEL.index("utilities")] = 0.5
    for ty in range(4):
        for we in (0, 1):
            sel = np.flatnonzero((t_type == ty) & (weekend == we))
            if ty in (1, 3):  # savings / loan: transfers only
                cat[sel] = _CAT_TRANSFER
                continue
            w = _CAT_W[we] * (credit_mult if ty == 2 else 1.0)
            cat[sel] = _categorical(rng, w, len(sel))

    # channel given category and weekend (fewer transfers, more card-present at weekends)
    ch_w = _CAT_CHANNEL[cat] * np.where(weekend[:, None] == 1, np.array([1.3, 1.1, 1.0, 0.3]), 1.0)
    channel = _rowwise_categorical(rng, ch_w)
    c_cp, c_online, c_atm, c_transfer = range(4)

    # time of day: transfers follow business hours, the rest the diurnal profile
    hour = np.empty(t, dtype=np.int64)
    for prof, sel in (
        (_HOURS_TRANSFER, channel == c_transfer),
        (_HOURS_WEEKDAY, (channel != c_transfer) & (weekend == 0)),
        (_HOURS_WEEKEND, (channel != c_transfer) & (weekend == 1)),
    ):
        idx = np.flatnonzero(sel)
        hour[idx] = _categorical(rng, prof, len(idx))
    ts = day * _DAY + hour * 3600 + rng.integers(0, 3600, t)

    # merchant given category (Zipf-like popularity within category)
    merchant = np.empty(t, dtype=np.int64)
    m_cat, m_pop = merch["cat"], merch["pop"]
    for c in range(_N_CAT):
        idx = np.flatnonzero(cat == c)
        ids = np.flatnonzero(m_cat == c)
        merchant[idx] = ids[_categorical(rng, m_pop[ids], len(idx))] + 1

    # amounts: log-normal by category; loans/savings their own scale; ATM in multiples of 10
    z = rng.standard_normal(t)
    amount = _CAT_MEDIAN[cat] * np.exp(_CAT_SIGMA[cat] * z)
    amount = np.where(t_type == 1, 250.0 * np.exp(1.1 * z), amount)
    amount = np.where(t_type == 3, 380.0 * np.exp(0.45 * z), amount)
    amount = amount * np.where(seg[t_acct] == SEGMENTS.index("private"), 2.5, 1.0)
    cents = np.clip(np.round(amount * 100), 1, 250_000_00).astype(np.int64)
    atm = channel == c_atm
    cents[atm] = np.clip(np.round(cents[atm] / 1000), 1, 50) * 1000
    round_tr = (channel == c_transfer) & (rng.random(t) < 0.35)
    cents[round_tr] = np.maximum(np.round(cents[round_tr] / 1000), 1) * 1000
    refund = np.isin(channel, (c_cp, c_online)) & (rng.random(t) < 0.012)
    cents[refund] = -cents[refund]

    # status: mostly settled; pending only in the last days; ATM is never reversed
    declined_p = np.array([0.02, 0.045, 0.03, 0.01])[channel]
    reversed_p = np.array([0.006, 0.012, 0.0, 0.004])[channel]
    u = rng.random(t)
    tx_status = np.zeros(t, dtype=np.int64)
    tx_status[u < declined_p + reversed_p] = 3
    tx_status[u < declined_p] = 2
    recent = ts >= _END - 3 * _DAY
    pend = recent & (tx_status == 0) & (rng.random(t) < 0.7)
    tx_status[pend] = 1

    # memo: ~20% present, mostly on transfers
    memo_w = np.array([0.5, 0.8, 0.1, 6.0])[channel]
    memo_p = np.minimum(memo_w * 0.2 / memo_w.mean(), 0.95)
    has_memo = rng.random(t) < memo_p

    # rare records ----------------------------------------------------------------------
    # (1) three huge transfers (settled), on private customers' accounts where possible
    transfers = np.flatnonzero((channel == c_transfer) & (tx_status == 0))
    if len(transfers) == 0:
        transfers = np.arange(t)
    private = seg[t_acct[transfers]] == SEGMENTS.index("private")
    pool = transfers[private] if private.sum() >= len(OUTLIER_AMOUNTS) else transfers
    big = rng.choice(pool, size=min(len(OUTLIER_AMOUNTS), len(pool)), replace=False)
    cents[big] = np.round(np.array(OUTLIER_AMOUNTS[: len(big)]) * 100).astype(np.int64)
    # (2) a few reversed ATM withdrawals (otherwise never generated)
    atm_idx = np.flatnonzero(atm & (tx_status == 0))
    rev = rng.choice(atm_idx, size=min(RARE_ATM_REVERSED, len(atm_idx)), replace=False)
    tx_status[rev] = 3

    # memo text
    memo_idx = np.flatnonzero(has_memo)
    memo = np.full(t, None, dtype=object)
    first_names = np.asarray(_FIRST_NAMES, dtype=object)
    for ch_i, ch_name in enumerate(CHANNELS):
        idx = memo_idx[channel[memo_idx] == ch_i]
        if not len(idx):
            continue
        tpl = _MEMO_TEMPLATES[ch_name]
        which = rng.integers(0, len(tpl), len(idx))
        kind = np.array([x[1] for x in tpl])[which]
        arg = np.full(len(idx), "", dtype=object)
        month = (ts[idx] // _DAY).astype("datetime64[D]").astype("datetime64[M]").astype(
            np.int64
        ) % 12
        arg[kind == 1] = np.asarray(_MONTHS, dtype=object)[month[kind == 1]]
        names = first_names[rng.integers(0, len(first_names), len(idx))]
        arg[kind == 2] = names[kind == 2]
        arg[kind == 3] = rng.integers(1000, 10000, len(idx)).astype(str).astype(object)[kind == 3]
        arg[kind == 4] = rng.integers(10**6, 10**8, len(idx)).astype(str).astype(object)[kind == 4]
        pre = np.array([x[0] for x in tpl], dtype=object)[which]
        suf = np.array([x[2] for x in tpl], dtype=object)[which]
        memo[idx] = pre + arg + suf

    # ids in time order
    order = np.lexsort((np.arange(t), ts))
    return pl.DataFrame(
        {
            "id": np.arange(1, t + 1, dtype=np.int64),
            "account_id": t_acct[order].astype(np.int64) + 1,
            "merchant_id": merchant[order].astype(np.int32),
            "ts": _ts(ts[order]),
            "amount": _cents_text(cents[order]),
            "channel": np.array(CHANNELS)[channel[order]],
            "status": np.array(TX_STATUSES)[tx_status[order]],
            "memo": pl.Series(memo[order].tolist(), dtype=pl.String),
        }
    )


def generate_demo(customers: int = 20_000, seed: int = 7) -> dict[str, pl.DataFrame]:
    """Generate the five demo tables in memory (no database); same seed -> same frames."""
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 50:
        raise ConfigError(f"customers must be an integer >= 50, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    root = np.random.default_rng(seed)
    r_cust, r_merch, r_acct, r_card, r_tx = root.spawn(5)
    cust_df, cust = _gen_customers(r_cust, customers)
    merch_df, merch = _gen_merchants(r_merch, customers)
    acc_df, acc = _gen_accounts(r_acct, cust)
    card_df = _gen_cards(r_card, acc)
    tx_df = _gen_transactions(r_tx, acc, cust, merch)
    return {
        "customers": cust_df,
        "merchants": merch_df,
        "accounts": acc_df,
        "cards": card_df,
        "transactions": tx_df,
    }


# --------------------------------------------------------------------------------------------
# DDL and loading
# --------------------------------------------------------------------------------------------

_CREATE = {
    "customers": """
        id bigint NOT NULL, full_name text NOT NULL, email text NOT NULL, phone text,
        date_of_birth date NOT NULL, national_id text NOT NULL, street_address text NOT NULL,
        postal_code text NOT NULL, segment text NOT NULL, created_at timestamptz NOT NULL,
        referred_by bigint""",
    "merchants": """
        id integer NOT NULL, name text NOT NULL, category_code text NOT NULL,
        city text NOT NULL, country text NOT NULL""",
    "accounts": """
        id bigint NOT NULL, customer_id bigint NOT NULL, iban text NOT NULL,
        account_type text NOT NULL, status text NOT NULL, opened_at timestamptz NOT NULL,
        balance numeric(14,2) NOT NULL""",
    "cards": """
        id bigint NOT NULL, account_id bigint NOT NULL, card_number text NOT NULL,
        network text NOT NULL, expiry date NOT NULL""",
    "transactions": """
        id bigint NOT NULL, account_id bigint NOT NULL, merchant_id integer NOT NULL,
        ts timestamptz NOT NULL, amount numeric(12,2) NOT NULL, channel text NOT NULL,
        status text NOT NULL, memo text""",
}

# Added after the data is loaded (faster), in this order. {s} is the quoted schema.
_CONSTRAINTS = {
    "customers": [
        "ADD CONSTRAINT customers_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT customers_email_key UNIQUE (email)",
        "ADD CONSTRAINT customers_national_id_key UNIQUE (national_id)",
        "ADD CONSTRAINT customers_segment_check "
        "CHECK (segment IN ('retail', 'premium', 'private', 'business'))",
        "ADD CONSTRAINT customers_referred_by_fkey FOREIGN KEY (referred_by) "
        "REFERENCES {s}.customers (id)",
        "ADD CONSTRAINT customers_referral_check CHECK (referred_by <> id)",
    ],
    "merchants": [
        "ADD CONSTRAINT merchants_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT merchants_category_code_check CHECK (category_code ~ '^[0-9]{{4}}$')",
        "ADD CONSTRAINT merchants_country_check CHECK (country ~ '^[A-Z]{{2}}$')",
    ],
    "accounts": [
        "ADD CONSTRAINT accounts_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT accounts_iban_key UNIQUE (iban)",
        "ADD CONSTRAINT accounts_customer_id_fkey FOREIGN KEY (customer_id) "
        "REFERENCES {s}.customers (id)",
        "ADD CONSTRAINT accounts_account_type_check "
        "CHECK (account_type IN ('checking', 'savings', 'credit', 'loan'))",
        "ADD CONSTRAINT accounts_status_check CHECK (status IN ('active', 'dormant', 'closed'))",
        "ADD CONSTRAINT accounts_closed_balance_check CHECK (status <> 'closed' OR balance = 0)",
    ],
    "cards": [
        "ADD CONSTRAINT cards_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT cards_card_number_key UNIQUE (card_number)",
        "ADD CONSTRAINT cards_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES {s}.accounts (id)",
        "ADD CONSTRAINT cards_network_check CHECK (network IN ('visa', 'mastercard'))",
        "ADD CONSTRAINT cards_card_number_check CHECK (card_number ~ '^[0-9]{{16}}$')",
    ],
    "transactions": [
        "ADD CONSTRAINT transactions_pkey PRIMARY KEY (id)",
        "ADD CONSTRAINT transactions_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES {s}.accounts (id)",
        "ADD CONSTRAINT transactions_merchant_id_fkey FOREIGN KEY (merchant_id) "
        "REFERENCES {s}.merchants (id)",
        "ADD CONSTRAINT transactions_amount_check CHECK (amount <> 0)",
        "ADD CONSTRAINT transactions_channel_check "
        "CHECK (channel IN ('card_present', 'online', 'atm', 'transfer'))",
        "ADD CONSTRAINT transactions_status_check "
        "CHECK (status IN ('settled', 'pending', 'declined', 'reversed'))",
    ],
}

_INDEXES = [
    ("customers_referred_by_idx", "customers", "referred_by"),
    ("accounts_customer_id_idx", "accounts", "customer_id"),
    ("cards_account_id_idx", "cards", "account_id"),
    ("transactions_account_id_idx", "transactions", "account_id"),
    ("transactions_merchant_id_idx", "transactions", "merchant_id"),
    ("transactions_ts_idx", "transactions", "ts"),
]

_COPY_CHUNK = 4 << 20


def _copy(cur: psycopg.Cursor, schema: str, table: str, df: pl.DataFrame) -> None:
    buf = io.BytesIO()
    df.write_csv(buf, include_header=False, null_value="", datetime_format="%Y-%m-%d %H:%M:%S+00")
    data = buf.getbuffer()
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, FREEZE true)").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, df.columns))
    )
    with cur.copy(stmt) as cp:
        for start in range(0, len(data), _COPY_CHUNK):
            cp.write(data[start : start + _COPY_CHUNK])


def build_demo(
    url: str, *, customers: int = 20_000, seed: int = 7, schema: str = "public"
) -> dict[str, int]:
    """Create the demo schema and data in the database at libpq `url` (drop and recreate the
    demo tables if present); return rows per table."""
    frames = generate_demo(customers=customers, seed=seed)
    s = sql.Identifier(schema)
    try:
        with connect(url) as conn, conn.cursor() as cur:
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            cur.execute(
                sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(schema, t) for t in DEMO_TABLES)
                )
            )
            for t in DEMO_TABLES:
                cur.execute(
                    sql.SQL("CREATE TABLE {} ({})").format(
                        sql.Identifier(schema, t), sql.SQL(_CREATE[t])
                    )
                )
                _copy(cur, schema, t, frames[t])
            for t in DEMO_TABLES:
                for clause in _CONSTRAINTS[t]:
                    cur.execute(
                        sql.SQL("ALTER TABLE {} ").format(sql.Identifier(schema, t))
                        + sql.SQL(clause).format(s=s)
                    )
            for name, t, col in _INDEXES:
                cur.execute(
                    sql.SQL("CREATE INDEX {} ON {} ({})").format(
                        sql.Identifier(name), sql.Identifier(schema, t), sql.Identifier(col)
                    )
                )
            for t in DEMO_TABLES:
                cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, t)))
    except psycopg.Error as exc:
        raise SourceError(
            f"building the demo bank in {redact(url)} (schema {schema!r}) failed: "
            f"{str(exc).strip().splitlines()[0]}. Check that the role may create tables there."
        ) from exc
    rows = {t: frames[t].height for t in DEMO_TABLES}
    log.info("demo bank built in schema %s: %s", schema, rows)
    return rows


def demo_exists(url: str, schema: str = "public") -> bool:
    """True when all five demo tables exist in ``schema`` and none is empty."""
    with connect(url) as conn:
        found = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)",
            (schema, list(DEMO_TABLES)),
        ).fetchall()
        if len(found) != len(DEMO_TABLES):
            return False
        for t in DEMO_TABLES:
            (nonempty,) = conn.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, t))
            ).fetchone()
            if not nonempty:
                return False
    return True
