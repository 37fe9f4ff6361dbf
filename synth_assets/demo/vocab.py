"""The demo bank's fixed vocabulary: reference dates, category tables, name and word lists.

Every list is embedded (ASCII) and every date fixed: the demo never reads the clock, so the same
seed always produces the same tables.
"""

import numpy as np

DEMO_TABLES = ("customers", "merchants", "accounts", "cards", "transactions")

# Fixed reference dates (UTC). Never "today": the demo must be reproducible.
DEMO_END = np.datetime64("2025-06-30T23:59:59", "s")
DAY = 86_400
END = int(DEMO_END.astype(np.int64)) + 1  # exclusive upper bound, seconds since epoch
END_D = END // DAY  # first day after the window
TX_START_D = int(np.datetime64("2023-07-01", "D").astype(np.int64))
CUST_START = int(np.datetime64("2022-01-01T00:00:00", "s").astype(np.int64))
CUST_END = int(np.datetime64("2025-01-01T00:00:00", "s").astype(np.int64))
YEAR_D = 365.2425

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

FIRST_NAMES = """
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

LAST_NAMES = """
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

STREETS = """
High Church Station Victoria Green Manor Park Queens Kings Grange Mill Springfield School
Windsor Highfield New London Alexandra York Albert Chapel Main Elm Oak Cedar Beech Willow
Ash Maple Birch Holly Rowan Hawthorn Chestnut Meadow Orchard Brook River Bridge Castle Abbey
Priory Moor Hill Valley Forest Wood Lake Marsh North South East West Mount Carlton Stanley
Cromwell Nelson Wellington Clarence Beaconsfield Salisbury Devonshire Cavendish Portland
Grosvenor Belmont Fairfield Ashfield Westfield Eastfield Broad Market Bank Cross Long Trinity
Hamilton Lansdowne Hanover Mayfield Rosebery Sandringham Balmoral Osborne Riverside Heathfield
Kingsway Tennyson Shelley Byron Milton Chaucer Darwin Newton Faraday Telford Brunel Stephenson
""".split()
STREET_TYPES = np.array(
    ["Road", "Street", "Lane", "Avenue", "Close", "Drive", "Way", "Gardens", "Place", "Crescent",
     "Court", "Terrace", "Grove", "Mews", "Rise", "Walk", "Square", "Hill"],
)  # fmt: skip
STREET_TYPE_P = np.array([28, 22, 12, 9, 7, 6, 3, 3, 2, 3, 2, 2, 2, 1, 1, 1, 0.5, 0.5])

# (town, postcode areas, weight) for customers and GB merchants.
GB_CITIES = [
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
FOREIGN_CITIES = {
    "IE": ["Dublin", "Cork", "Galway"],
    "FR": ["Paris", "Lyon", "Nice", "Bordeaux"],
    "ES": ["Madrid", "Barcelona", "Malaga", "Palma"],
    "DE": ["Berlin", "Munich", "Frankfurt", "Hamburg"],
    "NL": ["Amsterdam", "Rotterdam", "Utrecht"],
    "IT": ["Rome", "Milan", "Florence"],
    "US": ["New York", "San Francisco", "Seattle", "Orlando"],
    "PT": ["Lisbon", "Faro", "Porto"],
}
COUNTRY_CODES = ["GB", *FOREIGN_CITIES]

EMAIL_DOMAINS = np.array(
    ["gmail.com", "outlook.com", "hotmail.co.uk", "yahoo.com", "icloud.com", "btinternet.com",
     "sky.com", "yahoo.co.uk", "live.co.uk", "protonmail.com"],
)  # fmt: skip
EMAIL_DOMAIN_P = np.array([38, 15, 12, 8, 8, 5, 4, 4, 4, 2], dtype=float)
COMPANY_DOMAINS = np.array(
    ["hartwell-logistics.co.uk", "brightmoor.com", "kestrelconsulting.co.uk", "northgate-eng.com",
     "ashdownlegal.co.uk", "mapleleafdental.co.uk", "tidewaybuilders.co.uk", "quillandink.com",
     "fernbankfarm.co.uk", "corvusdigital.io", "redbrick-estates.co.uk", "sablewood.co.uk"],
)  # fmt: skip

# Bank codes with their sort-code prefixes (a fictional bank group settles through these).
BANK_CODES = np.array(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"])
BANK_SORT_PREFIX = np.array([60, 20, 30, 40, 40])
BANK_P = np.array([0.42, 0.2, 0.2, 0.1, 0.08])

# Real-looking issuer BINs (none of the published test BINs 400000/510510/222300/411111...).
VISA_BINS = np.array([465859, 475129, 492181, 454638, 446291, 434994, 476173, 448407])
MC_BINS = np.array([535522, 542418, 552213, 516001, 529930, 557039])

# Merchant categories: (MCC, label, weekday weight, weekend weight, median amount, log-sigma,
# channel probabilities (card_present, online, atm, transfer), share of merchants).
CATEGORIES = [
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
N_CAT = len(CATEGORIES)
CAT_CODE = np.array([c[0] for c in CATEGORIES])
CAT_LABEL = [c[1] for c in CATEGORIES]
CAT_W = np.array([[c[2] for c in CATEGORIES], [c[3] for c in CATEGORIES]])  # [weekend, cat]
CAT_MEDIAN = np.array([c[4] for c in CATEGORIES])
CAT_SIGMA = np.array([c[5] for c in CATEGORIES])
CAT_CHANNEL = np.array([c[6] for c in CATEGORIES], dtype=float)
CAT_MERCHANT_SHARE = np.array([c[7] for c in CATEGORIES], dtype=float)
CAT_ATM = CAT_LABEL.index("atm_cash")
CAT_TRANSFER = CAT_LABEL.index("financial_transfers")
TRAVEL = [CAT_LABEL.index(x) for x in ("airlines", "hotels")]

# Merchant name parts by category label.
MERCHANT_SUFFIX = {
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
MERCHANT_WORDS = """
Harbour Riverside Oakwood Kingfisher Redwood Meadowbank Northfield Lakeside Bluebell Heron
Fox Lark Wren Thistle Clover Juniper Saffron Olive Copper Silver Golden Crown Anchor Beacon
Compass Lantern Summit Horizon Granite Ember Willow Hazel Primrose Sterling Regal Union Central
Metro City Village Coastal Highland Pennine Cotswold Wessex Albion Mercia Thames Severn Tyne
Avon Orchard Harvest Acorn Falcon Swift Rook Badger Otter Pine Elm Ivy Jasmine Marigold Poppy
""".split()

MONTHS = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
]  # fmt: skip
# Memo templates by channel: (prefix, argument kind, suffix); kinds: 0 none, 1 month,
# 2 first name, 3 short number, 4 long number.
MEMO_TEMPLATES = {
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
HOURS_WEEKDAY = np.array(
    [0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.6, 1.4, 2.2, 2.4, 2.6, 3.0,
     4.2, 3.8, 2.8, 2.6, 2.8, 3.4, 4.0, 4.2, 3.6, 2.8, 1.8, 1.0]
)  # fmt: skip
HOURS_WEEKEND = np.array(
    [0.9, 0.6, 0.4, 0.25, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.8, 3.4,
     4.0, 3.9, 3.4, 3.2, 3.2, 3.4, 3.8, 4.0, 3.6, 3.0, 2.2, 1.4]
)  # fmt: skip
HOURS_TRANSFER = np.array(
    [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 1.0, 2.5, 3.5, 3.6, 3.4,
     3.6, 3.4, 3.2, 3.0, 2.6, 2.0, 1.6, 1.4, 1.2, 0.9, 0.6, 0.4]
)  # fmt: skip
WEEKDAY_W = np.array([0.95, 0.97, 1.0, 1.03, 1.15, 1.05, 0.8])  # Mon..Sun volume
MONTH_W = np.array([0.86, 0.9, 0.97, 0.98, 1.0, 0.99, 1.0, 1.02, 0.98, 1.0, 1.08, 1.25])
TREND = 0.6  # intensity grows by 60% across the transaction window
