"""Staging load: the gated refresh goes into an isolated schema; teardown jobs remove it."""

import time
from datetime import timedelta

import dagster as dg

from synth_assets.core import pg
from synth_assets.core.audit import default_actor
from synth_assets.core.errors import ConfigError
from synth_assets.core.generate import usable_cpus
from synth_assets.core.load import check_staging, load_refresh, teardown
from synth_assets.core.load import emergency_teardown as emergency_teardown_core
from synth_assets.core.schema import SchemaModel
from synth_assets.core.store import read_json, write_json_atomic
from synth_assets.defs.conventions import RELEASE, owners, table_schemas
from synth_assets.defs.lineage import refresh_of_run
from synth_assets.defs.resources import SynthResource

ACTOR_TAG = "synth/actor"


def _actor(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    tags = context.run.tags if context.run else {}
    return tags.get(ACTOR_TAG) or default_actor()


@dg.asset(
    group_name=RELEASE,
    owners=owners(),
    # The quarterly cadence: a staging copy older than a quarter and a week is stale in the UI
    # (warned after 92 days), whether or not the staleness sensor is switched on.
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(days=99), warn_window=timedelta(days=92)
    ),
    deps=[dg.AssetKey("synthetic_shards"), dg.AssetKey("privacy_report")],
    kinds={"postgres"},
    # Automation never loads data whose gates did not pass (the asset re-checks the report too).
    automation_condition=dg.AutomationCondition.eager()
    & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    description="The refresh loaded into an isolated staging schema: binary COPY into <schema>__next, "
    "source constraints and indexes replayed, counts and FKs verified, swapped in atomically. "
    "Refuses unless the refresh's privacy report passed every gate.",
)
def staging_schema(context: dg.AssetExecutionContext, synth: SynthResource) -> dg.MaterializeResult:
    rid = refresh_of_run(context, "synthetic_shards")
    cfg = synth.settings()
    work = synth.work
    store = synth.fetch(rid, "spec.json", "generation.json", "shards/", "report/")
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
        actor=_actor(context),
        run_id=context.run_id,
        audit_url=synth.meta_url(),  # binds the audit signer the loader's events use
        workers=min(2, usable_cpus()),
        progress=progress,
    )
    synth.anchor_audit()  # the load event was appended inside the swap transaction
    write_json_atomic(store.path(rid, "load.json"), res.to_dict())
    synth.send(rid, "load.json")
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
            **table_schemas(
                SchemaModel.from_dict(read_json(store.path(rid, "spec.json"))["schema"])
            ),
        }
    )


@dg.asset_check(
    asset=staging_schema,
    description="The live staging schema was created by synth_assets, holds the "
    "refresh just loaded, row counts as loaded, every FK validated.",
)
def staging_schema_intact(
    context: dg.AssetCheckExecutionContext, synth: SynthResource
) -> dg.AssetCheckResult:
    cfg = synth.settings()
    rid = refresh_of_run(context, "staging_schema")
    passed, metrics, failures = check_staging(
        pg.resolve_url(cfg.target.url, synth.work), cfg.target.db_schema, rid
    )
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "refresh_id": rid,
            "rows": dg.MetadataValue.json(metrics.get("rows", {})),
            "foreign_keys": metrics.get("foreign_keys", 0),
            "failures": dg.MetadataValue.json(failures),
        },
        description="; ".join(failures[:5]) or None,
    )


class TeardownConfig(dg.Config):
    """Which staging schema to drop (defaults: target.schema in target.url)."""

    schema_name: str = ""
    target_url: str = ""


@dg.op(
    description="Drop a staging schema (and its __next/__prev) created by synth_assets; record it."
)
def drop_staging_schema(
    context: dg.OpExecutionContext, config: TeardownConfig, synth: SynthResource
) -> None:
    cfg = synth.settings()
    target = pg.resolve_url(config.target_url or cfg.target.url, synth.work)
    res = teardown(
        target,
        config.schema_name or cfg.target.db_schema,
        actor=_actor(context),
        run_id=context.run_id,
        audit_url=synth.meta_url(),
    )
    synth.anchor_audit()
    context.log.info(f"dropped: {', '.join(res.dropped) or 'nothing (no such schema)'}")


@dg.job(description="Tear down one staging schema created by synth_assets.")
def teardown_staging() -> None:
    drop_staging_schema()


class EmergencyConfig(dg.Config):
    """Emergency teardown: every synthetic schema in the target and every refresh's artifacts."""

    confirm: bool = False
    target_url: str = ""


@dg.op(
    description="Drop every schema synth_assets created in the target and delete all refresh artifacts."
)
def remove_all_synthetic_data(
    context: dg.OpExecutionContext, config: EmergencyConfig, synth: SynthResource
) -> None:
    if not config.confirm:
        raise ConfigError(
            "emergency teardown removes every synthetic schema and every refresh's artifacts: "
            "launch it with config `confirm: true`"
        )
    cfg = synth.settings()
    target = pg.resolve_url(config.target_url or cfg.target.url, synth.work)
    res = emergency_teardown_core(
        target,
        synth.store().root,
        actor=_actor(context),
        run_id=context.run_id,
        audit_url=synth.meta_url(),
    )
    synth.anchor_audit()
    context.log.warning(
        f"emergency teardown: dropped {res.dropped}, deleted artifacts of {len(res.artifacts)} "
        f"refresh(es), left alone {res.skipped}, also removed {res.also_removed}"
    )


@dg.job(
    description="Emergency: remove every synthetic schema this tool created in the target and all refresh "
    "artifacts; recorded in synth_meta and the audit log."
)
def emergency_teardown() -> None:
    remove_all_synthetic_data()


defs = dg.Definitions(
    assets=[staging_schema],
    asset_checks=[staging_schema_intact],
    jobs=[teardown_staging, emergency_teardown],
)
