"""Placing linked numeric values inside their measured groups (core/copula.py) and the
generator's use of it."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from synth_assets.core import copula
from synth_assets.core.generate import _decode_numeric, _sample_tree
from synth_assets.core.profile import coarse_groups


def test_value_order_puts_point_masses_among_the_bins_and_null_last():
    # codes: atoms 0.0 and 7.0, bins [0,5) [5,10) [10,15), null
    order = copula.value_order([7.0, 0.0], [0.0, 5.0, 10.0, 15.0])
    assert order.tolist() == [1, 2, 0, 3, 4, 5]


def test_value_scale_positions_round_trip_and_group_bounds_need_runs_of_values():
    s = copula.ValueScale([], [0.0, 1.0, 2.0, 3.0], [0.2, 0.3, 0.5, 0.0])
    code = np.array([0, 1, 2, 2])
    pos = s.position(code, np.array([0.5, 0.0, 0.5, 0.99]))
    assert s.code_at(pos).tolist() == code.tolist()
    np.testing.assert_allclose(s.within(code, pos), [0.5, 0.0, 0.5, 0.99])
    lo, hi = s.group_bounds([0, 0, 1, 1])
    np.testing.assert_allclose(lo, [0.0, 0.5]) and np.testing.assert_allclose(hi, [0.5, 1.0])
    assert s.group_bounds([0, 1, 0, 1]) is None  # group 0 is not one run of values


def test_profile_groups_follow_values_not_code_order():
    # An atom at 12.0 (code 0) sits among the top bins by value: it pools with them.
    order = copula.value_order([12.0], [0.0, 5.0, 10.0, 15.0])
    g = coarse_groups(np.array([100.0, 100, 100, 100, 0]), 2, numeric=True, order=order)
    assert g[0] == g[3] != g[1]


def _banded(rho: float, groups: int, stray: float, rows: float = 27000.0) -> np.ndarray:
    """Rows of a Gaussian copula with ``rho`` over equal-mass groups, ``stray`` of them
    spread independently."""
    rng = np.random.default_rng(7)
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=200_000)
    u = np.clip((np.argsort(np.argsort(z, axis=0), axis=0) + 0.5) / len(z), 0, 1 - 1e-12)
    g = (u * groups).astype(int)
    c = np.zeros((groups, groups))
    np.add.at(c, (g[:, 0], g[:, 1]), 1.0)
    c = c / c.sum() * (1 - stray) + stray / groups**2
    return c * rows


def test_fit_rho_finds_a_tight_trend_through_stray_noise_and_no_trend_in_independence():
    edges = np.linspace(0, 1, 19)
    bounds = (edges[:-1], edges[1:])
    assert copula.fit_rho(_banded(0.995, 18, 0.03), bounds, bounds) >= 0.98
    assert copula.fit_rho(_banded(-0.9, 18, 0.0), bounds, bounds) <= -0.85
    assert abs(copula.fit_rho(_banded(0.0, 18, 0.0), bounds, bounds)) < 0.15


def test_linked_positions_keep_each_rows_group_and_follow_the_parent_inside_it():
    rng = np.random.default_rng(11)
    n = 20000
    s = copula.ValueScale([], np.linspace(0, 40, 41), [1 / 40] * 40 + [0.0])
    groups = [i // 4 for i in range(40)] + [9]  # 10 groups of 4 bins; null pools with the last
    bounds = s.group_bounds(groups)
    parent = rng.random(n)
    child_group = (parent * 10).astype(int)  # the measured pair says: same group as the parent
    drawn = np.array([4 * g + rng.integers(0, 4) for g in child_group])
    new, pos = copula.linked_positions(s, drawn, bounds, groups, 0.998, parent, rng)
    assert (np.asarray(groups)[new] == child_group).all()
    assert spearmanr(parent, pos).statistic > 0.99
    # inside a group the child's codes keep their one-way shares (a quarter each)
    shares = np.bincount(new % 4, minlength=4) / n
    np.testing.assert_allclose(shares, 0.25, atol=0.02)
    # no trend: rows land anywhere inside their group
    _, loose = copula.linked_positions(s, drawn, bounds, groups, 0.0, parent, rng)
    within = (loose - bounds[0][child_group]) / (bounds[1] - bounds[0])[child_group]
    assert abs(spearmanr(parent * 10 % 1, within).statistic) < 0.05


def test_linked_positions_keep_a_groups_shares_where_its_parents_sit_at_one_end():
    # The pair puts every child in its parent's group, but the parents sit in the lower half
    # of each group: placed by the score alone, the children piled onto the lower codes.
    rng = np.random.default_rng(12)
    n = 20000
    s = copula.ValueScale([], np.linspace(0, 40, 41), [1 / 40] * 40 + [0.0])
    groups = [i // 4 for i in range(40)] + [9]
    bounds = s.group_bounds(groups)
    child_group = rng.integers(0, 10, n)
    parent = (child_group + 0.5 * rng.random(n)) / 10
    drawn = 4 * child_group + rng.integers(0, 4, n)
    new, pos = copula.linked_positions(s, drawn, bounds, groups, 0.998, parent, rng)
    assert (np.asarray(groups)[new] == child_group).all()
    # (placed by the score alone: 0.45, 0.40, 0.13 and 0.02)
    np.testing.assert_allclose(np.bincount(new % 4, minlength=4) / n, 0.25, atol=0.02)
    assert spearmanr(parent, pos).statistic > 0.99


def test_the_generator_draws_linked_numeric_columns_along_their_trend():
    edges = np.linspace(0.0, 100.0, 65).tolist()
    p = [1 / 64] * 64 + [0.0]
    groups = [i // 8 for i in range(64)] + [7]
    coarse = np.eye(8)
    fine = coarse[np.ix_(groups, groups)] / 8
    fine[:, -1] = 0.0  # never NULL
    fine = fine / fine.sum(axis=1, keepdims=True)
    fine[-1] = p  # the null row
    col = {"kind": "numeric", "atoms": [], "edges": edges, "p": p, "integer": False}
    col |= {"decimals": None, "base_type": "float8"}
    tspec = {
        "columns": {"a": col, "b": col},
        "tree": {
            "order": ["a", "b"],
            "parent": {"a": None, "b": "a"},
            "cond": {"b": fine.tolist()},
        },
    }
    rng = np.random.default_rng(2)
    codes, within = _sample_tree(tspec, 20000, rng)
    assert within == {}  # nothing linked: every column draws its own place inside its bin
    loose = spearmanr(
        _decode_numeric(col, codes["a"], rng).to_numpy(),
        _decode_numeric(col, codes["b"], rng).to_numpy(),
    ).statistic
    tspec["tree"]["links"] = {"b": {"rho": 0.998, "groups": groups}}
    codes, within = _sample_tree(tspec, 20000, rng)
    a = _decode_numeric(col, codes["a"], rng, within["a"]).to_numpy()
    b = _decode_numeric(col, codes["b"], rng, within["b"]).to_numpy()
    linked = spearmanr(a, b).statistic
    assert loose < 0.99 and linked > 0.997
    assert np.histogram(b, bins=8, range=(0, 100))[0].min() > 20000 / 8 * 0.9  # marginal kept
