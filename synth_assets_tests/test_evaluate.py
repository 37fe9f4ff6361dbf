"""The evaluator's metrics and gates on small in-memory frames (no database)."""

import json
import math
import re

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.neighbors import NearestNeighbors

from synth_assets.core import evaluate as ev
from synth_assets.core.errors import ConfigError
from synth_assets.core.evaluate.privacy import _hashes
from synth_assets.core.report_html import json_safe, render_html, write_report

RNG_SEED = 20240611


def _view(join: bool = False) -> ev.View:
    cols = [
        ev.Col("amount", "t", "amount", "numeric", "float8"),
        ev.Col("kind", "t", "kind", "categorical", "text"),
        ev.Col("at", "t", "at", "datetime", "timestamptz"),
    ]
    return ev.View("t", "t", "root", cols)


def _frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "amount": np.round(rng.lognormal(3, 1, n), 2),
            "kind": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
            "at": np.round(rng.uniform(1.6e9, 1.7e9, n)),
        }
    )


def _privacy(train: pl.DataFrame, holdout: pl.DataFrame, synth: pl.DataFrame) -> dict:
    view = _view()
    enc = ev.MixedEncoder(view.cols, pl.concat([train, holdout]))
    return ev.privacy_metrics(view, [train], holdout, synth, synth.height, enc)


# --- DCR share -------------------------------------------------------------------------------


def test_dcr_share_counts_ties_as_one_half():
    assert ev.dcr_share(
        np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 2.0, 1.0, 3.0])
    ) == pytest.approx(0.5)


def test_copies_tied_with_identical_holdout_rows_score_one_half_not_zero():
    # Discrete data: every synthetic row equals a training row AND a holdout row. A strict "<"
    # would score 0 (better than chance) although nothing distinguishes the two.
    d = np.zeros(100)
    assert ev.dcr_share(d, d) == 0.5


def test_verbatim_copy_of_the_training_sample_scores_dcr_share_near_one():
    rng = np.random.default_rng(RNG_SEED)
    train, holdout = _frame(rng, 800), _frame(rng, 800)
    p = _privacy(train, holdout, train.sample(fraction=1.0, shuffle=True, seed=1))
    assert p["dcr_share"]["value"] > 0.97
    assert p["exact_match"]["synthetic"] == 1.0 and p["exact_match"]["holdout"] < 0.01
    assert p["mia"]["auc"] > 0.97
    assert p["nndr"]["value"] < 0.1


def test_fresh_draw_from_the_same_population_scores_near_the_holdout_baseline():
    rng = np.random.default_rng(RNG_SEED + 1)
    train, holdout, synth = _frame(rng, 1500), _frame(rng, 1500), _frame(rng, 3000)
    p = _privacy(train, holdout, synth)
    assert abs(p["dcr_share"]["value"] - 0.5) < 0.05
    assert abs(p["mia"]["auc"] - 0.5) < 0.05
    assert p["nndr"]["value"] > 0.8
    assert abs(p["exact_match"]["excess"]) < 0.005


def test_dcr_share_is_the_maximum_over_column_groups():
    view = _view()
    assert set(ev.column_groups(view)) == {"all", "categorical", "continuous"}
    rng = np.random.default_rng(RNG_SEED + 2)
    train, holdout = _frame(rng, 600), _frame(rng, 600)
    # Synthetic copies the training amounts and times but draws its own categories.
    synth = train.with_columns(pl.Series("kind", rng.choice(["a", "b", "c"], train.height)))
    p = _privacy(train, holdout, synth)
    assert p["dcr_share"]["worst_group"] == "continuous"
    assert p["dcr_share"]["value"] == max(p["dcr_share"]["groups"].values())


# --- nearest neighbours ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2])
def test_blocked_knn_matches_brute_force(k):
    rng = np.random.default_rng(RNG_SEED + k)
    a = _frame(rng, 700).with_columns(pl.col("amount").round(0))  # duplicates on purpose
    b = _frame(rng, 500)
    view = _view()
    enc = ev.MixedEncoder(view.cols, a)
    ea, eb = enc.transform(a), enc.transform(b)
    got = ev.knn_distances(ea, eb, k)
    ref = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(np.hstack([ea.cat, ea.cont]))
    want, _ = ref.kneighbors(np.hstack([eb.cat, eb.cont]))
    assert np.allclose(got, want, atol=1e-7)


@pytest.mark.parametrize("k", [1, 2])
def test_a_rows_neighbour_distances_do_not_depend_on_the_rows_searched_with_it(k):
    rng = np.random.default_rng(RNG_SEED + 20 + k)
    ref, a, b = _frame(rng, 600), _frame(rng, 300), _frame(rng, 200)
    enc = ev.MixedEncoder(_view().cols, ref)
    er, ea, eb = enc.transform(ref), enc.transform(a), enc.transform(b)
    stacked = ev.knn_distances(er, ev.Encoded.concat([ea, eb]), k)
    assert np.array_equal(stacked[:300], ev.knn_distances(er, ea, k))
    assert np.array_equal(stacked[300:], ev.knn_distances(er, eb, k))


def test_wide_rows_are_searched_whole_with_the_same_distances_as_blocked(monkeypatch):
    """Past ``BLOCKED_DIMS`` continuous columns one brute-force search replaces the per-block
    KD-trees (faster there); both give the same distances."""
    import synth_assets.core.evaluate.distance as dist

    rng = np.random.default_rng(RNG_SEED + 7)
    wide = dist.BLOCKED_DIMS + 4
    cols = [ev.Col("kind", "t", "kind", "categorical", "text")]
    cols += [ev.Col(f"x{i}", "t", f"x{i}", "numeric", "float8") for i in range(wide)]

    def frame(n):
        data = {"kind": rng.choice(["a", "b", "c"], n)}
        data |= {f"x{i}": rng.integers(0, 5, n).astype(float) for i in range(wide)}
        return pl.DataFrame(data)

    a, b = frame(400), frame(300)
    enc = ev.MixedEncoder(cols, a)
    ea, eb = enc.transform(a), enc.transform(b)
    whole = ev.knn_distances(ea, eb, 2)
    monkeypatch.setattr(dist, "BLOCKED_DIMS", 10**6)
    assert np.allclose(whole, ev.knn_distances(ea, eb, 2), atol=1e-7)


@pytest.mark.parametrize("max_categories", [3, 30])
def test_category_lookup_encodes_as_sklearn_does_unseen_and_infrequent_values_included(
    max_categories,
):
    rng = np.random.default_rng(RNG_SEED + max_categories)
    col = ev.Col("kind", "t", "kind", "categorical", "text")
    fit = pl.DataFrame(
        {"kind": rng.choice(list("abcdef"), 500, p=[0.4, 0.3, 0.1, 0.1, 0.05, 0.05])}
    )
    enc = ev.MixedEncoder([col], fit, max_categories)
    other = pl.DataFrame({"kind": rng.choice(list("abcdefxy"), 300)})
    got = enc.transform(other)
    want = enc.fitted["kind"].transform(other["kind"].to_numpy().reshape(-1, 1).astype(object))
    assert np.array_equal(got.cat, want * (1 / math.sqrt(2)))
    assert np.array_equal(
        got.codes[:, 0], np.where(want.any(axis=1), want.argmax(axis=1), want.shape[1])
    )


def test_encodings_of_parts_concatenate_to_the_encoding_of_the_whole():
    rng = np.random.default_rng(RNG_SEED + 11)
    a, b = _frame(rng, 300), _frame(rng, 200)
    enc = ev.MixedEncoder(_view().cols, a)
    whole, parts = (
        enc.transform(pl.concat([a, b])),
        ev.Encoded.concat([enc.transform(a), enc.transform(b)]),
    )
    assert np.array_equal(whole.cat, parts.cat) and np.array_equal(whole.cont, parts.cont)
    assert np.array_equal(whole.codes, parts.codes) and whole.cat_names == parts.cat_names


def test_a_category_mismatch_costs_one_squared_unit():
    view = ev.View("t", "t", "root", [ev.Col("kind", "t", "kind", "categorical", "text")])
    df = pl.DataFrame({"kind": ["a", "b"]})
    enc = ev.MixedEncoder(view.cols, df)
    d = ev.knn_distances(enc.transform(df.head(1)), enc.transform(df.tail(1)), 1)
    assert d[0, 0] == pytest.approx(1.0)


def test_nndr_is_one_when_the_two_nearest_rows_coincide():
    d = np.array([[0.0, 0.0], [0.0, 0.5], [0.2, 0.4]])
    assert ev.nndr(d).tolist() == [1.0, 0.0, 0.5]


def test_nndr_ratio_compares_low_percentiles_with_the_holdout():
    r, ps, ph = ev.nndr_ratio(np.full(100, 0.2), np.full(100, 0.4))
    assert (ps, ph) == (0.2, 0.4) and r == pytest.approx(0.201 / 0.401)


# --- membership inference, exact matches, rare combinations -----------------------------------


def test_membership_attack_separates_members_at_distance_zero():
    res = ev.membership_inference(np.zeros(200), np.linspace(0.1, 1, 200))
    assert res["auc"] == 1.0 and res["tpr_at_1pct_fpr"] == 1.0
    chance = ev.membership_inference(np.ones(200), np.ones(200))
    assert chance["auc"] == 0.5


def test_exact_match_rate_treats_nulls_as_equal():
    a = pl.DataFrame({"x": [1.0, None, 3.0], "y": ["a", "b", "c"]})
    b = pl.DataFrame({"x": [None, 3.0], "y": ["b", "z"]})
    assert ev.exact_match_rate(a, b) == pytest.approx(1 / 3)


def test_rare_combination_ratio_tolerates_one_synthetic_hit_when_the_holdout_has_none():
    assert ev.rare_combination_ratio(0, 20_000, 0, 2_000) == 0.0
    assert ev.rare_combination_ratio(1, 20_000, 0, 2_000) == pytest.approx(1.0)
    assert ev.rare_combination_ratio(5, 20_000, 0, 2_000) == pytest.approx(5.0)
    # with holdout hits it is the ratio of per-row rates
    assert ev.rare_combination_ratio(100, 20_000, 10, 2_000) == pytest.approx(1.0)


# --- identifiers ------------------------------------------------------------------------------


def test_identifier_normalisation_folds_formatting():
    phones = ev.normalize_identifier(pl.Series(["+44 7123 456789", "07123 456789"]), "phone")
    assert phones.to_list() == ["7123456789"]
    emails = ev.normalize_identifier(
        pl.Series([" Ann.Lee@Example.com", "ann.lee@example.com"]), "email"
    )
    assert emails.to_list() == ["ann.lee@example.com"]
    ibans = ev.normalize_identifier(pl.Series(["gb29 nwbk 6016 1331 9268 19"]), "iban")
    assert ibans.to_list() == ["GB29NWBK60161331926819"]


def test_identifier_hashes_are_keyed():
    v = pl.Series(["a@b.com"])
    assert _hashes(b"k" * 32, "email", v) != _hashes(b"j" * 32, "email", v)
    assert _hashes(b"k" * 32, "email", v) == _hashes(b"k" * 32, "email", v)


# --- fidelity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [500, 12_000])
def test_ks_statistic_is_scipys_on_both_sides_of_its_exact_mode(rows):
    from synth_assets.core.evaluate.fidelity import ks_statistic

    rng = np.random.default_rng(RNG_SEED + rows)
    a = np.round(rng.normal(0, 1, rows), 1)  # ties on purpose
    b = np.round(rng.normal(0.05, 1, rows + 7), 1)
    assert ks_statistic(a, b) == stats.ks_2samp(a, b).statistic


def test_ks_from_histograms_matches_scipy():
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.poisson(2, 3000), rng.poisson(2.4, 2000)
    va, ca = np.unique(a, return_counts=True)
    vb, cb = np.unique(b, return_counts=True)
    assert ev.ks_from_histograms(va, ca, vb, cb) == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_column_shapes_are_one_for_identical_and_zero_for_disjoint_columns():
    cols = [
        ev.Col("x", "t", "x", "numeric", "float8"),
        ev.Col("c", "t", "c", "categorical", "text"),
    ]
    df = pl.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "b"]})
    assert ev.column_shapes(cols, df, df)["score"] == 1.0
    other = pl.DataFrame({"x": [7.0, 8.0, 9.0], "c": ["y", "z", "z"]})
    assert ev.column_shapes(cols, df, other)["score"] == pytest.approx(0.0)


def test_suppressed_categories_are_pooled_before_the_shape_is_compared():
    # The spec released only "London"; the generator draws its own labels for the rest.
    cols = [ev.Col("city", "t", "city", "categorical", "text")]
    real = pl.DataFrame({"city": ["London", "Leeds", "York", "London"]})
    synth = pl.DataFrame({"city": ["London", "Springfield", "Fairview", "London"]})
    shapes = ev.column_shapes(cols, real, synth, {"city": ["London"]})["columns"]["city"]
    assert shapes["score"] == 1.0
    assert shapes["label_score"] == pytest.approx(0.5)
    wrong = pl.DataFrame({"city": ["London", "London", "London", "London"]})
    assert ev.column_shapes(cols, real, wrong, {"city": ["London"]})["score"] == pytest.approx(0.5)


def test_pair_trends_use_correlation_for_two_numbers_and_contingency_otherwise():
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(size=2000)
    real = pl.DataFrame(
        {"x": x, "y": x + rng.normal(scale=0.1, size=2000), "c": np.where(x > 0, "p", "n")}
    )
    flat = pl.DataFrame(
        {"x": x, "y": rng.permutation(real["y"].to_numpy()), "c": rng.choice(["p", "n"], 2000)}
    )
    a, b, c = (
        ev.Col(n, "t", n, k, "float8")
        for n, k in (("x", "numeric"), ("y", "numeric"), ("c", "categorical"))
    )
    same = ev.pair_trend(a, b, real, real)
    lost = ev.pair_trend(a, b, real, flat)
    assert same["metric"] == "correlation_similarity" and same["score"] == 1.0
    assert lost["score"] < 0.6
    assert ev.pair_trend(a, c, real, flat)["metric"] == "contingency_similarity"
    assert ev.pair_trend(a, c, real, flat)["score"] < ev.pair_trend(a, c, real, real)["score"]


def test_canonical_turns_datetimes_into_epoch_seconds_and_null_categories_into_a_token():
    cols = [
        ev.Col("t", "x", "t", "datetime", "timestamptz"),
        ev.Col("c", "x", "c", "categorical", "int4"),
    ]
    df = pl.DataFrame(
        {"t": pl.Series([0, 86_400_000_000]).cast(pl.Datetime("us", "UTC")), "c": [7, None]}
    )
    out = ev.canonical(df, cols)
    assert out["t"].to_list() == [0.0, 86_400.0]
    assert out["c"].to_list() == ["7", ev.NULL_TOKEN]


# --- gates ------------------------------------------------------------------------------------


def _report(**over) -> dict:
    views = {
        "customers": {
            "table": "customers",
            "privacy": {
                "dcr_share": {"value": 0.51},
                "nndr": {"value": 0.9},
                "mia": {"auc": 0.5},
                "exact_match": {"excess": 0.0, "holdout": 0.0},
            },
            "rare_combinations": {"value": 0.0, "holdout_hits": 0, "holdout_rows": 100},
            "column_shapes": {"score": 0.95},
            "pair_trends": {"score": 0.9, "pairs": {"a~b": {}}},
        },
    }
    rep = {
        "views": views,
        "identifier_overlap": {"groups": {"email": {"overlap": 0}}},
        "fanout": {"accounts.customer_id->customers": {"value": 0.97}},
        "temporal": {"customers.created_at": {"hour_of_week_corr": 0.95, "acf_max_diff": 0.1}},
        "null_rates": {"customers": {"max_diff": 0.01}},
    }
    rep.update(over)
    return rep


def test_default_thresholds_are_the_strict_ones():
    t = ev.gate_thresholds({})
    assert t == {
        "privacy_dcr_share": 0.52,
        "privacy_nndr": 0.5,
        "privacy_membership_inference": 0.55,
        "privacy_exact_match": 0.005,
        "privacy_rare_combinations": 1.0,
        "privacy_identifier_overlap": 0.0,
        "fidelity_column_shapes": 0.9,
        "fidelity_fanout": 0.9,
        "fidelity_hour_of_week": 0.9,
        "fidelity_pair_trends": None,
        "fidelity_autocorrelation": None,
        "fidelity_null_rates": None,
    }


def test_thresholds_come_from_the_gates_mapping_and_bad_values_are_refused():
    assert (
        ev.gate_thresholds({"dcr_share_max": 0.6, "acf_diff_max": 0.3})["privacy_dcr_share"] == 0.6
    )
    with pytest.raises(ConfigError, match="gates.mia_auc_max"):
        ev.gate_thresholds({"mia_auc_max": float("nan")})


def test_all_gates_pass_on_a_good_report():
    results = ev.evaluate_gates(_report(), ev.gate_thresholds({}))
    assert [r.name for r in results] == [g.name for g in ev.GATE_SPECS]
    assert all(r.passed for r in results)
    assert ev.gate_message(results) == "all release gates passed"


def test_a_failing_gate_lists_each_failing_item_with_value_and_threshold():
    rep = _report(
        fanout={"a.x->b": {"value": 0.5}, "c.y->b": {"value": 0.99}, "d.z->e": {"value": 0.7}}
    )
    results = {r.name: r for r in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    fan = results["fidelity_fanout"]
    assert not fan.passed and fan.metrics["value"] == 0.5 and fan.metrics["worst"] == "a.x->b"
    assert fan.failures == [
        "a.x->b: fanout_similarity = 0.5, threshold >= 0.9",
        "d.z->e: fanout_similarity = 0.7, threshold >= 0.9",
    ]
    msg = ev.gate_message(list(results.values()))
    assert "fidelity_fanout" in msg and "0.5" in msg and ">= 0.9" in msg


def _dcr(value: float, noise_sd: float) -> dict:
    rep = _report()
    rep["views"]["customers"]["privacy"]["dcr_share"] = {"value": value, "noise_sd": noise_sd}
    return {r.name: r for r in ev.evaluate_gates(rep, ev.gate_thresholds({}))}


def test_a_small_holdouts_dcr_share_is_judged_against_what_chance_reaches():
    # 0.55 with a holdout whose own contest spreads 0.03: chance reaches 0.575, not a failure
    small = _dcr(0.55, 0.03)["privacy_dcr_share"]
    assert small.passed and small.metrics["calibrated_thresholds"] == {"customers": 0.575}
    assert "calibrated to what this sample" in ev.markdown_summary(
        {"gates": {"privacy_dcr_share": small.to_dict()}}
    )
    # the same share from a holdout large enough to resolve 0.52 fails at 0.52
    large = _dcr(0.55, 0.004)["privacy_dcr_share"]
    assert not large.passed and large.metrics["calibrated_thresholds"] == {}
    assert large.failures == [
        "customers: dcr_share = 0.55, threshold <= 0.52, holdout baseline 0.5"
    ]


def test_a_share_beyond_chance_fails_and_names_the_calibrated_threshold():
    r = _dcr(0.62, 0.03)["privacy_dcr_share"]
    assert not r.passed
    assert r.failures[0].startswith(
        "customers: dcr_share = 0.62, threshold <= 0.575 (calibrated from 0.52"
    )


def test_the_attacks_chance_floor_follows_its_sample_sizes():
    rep = _report()
    rep["views"]["customers"]["privacy"]["mia"] = {"auc": 0.57, "members": 150, "nonmembers": 150}
    r = {x.name: x for x in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    floor = 0.5 + 2.5 * math.sqrt(301 / (12 * 150 * 150))  # Mann-Whitney's null, about 0.583
    assert r["privacy_membership_inference"].passed
    assert r["privacy_membership_inference"].metrics["calibrated_thresholds"][
        "customers"
    ] == pytest.approx(floor)
    rep["views"]["customers"]["privacy"]["mia"].update(members=20_000, nonmembers=20_000)
    r = {x.name: x for x in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    assert not r["privacy_membership_inference"].passed  # 0.57 with 20k a side is not chance
    # ... unless those rows belong to 150 units a side (a joined view): one unit, one sample
    rep["views"]["customers"]["rows"] = {"units": 150}
    r = {x.name: x for x in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    assert r["privacy_membership_inference"].passed
    assert r["privacy_membership_inference"].metrics["calibrated_thresholds"][
        "customers"
    ] == pytest.approx(floor)


def test_column_shapes_are_judged_against_what_a_perfect_generator_reaches():
    rep = _report()
    shapes = rep["views"]["customers"]["column_shapes"]
    shapes.update(score=0.86, achievable={"threshold": 0.84})
    r = {x.name: x for x in ev.evaluate_gates(rep, ev.gate_thresholds({}))}[
        "fidelity_column_shapes"
    ]
    assert r.passed and r.metrics["calibrated_thresholds"] == {"customers": 0.84}
    shapes["score"] = 0.80  # worse than the noise explains: a bad generator fails
    r = {x.name: x for x in ev.evaluate_gates(rep, ev.gate_thresholds({}))}[
        "fidelity_column_shapes"
    ]
    assert not r.passed and "a perfect generator reaches it" in r.failures[0]
    shapes.update(score=0.88, achievable={"threshold": 0.97})  # never raised above the threshold
    r = {x.name: x for x in ev.evaluate_gates(rep, ev.gate_thresholds({}))}[
        "fidelity_column_shapes"
    ]
    assert not r.passed and r.failures[0].endswith("threshold >= 0.9")


def test_an_unmeasurable_privacy_metric_fails_closed():
    rep = _report()
    rep["views"]["customers"]["privacy"]["dcr_share"]["value"] = float("nan")
    results = {r.name: r for r in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    assert not results["privacy_dcr_share"].passed
    assert "could not be measured" in results["privacy_dcr_share"].failures[0]


def test_an_unmeasured_metric_read_back_from_the_written_report_fails_closed_without_crashing():
    # The report is written as strict JSON (NaN -> null); the release check re-reads that file.
    rep = _report()
    rep["views"]["accounts"] = json.loads(json.dumps(rep["views"]["customers"]))
    rep["views"]["customers"]["privacy"]["dcr_share"]["value"] = float("nan")
    back = json.loads(json.dumps(json_safe(rep)))
    strict = {r.name: r for r in ev.evaluate_gates(back, ev.gate_thresholds({}))}
    assert not strict["privacy_dcr_share"].passed
    assert "could not be measured" in strict["privacy_dcr_share"].failures[0]
    loose = {
        r.name: r for r in ev.evaluate_gates(back, ev.gate_thresholds({"dcr_share_max": None}))
    }
    assert loose["privacy_dcr_share"].passed
    assert loose["privacy_dcr_share"].metrics["value"] == 0.51


def test_optional_gates_are_reported_and_gate_only_when_configured():
    rep = _report(null_rates={"customers": {"max_diff": 0.2}})
    off = {r.name: r for r in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    assert (
        off["fidelity_null_rates"].passed and off["fidelity_null_rates"].metrics["gated"] is False
    )
    on = {
        r.name: r for r in ev.evaluate_gates(rep, ev.gate_thresholds({"null_rate_diff_max": 0.05}))
    }
    assert not on["fidelity_null_rates"].passed


def test_markdown_summary_has_the_verdict_first_then_one_row_per_gate():
    rep = _report()
    rep["gates"] = {r.name: r.to_dict() for r in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    md = ev.markdown_summary(rep)
    assert md.startswith("**PASSED**") and md.count("\n") == 3 + len(ev.GATE_SPECS)
    assert "| privacy_dcr_share | pass | 0.51 | <= 0.52 | customers |" in md


def test_markdown_summary_puts_failing_gates_first_and_marks_non_defaults():
    rep = _report()
    strict = ev.gate_thresholds({"dcr_share_max": 0.505})
    rep["gates"] = {r.name: r.to_dict() for r in ev.evaluate_gates(rep, strict)}
    lines = ev.markdown_summary(rep).splitlines()
    assert lines[0] == "**BLOCKED**: 1 of " + lines[0].split(" of ")[1]
    assert "privacy_dcr_share" in lines[0]
    assert (
        lines[4] == "| privacy_dcr_share | **FAIL** | 0.51 | <= 0.505 (default 0.52) | customers |"
    )


# --- the written report -----------------------------------------------------------------------


def _full_report() -> dict:
    rep = _report()
    rep["views"]["customers"]["privacy"].update(
        {
            "dcr_share": {"value": 0.51, "groups": {"all": 0.51}},
            "nndr": {
                "value": 0.9,
                "histogram": ev.distance_histogram(
                    np.array([0.5, 0.9]), np.array([0.6, 0.8]), edges=np.linspace(0, 1, 5)
                ),
            },
            "dcr": {"histogram": ev.distance_histogram(np.array([0.1, 0.3]), np.array([0.2, 0.4]))},
            "mia": {"auc": 0.5, "tpr_at_1pct_fpr": float("nan")},
            "exact_match": {"excess": 0.0, "holdout": 0.0},
        }
    )
    rep["views"]["customers"]["rare_combinations"].update(
        {"quasi_identifiers": ["segment"], "synthetic_hits": 0, "synthetic_rows": 10}
    )
    rep["views"]["customers"]["column_shapes"]["columns"] = {
        "segment": {"metric": "tv_complement", "score": 0.9}
    }
    rep["views"]["customers"]["pair_trends"] = {
        "score": 0.9,
        "pairs": {
            "age~income": {"score": 0.95, "real": 0.5, "synthetic": 0.4},
            "age~segment": {"score": 0.85},
        },
    }
    rep["temporal"]["customers.created_at"].update(
        {
            "acf_real": [0.1] * 14,
            "acf_synthetic": [0.2] * 14,
            "acf_mean_diff": 0.1,
            "plot": {"real": [0.01] * 167 + [None], "synthetic": [0.01] * 168},
        }
    )
    rep["fanout"]["accounts.customer_id->customers"].update(
        {
            "real_mean": 1.4,
            "synthetic_mean": 1.4,
            "plot": {"labels": ["0", "1"], "real": [0.5, 0.5], "synthetic": [0.4, 0.6]},
        }
    )
    rep["marginals"] = {
        "customers.segment": {
            "kind": "categorical",
            "labels": ["<script>x</script>"],
            "real": [None],
            "synthetic": [1.0],
        }
    }
    rep["identifier_overlap"] = {
        "columns": {"customers.email": "email"},
        "value": 0,
        "groups": {"email": {"real_values": 5, "synthetic_values": 5, "overlap": 0}},
    }
    rep["gates"] = {r.name: r.to_dict() for r in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    rep.update(
        refresh_id="r20260101T000000Z-abcdef",
        passed=True,
        message="ok",
        created_at="now",
        options={"sample_rows": 100, "min_cell": 10},
        seconds=1.0,
        unit_table="customers",
        holdout_fraction=0.1,
        spec_hash="f" * 64,
        gate_descriptions={},
    )
    return rep


def test_distance_histograms_share_the_holdouts_quantile_bins():
    rng = np.random.default_rng(3)
    hold = rng.exponential(1.0, 2000)
    h = ev.distance_histogram(hold * 0.5, hold)  # synthetic rows twice as close: memorised
    assert len(h["edges"]) == 21 and abs(sum(h["holdout"]) - 1) < 1e-9
    np.testing.assert_allclose(h["holdout"], 0.05, atol=0.002)  # quantile bins of the holdout
    assert sum(h["synthetic"][:5]) > 0.4  # piled in the closest bins
    assert ev.distance_histogram(np.array([]), np.array([]))["edges"] == []


def test_html_report_is_one_self_contained_escaped_page():
    page = render_html(json_safe(_full_report()))
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 3
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "customers: pair trend scores" in page and "customers: Spearman, real" in page
    assert "customers: DCR (share of rows): DCR share 0.51" in page
    assert "customers: NNDR (share of rows): NNDR ratio 0.9" in page
    assert "customers: pair trend scores (mean 0.9" in page
    assert "customers.segment (categorical): score 0.9" in page  # a score on each plot
    assert "(share of parents): KS complement " in page and "correlation " in page
    assert "src=" not in page  # nothing fetched from anywhere
    links = re.findall(r"href='([^']*)'", page)
    assert links and all(h.startswith("#") for h in links)  # only the contents' in-page anchors
    assert page.count("href=") == len(links)


def test_written_json_is_strict_json(tmp_path):
    paths = write_report(_full_report(), tmp_path)
    text = paths["json"].read_text()
    assert "NaN" not in text
    assert json.loads(text)["views"]["customers"]["privacy"]["mia"]["tpr_at_1pct_fpr"] is None
    assert paths["html"].read_text().startswith("<!doctype html>")


def test_json_safe_replaces_non_finite_numbers():
    assert json_safe({"a": [math.inf, 1.0, float("nan")]}) == {"a": [None, 1.0, None]}


def test_options_refuse_tiny_samples():
    with pytest.raises(ConfigError, match="sample_rows"):
        ev.EvalOptions(sample_rows=10)


def test_the_html_report_marks_a_threshold_that_is_not_the_default():
    rep = _full_report()
    relaxed = ev.gate_thresholds({"dcr_share_max": 0.6})
    rep["gates"] = {r.name: r.to_dict() for r in ev.evaluate_gates(rep, relaxed)}
    html_text = render_html(rep)
    assert "&lt;= 0.6 (non-default: &lt;= 0.52 by default)" in html_text
    assert html_text.count("non-default") == 1


def test_the_html_report_shows_the_ideal_generators_score_and_the_calibrated_limit():
    rep = _full_report()
    rep["views"]["customers"]["column_shapes"]["score"] = 0.86
    rep["views"]["customers"]["column_shapes"]["achievable"] = {
        "score": 0.9,
        "sd": 0.01,
        "threshold": 0.86,
    }
    rep["gates"] = {r.name: r.to_dict() for r in ev.evaluate_gates(rep, ev.gate_thresholds({}))}
    assert rep["gates"]["fidelity_column_shapes"]["passed"]
    page = render_html(rep)
    assert "0.9 ± 0.01 (limit 0.86)" in page
    assert "calibrated to what this sample and this noise can resolve: customers 0.86" in page


def test_identifier_overlap_counts_what_the_hmac_sets_count():
    """The fast keyed pre-filter only skips values that cannot match: the counts equal those of
    comparing every value's HMAC (duplicates, values on one side only, and shared ones)."""
    from synth_assets.core.evaluate.privacy import _overlap

    key = b"k" * 32
    real = [pl.Series([f"user{i}@x.org" for i in range(0, 3000)] + ["user1@x.org"])]
    synth = [
        pl.Series([f"user{i}@x.org" for i in range(2950, 9000)]),
        pl.Series(["user2990@x.org", "fresh@y.org"]),
    ]
    want_r, want_s = _hashes(key, "email", pl.concat(real)), _hashes(key, "email", pl.concat(synth))
    assert _overlap(key, "email", real, synth) == (len(want_r), len(want_s), len(want_r & want_s))
    assert _overlap(key, "email", real, synth)[2] == 50


def test_released_shares_count_the_rows_a_threshold_release_left_out():
    from synth_assets.core.evaluate.domains import released_shares, thin_domains

    pack = {
        "tables": {
            # a unit owns one row: the release is the marginal, "other" was never counted
            "planes": {
                "rows": 1500,
                "rows_per_unit": 1,
                "columns": {
                    "model": {"kind": "categorical", "values": ["737"], "counts": [160, 0, 20]},
                    "maker": {
                        "kind": "categorical",
                        "values": ["a", "b"],
                        "counts": [900, 580, 0, 0],
                    },
                    "kind": {
                        "kind": "categorical",
                        "values": ["x"],
                        "counts": [1500, 0, 0],
                        "schema_values": True,
                    },
                },
            },
            # rows per unit above one: "other" is measured in the one-way marginal
            "flights": {
                "rows": 9000,
                "rows_per_unit": 8,
                "columns": {
                    "gate": {"kind": "categorical", "values": ["g1"], "counts": [300, 700, 50]},
                    "team": {
                        "kind": "categorical",
                        "values": ["t"],
                        "counts": [5, 995, 0],
                        "values_from": "teams.team",
                    },
                },
            },
        }
    }
    shares = released_shares(pack)
    assert set(shares) == {"planes.model", "planes.maker", "flights.gate"}  # public, copied: out
    assert shares["planes.model"] == {"values": 1, "share": round(160 / 1480, 4)}
    assert shares["planes.maker"]["share"] > 0.98
    assert shares["flights.gate"]["share"] == 0.3
    assert set(thin_domains(shares)) == {"planes.model", "flights.gate"}
    report = json_safe(_full_report())
    assert "Category values released" not in render_html(report)
    report["domains"] = shares
    page = render_html(report)
    assert "Category values released" in page and "<code>planes.model</code>" in page
    assert "planes.maker" not in page and "public:" in page
