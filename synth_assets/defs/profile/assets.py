"""Inside the privacy boundary: reflect the source and measure it with differential privacy."""

import functools
from collections import Counter

import dagster as dg

from synth_assets.core import budget, pg
from synth_assets.core.audit import profile_payload
from synth_assets.core.evaluate import privacy_guarantee
from synth_assets.core.gates import GateResult, check_budget, check_metrics_pack
from synth_assets.core.pack import measure_pack
from synth_assets.core.preflight import preflight
from synth_assets.core.roles import infer_roles
from synth_assets.core.store import RefreshPaths, new_refresh_id, read_json, write_json_atomic
from synth_assets.defs.constants import (
    BOUNDARY,
    METRICS_PACK,
    SOURCE_SCHEMA,
)
from synth_assets.defs.conventions import production_database, stage_asset, table_schemas
from synth_assets.defs.lineage import refresh_of_run, run_refresh_tag
from synth_assets.defs.resources import SynthResource


@stage_asset(
    SOURCE_SCHEMA,
    tags=BOUNDARY,
    kinds={"postgres"},
    description="Tables, keys, constraints and a role per column, read from the source catalog. "
    "Sampled values used for role inference never leave the boundary.",
)
def source_schema(context: dg.AssetExecutionContext, synth: SynthResource) -> dg.MaterializeResult:
    cfg = synth.settings()
    # Fail closed before the budget: a config, secret, schema or target problem preflight can
    # see is refused here (one line per problem) with nothing reserved and nothing written.
    rid = run_refresh_tag(context) or new_refresh_id()
    model = preflight(cfg, synth.work, refresh_id=rid)
    # The annual cap is enforced before any measurement reaches the source.
    reservation = budget.reserve(
        synth.meta_url(),
        rid,
        cfg.source.url,
        cfg.source.db_schema,
        cfg.privacy.epsilon,
        cfg.privacy.delta,
        cfg.privacy.annual_epsilon_cap,
        cfg.privacy.budget_key,
    )
    synth.audit(
        context,
        "reservation",
        rid,
        {
            "source": reservation["source"],
            "epsilon": cfg.privacy.epsilon,
            "delta": cfg.privacy.delta,
            "annual_epsilon_cap": cfg.privacy.annual_epsilon_cap,
            "spent_before": float(reservation.get("spent_before", 0.0)),
        },
    )
    context.log.info(f"budget: reserved epsilon={cfg.privacy.epsilon} for {reservation['source']}")
    url = pg.resolve_url(cfg.source.url, synth.work, create=False)
    with pg.connect(url) as conn:
        roles = infer_roles(conn, model, cfg.columns)
    store = synth.store()
    path = store.paths(rid).schema
    write_json_atomic(path, {"schema": model.to_dict(), "roles": roles})
    synth.send(rid, RefreshPaths.SCHEMA)
    by_role = Counter(r for cols in roles.values() for r in cols.values())
    context.log.info(f"refresh {rid}: {len(model.tables)} tables reflected")
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "path": dg.MetadataValue.path(str(path)),
            "tables": len(model.tables),
            "roles": dg.MetadataValue.json(dict(by_role)),
            "budget_spent_before": round(float(reservation.get("spent_before", 0.0)), 4),
            "annual_epsilon_cap": cfg.privacy.annual_epsilon_cap,
            # what the source has left this year once this refresh's reservation is counted
            "annual_epsilon_remaining": round(
                max(
                    0.0,
                    cfg.privacy.annual_epsilon_cap
                    - float(reservation.get("spent_before", 0.0))
                    - cfg.privacy.epsilon,
                ),
                4,
            ),
            **table_schemas(model),
        }
    )


@stage_asset(
    METRICS_PACK,
    tags=BOUNDARY,
    kinds={"postgres"},
    description="The metrics pack: DP aggregates of the source (OpenDP, zCDP) and the budget ledger.",
)
def metrics_pack(context: dg.AssetExecutionContext, synth: SynthResource) -> dg.MaterializeResult:
    cfg = synth.settings()
    rid = refresh_of_run(context, SOURCE_SCHEMA)
    store = synth.fetch(rid, RefreshPaths.SCHEMA)
    reflected = read_json(store.paths(rid).schema)
    key = synth.secrets().hmac_key()  # fail closed before any query reaches the source
    url = pg.resolve_url(cfg.source.url, synth.work, create=False)
    with pg.connect(url) as conn:
        pack = measure_pack(conn, reflected, cfg, key, rid, log=context.log.info)
    path = store.paths(rid).pack
    digest = write_json_atomic(path, pack)
    led = pack["ledger"]
    budget.settle(synth.meta_url(), rid, float(led["epsilon_spent"]))
    synth.audit(context, "profile", rid, {**profile_payload(pack), "metrics_pack_sha256": digest})
    synth.send(rid, RefreshPaths.PACK)
    guarantee = privacy_guarantee(pack)
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "path": dg.MetadataValue.path(str(path)),
            "sha256": digest,
            # the guarantee as the report states it (epsilon rounded for reading: the zCDP ->
            # (epsilon, delta) conversion leaves 0.9999999999999472; the pack keeps the exact ledger)
            "epsilon_spent": guarantee["epsilon"],
            "delta": guarantee["delta"],
            "rho_spent": float(led["rho_spent"]),
            "privacy_unit": f"one {guarantee['unit_table']} row with every row that references it",
            "rows_per_unit": dg.MetadataValue.json(guarantee["rows_per_unit"]),
            "measurements": len(led["entries"]),
            "unit_table": guarantee["unit_table"],
            **(
                {
                    "reference_epsilon_spent": ref["epsilon"],
                    "reference_unit": f"one row of {', '.join(ref['tables'])}",
                }
                if (ref := guarantee.get("reference"))
                else {}
            ),
            "seconds": pack["seconds"],
        }
    )


def _pack(context, synth: SynthResource) -> dict:
    """The metrics pack of the refresh a check works on."""
    rid = refresh_of_run(context, METRICS_PACK)
    return read_json(synth.fetch(rid, RefreshPaths.PACK).paths(rid).pack)


def _gate_result(res: GateResult, shown: tuple[str, ...], failures_key: str) -> dg.AssetCheckResult:
    """A pack gate's outcome as its check's result: the ``shown`` metrics, then the failures
    (as JSON under ``failures_key``), joined as the description."""
    return dg.AssetCheckResult(
        passed=res.passed,
        metadata={
            **{k: res.metrics[k] for k in shown},
            failures_key: dg.MetadataValue.json(res.failures),
        },
        description="; ".join(res.failures) or None,
    )


# Both gates of the metrics pack block everything downstream of it.
_pack_gate = functools.partial(dg.asset_check, asset=METRICS_PACK, blocking=True)


@_pack_gate(description="No PII-shaped string and no raw value of a PII, key or free-text column.")
def metrics_pack_no_pii(
    context: dg.AssetCheckExecutionContext, synth: SynthResource
) -> dg.AssetCheckResult:
    cfg = synth.settings()
    pack = _pack(context, synth)
    with pg.connect(pg.resolve_url(cfg.source.url, synth.work, create=False)) as conn:
        res = check_metrics_pack(pack, conn)
    return _gate_result(res, ("strings_scanned",), "findings")


@_pack_gate(description="The ledger adds up and epsilon spent is within the configured epsilon.")
def budget_within_cap(
    context: dg.AssetCheckExecutionContext, synth: SynthResource
) -> dg.AssetCheckResult:
    cfg = synth.settings()
    res = check_budget(_pack(context, synth), cfg.privacy.epsilon)
    return _gate_result(res, ("epsilon_spent", "epsilon_cap", "measurements"), "failures")


defs = dg.Definitions(
    assets=[production_database, source_schema, metrics_pack],
    asset_checks=[metrics_pack_no_pii, budget_within_cap],
)
