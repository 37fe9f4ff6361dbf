"""Behaviour of the vectorized PII fakers in synth_assets.core.fakes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth_assets.core.errors import GenerationError
from synth_assets.core.fakes import (
    CARD_TEST_BINS,
    FIRST_NAMES,
    LAST_NAMES,
    LOREM_WORDS,
    PII_KINDS,
    fake_column,
    iban_is_valid,
    is_luhn_valid,
    luhn_check_digit,
)

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
STARTS = st.integers(min_value=0, max_value=10**8)
FAST = settings(max_examples=25, deadline=None)
UNIQUE_KINDS = ("email", "phone", "national_id", "card_number", "iban", "ip_address")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def ords(start: int, n: int, step: int = 1) -> np.ndarray:
    return np.arange(start, start + n * step, step, dtype=np.int64)


# --- check digits -----------------------------------------------------------------------------


def test_luhn_check_digit_matches_published_test_cards() -> None:
    cards = ["4111111111111111", "5105105105105100", "4000000000000002", "378282246310005"]
    for card in cards:
        payload = np.frombuffer(card[:-1].encode(), dtype=np.uint8) - ord("0")
        assert int(luhn_check_digit(payload[None, :])[0]) == int(card[-1])
        assert is_luhn_valid(card)
    assert not is_luhn_valid("4111111111111112")
    assert not is_luhn_valid("41111x1111111111")


@FAST
@given(seed=SEEDS, start=STARTS, unique=st.booleans())
def test_every_card_number_passes_luhn_on_a_test_bin(seed: int, start: int, unique: bool) -> None:
    cards = fake_column("card_number", rng(seed), ords(start, 300), unique=unique).to_list()
    prefixes = tuple(str(b) for b in CARD_TEST_BINS)
    for card in cards:
        assert len(card) == 16 and card.isdigit()
        assert card.startswith(prefixes)
        assert is_luhn_valid(card)


def test_iban_is_valid_accepts_the_iso_example_and_rejects_a_typo() -> None:
    assert iban_is_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_is_valid("GB82 WEST 1234 5698 7654 33")
    assert not iban_is_valid("82GB")


@FAST
@given(seed=SEEDS, start=STARTS, unique=st.booleans())
def test_every_iban_passes_mod97_with_the_synt_bank_code(
    seed: int, start: int, unique: bool
) -> None:
    ibans = fake_column("iban", rng(seed), ords(start, 300), unique=unique).to_list()
    for iban in ibans:
        assert re.fullmatch(r"GB\d{2}SYNT\d{14}", iban)
        assert iban_is_valid(iban)


# --- uniqueness -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", UNIQUE_KINDS + ("person_name", "address", "company_name"))
def test_unique_values_never_collide_across_two_shards(kind: str) -> None:
    # Two shards with different seeds and disjoint (interleaved and far-apart) ordinals.
    shard_a = fake_column(kind, rng(1), ords(0, 3000, step=2), unique=True)
    ordinals_b = np.concatenate([ords(1, 2000, step=2), ords(90_000_000, 1000)])
    shard_b = fake_column(kind, rng(2), ordinals_b, unique=True)
    both = pl.concat([shard_a, shard_b])
    assert both.n_unique() == len(both)


@pytest.mark.parametrize(
    ("kind", "max_length"),
    [("email", 18), ("phone", 10), ("national_id", 9), ("person_name", 6), ("free_text", 8)],
)
def test_unique_values_survive_the_tightest_max_length(kind: str, max_length: int) -> None:
    shard_a = fake_column(kind, rng(1), ords(0, 2000, 3), unique=True, max_length=max_length)
    shard_b = fake_column(kind, rng(2), ords(1, 2000, 3), unique=True, max_length=max_length)
    both = pl.concat([shard_a, shard_b])
    assert both.n_unique() == len(both)
    assert both.str.len_chars().max() <= max_length


# --- reserved ranges --------------------------------------------------------------------------


@FAST
@given(seed=SEEDS, start=st.integers(0, 98_000_000), unique=st.booleans())
def test_ssn_area_is_always_900_to_999(seed: int, start: int, unique: bool) -> None:
    ssns = fake_column("national_id", rng(seed), ords(start, 500), unique=unique).to_list()
    for ssn in ssns:
        m = re.fullmatch(r"(\d{3})-(\d{2})-(\d{4})", ssn)
        assert m is not None
        assert 900 <= int(m[1]) <= 999
        assert int(m[2]) >= 1 and int(m[3]) >= 1


@pytest.mark.parametrize("unique", [False, True])
def test_emails_are_lowercase_ascii_on_rfc2606_domains_only(unique: bool) -> None:
    emails = fake_column("email", rng(3), ords(0, 2000), unique=unique).to_list()
    for email in emails:
        assert re.fullmatch(r"[a-z][a-z.]*[a-z]\d+@example\.(com|net|org)", email), email


def test_non_unique_phones_stay_in_the_fictional_555_01xx_block() -> None:
    phones = fake_column("phone", rng(4), ords(0, 2000)).to_list()
    assert all(re.fullmatch(r"\+1 \([2-9]\d\d\) 555-01\d\d", p) for p in phones)


def test_unique_phones_use_the_unassigned_999_country_code() -> None:
    phones = fake_column("phone", rng(4), ords(10**6, 1000), unique=True).to_list()
    assert all(re.fullmatch(r"\+999\d{12}", p) for p in phones)


@pytest.mark.parametrize("unique", [False, True])
def test_ip_addresses_come_from_documentation_ranges(unique: bool) -> None:
    doc_nets = [
        ipaddress.ip_network(n)
        for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    ]
    values = np.concatenate([ords(0, 1000), ords(2**62, 100)])
    for text in fake_column("ip_address", rng(5), values, unique=unique).to_list():
        addr = ipaddress.ip_address(text)
        assert any(addr in net for net in doc_nets), text


def test_birth_dates_give_ages_18_to_90_on_the_reference_date() -> None:
    ref = dt.date(2024, 2, 29)
    days = fake_column("birth_date", rng(6), ords(0, 5000), params={"reference_date": ref})
    assert days.dtype == pl.Date
    for born in days.to_list():
        age = ref.year - born.year - ((ref.month, ref.day) < (born.month, born.day))
        assert 18 <= age <= 90


def test_birth_date_is_a_datetime_for_timestamp_columns() -> None:
    plain = fake_column("birth_date", rng(6), ords(0, 10), pg_type="timestamp")
    aware = fake_column("birth_date", rng(6), ords(0, 10), pg_type="timestamptz")
    assert plain.dtype == pl.Datetime("us")
    assert aware.dtype == pl.Datetime("us", "UTC")


def test_names_are_plain_ascii_letters_without_duplicates() -> None:
    for names in (FIRST_NAMES, LAST_NAMES):
        assert len(names) >= 200 and len(set(names)) == len(names)
        assert all(re.fullmatch(r"[A-Z][A-Za-z]+", name) for name in names)


def test_free_text_word_counts_follow_the_length_words_histogram() -> None:
    params = {"length_words": ([2, 5], [0.5, 0.5])}
    texts = fake_column("free_text", rng(7), ords(0, 2000), params=params)
    counts = texts.str.split(" ").list.len()
    assert set(counts.unique().to_list()) == {2, 5}
    assert texts.str.ends_with(".").all()


@FAST
@given(max_length=st.integers(6, 60), seed=SEEDS)
def test_free_text_is_cut_at_a_word_boundary(max_length: int, seed: int) -> None:
    texts = fake_column("free_text", rng(seed), ords(0, 300), max_length=max_length).to_list()
    vocabulary = set(LOREM_WORDS)
    for text in texts:
        assert len(text) <= max_length
        words = text.rstrip(".").lower().split(" ")
        if len(words) > 1:  # a lone word may be hard-cut when it alone is too long
            assert set(words) <= vocabulary, text


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PII_KINDS)
def test_same_seed_gives_identical_values(kind: str) -> None:
    a = fake_column(kind, rng(42), ords(0, 500))
    b = fake_column(kind, rng(42), ords(0, 500))
    assert a.equals(b)


@pytest.mark.parametrize("kind", PII_KINDS)
def test_different_seed_gives_different_values(kind: str) -> None:
    a = fake_column(kind, rng(42), ords(0, 500))
    b = fake_column(kind, rng(43), ords(0, 500))
    assert not a.equals(b)


def test_global_random_state_is_never_touched() -> None:
    np_state, py_state = np.random.get_state(), random.getstate()
    for kind in PII_KINDS:
        fake_column(kind, rng(1), ords(0, 50))
        fake_column(kind, rng(1), ords(0, 50), unique=kind not in ("birth_date",))
    after = np.random.get_state()
    assert all(np.array_equal(x, y) for x, y in zip(np_state, after, strict=True))
    assert random.getstate() == py_state


# --- max_length and errors --------------------------------------------------------------------


@FAST
@given(
    kind=st.sampled_from([k for k in PII_KINDS if k not in ("birth_date", "email")]),
    max_length=st.integers(1, 40),
    seed=SEEDS,
)
def test_values_never_exceed_max_length(kind: str, max_length: int, seed: int) -> None:
    values = fake_column(kind, rng(seed), ords(0, 300), max_length=max_length)
    assert values.str.len_chars().max() <= max_length
    assert values.str.len_chars().min() >= 1


@FAST
@given(max_length=st.integers(13, 40), seed=SEEDS)
def test_emails_are_shortened_but_keep_their_reserved_domain(max_length: int, seed: int) -> None:
    emails = fake_column("email", rng(seed), ords(0, 300), max_length=max_length)
    assert emails.str.len_chars().max() <= max_length
    assert emails.str.contains(r"^[a-z][a-z.]*[a-z0-9]?\d*@example\.(com|net|org)$").all()


def test_email_column_too_short_for_any_reserved_address_raises() -> None:
    with pytest.raises(GenerationError, match=r"email: max_length=12 .*widen"):
        fake_column("email", rng(), ords(0, 10), max_length=12)


def test_empty_ordinals_give_an_empty_series_for_every_kind() -> None:
    for kind in PII_KINDS:
        for unique in (False, True):
            out = fake_column(kind, rng(), np.array([], dtype=np.int64), unique=unique)
            assert len(out) == 0 and out.name == kind


def test_unknown_kind_raises_generation_error_listing_the_kinds() -> None:
    with pytest.raises(GenerationError, match=r"unknown PII kind 'passport'.*email"):
        fake_column("passport", rng(), ords(0, 10))


@pytest.mark.parametrize(
    ("kind", "max_length"),
    [
        ("email", 12),
        ("email", 14),
        ("phone", 4),
        ("national_id", 8),
        ("card_number", 15),
        ("iban", 21),
        ("ip_address", 12),
        ("person_name", 4),
    ],
)
def test_unique_with_too_short_max_length_raises(kind: str, max_length: int) -> None:
    with pytest.raises(GenerationError, match=rf"{kind}: max_length={max_length}.*widen"):
        fake_column(kind, rng(), ords(10**6, 10), unique=True, max_length=max_length)


@pytest.mark.parametrize(
    ("kind", "ordinal"),
    [("national_id", 100 * 99 * 9999), ("postal_code", 100_000), ("phone", 10**12)],
)
def test_ordinals_past_a_reserved_range_raise(kind: str, ordinal: int) -> None:
    fake_column(kind, rng(), np.array([ordinal - 1]), unique=True)  # the last slot is fine
    with pytest.raises(GenerationError, match=rf"{kind}: unique=True can only produce"):
        fake_column(kind, rng(), np.array([ordinal]), unique=True)
