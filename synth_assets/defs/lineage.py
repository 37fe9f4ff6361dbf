"""Which refresh an asset works on: its own run's, never another refresh's.

A step takes the refresh id of its run's tag (the CLI, the schedule and the spec sensor set it);
else the refresh its upstream asset materialized earlier in the same run; only a step launched
alone from the UI, with neither, works on the upstream's latest materialization, and says so.
Two refreshes in one work directory then never mix their spec, shards, report and load."""

from typing import Any

import dagster as dg

from synth_assets.core.audit import default_actor
from synth_assets.core.errors import ConfigError

from .constants import ACTOR_TAG, REFRESH_TAG


def latest_metadata(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, key: dg.AssetKey
) -> dict[str, Any]:
    """Metadata of the latest materialization of ``key`` (values unwrapped)."""
    ev = context.instance.get_latest_materialization_event(key)
    if ev is None or ev.asset_materialization is None:
        raise ConfigError(
            f"asset {key.to_user_string()} has never been materialized: materialize it (and its "
            "upstream) first"
        )
    return {k: getattr(v, "value", v) for k, v in ev.asset_materialization.metadata.items()}


def upstream_refresh(context, key: dg.AssetKey) -> str:
    """The refresh id recorded by the latest materialization of ``key``."""
    rid = latest_metadata(context, key).get("refresh_id")
    if not rid:
        raise ConfigError(f"the latest materialization of {key.to_user_string()} has no refresh_id")
    return str(rid)


def run_refresh_tag(context) -> str | None:
    """The refresh id its run names (the CLI, the schedule and the spec sensor set it)."""
    return context.run.tags.get(REFRESH_TAG) if context.run else None


def run_actor(context) -> str:
    """Who acts: the run's actor tag (the CLI sets it), else the OS user."""
    tags = context.run.tags if context.run else {}
    return tags.get(ACTOR_TAG) or default_actor()


def _materialized_in_run(context, key: dg.AssetKey) -> str | None:
    """The refresh id ``key`` materialized earlier in this run (None when it did not)."""
    records = context.instance.get_records_for_run(
        run_id=context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for rec in reversed(records):
        mat = rec.event_log_entry.asset_materialization
        if mat is not None and mat.asset_key == key:
            rid = mat.metadata.get("refresh_id")
            return str(getattr(rid, "value", rid)) if rid is not None else None
    return None


def refresh_of_run(context, upstream: dg.AssetKey) -> str:
    """The refresh this step works on (see the module docstring)."""
    rid = run_refresh_tag(context) or _materialized_in_run(context, upstream)
    if rid:
        return rid
    rid = upstream_refresh(context, upstream)
    context.log.info(
        f"this run names no refresh: working on {rid}, the latest materialization of "
        f"{upstream.to_user_string()}"
    )
    return rid
