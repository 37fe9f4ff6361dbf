"""Inside the privacy boundary again: measure privacy and fidelity, and gate the release on them."""

import os
from collections.abc import Iterator
from urllib.parse import quote

import dagster as dg

from synth_assets.core import pg
from synth_assets.core.errors import GateFailed
from synth_assets.core.evaluate import (
    GATE_SPECS,
    EvalOptions,
    evaluate_gates,
    evaluate_refresh,
    gate_message,
    gate_thresholds,
    markdown_summary,
)
from synth_assets.core.gates import GateResult, check_shards
from synth_assets.core.report_html import write_report
from synth_assets.core.store import RefreshPaths, read_json
from synth_assets.defs.constants import BOUNDARY, PRIVACY_REPORT, SYNTHETIC_SHARDS
from synth_assets.defs.conventions import stage_asset
from synth_assets.defs.lineage import refresh_of_run
from synth_assets.defs.resources import SynthResource


class ReportConfig(dg.Config):
    """Evaluation knobs (run config); gate thresholds live in synth.yaml under ``gates:``."""

    sample_rows: int = 50_000  # holdout rows and synthetic query rows per table / join
    reference_rows: int = 200_000  # training and synthetic rows searched for nearest neighbours
    # table -> its own quasi-identifier columns (default: chosen from the column roles)
    quasi_identifiers: dict[str, list[str]] = {}


def privacy_report_asset(verify_shards: bool = False) -> dg.AssetsDefinition:
    """The report asset; ``verify_shards`` (one run per shard, see ``shards_check``) first checks
    the whole refresh's shards in this step, the one the load follows: the per-shard runs' checks
    could neither see across shards nor gate this run."""

    @stage_asset(
        PRIVACY_REPORT,
        tags=BOUNDARY,
        kinds={"postgres", "html"},
        description="Measured privacy (DCR share, NNDR, exact matches, membership inference, rare "
        "combinations, identifier overlap) and fidelity (column shapes, pair trends, fan-out, "
        "temporal profiles, null rates) of the synthetic shards against real training and holdout "
        "rows. Aggregates only.",
    )
    def privacy_report(
        context: dg.AssetExecutionContext, synth: SynthResource, config: ReportConfig
    ) -> dg.MaterializeResult:
        if verify_shards:
            verify_refresh_shards(context, synth)
        return measure(context, synth, config)

    return privacy_report


def verify_refresh_shards(context: dg.AssetExecutionContext, synth: SynthResource) -> None:
    """Every shard of the refresh present and valid together (keys unique across shards, FKs to
    the reference tables, totals), before any query reaches the source; else the step fails."""
    rid = refresh_of_run(context, SYNTHETIC_SHARDS)
    store = synth.fetch(rid, RefreshPaths.SPEC, RefreshPaths.SHARDS_DIR)
    spec = read_json(store.paths(rid).spec)
    res = check_shards(spec, store.dir(rid), range(spec["shards"]))  # each missing file named
    if not res.passed:
        raise GateFailed(
            f"refresh {rid}: the shards are incomplete or invalid together, no report is "
            f"measured: {'; '.join(res.failures[:10])}. Re-run the failed shard partitions of "
            "synthetic_shards (the backfill's re-execution), then this run."
        )
    context.log.info(
        f"refresh {rid}: every shard present and valid together ({res.metrics['rows']})"
    )


def measure(
    context: dg.AssetExecutionContext, synth: SynthResource, config: ReportConfig
) -> dg.MaterializeResult:
    """Evaluate the refresh against the source, write the report and record it."""
    cfg = synth.settings()
    rid = refresh_of_run(context, SYNTHETIC_SHARDS)
    store = synth.fetch(
        rid, RefreshPaths.SPEC, RefreshPaths.PACK, RefreshPaths.GENERATION, RefreshPaths.SHARDS_DIR
    )
    key = synth.secrets().hmac_key()  # fail closed before any query reaches the source
    options = EvalOptions(
        sample_rows=config.sample_rows,
        reference_rows=config.reference_rows,
        quasi_identifiers=dict(config.quasi_identifiers),
    )
    url = pg.resolve_url(cfg.source.url, synth.work, create=False)
    with pg.connect(url, read_only=True) as conn:
        report = evaluate_refresh(
            conn,
            store.dir(rid),
            key.value,
            key_version=key.version,
            gates_cfg=cfg.gates,
            options=options,
            log=context.log.info,
        )
    paths = write_report(report, store.dir(rid))
    context.log.info(f"refresh {rid}: {report['message']} ({report['seconds']:.1f}s)")
    gates = report["gates"]
    synth.audit(
        context,
        "report",
        rid,
        {
            "report_sha256": paths["sha256"],
            "passed": bool(report["passed"]),
            "seconds": report["seconds"],
            "gates": _gate_digest(gates),
        },
    )
    synth.send(rid, RefreshPaths.REPORT_DIR)
    metadata: dict[str, object] = {
        "refresh_id": rid,
        "passed": bool(report["passed"]),
        "report": dg.MetadataValue.path(str(paths["json"])),
        "report_html": dg.MetadataValue.path(str(paths["html"])),
        "report_sha256": paths["sha256"],
        "summary": dg.MetadataValue.md(markdown_summary(report)),
        "seconds": float(report["seconds"]),
        "sample_rows": config.sample_rows,
    }
    if url := report_url(rid):
        metadata["report_url"] = dg.MetadataValue.url(url)
    for name, g in gates.items():
        if g["value"] is not None:
            metadata[GATES_META[name]] = float(g["value"])
    return dg.MaterializeResult(metadata=metadata)


def report_url(rid: str) -> str | None:
    """A link the UI can open: browsers refuse ``file://`` from a web page, so the report is
    linked only where ``SYNTH_REPORT_BASE_URL`` serves ``<workdir>/runs`` (``make ui`` starts
    a local static server for it); otherwise the metadata holds its path."""
    base = os.environ.get("SYNTH_REPORT_BASE_URL", "").strip()
    return f"{base.rstrip('/')}/{quote(rid)}/{RefreshPaths.REPORT_HTML}" if base else None


GATES_META = {g.name: g.key.removesuffix("_max").removesuffix("_min") for g in GATE_SPECS}


def _gate_digest(gates: dict[str, dict]) -> dict[str, dict]:
    """What the audit log keeps of each gate: verdict, worst value, threshold, failing items."""
    keep = ("passed", "value", "worst", "threshold", "op", "failures")
    return {name: {k: g.get(k) for k in keep} for name, g in gates.items()}


def check_results(
    results: list[GateResult], asset_key: dg.AssetKey, rid: str
) -> Iterator[dg.AssetCheckResult]:
    """One check result per gate: passed, value, threshold and every failing item."""
    for r in results:
        m = r.metrics
        meta: dict[str, object] = {
            "refresh_id": rid,
            "value": m["value"],
            "threshold": m["threshold"],
            "op": m["op"],
            "config_key": f"gates.{m['key']}",
            "gated": m["gated"],
            "worst": m["worst"],
            "items": dg.MetadataValue.json(m["items"]),
            "failures": dg.MetadataValue.json(r.failures),
        }
        if m.get("calibrated_thresholds"):
            meta["calibrated_thresholds"] = dg.MetadataValue.json(m["calibrated_thresholds"])
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=r.name,
            passed=r.passed,
            metadata={k: v for k, v in meta.items() if v is not None},
            description=_check_description(r),
            # a report-only metric is a warning at most, never an error that could block
            severity=dg.AssetCheckSeverity.ERROR if m["gated"] else dg.AssetCheckSeverity.WARN,
        )


def _check_description(r: GateResult) -> str | None:
    """What the UI shows beside a check: the failures, or that a report-only metric (no
    threshold) passed only because nothing gates it."""
    if r.failures:
        return "; ".join(r.failures)
    if not r.metrics["gated"]:
        return f"reported, not gated: set gates.{r.metrics['key']} in synth.yaml to gate it"
    return None


def gate_checks(gates_cfg: dict[str, float] | None = None) -> dg.AssetChecksDefinition:
    """The release gates as asset checks. A gate with a threshold (its default or synth.yaml's
    ``gates:``) blocks everything downstream when it fails; a report-only metric (no threshold)
    is a non-blocking check, so the UI never shows it as a passed blocking gate."""
    thresholds = gate_thresholds(gates_cfg)

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                g.name,
                asset=PRIVACY_REPORT,
                blocking=thresholds[g.name] is not None,
                description=g.description,
            )
            for g in GATE_SPECS
        ],
        name="release_gates",
        description="The release gates: each measured privacy and fidelity metric against its "
        "threshold.",
    )
    def release_gates(
        context: dg.AssetCheckExecutionContext, synth: SynthResource
    ) -> Iterator[dg.AssetCheckResult]:
        rid = refresh_of_run(context, PRIVACY_REPORT)
        report = read_json(synth.fetch(rid, RefreshPaths.REPORT_JSON).paths(rid).report_json)
        results = evaluate_gates(report, gate_thresholds(synth.settings().gates))
        passed = all(r.passed for r in results)
        synth.audit(
            context.op_execution_context,  # a check context has no run_id of its own
            "gates",
            rid,
            {"passed": passed, "gates": _gate_digest({r.name: r.to_dict() for r in results})},
        )
        yield from check_results(results, PRIVACY_REPORT, rid)
        if not passed:
            # The blocking checks already stop everything downstream; failing the step as well
            # puts every failing metric, its value and threshold in the run's one error message.
            raise GateFailed(f"refresh {rid}: {gate_message(results)}")

    return release_gates


release_gates = gate_checks()


def build_defs(gates_cfg: dict[str, float] | None, verify_shards: bool = False) -> dg.Definitions:
    """The report asset and its gate checks for one configuration's thresholds
    (``verify_shards``: see ``privacy_report_asset``)."""
    return dg.Definitions(
        assets=[privacy_report_asset(verify_shards)], asset_checks=[gate_checks(gates_cfg)]
    )


privacy_report = privacy_report_asset()
defs = build_defs(None)
