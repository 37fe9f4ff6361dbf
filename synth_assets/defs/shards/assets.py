"""Synthetic shards: one Dagster partition per shard, Parquet files per table.

Locally one run holds every shard (a single-run backfill: the step spreads them over the cores
with its own process pool). In a Kubernetes deployment each shard is its own run, so its own pod,
retried alone (``per_shard_runs``); the checks then see one shard per run, see ``shards_check``.
"""

import dagster as dg

from synth_assets.core.audit import shards_payload
from synth_assets.core.gates import check_shards
from synth_assets.core.generate import shard_key
from synth_assets.core.sealing import unseal_checked
from synth_assets.core.shards import check_shards_in_spec, generate_shards
from synth_assets.core.store import RefreshPaths, read_json
from synth_assets.defs.constants import (
    CALIBRATED_SPEC,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    SHARDS,
    SYNTHETIC_SHARDS,
)
from synth_assets.defs.conventions import stage_asset
from synth_assets.defs.lineage import refresh_of_run
from synth_assets.defs.resources import SynthResource


def shard_keys(shards: int) -> list[str]:
    """The partition keys of a spec's ``shards`` shards."""
    return [shard_key(i) for i in range(shards)]


def shard_range_tags(shards: int) -> dict[str, str]:
    """Run tags of one run over every shard partition of a spec (a single-run backfill)."""
    return {
        PARTITION_RANGE_START_TAG: shard_key(0),
        PARTITION_RANGE_END_TAG: shard_key(shards - 1),
    }


def backfill_policy(per_shard_runs: bool) -> dg.BackfillPolicy:
    """All shards in one run (local), or one run per shard (one pod each in Kubernetes)."""
    if per_shard_runs:
        return dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
    return dg.BackfillPolicy.single_run()


# One run per shard: a failed step (a step pod evicted or out of memory fails its health check
# too) is retried in a new pod, that shard alone. Generation is deterministic in the sealed
# seed, so a retried shard writes the same files.
SHARD_RETRY = dg.RetryPolicy(max_retries=2, delay=30)


def shards_asset(per_shard_runs: bool = False) -> dg.AssetsDefinition:
    """The shard asset with the backfill and retry policies of a deployment (see the module
    docstring)."""
    return stage_asset(
        SYNTHETIC_SHARDS,
        partitions_def=SHARDS,
        backfill_policy=backfill_policy(per_shard_runs),
        retry_policy=SHARD_RETRY if per_shard_runs else None,
        kinds={"parquet"},
        description="Relational synthetic rows: each shard holds whole privacy units with all their "
        "descendants; each shard draws from its own SeedSequence child of the sealed seed.",
    )(run_generation)  # the op is named for the key: synthetic_shards


def run_generation(context: dg.AssetExecutionContext, synth: SynthResource) -> dg.MaterializeResult:
    """Generate this run's shard partitions of its refresh; each shard writes its own files and
    manifest, so runs holding different shards of one refresh can run at once."""
    rid = refresh_of_run(context, CALIBRATED_SPEC)
    store = synth.fetch(rid, RefreshPaths.SPEC, RefreshPaths.GENERATION)
    spec_path = store.paths(rid).spec
    spec = read_json(spec_path)
    shards = [int(k) for k in context.partition_keys]
    check_shards_in_spec(shards, spec["shards"], rid)
    seed, gen = unseal_checked(store, rid, synth.secrets())
    run = generate_shards(spec_path, seed, shards, store.dir(rid), log=context.log.info)
    synth.send(rid, RefreshPaths.SHARDS_DIR)  # this run's shard files (the others are other runs')
    payload = shards_payload(store.dir(rid), shards)  # this run's shards only, not the others'
    synth.audit(context, "shards", rid, {**payload, "partitions": shards})
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "spec_hash": spec["content_hash"],
            "seed_commitment": gen["seed_commitment"],
            "shards": dg.MetadataValue.json(shards),
            "rows": dg.MetadataValue.json(run.rows),
            "total_rows": sum(run.rows.values()),
            "path": dg.MetadataValue.path(str(store.paths(rid).shards_dir)),
        }
    )


def shards_check(
    asset: dg.AssetsDefinition, per_shard_runs: bool = False
) -> dg.AssetChecksDefinition:
    """The blocking shard check, evaluated once per run over the shards that run generated.

    With one run per shard, a run sees its shard while other runs are still writing theirs: a
    check of the whole refresh there would fail on totals and on FKs to the reference tables
    (shard 0 writes them), and it could not gate the load anyway, since a blocking check gates
    only its own run and the backfill launches the report and load run once every partition is
    materialized, whatever their checks said. So each run checks what its shards show by
    themselves (``check_shards(..., shards)``: keys, in-shard FKs, NOT NULL, unit rows, fan-out)
    and fails fast; the whole refresh (cross-shard keys, FKs to reference tables, totals) is
    checked again at the start of ``privacy_report``'s step, in the run that goes on to the
    load, and the loader refuses a refresh with any shard manifest missing. A run that holds
    every shard (local, or a manual ranged run) checks the whole refresh here, as before.
    """

    @dg.asset_check(
        asset=asset,
        name="shards_valid",
        blocking=True,
        description="Primary keys unique, every FK resolves, NOT NULL respected, row counts as "
        "specified"
        + (
            " (per run: the run's shards; the whole refresh when it holds them all)."
            if per_shard_runs
            else "."
        ),
    )
    def shards_valid(
        context: dg.AssetCheckExecutionContext, synth: SynthResource
    ) -> dg.AssetCheckResult:
        rid = refresh_of_run(context, CALIBRATED_SPEC)
        store = synth.fetch(rid, RefreshPaths.SPEC, RefreshPaths.SHARDS_DIR)
        spec = read_json(store.paths(rid).spec)
        shards = run_shards(context, spec["shards"]) if per_shard_runs else None
        res = check_shards(spec, store.dir(rid), shards)
        return dg.AssetCheckResult(
            passed=res.passed,
            metadata={
                "refresh_id": rid,
                "rows": dg.MetadataValue.json(res.metrics["rows"]),
                "failures": dg.MetadataValue.json(res.failures),
                **({"shards": dg.MetadataValue.json(sorted(shards))} if shards is not None else {}),
            },
            description="; ".join(res.failures[:5]) or None,
        )

    return shards_valid


def run_shards(context: dg.AssetCheckExecutionContext, n_shards: int) -> list[int] | None:
    """The shards this run generated, or None when it holds all ``n_shards`` (or names none)."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    shards = sorted(int(k) for k in context.partition_keys)
    return None if shards == list(range(n_shards)) else shards


def shards_defs(per_shard_runs: bool = False) -> dg.Definitions:
    """The shard asset and its check for one deployment (``per_shard_runs`` in Kubernetes)."""
    asset = shards_asset(per_shard_runs)
    return dg.Definitions(assets=[asset], asset_checks=[shards_check(asset, per_shard_runs)])


synthetic_shards = shards_asset()
shards_valid = shards_check(synthetic_shards)
defs = shards_defs()
