import numpy as np
import pytest

from synth_assets.core.spec import _null_fix, content_hash, denoise, denoise_tail, ipf, smooth_how


def test_ipf_makes_the_joint_agree_with_both_marginals():
    rng = np.random.default_rng(1)
    joint = rng.integers(-20, 200, size=(4, 6)).astype(float)
    pa, pb = np.array([0.1, 0.2, 0.3, 0.4]), np.full(6, 1 / 6)
    j = ipf(joint, pa, pb)
    assert (j >= 0).all()
    assert j.sum(axis=1) == pytest.approx(pa, abs=1e-6)
    assert j.sum(axis=0) == pytest.approx(pb, abs=1e-6)


def test_a_not_null_column_never_gets_null_mass_even_from_pure_noise():
    p = _null_fix(np.array([0.0, 0.0, 1.0]), nullable=False, override=None)
    assert p[-1] == 0 and p.sum() == pytest.approx(1)


def test_null_rate_override_applies_to_nullable_columns():
    p = _null_fix(np.array([0.5, 0.5, 0.0]), nullable=True, override=0.2)
    assert p[-1] == pytest.approx(0.2) and p.sum() == pytest.approx(1)


def test_denoise_drops_cells_below_the_noise_but_keeps_the_largest():
    assert denoise([1000, 5, -3], sigma=10).tolist() == [1.0, 0.0, 0.0]
    assert denoise([3, 1], sigma=100).tolist() == [1.0, 0.0]


def test_fanout_tail_survives_when_contiguous_and_isolated_far_bins_do_not():
    counts = [0, 900, 500, 300, 60, 25, 0, 0, 0, 30]
    p = denoise_tail(counts, sigma=10)
    assert p[4] > 0 and p[5] > 0  # contiguous tail past the 3.5-sigma body
    assert p[9] == 0  # isolated far bin: noise


def test_hour_of_week_smoothing_keeps_a_distribution():
    p = smooth_how([0] * 167 + [100])
    assert p.sum() == pytest.approx(1) and p[0] > 0 and p[166] > 0


def test_content_hash_ignores_its_own_field_and_changes_with_content():
    a = {"x": 1, "content_hash": "old"}
    assert content_hash(a) == content_hash({"x": 1})
    assert content_hash({"x": 2}) != content_hash(a)
