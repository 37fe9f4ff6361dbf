"""Which refresh an asset works on: the run's tag, else the latest upstream materialization."""

from typing import Any

import dagster as dg

from synth_assets.core.errors import ConfigError

from .resources import REFRESH_TAG


def latest_metadata(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, key: str
) -> dict[str, Any]:
    """Metadata of the latest materialization of ``key`` (values unwrapped)."""
    ev = context.instance.get_latest_materialization_event(dg.AssetKey(key))
    if ev is None or ev.asset_materialization is None:
        raise ConfigError(
            f"asset {key} has never been materialized: materialize it (and its upstream) first"
        )
    return {k: getattr(v, "value", v) for k, v in ev.asset_materialization.metadata.items()}


def upstream_refresh(context, key: str) -> str:
    """The refresh id recorded by the latest materialization of ``key``."""
    rid = latest_metadata(context, key).get("refresh_id")
    if not rid:
        raise ConfigError(f"the latest materialization of {key} has no refresh_id")
    return str(rid)


def run_refresh_tag(context) -> str | None:
    return context.run.tags.get(REFRESH_TAG) if context.run else None
