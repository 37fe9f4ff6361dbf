"""The metrics pack's PII-shape scan (core/gates.py)."""

from __future__ import annotations

import pytest

from synth_assets.core.gates import pii_shaped


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111",
        "card 4111-1111-1111-1111 on file",
        "4111111111111111",
        "jane.doe@example.com",
        "078-05-1120",
        "+44 20 7946 0958",
    ],
)
def test_pii_shaped_strings_are_found(text):
    assert pii_shaped({text})


@pytest.mark.parametrize(
    "text",
    [
        "4.47712125471966",  # a float point mass: 14 Luhn-valid digits after the point
        "0.4111111111111111",
        "1234567890123.5",
        "4111111111111112",  # not Luhn-valid
        "2. Middle Atlantic",
    ],
)
def test_numbers_and_labels_are_not_pii(text):
    assert pii_shaped({text}) == []
