"""Real-data benchmark: the product beside OpenDP's own MST and AIM at equal rho, on public
datasets it was never tuned on.

For each dataset (``bench/realdata_data.py``): the privacy units are split 50/50; the source
half is loaded into an embedded PostgreSQL and refreshed by the product at epsilon = 1 (gates
at their defaults; only ``privacy.unit_table`` set, where the dataset names its unit); in the
same run, OpenDP 0.16's ``dp.mbi.MST`` and ``dp.mbi.AIM`` and an independent DP-marginals
baseline synthesize each unit-owned table from the same half at the product's rho (split evenly
over the tables; contributions clipped to the product's bound). Every method is scored against
the evaluation half (``bench/realdata_metrics.py``).

The references' domain comes in two variants (``--reference-domain``, alias
``--reference-keys``, picks one or both). "data keys": everything is read off the data without
privacy (``realdata_refs.discretization``): the top-100 category lists and, for numerics, the
data's deciles as bin edges -- exactly the metric's bins, for free, so optimistic. "DP domain":
the domain is released with DP out of the reference's own budget, as the product does: the
numeric/datetime deciles by OpenDP's exponential-mechanism quantile over a 257-point grid per
column (``realdata_refs.dp_cuts``, 20 % of the rho), the category lists by OpenDP's own stable-key
threshold release at the delta the product keeps for its own threshold releases (what OpenDP
does for a column without a public category list). Both variants still take the columns'
min/max (outer bin edges) and the row count from the data. k-marginal and 1-way: 1000 =
identical to the evaluation half.

Usage: python bench/realdata.py [--datasets wage,lahman] [--epsilon 1] [--workdir .synth-realdata]
       [--skip-aim] [--seed 0] [--product-runs 5] [--reference-domain both|data|dp]
       [--product-only]
Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import realdata_data as data  # noqa: E402
import realdata_metrics as metrics  # noqa: E402
import realdata_refs as refs  # noqa: E402

from synth_assets.core import dp, pg  # noqa: E402
from synth_assets.core.config import parse_config  # noqa: E402
from synth_assets.core.errors import SynthError  # noqa: E402
from synth_assets.core.secrets import init_local_secrets  # noqa: E402
from synth_assets.orchestrate import run_refresh  # noqa: E402

MODELLED = {"categorical", "numeric", "boolean", "datetime"}
ROWS_PER_UNIT = 8  # the product's default contribution bound; references clip to the same


def _product(ds: data.Dataset, wd: Path, epsilon: float) -> dict:
    """One refresh of the product on the source half; its shards as pandas frames."""
    src = pg.resolve_url("embedded:///realdata_src", wd)
    data.load_into_postgres(ds, src, "src")
    cfg = parse_config(
        {
            "source": {"url": src, "schema": "src"},
            "target": {"url": "embedded:///realdata_target", "schema": "synth"},
            "privacy": {
                "epsilon": epsilon,
                "unit_table": ds.unit_table,
                "annual_epsilon_cap": 1000.0,
            },
        },
        "bench/realdata.py",
    )
    t0 = time.perf_counter()
    error = None
    summary: dict = {}
    try:
        with dg.DagsterInstance.ephemeral() as inst:
            summary = run_refresh(None, wd, cfg_override=cfg, instance=inst, log=lambda m: None)
    except SynthError as exc:
        error = str(exc).splitlines()[0][:300]
    seconds = time.perf_counter() - t0
    runs = sorted((wd / "runs").glob("*/"), key=lambda p: p.stat().st_mtime)
    run = runs[-1] if runs else None
    frames: dict[str, pd.DataFrame] = {}
    roles: dict = {}
    failed: list[str] = []
    if run is not None and (run / "schema.json").exists():
        roles = json.loads((run / "schema.json").read_text())["roles"]
        for t in ds.tables:
            files = sorted((run / "shards" / t).glob("*.parquet"))
            if files:
                frames[t] = pl.concat([pl.read_parquet(f) for f in files]).to_pandas()
        summ = run / "summary.json"
        if summ.exists():
            checks = json.loads(summ.read_text()).get("checks", {})
            failed = [f"{k}" for k, c in checks.items() if not c.get("passed")]
    return {
        "frames": frames,
        "roles": roles,
        "seconds": seconds,
        "error": error,
        "failed": failed,
        "passed": bool(summary.get("passed")) and not failed and error is None,
        "epsilon": summary.get("epsilon_spent"),
    }


def _clip(df: pd.DataFrame, unit_col: str | None, m: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``m`` random rows per unit (the references' contribution bound)."""
    if unit_col is None:
        return df
    order = rng.permutation(len(df))
    shuffled = df.iloc[order]
    keep = shuffled.groupby(unit_col, sort=False).cumcount() < m
    return shuffled[keep.to_numpy()].sort_index()


def _unit_column(ds: data.Dataset, table: str, frames: dict[str, pd.DataFrame]) -> pd.Series | None:
    """The unit key of every row of ``table`` (following the parents chain)."""
    if table == ds.unit_table:
        return None
    fk, parent = ds.parents[table]
    col = frames[table][fk]
    while parent != ds.unit_table:
        pfk, grand = ds.parents[parent]
        key = ds.tables[parent].key
        col = col.map(frames[parent].set_index(key)[pfk])
        parent = grand
    return col


def _reference_input(ds, table: str, frames, cols: list[str], rng) -> tuple[pd.DataFrame, int]:
    """A table's rows for a reference synthesizer, clipped to the product's contribution bound,
    and that bound (1 for the unit table)."""
    unit = _unit_column(ds, table, frames)
    if unit is None:
        return frames[table][cols], 1
    df = _clip(frames[table].assign(__unit=unit), "__unit", ROWS_PER_UNIT, rng)
    return df[cols], ROWS_PER_UNIT


def _children_per_parent(ds, frames, table: str) -> np.ndarray:
    fk, parent = ds.parents[table]
    key = ds.tables[parent].key
    counts = frames[table][fk].value_counts()
    return frames[parent][key].map(counts).fillna(0).to_numpy()


def _worst(per: list[dict], key: str, companion: str) -> float:
    """``companion`` of the table with the largest ``key`` (the DCR share's noise beside the
    worst table's share)."""
    scored = [p for p in per if np.isfinite(p[key])]
    return float(max(scored, key=lambda p: p[key])[companion]) if scored else float("nan")


def _score(real: pd.DataFrame, train: pd.DataFrame, synth: pd.DataFrame, cols, rng) -> dict:
    if synth is None or len(synth) == 0 or not cols:
        nan = float("nan")
        return {"k2": nan, "k1": nan, "dcr": nan, "dcr_sd": nan, "mia": nan}
    r, t, s = real[cols], train[cols], synth[cols]
    return {
        "k2": metrics.kmarginal(r, s, k=2) if len(cols) > 1 else metrics.oneway(r, s),
        "k1": metrics.oneway(r, s),
        "dcr": metrics.dcr_share(t, r, s, rng),
        "dcr_sd": metrics.dcr_noise(r, s, rng),
        "mia": metrics.membership_auc(t, r, s, rng),
    }


def run_dataset(
    name: str,
    wd: Path,
    epsilon: float,
    skip_aim: bool,
    seed: int,
    product_runs: int = 1,
    reference_domain: str = "both",
    product_only: bool = False,
) -> list[dict]:
    full = data.load(name)
    source, evaluation = data.split(full, seed=seed)
    rng = np.random.default_rng(seed + 1)
    prod = _product(source, wd, epsilon)
    more = [_product(source, wd, epsilon) for _ in range(product_runs - 1)]
    owned = [t for t in source.tables if t not in source.reference_tables]
    cols = {
        t: [
            c
            for c in source.tables[t].df.columns
            if prod["roles"].get(t, {}).get(c) in MODELLED and source.tables[t].df[c].notna().any()
        ]
        for t in owned
    }
    acc = dp.Accountant(epsilon, 1e-6)
    n_tables = max(1, sum(1 for t in owned if cols[t]))
    # Each reference gets the product's rho; where it releases its own domain, also the delta
    # the product keeps for its threshold releases (both split evenly over the tables).
    rho_table, delta_table = acc.rho_budget / n_tables, acc.delta_threshold / n_tables
    rows: list[dict] = []

    def add(method: str, synth: dict[str, pd.DataFrame], seconds: float, extra: dict) -> None:
        per = []
        for t in owned:
            s = synth.get(t)
            per.append(_score(evaluation.tables[t].df, source.tables[t].df, s, cols[t], rng))
        agg = {
            "k2": float(np.nanmean([p["k2"] for p in per])) if per else float("nan"),
            "k1": float(np.nanmean([p["k1"] for p in per])) if per else float("nan"),
            "dcr": float(np.nanmax([p["dcr"] for p in per])) if per else float("nan"),
            "dcr_sd": _worst(per, "dcr", "dcr_sd"),
            "mia": float(np.nanmax([p["mia"] for p in per])) if per else float("nan"),
        }
        tables = {
            t: {k: p[k] for k in ("k2", "k1", "dcr", "dcr_sd", "mia")}
            for t, p in zip(owned, per, strict=True)
        }
        rows.append(
            {
                "dataset": name,
                "method": method,
                **agg,
                "seconds": seconds,
                "tables": tables,
                **extra,
            }
        )

    fan = []
    for t in source.parents:
        if t in prod["frames"] and source.parents[t][1] in prod["frames"]:
            real = _children_per_parent(evaluation, evaluation_frames(evaluation), t)
            synth = _children_per_parent(source, prod["frames"], t)
            fan.append(metrics.fanout_ks(real, synth))
    add(
        "product",
        prod["frames"],
        prod["seconds"],
        {
            "fanout": float(np.mean(fan)) if fan else float("nan"),
            "gates": "pass"
            if prod["passed"]
            else (prod["error"] or "failed: " + ", ".join(prod["failed"])),
        },
    )
    if more:  # DP noise is not seedable: the product's spread over independent refreshes
        first = rows.pop()
        for extra in more:
            add("product", extra["frames"], extra["seconds"], {})
        runs = [first] + [rows.pop() for _ in more]
        first["tables_per_run"] = [r.pop("tables") for r in runs]
        for key in ("k2", "k1", "dcr", "dcr_sd", "mia", "seconds"):
            first[key] = float(np.nanmean([r[key] for r in runs]))
        first["k2_sd"] = float(np.nanstd([r["k2"] for r in runs], ddof=1))
        first["runs"] = len(runs)
        passed = sum(1 for p in [prod, *more] if p["passed"])
        first["gates"] = f"{passed}/{len(runs)} pass" + (
            "" if passed == len(runs) else f" (first run: {first['gates'][:160]})"
        )
        rows.append(first)
    if product_only:
        return rows
    src_frames = evaluation_frames(source)
    methods = [
        (f"{algo}{label}", fn, delta)
        for algo, fn in [("MST", refs.run_mst), ("AIM", refs.run_aim)]
        if not (skip_aim and algo == "AIM")
        for label, delta in [(" (data keys)", None), (" (DP domain)", delta_table)]
        if (label == " (data keys)" and reference_domain != "dp")
        or (label == " (DP domain)" and reference_domain != "data")
    ]
    for label, fn, delta in methods:
        synth: dict[str, pd.DataFrame] = {}
        t0 = time.perf_counter()
        err = ""
        for t in owned:
            if not cols[t]:
                continue
            df, m = _reference_input(source, t, src_frames, cols[t], rng)
            try:
                synth[t] = fn(df, rho_table, m, refs.discretization(df), delta=delta)
            except Exception as exc:  # report, keep going
                err = f"{type(exc).__name__}: {str(exc)[:120]}"
        add(label, synth, time.perf_counter() - t0, {"fanout": float("nan"), "gates": err or "-"})
    synth = {}
    t0 = time.perf_counter()
    for t in owned:
        if cols[t]:
            df, m = _reference_input(source, t, src_frames, cols[t], rng)
            synth[t] = refs.run_independent(df, rho_table, m, refs.discretization(df), rng)
    add("independent", synth, time.perf_counter() - t0, {"fanout": float("nan"), "gates": "-"})
    return rows


def evaluation_frames(ds: data.Dataset) -> dict[str, pd.DataFrame]:
    return {t: tab.df for t, tab in ds.tables.items()}


def _fmt(v: float, spec: str) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def print_table(rows: list[dict]) -> None:
    head = (
        "| dataset | method | k-marginal | 1-way | fan-out KS | DCR share | MIA AUC | s | gates |"
    )
    print(head)
    print("|" + "---|" * 9)
    for r in rows:
        print(
            f"| {r['dataset']} | {r['method']} | {_fmt(r['k2'], '.0f')}"
            + (f" ± {r['k2_sd']:.0f} ({r['runs']} runs)" if "k2_sd" in r else "")
            + f" | {_fmt(r['k1'], '.0f')} "
            f"| {_fmt(r.get('fanout'), '.3f')} | {_fmt(r['dcr'], '.3f')}"
            + (f" (noise {r['dcr_sd']:.3f})" if np.isfinite(r.get("dcr_sd", np.nan)) else "")
            + f" | {_fmt(r['mia'], '.3f')} "
            f"| {r['seconds']:.1f} | {r.get('gates', '')} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default=",".join(data.DATASETS))
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--workdir", default=".synth-realdata")
    ap.add_argument("--skip-aim", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument(
        "--reference-domain",
        "--reference-keys",
        dest="reference_domain",
        choices=("both", "data", "dp"),
        default="both",
        help="MST/AIM domain: category lists and numeric deciles from the data (free, "
        "optimistic), or released with DP out of the reference's budget (deciles by OpenDP's "
        "quantile mechanism, category lists by its threshold at the product's delta), or both "
        "(default)",
    )
    ap.add_argument(
        "--product-runs",
        type=int,
        default=1,
        help="refresh the product this many times and report the mean and sd (DP noise)",
    )
    ap.add_argument(
        "--product-only",
        action="store_true",
        help="refresh and score the product only (no MST, AIM or independent baseline): the "
        "loop for measuring an engine change",
    )
    args = ap.parse_args()
    rows: list[dict] = []
    for name in args.datasets.split(","):
        wd = (ROOT / args.workdir / name).resolve()
        shutil.rmtree(wd / "runs", ignore_errors=True)
        init_local_secrets(wd / "secrets") if not (wd / "secrets").exists() else None
        try:
            out = run_dataset(
                name,
                wd,
                args.epsilon,
                args.skip_aim,
                args.seed,
                max(1, args.product_runs),
                args.reference_domain,
                args.product_only,
            )
        except Exception:
            traceback.print_exc()
            continue
        rows.extend(out)
        print_table(out)
        sys.stdout.flush()
    print("\nAll datasets:")
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
