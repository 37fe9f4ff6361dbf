"""Payloads of the pipeline's stages (the assets call record_event with these)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synth_assets.core.store import RefreshPaths


def profile_payload(pack: dict[str, Any]) -> dict[str, Any]:
    """ε spent, δ, mechanisms used and the thresholds applied, from a metrics pack's ledger."""
    led = pack["ledger"]
    mechanisms: dict[str, dict[str, float]] = {}
    thresholds: dict[str, Any] = {}
    for e in led["entries"]:
        m = mechanisms.setdefault(e["mechanism"], {"measurements": 0, "rho": 0.0})
        m["measurements"] += 1
        m["rho"] += float(e["rho"])
        if "threshold" in (e.get("detail") or {}):
            thresholds[e["name"]] = e["detail"]["threshold"]
    return {
        "epsilon_spent": led["epsilon_spent"],
        "epsilon_target": led.get("epsilon_target"),
        "delta": led["delta"],
        "rho_spent": led["rho_spent"],
        "rho_budget": led.get("rho_budget"),
        "accounting": led.get("accounting"),
        "mechanisms": mechanisms,
        "thresholds": thresholds,
    }


def spec_payload(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec hash, version, pack refresh and target row counts."""
    return {
        "spec_hash": spec["content_hash"],
        "version": spec.get("version"),
        "pack_refresh_id": spec.get("pack_refresh_id"),
        "shards": spec.get("shards"),
        "expected_rows": spec.get("expected_rows"),
    }


def shards_payload(refresh_dir: Path, shards: Iterable[int] | None = None) -> dict[str, Any]:
    """File hashes of every shard (from the manifests) and the seed commitment (never the seed).

    ``shards`` limits it to those shards' manifests: a run that generated only them records
    only them, whatever other runs of the refresh are writing at the same time.
    """
    paths = RefreshPaths(Path(refresh_dir))
    gen = json.loads(paths.generation.read_text())
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    manifests = paths.manifests() if shards is None else [paths.manifest(s) for s in sorted(shards)]
    for m in manifests:
        man = json.loads(m.read_text())
        for t, f in man["tables"].items():
            files[f"{t}/{Path(f['path']).name}"] = f["sha256"]
            rows[t] = rows.get(t, 0) + int(f["rows"])
    return {
        "seed_commitment": gen["seed_commitment"],
        "spec_hash": gen.get("spec_hash"),
        "files": files,
        "rows": rows,
    }


def report_payload(report: dict[str, Any]) -> dict[str, Any]:
    """Gate outcomes with their measured values and the overall verdict of a privacy report."""
    return {
        "passed": bool(report.get("passed")),
        "gates": report.get("gates", {}),
        "metrics": report.get("metrics", {}),
    }


def reservation_payload(reservation: dict[str, Any], delta: float | None = None) -> dict[str, Any]:
    """A budget reservation (``budget.reserve``'s answer): epsilon reserved, the source's label
    (never its credentials), what the source had spent in the window, and the cap."""
    return {
        "epsilon": reservation.get("epsilon"),
        "delta": delta,
        "source": reservation.get("source"),
        "spent_before": reservation.get("spent_before"),
        "cap": reservation.get("cap"),
        "reused": bool(reservation.get("reused", False)),
    }


def refusal_payload(stage: str, reasons: list[str], **facts: Any) -> dict[str, Any]:
    """A refusal (budget cap, preflight, release): where it happened, why, and the facts weighed."""
    return {"stage": stage, "reasons": [str(r)[:1000] for r in reasons[:50]], **facts}
