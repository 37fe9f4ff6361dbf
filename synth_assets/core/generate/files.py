"""A generated shard written as Parquet files (atomically, hashed), and the pool's entry point."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from synth_assets.core.digest import sha256_file

from .generator import Frame, ShardGenerator
from .layout import shard_path


def to_polars(frame: Frame, table_columns: list[str]) -> pl.DataFrame:
    """Columns in schema order as a DataFrame."""
    return pl.DataFrame({c: frame.columns[c] for c in table_columns})


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> str:
    """Write zstd Parquet via a temp file and rename; return its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.write_parquet(tmp, compression="zstd", compression_level=1, statistics=True)
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    return digest


def generate_shard_file(args: tuple[str, bytes, int, str]) -> dict[str, Any]:
    """Process-pool entry point: (spec path, seed, shard, refresh dir) -> shard result.

    Lives in core so a spawned worker imports numpy/polars only, not Dagster.
    """
    import json

    spec_path, seed, shard, refresh_dir = args
    return generate_shard(json.loads(Path(spec_path).read_text()), seed, shard, Path(refresh_dir))


def generate_shard(
    spec: dict[str, Any], master_seed: bytes, shard: int, refresh_dir: Path
) -> dict[str, Any]:
    """Generate and write one shard (shard 0 also writes the reference tables)."""
    started = datetime.now()
    gen = ShardGenerator(spec, master_seed)
    frames = gen.shard(shard)
    if shard == 0:
        frames = {**gen.references(), **frames}
    files: dict[str, Any] = {}
    for name, fr in frames.items():
        df = to_polars(fr, [c.name for c in gen.model.tables[name].columns])
        p = shard_path(refresh_dir, name, shard)
        files[name] = {"rows": df.height, "path": str(p), "sha256": write_parquet_atomic(df, p)}
        if name in gen.dropped:  # a reference table's rows whose UNIQUE set kept repeating
            files[name]["dropped"] = gen.dropped[name]
    return {"shard": shard, "tables": files, "seconds": (datetime.now() - started).total_seconds()}
