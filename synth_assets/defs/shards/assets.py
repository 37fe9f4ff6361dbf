"""Synthetic shards: one Dagster partition per shard, Parquet files per table."""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import dagster as dg

from synth_assets.core.audit import shards_payload
from synth_assets.core.errors import GenerationError
from synth_assets.core.gates import check_shards
from synth_assets.core.generate import die_with_parent, generate_shard_file, usable_cpus
from synth_assets.core.secrets import seed_commitment
from synth_assets.core.store import read_json, write_json_atomic
from synth_assets.defs.conventions import SYNTHESIZE, owners
from synth_assets.defs.lineage import refresh_of_run
from synth_assets.defs.resources import SHARDS, SynthResource
from synth_assets.defs.spec.assets import calibrated_spec


@dg.asset(
    group_name=SYNTHESIZE,
    owners=owners(),
    deps=[calibrated_spec],
    partitions_def=SHARDS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"parquet"},
    description="Relational synthetic rows: each shard holds whole privacy units with all their "
    "descendants; each shard draws from its own SeedSequence child of the sealed seed.",
)
def synthetic_shards(
    context: dg.AssetExecutionContext, synth: SynthResource
) -> dg.MaterializeResult:
    rid = refresh_of_run(context, "calibrated_spec")
    store = synth.fetch(rid, "spec.json", "generation.json")
    spec_path = store.path(rid, "spec.json")
    spec = read_json(spec_path)
    shards = [int(k) for k in context.partition_keys]
    bad = [s for s in shards if s >= spec["shards"]]
    if bad:
        raise GenerationError(
            f"partitions {bad} are beyond the spec's {spec['shards']} shards of refresh {rid}"
        )
    seed = synth.secrets().unseal_seed(rid).value
    gen = read_json(store.path(rid, "generation.json"))
    if seed_commitment(seed) != gen["seed_commitment"]:
        raise GenerationError(
            f"the sealed seed of {rid} does not match its recorded commitment: refusing to generate"
        )
    jobs = [(str(spec_path), seed, s, str(store.dir(rid))) for s in shards]
    workers = min(len(jobs), usable_cpus())
    if workers > 1:
        # One polars thread per worker process (the workers already use every CPU).
        os.environ.setdefault("POLARS_MAX_THREADS", "1")
        # spawn, not fork: polars' thread pool does not survive a fork (the children deadlock).
        # Workers die with this process: a killed refresh leaves none behind.
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            results = list(pool.map(generate_shard_file, jobs))
    else:
        results = [generate_shard_file(j) for j in jobs]
    rows: dict[str, int] = {}
    for r in results:
        for t, f in r["tables"].items():
            rows[t] = rows.get(t, 0) + f["rows"]
        write_json_atomic(store.dir(rid) / "shards" / f"manifest-{r['shard']:05d}.json", r)
        context.log.info(
            f"shard {r['shard']:05d}: {sum(f['rows'] for f in r['tables'].values())} rows "
            f"in {r['seconds']:.1f}s"
        )
    synth.send(rid, "shards/")  # every file of this step's shards (the others are other steps')
    synth.audit(context, "shards", rid, {**shards_payload(store.dir(rid)), "partitions": shards})
    return dg.MaterializeResult(
        metadata={
            "refresh_id": rid,
            "spec_hash": spec["content_hash"],
            "seed_commitment": gen["seed_commitment"],
            "shards": dg.MetadataValue.json(shards),
            "rows": dg.MetadataValue.json(rows),
            "total_rows": sum(rows.values()),
            "path": dg.MetadataValue.path(str(store.dir(rid) / "shards")),
        }
    )


@dg.asset_check(
    asset=synthetic_shards,
    blocking=True,
    description="Primary keys unique, every FK resolves, NOT NULL respected, row counts as specified.",
)
def shards_valid(
    context: dg.AssetCheckExecutionContext, synth: SynthResource
) -> dg.AssetCheckResult:
    rid = refresh_of_run(context, "calibrated_spec")
    store = synth.fetch(rid, "spec.json", "shards/")
    spec = read_json(store.path(rid, "spec.json"))
    res = check_shards(spec, store.dir(rid))
    return dg.AssetCheckResult(
        passed=res.passed,
        metadata={
            "refresh_id": rid,
            "rows": dg.MetadataValue.json(res.metrics["rows"]),
            "failures": dg.MetadataValue.json(res.failures),
        },
        description="; ".join(res.failures[:5]) or None,
    )


defs = dg.Definitions(assets=[synthetic_shards], asset_checks=[shards_valid])
