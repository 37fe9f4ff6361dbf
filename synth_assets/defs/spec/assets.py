"""Outside the boundary from here on: the spec is post-processing of DP output (no budget)."""

import dagster as dg

from synth_assets.core.audit import spec_payload
from synth_assets.core.config import with_overrides_file
from synth_assets.core.generate import shard_key
from synth_assets.core.secrets import new_master_seed, seed_commitment
from synth_assets.core.spec import calibrate
from synth_assets.core.store import new_refresh_id, read_json, write_json_atomic
from synth_assets.defs.conventions import SYNTHESIZE, owners
from synth_assets.defs.lineage import refresh_of_run, run_refresh_tag
from synth_assets.defs.resources import PACK_TAG, SHARDS, SynthResource
from synth_assets.defs.sampler.assets import production_shape


@dg.asset(
    group_name=SYNTHESIZE,
    owners=owners(),
    deps=[production_shape],
    kinds={"json"},
    description="Generation spec: the metrics pack made consistent, with overrides and target sizes. "
    "Also seals a fresh master seed for this generation (only its SHA-256 is recorded).",
)
def calibrated_spec(
    context: dg.AssetExecutionContext, synth: SynthResource
) -> dg.MaterializeResult:
    cfg = with_overrides_file(synth.settings())
    tag = run_refresh_tag(context)
    # The pack a regeneration names; else the run's own profile; else (regenerate_from_spec
    # launched from the UI) the latest metrics pack.
    named = context.run.tags.get(PACK_TAG) if context.run else None
    store = synth.fetch(tag, "metrics_pack.json") if tag else synth.store()
    if named:
        pack_rid = named
    elif tag and store.path(tag, "metrics_pack.json").exists():
        pack_rid = tag
    else:
        pack_rid = refresh_of_run(context, "production_shape")
    pack = read_json(synth.fetch(pack_rid, "metrics_pack.json").path(pack_rid, "metrics_pack.json"))
    # Same run as the profile: same refresh. Otherwise a regeneration: a new refresh, no budget spent.
    rid = (
        pack_rid
        if tag in (None, pack_rid) and _profiled_in_this_run(context)
        else (tag or new_refresh_id())
    )
    spec = calibrate(pack, cfg)
    spec["refresh_id"] = rid
    spec["pack_refresh_id"] = pack_rid
    from synth_assets.core.spec import content_hash

    spec["content_hash"] = content_hash(spec)
    secrets = synth.secrets()
    seed = new_master_seed()
    version = secrets.seal_seed(rid, seed)
    commitment = seed_commitment(seed)
    path = store.path(rid, "spec.json")
    write_json_atomic(path, spec)
    write_json_atomic(
        store.path(rid, "generation.json"),
        {
            "refresh_id": rid,
            "pack_refresh_id": pack_rid,
            "spec_hash": spec["content_hash"],
            "seed_commitment": commitment,
            "seed_version": version,
            "secrets": secrets.describe(),
            "shards": spec["shards"],
        },
    )
    synth.audit(
        context,
        "spec",
        rid,
        {**spec_payload(spec), "seed_commitment": commitment, "seed_version": version},
    )
    synth.send(rid, "spec.json", "generation.json")
    keys = [shard_key(i) for i in range(spec["shards"])]
    existing = set(context.instance.get_dynamic_partitions(SHARDS.name))
    missing = [k for k in keys if k not in existing]
    if missing:
        context.instance.add_dynamic_partitions(SHARDS.name, missing)
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "pack_refresh_id": pack_rid,
            "path": dg.MetadataValue.path(str(path)),
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
    ev = context.instance.get_latest_materialization_event(dg.AssetKey("production_shape"))
    return ev is not None and ev.run_id == context.run_id


defs = dg.Definitions(assets=[calibrated_spec])
