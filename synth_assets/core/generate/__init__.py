"""The vectorized generator: spec + sealed seed -> Parquet shards with valid keys.

A shard is a block of privacy units (rows of the unit table) with all their descendants, so
every foreign key resolves inside the shard; reference tables are generated once from their
own stream (every shard can rebuild them in memory, shard 0 writes them). Each shard draws
from its own ``SeedSequence`` child; nothing touches a global RNG.
"""

from synth_assets.core.store import shard_key

from .decode import (
    INT_MAX,
    MAX_BYTES_BUCKET,
    US_PER_DAY,
    _decode_numeric,
    _ignored,
    from_text,
    random_bytes,
)
from .files import generate_shard, generate_shard_file, to_polars, write_parquet_atomic
from .generator import Frame, ShardGenerator
from .layout import (
    POPULARITY_SUB,
    REFERENCE_STREAM,
    shard_path,
    shard_units,
    streams,
)
from .sampling import _popularity, _sample_tree
from .workers import cgroup_cpu_limit, die_with_parent, usable_cpus

__all__ = [
    "INT_MAX",
    "MAX_BYTES_BUCKET",
    "POPULARITY_SUB",
    "REFERENCE_STREAM",
    "US_PER_DAY",
    "Frame",
    "ShardGenerator",
    "_decode_numeric",
    "_ignored",
    "_popularity",
    "_sample_tree",
    "cgroup_cpu_limit",
    "die_with_parent",
    "from_text",
    "generate_shard",
    "generate_shard_file",
    "random_bytes",
    "shard_key",
    "shard_path",
    "shard_units",
    "streams",
    "to_polars",
    "usable_cpus",
    "write_parquet_atomic",
]
