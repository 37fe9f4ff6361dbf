"""The privacy report people read: ``report/privacy_report.json`` and a self-contained HTML page.

The page is one file with inline SVG plots (no scripts, no external assets), so it can be
attached to a ticket or opened from the artifact store. It renders only what the JSON report
holds: aggregates and binned proportions, never rows.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from .evaluate.domains import DOMAIN_FIX, thin_domains
from .gates import calibrated_note
from .store import RefreshPaths, write_json_atomic

REAL = "#1f5fa8"
SYNTH = "#e8833a"
DOW = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def json_safe(obj: Any) -> Any:
    """The report with NaN and infinities as null (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def write_report(report: dict[str, Any], refresh_dir: Path) -> dict[str, Any]:
    """Write ``report/privacy_report.json`` and ``report/index.html`` beside the shards."""
    paths = RefreshPaths(Path(refresh_dir))
    paths.report_dir.mkdir(parents=True, exist_ok=True)
    safe = json_safe(report)
    json_path = paths.report_json
    digest = write_json_atomic(json_path, safe)
    html_path = paths.report_html
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(render_html(safe), encoding="utf-8")
    tmp.replace(html_path)
    return {"json": json_path, "html": html_path, "sha256": digest}


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return _e(v)


# ------------------------------------------------------------------------------------------
# SVG charts
# ------------------------------------------------------------------------------------------


def svg_bars(
    title: str,
    labels: list[str],
    real: list[float | None],
    synth: list[float | None],
    width: int = 640,
    height: int = 230,
) -> str:
    """Grouped bars, real vs synthetic proportions; suppressed real cells are drawn hatched."""
    n = max(1, len(labels))
    left, right, top, bottom = 44, 10, 26, 70
    pw, ph = width - left - right, height - top - bottom
    vmax = max([v for v in (*real, *synth) if v is not None] + [1e-9])
    slot = pw / n
    bw = max(1.0, slot * 0.38)
    parts = [_frame(title, width, height, left, top, pw, ph, vmax)]
    for i, lab in enumerate(labels):
        x0 = left + i * slot + slot * 0.1
        for j, (series, color) in enumerate(((real, REAL), (synth, SYNTH))):
            v = series[i] if i < len(series) else None
            x = x0 + j * bw
            if v is None:
                parts.append(
                    f'<rect x="{x:.1f}" y="{top + ph - 6}" width="{bw:.1f}" height="6" '
                    f'fill="url(#hatch)"><title>{_e(lab)}: suppressed (fewer rows than the '
                    f"minimum cell)</title></rect>"
                )
                continue
            h = ph * v / vmax
            parts.append(
                f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{_e(lab)}: {v:.3%}</title></rect>'
            )
        if n <= 40 or i % max(1, n // 40) == 0:
            tx = left + i * slot + slot / 2
            parts.append(
                f'<text x="{tx:.1f}" y="{top + ph + 10}" font-size="9" text-anchor="end" '
                f'transform="rotate(-45 {tx:.1f} {top + ph + 10})">{_e(lab[:18])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def svg_heatmap(
    title: str, labels: list[str], cells: list[list[float | None]], lo: float = 0.0, hi: float = 1.0
) -> str:
    """A square matrix as coloured cells (white at ``lo`` to blue at ``hi``; grey: not
    measured), the value in each cell when there are few."""
    n = max(1, len(labels))
    size = max(14, min(44, 420 // n))
    left, top = 120, 30
    width, height = left + n * size + 10, top + n * size + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}"><text x="4" y="14" font-size="12" font-weight="600">'
        f"{_e(title)}</text>"
    ]
    for i, lab in enumerate(labels):
        y = top + i * size + size / 2 + 3
        parts.append(
            f'<text x="{left - 4}" y="{y:.1f}" font-size="9" text-anchor="end">{_e(lab[:18])}</text>'
        )
        for j in range(n):
            v = cells[i][j] if i < len(cells) and j < len(cells[i]) else None
            x, yy = left + j * size, top + i * size
            if v is None:
                fill, tip = "#eee", "not measured"
            else:
                t = min(1.0, max(0.0, (v - lo) / (hi - lo))) if hi > lo else 0.0
                r, g, b = (int(255 - t * (255 - c)) for c in (31, 95, 168))
                fill, tip = f"rgb({r},{g},{b})", f"{v:.3f}"
            parts.append(
                f'<rect x="{x}" y="{yy}" width="{size - 1}" height="{size - 1}" fill="{fill}">'
                f"<title>{_e(labels[i])} x {_e(labels[j])}: {tip}</title></rect>"
            )
            if v is not None and size >= 28:
                parts.append(
                    f'<text x="{x + size / 2:.1f}" y="{yy + size / 2 + 3:.1f}" font-size="8" '
                    f'text-anchor="middle">{v:.2f}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)


def _pair_matrix(
    pairs: dict[str, dict[str, Any]], key: str
) -> tuple[list[str], list[list[float | None]]]:
    """Columns and the symmetric matrix of one field of a view's pair results ("a~b" keys)."""
    cols: list[str] = []
    for k in pairs:
        for c in k.split("~", 1):
            if c not in cols:
                cols.append(c)
    at = {c: i for i, c in enumerate(cols)}
    m: list[list[float | None]] = [[None] * len(cols) for _ in cols]
    for k, v in pairs.items():
        a, b = k.split("~", 1)
        if v.get(key) is not None:
            m[at[a]][at[b]] = m[at[b]][at[a]] = float(v[key])
    for i in range(len(cols)):
        if key != "score":
            m[i][i] = 1.0
    return cols, m


def svg_lines(
    title: str,
    real: list[float | None],
    synth: list[float | None],
    x_ticks: list[tuple[int, str]],
    width: int = 640,
    height: int = 200,
    y_min: float | None = None,
) -> str:
    """Two series as lines (None breaks the real line)."""
    left, right, top, bottom = 44, 10, 26, 28
    pw, ph = width - left - right, height - top - bottom
    vals = [v for v in (*real, *synth) if v is not None]
    vmax = max(vals + [1e-9])
    vmin = min(vals + [0.0]) if y_min is None else y_min
    span = (vmax - vmin) or 1.0
    n = max(len(real), len(synth), 2)
    parts = [_frame(title, width, height, left, top, pw, ph, vmax, vmin)]

    def path(series: list[float | None], color: str) -> str:
        segs, cur = [], []
        for i, v in enumerate(series):
            if v is None:
                if cur:
                    segs.append(cur)
                cur = []
                continue
            x = left + pw * i / (n - 1)
            y = top + ph - ph * (v - vmin) / span
            cur.append(f"{x:.1f},{y:.1f}")
        if cur:
            segs.append(cur)
        return "".join(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(s)}"/>'
            for s in segs
        )

    parts.append(path(real, REAL))
    parts.append(path(synth, SYNTH))
    for i, lab in x_ticks:
        x = left + pw * i / (n - 1)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#ddd"/>'
            f'<text x="{x + 2:.1f}" y="{top + ph + 12}" font-size="9">{_e(lab)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _frame(
    title: str,
    width: int,
    height: int,
    left: int,
    top: int,
    pw: float,
    ph: float,
    vmax: float,
    vmin: float = 0.0,
) -> str:
    fmt = (lambda v: f"{v:.1%}") if vmax <= 1.0 and vmin >= 0 else (lambda v: f"{v:.2g}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}"><defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse">'
        f'<path d="M0,4 l4,-4" stroke="#999" stroke-width="1"/></pattern></defs>'
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{_e(title)}</text>'
        f'<rect x="{width - 150}" y="5" width="10" height="10" fill="{REAL}"/>'
        f'<text x="{width - 136}" y="14" font-size="10">real</text>'
        f'<rect x="{width - 100}" y="5" width="10" height="10" fill="{SYNTH}"/>'
        f'<text x="{width - 86}" y="14" font-size="10">synthetic</text>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#888"/>'
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#888"/>'
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end">{fmt(vmax)}</text>'
        f'<text x="{left - 4}" y="{top + ph}" font-size="9" text-anchor="end">{fmt(vmin)}</text>'
    )


# ------------------------------------------------------------------------------------------
# Page
# ------------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px}
th{background:#f5f5f5;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#17773a;font-weight:600}.fail{color:#b3261e;font-weight:700}.muted{color:#777}
.grid{display:flex;flex-wrap:wrap;gap:12px}.verdict{font-size:18px;padding:8px 12px;display:inline-block}
.ok{background:#e6f4ea}.bad{background:#fce8e6}code{background:#f5f5f5;padding:1px 4px}
.guarantee{background:#eef3fb;padding:8px 12px}.toc{margin:8px 0;font-size:14px}
"""


def render_html(report: dict[str, Any]) -> str:
    """The whole report page as one HTML string."""
    ok = bool(report.get("passed"))
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Privacy and fidelity report {_e(report.get('refresh_id'))}</title><style>{CSS}</style></head><body>",
        f"<h1>Privacy and fidelity report — refresh <code>{_e(report.get('refresh_id'))}</code></h1>",
        f"<div class='verdict {'ok' if ok else 'bad'}'>{'All release gates passed' if ok else 'Release gates FAILED'}"
        "</div>",
        f"<p class='muted'>Created {_e(report.get('created_at'))}; spec {_e(str(report.get('spec_hash'))[:12])}; "
        f"unit table <code>{_e(report.get('unit_table'))}</code>, holdout fraction "
        f"{_num(report.get('holdout_fraction'))}; sample up to {_num(report['options']['sample_rows'])} rows per "
        f"side; evaluated in {_num(report.get('seconds'))} s. Only aggregates are shown; real plot cells with "
        f"fewer than {_num(report['options']['min_cell'])} sampled rows are suppressed (hatched).</p>",
    ]
    if not ok:
        out.append(f"<p class='fail'>{_e(report.get('message'))}</p>")
    out += _guarantee(report.get("guarantee"))
    out.append(
        "<nav class='toc'>Contents: "
        + " · ".join(f"<a href='#{a}'>{_e(t)}</a>" for a, t in SECTIONS)
        + "</nav>"
    )
    out += _glance_section(report)
    out += _gates_section(report)
    out += _privacy_section(report)
    out += _fidelity_section(report)
    out += _plots_section(report)
    out.append("</body></html>")
    return "".join(out)


# The contents: each section's heading carries its anchor.
SECTIONS = (
    ("glance", "Scores at a glance"),
    ("gates", "Release gates"),
    ("privacy", "Privacy"),
    ("fidelity", "Fidelity"),
    ("plots", "Plots"),
)
PROPERTIES = ("column shapes", "pair trends", "inter-table trends", "cardinality", "temporal")


def _guarantee(g: dict[str, Any] | None) -> list[str]:
    """The privacy guarantee in one paragraph: epsilon, delta, unit, contribution bounds."""
    if not g:
        return []
    bounds = ", ".join(
        f"{n} <code>{_e(t)}</code>" for t, n in sorted(g.get("rows_per_unit", {}).items()) if n > 1
    )
    text = (
        f"<b>Privacy guarantee</b>: ({_num(g['epsilon'], 3)}, {g['delta']:.0e})-differential "
        f"privacy per unit, the unit being one <code>{_e(g['unit_table'])}</code> row with every "
        "row that references it"
        + (f"; each unit contributes at most {bounds} rows" if bounds else "")
        + "."
    )
    if ref := g.get("reference"):
        tables = ", ".join(f"<code>{_e(t)}</code>" for t in ref["tables"])
        text += (
            f" Reference tables ({tables}): ({_num(ref['epsilon'], 3)}, {ref['delta']:.0e})"
            "-differential privacy per reference row, a separate unit."
        )
    return [f"<p class='guarantee'>{text}</p>"]


def glance_scores(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per table, a score per property (SDMetrics' quality report reads the same way): column
    shapes, pair trends inside the table, pair trends across each join to its parent,
    cardinality (fan-out KS complement per foreign key) and temporal (hour-of-week
    correlation); ``overall`` is their mean, and the ``(database)`` row the mean of tables."""
    raw: dict[str, dict[str, list[float]]] = {}

    def add(table: str, prop: str, value: Any) -> None:
        if value is not None and math.isfinite(float(value)):
            raw.setdefault(table, {}).setdefault(prop, []).append(float(value))

    for v in report.get("views", {}).values():
        t = v.get("table")
        if v.get("parent"):
            add(t, "inter-table trends", (v.get("pair_trends") or {}).get("score"))
            continue
        add(t, "column shapes", (v.get("column_shapes") or {}).get("score"))
        add(t, "pair trends", (v.get("pair_trends") or {}).get("score"))
    for k, f in report.get("fanout", {}).items():
        add(k.split(".")[0], "cardinality", f.get("value"))
    for k, tm in report.get("temporal", {}).items():
        add(k.split(".")[0], "temporal", tm.get("hour_of_week_corr"))
    out: dict[str, dict[str, float]] = {}
    for t, props in raw.items():
        row = {p: sum(xs) / len(xs) for p, xs in props.items()}
        row["overall"] = sum(row.values()) / len(row)
        out[t] = row
    if out:
        db: dict[str, float] = {}
        for prop in (*PROPERTIES, "overall"):
            xs = [r[prop] for r in out.values() if prop in r]
            if xs:
                db[prop] = sum(xs) / len(xs)
        out["(database)"] = db
    return out


def _glance_section(report: dict[str, Any]) -> list[str]:
    scores = glance_scores(report)
    gates = report.get("gates", {})
    fam = {f: [g for g in gates.values() if g.get("family") == f] for f in ("privacy", "fidelity")}
    counts = "; ".join(
        f"{f} gates: {sum(1 for g in gs if g.get('passed'))} of {len(gs)} passed"
        for f, gs in fam.items()
        if gs
    )
    out = [
        "<h2 id='glance'>Scores at a glance</h2>",
        f"<p>{_e(counts)}. Fidelity scores are 0-1 (1 = the synthetic data matches the real "
        "sample); each is detailed below.</p>",
        "<table><tr><th>table</th><th>overall</th>"
        + "".join(f"<th>{_e(p)}</th>" for p in PROPERTIES)
        + "</tr>",
    ]
    for t, row in scores.items():
        cells = "".join(f"<td class='n'>{_num(row.get(p), 3)}</td>" for p in PROPERTIES)
        name = _e(t) if t.startswith("(") else f"<code>{_e(t)}</code>"
        out.append(
            f"<tr><td>{name}</td><td class='n'><b>{_num(row.get('overall'), 3)}</b></td>{cells}</tr>"
        )
    out.append("</table>")
    return out


def _gate_default(name: str) -> float | None:
    from .evaluate import GATES_BY_NAME  # evaluate imports this module: resolved at call time

    spec = GATES_BY_NAME.get(name)
    return spec.default if spec else None


def _gates_section(report: dict[str, Any]) -> list[str]:
    desc = report.get("gate_descriptions", {})
    rows = [
        "<h2 id='gates'>Release gates</h2><table><tr><th>gate</th><th>what it measures</th><th>worst item</th>"
        "<th>value</th><th>threshold</th><th>result</th></tr>"
    ]
    for name, g in report["gates"].items():
        if not g.get("gated"):
            verdict, cls, thr = "reported", "muted", f"not gated (set gates.{g['key']})"
        else:
            verdict, cls, thr = (
                ("pass", "pass", f"{g['op']} {g['threshold']:g}")
                if g["passed"]
                else ("FAIL", "fail", f"{g['op']} {g['threshold']:g}")
            )
            default = _gate_default(name)
            if default is not None and g["threshold"] != default:
                thr += f" (non-default: {g['op']} {default:g} by default)"
            thr += calibrated_note(g)
        rows.append(
            f"<tr><td><code>{_e(name)}</code></td><td>{_e(desc.get(name, ''))}</td>"
            f"<td>{_e(g.get('worst') or '')}</td><td class='n'>{_num(g.get('value'))}</td>"
            f"<td>{_e(thr)}</td><td class='{cls}'>{verdict}</td></tr>"
        )
        for f in g.get("failures", []):
            rows.append(f"<tr><td></td><td colspan='5' class='fail'>{_e(f)}</td></tr>")
    rows.append("</table>")
    return rows


def _privacy_section(report: dict[str, Any]) -> list[str]:
    out = [
        "<h2 id='privacy'>Privacy (synthetic vs training, against the holdout baseline)</h2>",
        "<table><tr><th>table / join</th><th>units per side</th><th>rows train / holdout / synthetic</th>"
        "<th>DCR share (worst group)</th><th>DCR share by group</th><th>NNDR p-low synthetic / holdout</th>"
        "<th>NNDR ratio</th><th>MIA AUC</th><th>MIA TPR @1% FPR</th><th>exact match synthetic / holdout</th>"
        "<th>rare combos: synthetic hits / rows</th><th>holdout hits / rows</th><th>rare ratio</th></tr>",
    ]
    for name, v in report["views"].items():
        p, r, rows = v.get("privacy"), v.get("rare_combinations"), v.get("rows", {})
        if p is None and r is None:
            continue
        cells = [
            f"<td><code>{_e(name)}</code></td>",
            f"<td class='n'>{_num(rows.get('units'))}</td>",
            f"<td class='n'>{_num(rows.get('training_rows'))} / {_num(rows.get('holdout_rows'))} / "
            f"{_num(rows.get('synthetic_sample'))}</td>",
        ]
        if p is not None:
            groups = ", ".join(
                f"{_e(k)} {_num(x)}" for k, x in p["dcr_share"].get("groups", {}).items()
            )
            nn, mia, em = p["nndr"], p["mia"], p["exact_match"]
            noise = p["dcr_share"].get("noise_sd")
            cells += [
                f"<td class='n'>{_num(p['dcr_share']['value'])}"
                f"{f' (noise ±{noise:.3f})' if isinstance(noise, float) else ''}</td><td>{groups}</td>",
                f"<td class='n'>{_num(nn.get('synthetic_percentile'))} / {_num(nn.get('holdout_percentile'))}"
                f"</td><td class='n'>{_num(nn.get('value'))}</td>",
                f"<td class='n'>{_num(mia.get('auc'))}</td><td class='n'>{_num(mia.get('tpr_at_1pct_fpr'))}</td>",
                f"<td class='n'>{_num(em.get('synthetic'))} / {_num(em.get('holdout'))}</td>",
            ]
        else:
            cells += ["<td colspan='7' class='muted'>reference table: no holdout</td>"]
        if r is not None:
            cells += [
                f"<td class='n'>{_num(r['synthetic_hits'])} / {_num(r['synthetic_rows'])}</td>",
                f"<td class='n'>{_num(r['holdout_hits'])} / {_num(r['holdout_rows'])}</td>",
                f"<td class='n'>{_num(r['value'])}</td>",
            ]
        else:
            cells += ["<td colspan='3' class='muted'>n/a</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append(
        "</table><p class='muted'>DCR share: the mean over disjoint training samples, each holding as "
        "many privacy units as the holdout; noise is the spread of the same contest between two training "
        "samples. Exact matches and NNDR search all sampled training rows; the attack searches all "
        "sampled synthetic rows.</p><p class='muted'>Quasi-identifiers per table: "
        + "; ".join(
            f"<code>{_e(n)}</code>: {_e(', '.join(v['rare_combinations']['quasi_identifiers']))}"
            for n, v in report["views"].items()
            if v.get("rare_combinations")
        )
        + "</p>"
    )
    ov = report.get("identifier_overlap", {})
    out.append(
        "<h3>Identifier overlap (HMAC-SHA256 keyed hashes)</h3><table><tr><th>kind</th>"
        "<th>real distinct values</th><th>synthetic distinct values</th><th>overlap</th></tr>"
    )
    for g, o in ov.get("groups", {}).items():
        cls = "pass" if o["overlap"] == 0 else "fail"
        out.append(
            f"<tr><td>{_e(g)}</td><td class='n'>{_num(o['real_values'])}</td>"
            f"<td class='n'>{_num(o['synthetic_values'])}</td><td class='n {cls}'>{_num(o['overlap'])}</td></tr>"
        )
    out.append(
        "</table><p class='muted'>Columns: "
        + _e(", ".join(f"{k} ({v})" for k, v in ov.get("columns", {}).items()))
        + "</p>"
    )
    return out


def _ideal(ach: dict[str, Any] | None) -> str:
    """What a perfect generator scores from the same noisy measurements, and the limit it sets."""
    if not ach:
        return "not simulated"
    return f"{_num(ach['score'], 3)} ± {_num(ach['sd'], 2)} (limit {_num(ach['threshold'], 3)})"


def _fidelity_section(report: dict[str, Any]) -> list[str]:
    out = [
        "<h2 id='fidelity'>Fidelity</h2><h3>Column shapes</h3><table><tr><th>table</th><th>mean</th>"
        "<th>ideal generator at this noise</th><th>columns</th>"
        "<th>pair trends (mean)</th><th>largest null-rate difference</th></tr>"
    ]
    for name, v in report["views"].items():
        cs = v.get("column_shapes")
        if cs is None:
            continue
        cols = ", ".join(
            f"{_e(c)} {_num(x['score'], 3)} ({'KS' if x['metric'].startswith('ks') else 'TV'}"
            + (
                f"; raw labels {_num(x['label_score'], 3)}"
                if x.get("label_score") not in (None, x["score"])
                else ""
            )
            + ")"
            for c, x in cs["columns"].items()
        )
        nr = report["null_rates"].get(v["table"], {})
        out.append(
            f"<tr><td><code>{_e(name)}</code></td><td class='n'>{_num(cs['score'])}</td>"
            f"<td class='n'>{_ideal(cs.get('achievable'))}</td><td>{cols}</td>"
            f"<td class='n'>{_num(v.get('pair_trends', {}).get('score'))}</td>"
            f"<td>{_num(nr.get('max_diff'))} ({_e(nr.get('worst_column') or '')})</td></tr>"
        )
    out.append(
        "</table><h3>Pair trends across parent and child (joins)</h3><table><tr><th>join</th><th>mean</th>"
        "<th>weakest pairs</th></tr>"
    )
    for name, v in report["views"].items():
        if v.get("parent") and v.get("pair_trends"):
            pairs = sorted(v["pair_trends"]["pairs"].items(), key=lambda kv: kv[1]["score"])[:4]
            weak = ", ".join(f"{_e(k)} {_num(x['score'], 3)}" for k, x in pairs)
            out.append(
                f"<tr><td><code>{_e(name)}</code></td><td class='n'>{_num(v['pair_trends']['score'])}</td>"
                f"<td>{weak}</td></tr>"
            )
    out.append(
        "</table><h3>Foreign-key fan-out</h3><table><tr><th>foreign key</th><th>KS complement</th>"
        "<th>mean children real</th><th>mean children synthetic</th></tr>"
    )
    for k, f in report["fanout"].items():
        rel = " (relative to the mean)" if f.get("relative") else ""
        out.append(
            f"<tr><td><code>{_e(k)}</code></td><td class='n'>{_num(f['value'])}{rel}</td>"
            f"<td class='n'>{_num(f['real_mean'])}</td><td class='n'>{_num(f['synthetic_mean'])}</td></tr>"
        )
    out += _domains_rows(report)
    out.append(
        "</table><h3>Temporal</h3><table><tr><th>column</th><th>hour-of-week correlation</th>"
        "<th>daily-count ACF, largest difference (lags 1..14)</th><th>mean difference</th></tr>"
    )
    for k, t in report["temporal"].items():
        out.append(
            f"<tr><td><code>{_e(k)}</code></td><td class='n'>{_num(t['hour_of_week_corr'])}</td>"
            f"<td class='n'>{_num(t['acf_max_diff'])}</td><td class='n'>{_num(t['acf_mean_diff'])}</td></tr>"
        )
    out.append("</table>")
    return out


def _domains_rows(report: dict[str, Any]) -> list[str]:
    """Category columns whose released values hold under half of their rows: every value
    under the DP threshold was drawn from the released ones, which a reviewer must know."""
    thin = thin_domains(report.get("domains") or {})
    if not thin:
        return []
    out = [
        "</table><h3>Category values released</h3><p class='muted'>These columns' values under "
        "the DP threshold are never generated; their rows were drawn from the released values. "
        f"To keep them: {_e(DOMAIN_FIX)}.</p><table><tr><th>column</th><th>values released</th>"
        "<th>share of its rows they hold</th></tr>"
    ]
    for k, d in sorted(thin.items(), key=lambda kv: kv[1]["share"]):
        out.append(
            f"<tr><td><code>{_e(k)}</code></td><td class='n'>{_num(d['values'])}</td>"
            f"<td class='n'>{_num(d['share'], 3)}</td></tr>"
        )
    return out


def _series_bars(title: str, series: dict[str, Any]) -> str:
    """Bars of a report series as the report stores one (``labels``, ``real``, ``synthetic``):
    a marginal, or a fan-out's plot."""
    return svg_bars(title, series["labels"], series["real"], series["synthetic"])


def _plots_section(report: dict[str, Any]) -> list[str]:
    out = ["<h2 id='plots'>Plots</h2><h3>Hour-of-week profiles</h3><div class='grid'>"]
    ticks = [(d * 24, DOW[d]) for d in range(7)]
    for k, t in report["temporal"].items():
        out.append(
            svg_lines(
                f"{k} (share per hour of week): correlation {_num(t['hour_of_week_corr'], 3)}",
                t["plot"]["real"],
                t["plot"]["synthetic"],
                ticks,
            )
        )
        lags = [(i, str(i + 1)) for i in range(0, len(t["acf_real"]), 2)]
        out.append(
            svg_lines(
                f"{k} daily-count autocorrelation, lags 1..14: largest difference "
                f"{_num(t.get('acf_max_diff'), 3)}",
                t["acf_real"],
                t["acf_synthetic"],
                lags,
                height=170,
                y_min=min(0.0, *t["acf_real"], *t["acf_synthetic"]),
            )
        )
    out.append("</div><h3>Fan-out (children per parent)</h3><div class='grid'>")
    for k, f in report["fanout"].items():
        title = f"{k} (share of parents): KS complement {_num(f.get('value'), 3)}"
        out.append(_series_bars(title, f["plot"]))
    out.append(
        "</div><h3>Pair trends (1 = the same association in real and synthetic rows)</h3>"
        "<div class='grid'>"
    )
    for name, v in report["views"].items():
        pairs = (v.get("pair_trends") or {}).get("pairs") or {}
        if len(pairs) >= 1 and not v.get("parent"):
            cols, m = _pair_matrix(pairs, "score")
            mean = _num((v.get("pair_trends") or {}).get("score"), 3)
            out.append(svg_heatmap(f"{name}: pair trend scores (mean {mean})", cols, m))
            num = {k: x for k, x in pairs.items() if "real" in x}
            if num:
                cols, real = _pair_matrix(num, "real")
                _, syn = _pair_matrix(num, "synthetic")
                out.append(svg_heatmap(f"{name}: Spearman, real", cols, real, -1.0, 1.0))
                out.append(svg_heatmap(f"{name}: Spearman, synthetic", cols, syn, -1.0, 1.0))
    out.append(
        "</div><h3>Distance to the closest training row (real = unseen holdout rows)</h3>"
        "<div class='grid'>"
    )
    for name, v in report["views"].items():
        pv = v.get("privacy") or {}
        scores = {
            "DCR": f"DCR share {_num((pv.get('dcr_share') or {}).get('value'), 3)}",
            "NNDR": f"NNDR ratio {_num((pv.get('nndr') or {}).get('value'), 3)}",
        }
        for label, part in (("DCR", pv.get("dcr")), ("NNDR", pv.get("nndr"))):
            h = (part or {}).get("histogram")
            if not h or not h.get("edges"):
                continue
            labels = [f"{a:.3g}" for a in h["edges"][:-1]]
            title = f"{name}: {label} (share of rows): {scores[label]}"
            out.append(svg_bars(title, labels, h["holdout"], h["synthetic"]))
    out.append("</div><h3>Marginals</h3><div class='grid'>")
    for k, m in report["marginals"].items():
        table, _, col = k.partition(".")
        cs = ((report["views"].get(table) or {}).get("column_shapes") or {}).get("columns", {})
        score = f": score {_num(cs[col]['score'], 3)}" if col in cs else ""
        out.append(_series_bars(f"{k} ({m['kind']}){score}", m))
    out.append("</div>")
    return out
