"""Staging load: the gated refresh goes into an isolated schema (teardown jobs: ``jobs``)."""

import time
from datetime import timedelta

import dagster as dg

from synth_assets.core import pg
from synth_assets.core.generate import usable_cpus
from synth_assets.core.load import check_staging, load_refresh
from synth_assets.core.schema import SchemaModel
from synth_assets.core.store import RefreshPaths, read_json, write_json_atomic
from synth_assets.defs.constants import (
    STAGING_SCHEMA,
    SYNTHETIC_SHARDS,
)
from synth_assets.defs.conventions import stage_asset, table_schemas
from synth_assets.defs.lineage import refresh_of_run, run_actor
from synth_assets.defs.resources import SynthResource


@stage_asset(
    STAGING_SCHEMA,
    # The quarterly cadence: a staging copy older than a quarter and a week is stale in the UI
    # (warned after 92 days), whether or not the staleness sensor is switched on.
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(days=99), warn_window=timedelta(days=92)
    ),
    kinds={"postgres"},
    # Automation never loads data whose gates did not pass (the asset re-checks the report too).
    automation_condition=dg.AutomationCondition.eager()
    & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    description="The refresh loaded into an isolated staging schema: binary COPY into <schema>__next, "
    "source constraints and indexes replayed, counts and FKs verified, swapped in atomically. "
    "Refuses unless the refresh's privacy report passed every gate.",
)
def staging_schema(context: dg.AssetExecutionContext, synth: SynthResource) -> dg.MaterializeResult:
    rid = refresh_of_run(context, SYNTHETIC_SHARDS)
    cfg = synth.settings()
    work = synth.work
    store = synth.fetch(
        rid,
        RefreshPaths.SPEC,
        RefreshPaths.GENERATION,
        RefreshPaths.SHARDS_DIR,
        RefreshPaths.REPORT_DIR,
    )
    target = pg.resolve_url(cfg.target.url, work)
    source = pg.resolve_url(cfg.source.url, work, create=False)
    last = [0.0]

    def progress(table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] > 5:
            last[0] = now
            context.log.info(f"COPY {table}: {done:,}/{total:,} rows")

    res = load_refresh(
        store.dir(rid),
        rid,
        target,
        cfg.target.db_schema,
        source_url=source,
        actor=run_actor(context),
        run_id=context.run_id,
        audit_url=synth.meta_url(),  # binds the audit signer the loader's events use
        workers=min(2, usable_cpus()),
        progress=progress,
    )
    synth.anchor_audit()  # the load event was appended inside the swap transaction
    write_json_atomic(store.paths(rid).load, res.to_dict())
    synth.send(rid, RefreshPaths.LOAD)
    context.log.info(
        f"loaded {res.total_rows:,} rows into {res.schema} in {res.seconds:.1f}s; {res.connect_hint}"
    )
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "schema": res.schema,
            "target": res.target,
            "load_id": res.load_id,
            "rows": dg.MetadataValue.json(res.rows),
            "total_rows": res.total_rows,
            "dagster/row_count": res.total_rows,
            "seconds": round(res.seconds, 2),
            "rows_per_second": round(res.rows_per_second),
            "replaced_previous": res.replaced_previous,
            "connect": dg.MetadataValue.md(f"`{res.connect_hint}`"),
            **table_schemas(SchemaModel.from_dict(read_json(store.paths(rid).spec)["schema"])),
        }
    )


@dg.asset_check(
    asset=STAGING_SCHEMA,
    description="The live staging schema was created by synth_assets, holds the "
    "refresh just loaded, row counts as loaded, every FK validated.",
)
def staging_schema_intact(
    context: dg.AssetCheckExecutionContext, synth: SynthResource
) -> dg.AssetCheckResult:
    cfg = synth.settings()
    rid = refresh_of_run(context, STAGING_SCHEMA)
    gate = check_staging(pg.resolve_url(cfg.target.url, synth.work), cfg.target.db_schema, rid)
    return dg.AssetCheckResult(
        passed=gate.passed,
        metadata={
            "refresh_id": rid,
            "rows": dg.MetadataValue.json(gate.metrics.get("rows", {})),
            "foreign_keys": gate.metrics.get("foreign_keys", 0),
            "failures": dg.MetadataValue.json(gate.failures),
        },
        description="; ".join(gate.failures[:5]) or None,
    )


defs = dg.Definitions(assets=[staging_schema], asset_checks=[staging_schema_intact])
