"""The embedded word lists and reserved ranges every fake draws from (ASCII letters only for
names, so they can be lowercased into emails), as polars Series built once."""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """Split an embedded list, drop blanks and duplicates, keep first-seen order."""
    items = (w.strip() for w in text.split(sep))
    return tuple(dict.fromkeys(w for w in items if w))


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
