"""Exact nearest-neighbour distances between encoded rows, blocked by category combination."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from sklearn.neighbors import NearestNeighbors

from .encode import Encoded


def _thin(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Indices of ``m`` of ``n`` rows at random (all when ``m >= n``), in order."""
    return np.arange(n) if m >= n else np.sort(rng.choice(n, size=m, replace=False))


MAX_BLOCKS = 2000  # above this many category combinations, one search over all columns
# Above this many continuous columns a KD-tree prunes little: one brute-force search over all
# columns (sklearn's chunked BLAS kernel) is faster. lahman's batting view (22 continuous
# columns, 20,000 rows a side) took 4.3 s blocked and 1.2 s brute force.
BLOCKED_DIMS = 12


def knn_distances(ref: Encoded, query: Encoded, k: int) -> np.ndarray:
    """Exact Euclidean distances from every query row to its ``k`` (1 or 2) nearest reference rows.

    Rows are blocked by their category combination: the squared distance between two blocks is
    the number of differing categories, so a query searches its own block's KD-tree (on the
    continuous columns) first and visits other blocks only while they could still be closer.
    """
    if k not in (1, 2):
        raise ValueError("k must be 1 or 2")
    nq = query.n
    if ref.n == 0 or nq == 0:
        return np.full((nq, k), np.inf)
    ru, rmembers = ref.blocks()
    qu, qmembers = query.blocks()
    if len(ru) > MAX_BLOCKS or len(qu) > MAX_BLOCKS or ref.cont.shape[1] > BLOCKED_DIMS:
        full_r, full_q = np.hstack([ref.cat, ref.cont]), np.hstack([query.cat, query.cont])
        kk = min(k, ref.n)
        d, _ = NearestNeighbors(n_neighbors=kk).fit(full_r).kneighbors(full_q)
        out = np.hstack([d, np.full((nq, k - kk), np.inf)]) if kk < k else d
        return np.round(out, 9)
    best = np.full((nq, k), np.inf)  # squared distances, ascending
    trees: dict[int, cKDTree] = {}
    has_cont = ref.cont.shape[1] > 0
    for qi_, rows in enumerate(qmembers):
        m = ((ru - qu[qi_]) ** 2).sum(axis=1)
        for j in np.argsort(m, kind="stable"):
            open_ = best[rows, k - 1] > m[j] + 1e-12
            if not open_.any():
                break
            r = rows[open_]
            members = rmembers[j]
            kk = min(k, members.size)
            if has_cont:
                if j not in trees:
                    trees[j] = cKDTree(ref.cont[members])
                # scipy's tree: sklearn's validated every one of the many small queries
                # (a third of lahman's privacy report went to its input checks)
                dist, _ = trees[j].query(query.cont[r], k=list(range(1, kk + 1)))
                cand = m[j] + dist**2
            else:
                cand = np.full((r.size, kk), m[j])
            merged = np.sort(np.hstack([best[r], cand]), axis=1)[:, :k]
            best[r] = merged
    return np.round(np.sqrt(best), 9)
