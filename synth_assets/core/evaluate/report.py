"""The whole evaluation of a refresh: sample every view, measure, judge the gates, and
summarise the report (aggregates only) for the asset's metadata."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import psycopg

from synth_assets.core.achievable import achievable_shapes
from synth_assets.core.gates import (
    GATE_SPECS,
    GATES_BY_NAME,
    calibrated_note,
    evaluate_gates,
    gate_message,
    gate_thresholds,
)
from synth_assets.core.generate import usable_cpus
from synth_assets.core.kinds import EvalKind, TableKind
from synth_assets.core.plan import TablePlan, build_plan
from synth_assets.core.profile import holdout_key
from synth_assets.core.schema import ForeignKey, SchemaModel
from synth_assets.core.secrets import keyed_hash
from synth_assets.core.store import RefreshPaths, check_refresh_id

from .domains import released_shares
from .encode import MixedEncoder
from .errors import EvaluationError
from .fidelity import (
    OTHER,
    column_shapes,
    fanout_counts,
    fanout_similarity,
    null_rates,
    pair_trends,
    released_domain,
    temporal_counts,
    temporal_profile,
)
from .plots import marginal_plot
from .privacy import (
    PrivacySearch,
    identifier_overlap,
    rare_combinations,
    start_privacy_search,
)
from .samples import NULL_TOKEN, RealDB, real_sample, synthetic_sample, unit_samples
from .views import Col, EvalOptions, View, build_views, table_columns

REPORT_FORMAT = "synth_assets.privacy_report/1"


def privacy_guarantee(pack: dict[str, Any]) -> dict[str, Any]:
    """What the refresh's DP measurements promise, from its metrics pack: epsilon and delta
    spent per unit, the unit, each table's contribution bound, and the reference tables' own
    budget (their unit is one reference row)."""
    led, priv = pack["ledger"], pack["privacy"]
    out: dict[str, Any] = {
        "epsilon": round(float(led["epsilon_spent"]), 4),
        "delta": float(led["delta"]),
        "unit_table": priv["unit_table"],
        "rows_per_unit": dict(priv.get("rows_per_unit", {})),
        "accounting": led.get("accounting"),
    }
    ref = pack.get("reference_ledger") or {}
    refs = [t for t, pl in pack.get("plan", {}).items() if pl.get("kind") == TableKind.REFERENCE]
    if ref and float(ref.get("epsilon_spent", 0.0)) > 0:
        out["reference"] = {
            "epsilon": round(float(ref["epsilon_spent"]), 4),
            "delta": float(ref["delta"]),
            "tables": refs,
        }
    return out


def markdown_summary(report: dict[str, Any]) -> str:
    """The verdict, then a Markdown table of every gate for the asset's metadata: failing gates
    first, and a threshold that differs from its default marked with the default."""
    gates = report["gates"]
    failing = [n for n, g in gates.items() if g["gated"] and not g["passed"]]
    head = (
        f"**BLOCKED**: {len(failing)} of {sum(1 for g in gates.values() if g['gated'])} gates "
        f"failed ({', '.join(failing)})"
        if failing
        else "**PASSED**: every gated check passed"
    )
    lines = [head, ""]
    if dp_promise := report.get("guarantee"):
        ref = dp_promise.get("reference")
        lines += [
            f"Privacy: epsilon {dp_promise['epsilon']:g}, delta {dp_promise['delta']:.0e} per "
            f"`{dp_promise['unit_table']}` unit"
            + (f"; reference tables epsilon {ref['epsilon']:g} per row" if ref else ""),
            "",
        ]
    lines += [
        "| gate | result | value | threshold | worst item |",
        "|---|---|---|---|---|",
    ]
    for name in failing + [n for n in gates if n not in failing]:
        g = gates[name]
        val = "n/a" if g["value"] is None else f"{g['value']:.4g}"
        thr = "not gated" if g["threshold"] is None else f"{g['op']} {g['threshold']:g}"
        default = GATES_BY_NAME[name].default if name in GATES_BY_NAME else None
        if default is not None and g["threshold"] != default:
            thr += f" (default {default:g})"
        thr += calibrated_note(g)
        verdict = ("pass" if g["passed"] else "**FAIL**") if g["gated"] else "reported"
        lines.append(f"| {name} | {verdict} | {val} | {thr} | {g['worst'] or ''} |")
    return "\n".join(lines)


SAMPLE_CONTEXT = "synth_assets/evaluation/sample/v1"


def evaluate_refresh(
    conn: psycopg.Connection,
    refresh_dir: Path,
    hmac_key: bytes,
    *,
    key_version: str | None = None,
    gates_cfg: dict[str, float] | None = None,
    options: EvalOptions | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure privacy and fidelity of one refresh and judge its gates; returns the report (aggregates only)."""
    started = time.monotonic()
    options = options or EvalOptions()
    refresh_dir = Path(refresh_dir)
    thresholds = gate_thresholds(gates_cfg)
    spec, pack = read_refresh(refresh_dir)
    _check_key_version(pack, key_version)
    model = SchemaModel.from_dict(pack["schema"])
    roles = pack["roles"]
    plans = build_plan(model, roles, pack["privacy"]["unit_table"])
    order = [n for n in pack.get("order", list(model.tables)) if n in model.tables]
    rid = str(spec.get("refresh_id") or pack.get("refresh_id"))
    params = {
        "hkey": holdout_key(hmac_key),
        "hcut": int(pack["privacy"]["holdout_fraction"] * 2**32),
        "skey": keyed_hash(hmac_key, SAMPLE_CONTEXT),
    }
    rng = np.random.default_rng(
        int(keyed_hash(hmac_key, f"{SAMPLE_CONTEXT}/synthetic/{rid}")[:32], 16)
    )
    conn.execute("SET TIME ZONE 'UTC'")
    views = build_views(model, roles, plans, order, options)
    report = _report_head(spec, pack, rid, options, thresholds)
    db = RealDB(conn, model, plans, params)
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate-reads")
    try:
        ahead = _read_ahead(reader, db, roles, order, views, options, refresh_dir, hmac_key)
        _measure_views(db, spec, views, refresh_dir, ahead.samples, rng, options, report, log)
        for view, found in zip(views, ahead.rare, strict=True):
            report["views"][view.name]["rare_combinations"] = found.result()
        t0 = time.monotonic()
        _measure_tables(db, refresh_dir, options, report, spec, rng, ahead.steps, ahead.tables)
        report["timings"]["fanout_temporal_nulls"] = round(time.monotonic() - t0, 2)
        report["identifier_overlap"], seconds = ahead.overlap.result()
        report["timings"]["identifier_overlap"] = round(seconds, 2)
    except psycopg.Error as exc:
        raise EvaluationError(
            f"reading the source for evaluation failed: {str(exc).strip().splitlines()[0]}"
        ) from exc
    finally:
        reader.shutdown(cancel_futures=True)
    results = evaluate_gates(report, thresholds)
    report["gates"] = {r.name: r.to_dict() for r in results}
    report["passed"] = all(r.passed for r in results)
    report["message"] = gate_message(results)
    report["seconds"] = round(time.monotonic() - started, 2)
    return report


def _check_key_version(pack: dict[str, Any], key_version: str | None) -> None:
    """Fail when the secrets backend no longer holds the HMAC key the refresh was profiled with:
    the holdout rule is keyed, so another key would measure privacy on the wrong rows."""
    pk_version = pack.get("privacy", {}).get("hmac_key_version")
    if key_version is not None and pk_version is not None and pk_version != key_version:
        raise EvaluationError(
            f"the refresh was profiled with HMAC key version {pk_version} but the secrets backend holds "
            f"{key_version}: the holdout cannot be reproduced, so privacy cannot be measured"
        )


def _report_head(
    spec: dict[str, Any],
    pack: dict[str, Any],
    rid: str,
    options: EvalOptions,
    thresholds: dict[str, float | None],
) -> dict[str, Any]:
    """The report before any measurement: what was evaluated, how, and against which thresholds."""
    return {
        "format": REPORT_FORMAT,
        "refresh_id": rid,
        "spec_hash": spec.get("content_hash"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit_table": pack["privacy"]["unit_table"],
        "holdout_fraction": pack["privacy"]["holdout_fraction"],
        "guarantee": privacy_guarantee(pack),
        "domains": released_shares(pack),
        "options": {
            "sample_rows": options.sample_rows,
            "reference_rows": options.reference_rows,
            "max_categories": options.max_categories,
            "min_cell": options.min_cell,
            "nndr_percentile": options.nndr_percentile,
        },
        "thresholds": {g.key: thresholds[g.name] for g in GATE_SPECS},
        "gate_descriptions": {g.name: g.description for g in GATE_SPECS},
        "views": {},
        "fanout": {},
        "temporal": {},
        "null_rates": {},
        "marginals": {},
        "timings": {},
    }


@dataclass(frozen=True)
class _TableStep:
    """One measurement on all rows of a table: a foreign key's fan-out (``fk``), a timestamp
    column's temporal profile (``col``), or the table's null rates (neither)."""

    table: str
    fk: ForeignKey | None = None
    col: Col | None = None
    relative: bool = False  # a fan-out compared relative to its mean (see fanout_similarity)


def _table_steps(
    model: SchemaModel,
    roles: dict[str, dict[str, str]],
    plans: dict[str, TablePlan],
    order: Sequence[str],
) -> list[_TableStep]:
    """Per table, in report order: the fan-out of every foreign key, the temporal profile of
    every timestamp column, then the null rates."""
    steps = []
    for name in order:
        for fk in model.tables[name].foreign_keys:
            if fk.ref_table in model.tables:
                rel = (
                    plans[fk.ref_table].kind == TableKind.REFERENCE
                    and plans[name].kind != TableKind.REFERENCE
                )
                steps.append(_TableStep(name, fk=fk, relative=rel))
        for c in table_columns(model, roles, name):
            if c.kind == EvalKind.DATETIME and not c.date_only:
                steps.append(_TableStep(name, col=c))
        steps.append(_TableStep(name))
    return steps


def _read_table_step(db: RealDB, refresh_dir: Path, step: _TableStep) -> Any:
    """What a step reads of the real and the synthetic rows; null rates are only read, so they
    come out whole. No random draw: it runs on the reader."""
    conn, model = db.conn, db.model
    if step.fk is not None:
        share_of = db.plans[step.table] if step.relative else None
        return fanout_counts(conn, model, refresh_dir, step.table, step.fk, share_of)
    if step.col is not None:
        return temporal_counts(conn, model, refresh_dir, step.table, step.col)
    return null_rates(conn, model, refresh_dir, step.table)


def _measure_tables(
    db: RealDB,
    refresh_dir: Path,
    options: EvalOptions,
    report: dict[str, Any],
    spec: dict[str, Any],
    rng: np.random.Generator,
    steps: Sequence[_TableStep],
    reads: Sequence[Future[Any]],
) -> None:
    """Per table, on all rows: fan-out of every foreign key, temporal profile of every timestamp
    column, and null rates (into ``report``), from the counts the reader read; the ideal
    generator's draws happen here, in the steps' order."""
    for step, read in zip(steps, reads, strict=True):
        name, counts, tspec = step.table, read.result(), spec["tables"].get(step.table, {})
        if step.fk is not None:
            fk = step.fk
            report["fanout"][f"{name}.{fk.columns[0]}->{fk.ref_table}"] = fanout_similarity(
                db.conn,
                db.model,
                refresh_dir,
                name,
                fk,
                options.min_cell,
                step.relative,
                tspec.get("fanout", {}).get(fk.name),
                rng,
                db.plans[name],
                counts=counts,
            )
        elif step.col is not None:
            c = step.col
            report["temporal"][f"{name}.{c.column}"] = temporal_profile(
                db.conn,
                db.model,
                refresh_dir,
                name,
                c,
                options.min_cell,
                tspec.get("columns", {}).get(c.column),
                rng,
                counts=counts,
            )
        else:
            report["null_rates"][name] = counts


def _read(path: Path) -> dict[str, Any]:
    """A JSON artifact of the refresh."""
    return json.loads(Path(path).read_text())


def read_refresh(refresh_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec, metrics pack) of a refresh; a regeneration reads the pack of the refresh it was calibrated from."""
    refresh_dir = Path(refresh_dir)
    paths = RefreshPaths(refresh_dir)
    try:
        spec = _read(paths.spec)
        pack_path = paths.pack
        if not pack_path.exists() and spec.get("pack_refresh_id"):
            pack_rid = check_refresh_id(str(spec["pack_refresh_id"]))
            pack_path = RefreshPaths(refresh_dir.parent / pack_rid).pack
        pack = _read(pack_path)
    except FileNotFoundError as exc:
        raise EvaluationError(
            f"{exc.filename} is missing: the refresh was not profiled and calibrated"
        ) from None
    return spec, pack


@dataclass(frozen=True)
class _ReadAhead:
    """The reader thread's queue, in its order: each view's real samples, each view's rare
    combinations, the whole-table counts of every table step, then identifier overlap."""

    samples: list[Future[_RealRows]]
    rare: list[Future[dict[str, Any] | None]]
    steps: list[_TableStep]
    tables: list[Future[Any]]
    overlap: Future[tuple[dict[str, Any], float]]


def _read_ahead(
    reader: ThreadPoolExecutor,
    db: RealDB,
    roles: dict[str, dict[str, str]],
    order: Sequence[str],
    views: Sequence[View],
    options: EvalOptions,
    refresh_dir: Path,
    hmac_key: bytes,
) -> _ReadAhead:
    """Queue every read of the source and the shards that draws no random number on one
    thread, which runs them in order while this one measures (PostgreSQL works on the other
    core). The shared generator keeps its order, and with it every figure."""
    conn, model, plans, params = db.conn, db.model, db.plans, db.params
    steps = _table_steps(model, roles, plans, order)
    return _ReadAhead(
        [reader.submit(_read_real, db, v, options) for v in views],
        [
            reader.submit(rare_combinations, conn, model, plans, v, refresh_dir, params)
            for v in views
        ],
        steps,
        [reader.submit(_read_table_step, db, refresh_dir, step) for step in steps],
        reader.submit(_timed, identifier_overlap, conn, model, roles, refresh_dir, hmac_key),
    )


T = TypeVar("T")


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``fn(*args)`` and the seconds it took (it runs on the reader thread)."""
    t0 = time.monotonic()
    return fn(*args), time.monotonic() - t0


@dataclass(frozen=True)
class _RealRows:
    """A view's real samples, read ahead of its measurement: the fidelity sample (a table's,
    not a join's) and the privacy samples (a unit-owned view's: training parts, holdout, sizes)."""

    sample: pl.DataFrame | None = None
    units: tuple[list[pl.DataFrame], pl.DataFrame, dict[str, int]] | None = None


def _read_real(db: RealDB, view: View, options: EvalOptions) -> _RealRows:
    """Every sample of a view's real rows that its measurement needs."""
    if not view.cols:
        return _RealRows()
    n = options.sample_rows
    unit_owned = db.plans[view.table].kind != TableKind.REFERENCE
    return _RealRows(
        None if view.is_join else real_sample(db, view, n),
        unit_samples(db, view, n, options.reference_rows) if unit_owned else None,
    )


def _measure_views(
    db: RealDB,
    spec: dict[str, Any],
    views: Sequence[View],
    refresh_dir: Path,
    reads: Sequence[Future[_RealRows]],
    rng: np.random.Generator,
    options: EvalOptions,
    report: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    """Every view's measurements into ``report``. A view's neighbour searches draw no random
    number, so they run on a pool of threads while the next view is measured, and are summarised
    after it: the generator is drawn in the same order as one view at a time, and every figure
    is the same. A view's timing is the time this thread spent on it, waiting included."""
    pending: tuple[View, dict[str, Any]] | None = None
    with ThreadPoolExecutor(max_workers=usable_cpus(), thread_name_prefix="evaluate-knn") as pool:
        for view, real in zip(views, reads, strict=True):
            t0 = time.monotonic()
            report["views"][view.name] = out = _evaluate_view(
                db, spec, view, refresh_dir, real.result(), rng, options, report["marginals"], pool
            )
            _add_seconds(report, view.name, t0)
            if pending is not None:
                _finish_privacy(*pending, report, log)
            pending = (view, out)
        if pending is not None:
            _finish_privacy(*pending, report, log)


def _add_seconds(report: dict[str, Any], step: str, since: float) -> None:
    """Add the seconds since ``since`` to a step's timing."""
    timings = report["timings"]
    timings[step] = round(timings.get(step, 0.0) + time.monotonic() - since, 2)


def _finish_privacy(
    view: View, out: dict[str, Any], report: dict[str, Any], log: Callable[[str], None]
) -> None:
    """Wait for a view's neighbour searches and put its privacy metrics in its place."""
    t0 = time.monotonic()
    if isinstance(out.get("privacy"), PrivacySearch):
        out["privacy"] = out["privacy"].result()
    _add_seconds(report, view.name, t0)
    log(f"evaluate: {view.name} in {report['timings'][view.name]:.1f}s")


def _evaluate_view(
    db: RealDB,
    spec: dict[str, Any],
    view: View,
    refresh_dir: Path,
    real_rows: _RealRows,
    rng: np.random.Generator,
    options: EvalOptions,
    marginals: dict[str, Any],
    pool: ThreadPoolExecutor,
) -> dict[str, Any]:
    """One view's measurements: fidelity of a table's own columns (plots into ``marginals``)
    and privacy of a unit-owned view, its searches started on ``pool`` (its rare combinations
    are counted on the reader)."""
    n = options.sample_rows
    plans = db.plans
    out: dict[str, Any] = {
        "table": view.table,
        "kind": view.kind,
        "parent": view.fk.ref_table if view.fk else None,
        "columns": [c.name for c in view.cols],
    }
    released = {
        c.name: _released_values(spec, c.table, c.column)
        for c in view.cols
        if c.kind == EvalKind.CATEGORICAL
    }
    if view.cols:
        unit_owned = plans[view.table].kind != TableKind.REFERENCE
        synth_ref, s_total = synthetic_sample(
            refresh_dir, view, options.reference_rows if unit_owned else n, rng
        )
        synth = synth_ref.head(n)
        out["rows"] = {
            "synthetic_total": s_total,
            "synthetic_sample": synth.height,
            "synthetic_reference_rows": synth_ref.height,
        }
        if real_rows.sample is not None:
            real = real_rows.sample
            out["rows"]["real_sample"] = real.height
            out.update(_table_fidelity(view, spec, real, synth, released, rng, options, marginals))
        if real_rows.units is not None:
            parts, hold, info = real_rows.units
            out["rows"].update(info)
            if view.is_join:
                out["pair_trends"] = pair_trends(
                    view,
                    released_domain(pl.concat([parts[0], hold]), view.cols, released),
                    released_domain(synth, view.cols, released),
                )
            out["privacy"] = _view_privacy(view, parts, hold, synth_ref, rng, options, pool)
    return out


def _table_fidelity(
    view: View,
    spec: dict[str, Any],
    real: pl.DataFrame,
    synth: pl.DataFrame,
    released: dict[str, list[str] | None],
    rng: np.random.Generator,
    options: EvalOptions,
    marginals: dict[str, Any],
) -> dict[str, Any]:
    """Column shapes (with what a perfect generator reaches through this noise), pair trends and
    marginal plots (into ``marginals``) of a table's own columns."""
    shapes = column_shapes(view.cols, real, synth, released)
    real_dom = released_domain(real, view.cols, released)
    tspec = spec["tables"].get(view.table, {}).get("columns", {})
    achievable = achievable_shapes(view.cols, real_dom, tspec, synth.height, rng, OTHER, NULL_TOKEN)
    if achievable is not None:
        shapes["achievable"] = achievable
    trends = pair_trends(view, real_dom, released_domain(synth, view.cols, released))
    for c in view.cols:
        m = marginal_plot(c, tspec.get(c.column), real[c.name], synth[c.name], options.min_cell)
        if m is not None:
            marginals[f"{view.table}.{c.column}"] = m
    return {"column_shapes": shapes, "pair_trends": trends}


def _view_privacy(
    view: View,
    parts: list[pl.DataFrame],
    hold: pl.DataFrame,
    synth_ref: pl.DataFrame,
    rng: np.random.Generator,
    options: EvalOptions,
    pool: ThreadPoolExecutor,
) -> PrivacySearch | dict[str, Any]:
    """Privacy metrics of a unit-owned view, started on ``pool``; without rows on one side,
    unmeasurable (fails closed)."""
    parts = [p for p in parts if p.height]  # small sources can leave later samples empty
    if hold.height and parts and synth_ref.height:
        enc = MixedEncoder(view.cols, pl.concat([parts[0], hold]), options.max_categories)
        n, percentile = options.sample_rows, options.nndr_percentile
        return start_privacy_search(view, parts, hold, synth_ref, n, enc, pool, percentile, rng)
    empty = [
        side
        for side, rows in (
            ("holdout", hold.height),
            ("training", len(parts)),
            ("synthetic", synth_ref.height),
        )
        if not rows
    ]
    return _unmeasurable(empty)


def _released_values(spec: dict[str, Any], table: str, column: str) -> list[str] | None:
    """Category values of a column as the spec released them (None: the spec does not say)."""
    col = spec.get("tables", {}).get(table, {}).get("columns", {}).get(column, {})
    values = col.get("values")
    return [str(v) for v in values] if isinstance(values, list) else None


def _unmeasurable(empty: Sequence[str]) -> dict[str, Any]:
    """Privacy entry of a view with no rows on a side: NaN values, so its gates fail closed."""
    nan = float("nan")
    return {
        "dcr_share": {"value": nan, "groups": {}, "baseline": 0.5},
        "nndr": {"value": nan},
        "mia": {"auc": nan, "tpr_at_1pct_fpr": nan},
        "exact_match": {"synthetic": nan, "holdout": nan, "excess": nan},
        "note": f"no {' / '.join(empty)} rows: privacy cannot be measured (fails closed)",
    }
