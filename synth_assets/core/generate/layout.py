"""What every worker and gate agrees a shard is: its units, its seed stream, its files' place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synth_assets.core.errors import GenerationError
from synth_assets.core.store import RefreshPaths

REFERENCE_STREAM = 0
# Sub-stream tag of reference popularity draws (apart from the deferred FKs' 1 + index).
POPULARITY_SUB = 1 << 16


def shard_units(spec: dict[str, Any], shard: int) -> tuple[int, int]:
    """Global ordinals [start, end) of the unit-table rows that belong to ``shard``."""
    n, s = spec["tables"][spec["unit_table"]]["rows"], spec["shards"]
    if not 0 <= shard < s:
        raise GenerationError(
            f"shard {shard} is out of range: the spec has {s} shards (0..{s - 1})"
        )
    return shard * n // s, (shard + 1) * n // s


def streams(master_seed: bytes, n_shards: int) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per shard (index shard+1) plus one for reference tables (0)."""
    if len(master_seed) < 16:
        raise GenerationError("the master seed must hold at least 128 bits of entropy")
    root = np.random.SeedSequence(int.from_bytes(master_seed, "big"))
    return root.spawn(n_shards + 1)


def shard_path(root: Path, table: str, shard: int) -> Path:
    """``<refresh>/shards/<table>/part-<shard:05d>.parquet``."""
    return RefreshPaths(Path(root)).shard_file(table, shard)
