"""A table's dependency tree over its modelled columns: conditionals from the released pairs
and the copula's numeric links."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from synth_assets.core import copula
from synth_assets.core.kinds import MODELLED_KINDS, ColumnKind

from .denoise import ipf, pair_joint

# The nodes of the tree: the modelled columns and the reference attributes (``^fk``).
TREE_KINDS = (*MODELLED_KINDS, ColumnKind.REF_ATTRIBUTE)


def _tree(
    nodes: list[str], edges: list[tuple[str, str]]
) -> tuple[list[str], dict[str, str | None]]:
    """Sampling order (BFS) and parent of each node of the forest given by ``edges``."""
    adj: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    order: list[str] = []
    parent: dict[str, str | None] = {}
    for start in nodes:
        if start in parent:
            continue
        parent[start] = None
        q = deque([start])
        while q:
            x = q.popleft()
            order.append(x)
            for y in sorted(adj[x]):
                if y not in parent:
                    parent[y] = x
                    q.append(y)
    return order, parent


def _dependency_tree(tp: dict[str, Any], cols: dict[str, Any]) -> dict[str, Any]:
    """The dependency tree over modelled columns with each node's conditional given its parent
    (consistent conditionals), and the numeric links of the copula."""
    modelled = [k for k, v in cols.items() if v["kind"] in TREE_KINDS]
    edges = [
        (p["a"], p["b"])
        for p in tp["pairs"]
        if not cols[p["a"]].get("independent") and not cols[p["b"]].get("independent")
    ]
    order, parent = _tree(modelled, edges)
    # Pairs are sparse relative to their noise: projected onto non-negative counts with the
    # table's total (the 1-way marginals estimate it far better than a pair's own noisy sum),
    # then IPF restores the one-way marginals.
    total = _table_total(tp)
    joints = {
        (p["a"], p["b"]): pair_joint(
            p["counts"],
            p.get("sigma"),
            cols[p["a"]]["p"],
            cols[p["b"]]["p"],
            total,
            p.get("groups"),
            (_group_order(cols[p["a"]], p, 0), _group_order(cols[p["b"]], p, 1)),
        )
        for p in tp["pairs"]
        if (p["a"], p["b"]) in edges
    }
    cond: dict[str, list[list[float]]] = {}
    links: dict[str, dict[str, Any]] = {}
    pair_groups = {(p["a"], p["b"]): p.get("groups") for p in tp["pairs"]}
    for node in order:
        par = parent[node]
        if par is None:
            continue
        pa, pb = np.asarray(cols[par]["p"]), np.asarray(cols[node]["p"])
        if (par, node) in joints:
            j = ipf(joints[(par, node)], pa, pb)
            groups = pair_groups.get((par, node))
        else:
            j = ipf(joints[(node, par)].T, pa, pb)
            groups = pair_groups.get((node, par))
            groups = groups[::-1] if groups else None
        rows = j.sum(axis=1, keepdims=True)
        cp = np.where(rows > 0, j / np.where(rows > 0, rows, 1), pb[None, :])
        cond[node] = cp.tolist()
        if link := _numeric_link(cols[par], cols[node], j, groups):
            links[node] = link
    return {"order": order, "parent": parent, "cond": cond, "links": links}


def _group_order(col: dict[str, Any], pair: dict[str, Any], axis: int) -> np.ndarray | None:
    """A numeric column's groups in a pair, in value order (None for any other column): pooled
    groups are runs of values already; ungrouped codes (point masses, then bins) are sorted."""
    if col["kind"] != ColumnKind.NUMERIC:
        return None
    groups = (pair.get("groups") or [None, None])[axis]
    n_codes = len(col["p"])
    if groups is not None and max(groups) + 1 < n_codes:
        return np.arange(max(groups) + 1)
    return copula.value_order(col.get("atoms") or [], col["edges"])


def _numeric_link(
    parent: dict[str, Any], child: dict[str, Any], joint: np.ndarray, groups: list | None
) -> dict[str, Any] | None:
    """How a numeric child sits inside its drawn group relative to its numeric parent (see
    :mod:`.copula`): the copula's rho fitted to the released joint of the pair's groups, and the
    child's groups; None when either column is not numeric, a column's groups are not runs of
    values, or there is no trend."""
    if parent["kind"] != ColumnKind.NUMERIC or child["kind"] != ColumnKind.NUMERIC or not groups:
        return None
    sa = copula.ValueScale(parent["atoms"], parent["edges"], parent["p"])
    sb = copula.ValueScale(child["atoms"], child["edges"], child["p"])
    ga, gb = np.asarray(groups[0], dtype=np.int64), np.asarray(groups[1], dtype=np.int64)
    ba, bb = sa.group_bounds(ga), sb.group_bounds(gb)
    if ba is None or bb is None:
        return None
    coarse = np.zeros((ba[0].size, bb[0].size))
    np.add.at(coarse, (ga[:, None], gb[None, :]), np.asarray(joint, dtype=np.float64))
    rho = copula.fit_rho(coarse, ba, bb)
    return {"rho": rho, "groups": gb.tolist()} if abs(rho) >= copula.RHO_MIN else None


def _table_total(tp: dict[str, Any]) -> float | None:
    """Rows of a table as its 1-way marginals measure them (median of their noisy totals)."""
    sums = [float(np.sum(m["counts"])) for m in tp["columns"].values() if "counts" in m]
    return float(np.median(sums)) if sums else None
