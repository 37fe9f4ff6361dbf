"""Outside the boundary from here on: the spec is post-processing of DP output (no budget)."""

import dagster as dg

from synth_assets.core.audit import spec_payload
from synth_assets.core.config import with_overrides_file
from synth_assets.core.sealing import final_spec, seal_generation
from synth_assets.core.store import RefreshPaths, new_refresh_id, read_json
from synth_assets.defs.constants import (
    CALIBRATED_SPEC,
    METRICS_PACK,
    PACK_TAG,
    SHARDS,
)
from synth_assets.defs.conventions import stage_asset
from synth_assets.defs.lineage import refresh_of_run, run_refresh_tag
from synth_assets.defs.resources import SynthResource
from synth_assets.defs.shards.assets import shard_keys


def _refreshes(context: dg.AssetExecutionContext, synth: SynthResource) -> tuple[str, str]:
    """(refresh id of the new spec, refresh id of the pack it calibrates).

    The pack a regeneration names; else the run's own profile; else (regenerate_from_spec
    launched from the UI) the latest metrics pack. Same run as the profile: same refresh.
    Otherwise a regeneration: a new refresh, no budget spent.
    """
    tag = run_refresh_tag(context)
    named = context.run.tags.get(PACK_TAG) if context.run else None
    store = synth.fetch(tag, RefreshPaths.PACK) if tag else synth.store()
    if named:
        pack_rid = named
    elif tag and store.paths(tag).pack.exists():
        pack_rid = tag
    else:
        pack_rid = refresh_of_run(context, METRICS_PACK)
    rid = (
        pack_rid
        if tag in (None, pack_rid) and _profiled_in_this_run(context)
        else (tag or new_refresh_id())
    )
    return rid, pack_rid


def _add_shard_partitions(instance: dg.DagsterInstance, shards: int) -> None:
    """The shard partitions a spec needs, added where missing."""
    keys = shard_keys(shards)
    existing = set(instance.get_dynamic_partitions(SHARDS.name))
    missing = [k for k in keys if k not in existing]
    if missing:
        instance.add_dynamic_partitions(SHARDS.name, missing)


@stage_asset(
    CALIBRATED_SPEC,
    kinds={"json"},
    description="Generation spec: the metrics pack made consistent, with overrides and target sizes. "
    "Also seals a fresh master seed for this generation (only its SHA-256 is recorded).",
)
def calibrated_spec(
    context: dg.AssetExecutionContext, synth: SynthResource
) -> dg.MaterializeResult:
    cfg = with_overrides_file(synth.settings())
    rid, pack_rid = _refreshes(context, synth)
    pack = read_json(synth.fetch(pack_rid, RefreshPaths.PACK).paths(pack_rid).pack)
    spec = final_spec(pack, cfg, rid, pack_rid)
    sealed = seal_generation(synth.store(), spec, synth.secrets())
    commitment, version = sealed.seed_commitment, sealed.seed_version
    synth.audit(
        context,
        "spec",
        rid,
        {**spec_payload(spec), "seed_commitment": commitment, "seed_version": version},
    )
    synth.send(rid, RefreshPaths.SPEC, RefreshPaths.GENERATION)
    _add_shard_partitions(context.instance, spec["shards"])
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "pack_refresh_id": pack_rid,
            "path": dg.MetadataValue.path(str(sealed.path)),
            "spec_hash": spec["content_hash"],
            "version": spec["version"],
            "seed_commitment": commitment,
            "shards": spec["shards"],
            "expected_rows": dg.MetadataValue.json(spec["expected_rows"]),
            # tables whose fan-out left the size bound and was tilted back (spec "size")
            "size_calibrated": dg.MetadataValue.json(
                {
                    t: {k: e["size"][k] for k in ("source_noisy", "expected_before", "expected")}
                    for t, e in spec["tables"].items()
                    if e.get("size", {}).get("calibrated")
                }
            ),
        }
    )


def _profiled_in_this_run(context: dg.AssetExecutionContext) -> bool:
    """Whether this run also materialized the metrics pack (a full refresh, not a regeneration)."""
    ev = context.instance.get_latest_materialization_event(METRICS_PACK)
    return ev is not None and ev.run_id == context.run_id


defs = dg.Definitions(assets=[calibrated_spec])
