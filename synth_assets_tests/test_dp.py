import numpy as np
import pytest

from synth_assets.core import dp
from synth_assets.core.errors import BudgetError


def test_rho_budget_converts_back_to_the_target_epsilon():
    acc = dp.Accountant(1.0, 1e-6)
    assert dp.epsilon_for_rho(acc.rho_budget, acc.delta_conversion) == pytest.approx(1.0, abs=1e-6)


def test_ledger_adds_up_to_the_reported_epsilon():
    acc = dp.Accountant(1.0, 1e-6)
    dp.noisy_counts(acc, "a", np.array([10, 20]), 1, acc.rho_budget / 4)
    dp.noisy_counts(acc, "b", np.array([5]), 3, acc.rho_budget / 4)
    total = sum(e.rho for e in acc.entries)
    assert total == pytest.approx(acc.rho_spent)
    assert acc.epsilon_spent() == pytest.approx(dp.epsilon_for_rho(total, acc.delta_conversion))
    assert acc.epsilon_spent() < 1.0


def test_overspending_is_refused():
    acc = dp.Accountant(0.5, 1e-6)
    with pytest.raises(BudgetError, match="budget"):
        dp.noisy_counts(acc, "too much", np.array([1]), 1, acc.rho_budget * 2)


def test_noise_is_integer_and_shaped_like_the_input():
    acc = dp.Accountant(1.0, 1e-6)
    out = dp.noisy_counts(acc, "m", np.arange(12).reshape(3, 4), 1, acc.rho_budget / 2)
    assert out.shape == (3, 4) and out.dtype == np.int64


def test_a_value_held_by_one_unit_is_not_released():
    acc = dp.Accountant(1.0, 1e-6)
    released = dp.noisy_category_counts(
        acc,
        "c",
        {"common": 100_000, "alice@example.com": 1},
        1,
        acc.rho_budget / 2,
        acc.delta_threshold,
    )
    assert "common" in released
    assert "alice@example.com" not in released
    assert acc.entries[-1].delta <= acc.delta_threshold


def test_the_null_key_and_an_empty_string_come_back_as_themselves():
    """OpenDP reads keys as C strings: the NULL key "\x00null" came back as "", so a nullable
    column's NULLs were generated as empty strings (and merged with a real "")."""
    from synth_assets.core.profile import NULL_KEY

    acc = dp.Accountant(1.0, 1e-6)
    counts = {NULL_KEY: 100_000, "": 50_000, "a": 80_000}
    released = dp.noisy_category_counts(
        acc, "c", counts, 1, acc.rho_budget / 2, acc.delta_threshold
    )
    assert set(released) == set(counts)
    for k, v in counts.items():  # sigma is about 1.4 here; 1,000 is hundreds of sigmas
        assert abs(released[k] - v) < 1_000


def test_selection_prefers_the_clearly_best_score():
    acc = dp.Accountant(10.0, 1e-6)
    picks = [
        dp.select(acc, "s", np.array([0.0, 1e6, 0.0]), 1.0, acc.rho_budget / 20) for _ in range(5)
    ]
    assert picks == [1] * 5
