"""Generate a refresh's shards over the machine's cores: one spawned worker per shard.

The Dagster step (or any caller) names the shards it holds; each shard writes its own Parquet
files and manifest, so callers holding different shards of one refresh can run at once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GenerationError
from .generate import die_with_parent, generate_shard_file, usable_cpus
from .store import RefreshPaths, write_json_atomic


@dataclass(frozen=True)
class ShardRun:
    """What one call generated: each shard's result (its manifest) and rows per table."""

    results: list[dict[str, Any]]
    rows: dict[str, int]


def check_shards_in_spec(shards: list[int], spec_shards: int, rid: str) -> None:
    """Refuse shard numbers the spec does not have (a stale partition of an earlier spec)."""
    bad = [s for s in shards if s >= spec_shards]
    if bad:
        raise GenerationError(
            f"partitions {bad} are beyond the spec's {spec_shards} shards of refresh {rid}"
        )


def _run(jobs: list[tuple[str, bytes, int, str]]) -> list[dict[str, Any]]:
    """Each job in a spawned worker process, at most one per usable CPU (in process if one)."""
    workers = min(len(jobs), usable_cpus())
    if workers <= 1:
        return [generate_shard_file(j) for j in jobs]
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
        return list(pool.map(generate_shard_file, jobs))


def generate_shards(
    spec_path: Path,
    seed: bytes,
    shards: list[int],
    refresh_dir: Path,
    log: Callable[[str], None] = lambda _m: None,
) -> ShardRun:
    """Generate ``shards`` of the spec at ``spec_path``; write each shard's manifest under
    ``<refresh_dir>/shards`` and log one line per shard."""
    jobs = [(str(spec_path), seed, s, str(refresh_dir)) for s in shards]
    results = _run(jobs)
    rows: dict[str, int] = {}
    for r in results:
        for t, f in r["tables"].items():
            rows[t] = rows.get(t, 0) + f["rows"]
        write_json_atomic(RefreshPaths(refresh_dir).manifest(r["shard"]), r)
        log(
            f"shard {r['shard']:05d}: {sum(f['rows'] for f in r['tables'].values())} rows "
            f"in {r['seconds']:.1f}s"
        )
        for t, f in r["tables"].items():
            if f.get("dropped"):
                log(
                    f"{t}: {f['dropped']} rows dropped: their composite UNIQUE values repeated "
                    "an earlier row's after every redraw (the released domain holds too few)"
                )
    return ShardRun(results=results, rows=rows)
