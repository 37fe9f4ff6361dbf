import numpy as np
import pytest

from synth_assets.core.profile import fanout_parents_bound
from synth_assets.core.spec import (
    _null_fix,
    content_hash,
    denoise,
    denoise_fanout,
    denoise_tail,
    ipf,
    project,
    smooth_how,
)


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


def test_denoise_projects_onto_non_negative_counts_with_the_noisy_total():
    # [1000, 5, -3]: the -3 reveals 3 of noise mass, shared out of the positive cells.
    assert denoise([1000, 5, -3], sigma=10) == pytest.approx([998.5 / 1002, 3.5 / 1002, 0.0])
    assert denoise([3, 1]).tolist() == [0.75, 0.25]
    assert denoise([-5, -1]).tolist() == [0.0, 1.0]


def test_projection_removes_the_phantom_mass_clipping_would_keep():
    rng = np.random.default_rng(0)
    true = np.zeros(1600)
    true[:40] = 30.0  # 1,200 rows in 40 of 1,600 cells
    noisy = true + rng.normal(0, 50, size=true.size)
    assert np.clip(noisy, 0, None).sum() > 20 * true.sum()
    assert project(noisy).sum() == pytest.approx(noisy.sum())
    assert abs(project(noisy).sum() - true.sum()) < 5 * 50 * 40  # the total's noise, sigma*sqrt(n)


def test_fanout_tail_survives_when_contiguous_and_isolated_far_bins_do_not():
    counts = [0, 900, 500, 300, 60, 25, 0, 0, 0, 30]
    p = denoise_tail(counts, sigma=10)
    assert p[4] > 0 and p[5] > 0  # contiguous tail past the 3.5-sigma body
    assert p[9] == 0  # isolated far bin: noise


def test_a_low_signal_fanout_keeps_its_body_instead_of_only_the_bins_above_the_noise():
    # Transactions per account of a 1,500-customer source, one account per unit, sigma 25: the
    # body (3-15 per account) is real but under 3.5 sigma bin by bin.
    true = [
        120,
        96,
        109,
        90,
        67,
        68,
        64,
        56,
        47,
        42,
        45,
        41,
        42,
        27,
        31,
        28,
        249,
        178,
        74,
        23,
        3,
        0,
        0,
        0,
    ]
    noisy = [
        138,
        127,
        115,
        85,
        85,
        65,
        52,
        44,
        70,
        79,
        78,
        1,
        69,
        -1,
        22,
        42,
        215,
        147,
        55,
        65,
        30,
        -23,
        3,
        3,
    ]
    mids = np.array([*range(16), 23.5, 47.5, 95.5, 191.5, 383.5, 767.5, 1535.5, 3071.5])

    def mean_ratio(p):
        return float(p @ mids) / (np.dot(true, mids) / sum(true))

    per_bin = denoise_tail(noisy, sigma=25)
    assert (per_bin[3:16] == 0).all() and mean_ratio(per_bin) > 1.6  # a hole, 60 % more rows
    p = denoise_fanout(noisy, sigma=25)
    assert np.count_nonzero(p[3:16]) == 12 and (p[20:] == 0).all()
    assert abs(mean_ratio(p) - 1) < 0.3 and p.sum() == pytest.approx(1)


def test_fanout_support_keeps_a_thin_spread_tail_and_drops_an_isolated_far_bin():
    counts = [0, 900, 500, 300, 5, 18, 19, 18, 19, 18, 19, 18, 0, 30]
    p = denoise_fanout(counts, sigma=10)
    assert (p[5:10] > 0).all()  # each bin under 2 sigma, together a clear tail
    assert p[13] == 0  # a lone 3-sigma bin far out: noise
    assert (denoise_tail(counts, sigma=10)[4:] == 0).all()  # per-bin thresholds cut that tail


def test_fanout_parents_per_unit_shrink_when_units_are_few_relative_to_the_noise():
    rho = 0.0008  # the demo's fan-out measurement at epsilon = 1
    assert fanout_parents_bound(4, 1_350, rho) == 1
    assert fanout_parents_bound(4, 10_800, rho) == 2
    assert fanout_parents_bound(4, 36_000, rho) == 4
    assert fanout_parents_bound(2, 36_000, rho) == 2  # never above the configured bound
    assert fanout_parents_bound(4, None, rho) == 4


def test_hour_of_week_smoothing_keeps_a_distribution():
    p = smooth_how([0] * 167 + [100])
    assert p.sum() == pytest.approx(1) and p[0] > 0 and p[166] > 0


def test_content_hash_ignores_its_own_field_and_changes_with_content():
    a = {"x": 1, "content_hash": "old"}
    assert content_hash(a) == content_hash({"x": 1})
    assert content_hash({"x": 2}) != content_hash(a)
