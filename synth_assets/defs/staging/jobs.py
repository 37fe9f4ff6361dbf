"""Staging teardown: op jobs that drop one staging schema, or (emergency) every synthetic schema
and every refresh's artifacts; both recorded in synth_meta and the audit log."""

from typing import Any

import dagster as dg

from synth_assets.core import pg
from synth_assets.core.errors import ConfigError
from synth_assets.core.load import emergency_teardown as emergency_teardown_core
from synth_assets.core.load import teardown
from synth_assets.defs.lineage import run_actor
from synth_assets.defs.resources import SynthResource


def _recorded(context: dg.OpExecutionContext, synth: SynthResource) -> dict[str, Any]:
    """Who a teardown is recorded under (the run's actor and id) and the audit database it goes to."""
    return {"actor": run_actor(context), "run_id": context.run_id, "audit_url": synth.meta_url()}


class _TargetConfig(dg.Config):
    """The run config both teardowns share: the database they work in."""

    target_url: str = ""

    def target(self, synth: SynthResource) -> str:
        """``target_url``, else target.url, as a libpq URL (starting the embedded server if named)."""
        return pg.resolve_url(self.target_url or synth.settings().target.url, synth.work)


class TeardownConfig(_TargetConfig):
    """Which staging schema to drop (defaults: target.schema in target.url)."""

    schema_name: str = ""


@dg.op(
    description="Drop a staging schema (and its __next/__prev) created by synth_assets; record it."
)
def drop_staging_schema(
    context: dg.OpExecutionContext, config: TeardownConfig, synth: SynthResource
) -> None:
    cfg = synth.settings()
    target = config.target(synth)
    res = teardown(target, config.schema_name or cfg.target.db_schema, **_recorded(context, synth))
    synth.anchor_audit()
    context.log.info(f"dropped: {', '.join(res.dropped) or 'nothing (no such schema)'}")


@dg.job(description="Tear down one staging schema created by synth_assets.")
def teardown_staging() -> None:
    drop_staging_schema()


class EmergencyConfig(_TargetConfig):
    """Emergency teardown: every synthetic schema in the target and every refresh's artifacts."""

    confirm: bool = False


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
    target = config.target(synth)
    res = emergency_teardown_core(target, synth.store().root, **_recorded(context, synth))
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


defs = dg.Definitions(jobs=[teardown_staging, emergency_teardown])
