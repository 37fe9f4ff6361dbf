"""Staging load: binary COPY of the shards into ``<name>__next``, constraints replayed, swap.

The load is fail-closed and atomic for readers:

1. Refusals, before anything is written to the target: the refresh's privacy report must exist
   and every gate in it must have passed (read from the report itself, so a run that selects
   only the loader cannot bypass the gates); the spec must match its content hash and every
   shard file its manifest hash; the target must not be the source (same server and database)
   and must not carry a production marker (:func:`production_marker`); the schema name must be
   a safe identifier and any existing ``<name>``/``__next``/``__prev`` must have been created by
   this tool.
2. ``<name>__next`` is built from scratch: enum types and domains (with their NOT NULL, DEFAULT
   and CHECKs, so every COPY'd row is checked against them), tables (NOT NULL declared up front: it
   costs nothing during COPY), one binary COPY stream per table (``FREEZE``, in the transaction
   that created the table), then primary keys, unique constraints, CHECKs and indexes, then
   foreign keys, as reflected from the source and re-qualified to ``<name>__next``. Independent
   steps run on ``workers`` connections; a lock-aware scheduler never runs two conflicting
   statements at once.
3. Row counts are checked against the shard manifests (COPY's count and ``count(*)``), every
   foreign key must be validated by PostgreSQL (unvalidated ones are checked by query), then
   one transaction renames ``<name>`` → ``<name>__prev`` and ``<name>__next`` → ``<name>``
   (FKs reference tables by OID, so they follow the rename). Any failure before that commit
   leaves ``<name>`` untouched; ``__next`` is dropped.

Metadata lives in ``synth_meta`` (``load_runs``, ``managed_schemas``, ``teardowns``); every
schema the tool creates carries a ``COMMENT`` starting with :data:`SCHEMA_MARKER` and a row in
``synth_meta.managed_schemas``; teardown only ever drops schemas with both.

Modules, in the order a load meets them: :mod:`.guards` (refusals), :mod:`.inputs` (verified
refresh files), :mod:`.copy` (binary COPY encoder), :mod:`.ddl` (types, tables, constraints),
:mod:`.steps` and :mod:`.scheduler` (the parallel build), :mod:`.check` (verification, and the
staging gate), :mod:`.swap`, :mod:`.loader` (the whole load), :mod:`.teardown`; :mod:`.meta`
holds ``synth_meta`` and the ownership markers, :mod:`.errors` the exceptions.
"""

from .check import check_staging
from .copy import (
    COPY_SIGNATURE,
    COPY_TRAILER,
    DAY_US,
    PG_EPOCH_DAYS,
    PG_EPOCH_US,
    ColumnPlan,
    encode_batch,
    iter_batches,
    plan_columns,
)
from .ddl import TablePlan, requalify
from .errors import LoadError, LoadRefused
from .guards import (
    REPORT_PATH,
    assert_not_source,
    check_schema_name,
    production_marker,
    verify_report,
)
from .inputs import LoadInputs, ShardFile, read_inputs
from .loader import DEFAULT_BATCH_ROWS, LoadResult, connect_hint, load_refresh
from .meta import META_SCHEMA, SCHEMA_MARKER, ensure_meta
from .scheduler import MAINTENANCE_WORK_MEM
from .steps import Progress
from .teardown import TeardownResult, emergency_teardown, teardown

__all__ = [
    "COPY_SIGNATURE",
    "COPY_TRAILER",
    "DAY_US",
    "DEFAULT_BATCH_ROWS",
    "MAINTENANCE_WORK_MEM",
    "META_SCHEMA",
    "PG_EPOCH_DAYS",
    "PG_EPOCH_US",
    "REPORT_PATH",
    "SCHEMA_MARKER",
    "ColumnPlan",
    "LoadError",
    "LoadInputs",
    "LoadRefused",
    "LoadResult",
    "Progress",
    "ShardFile",
    "TablePlan",
    "TeardownResult",
    "assert_not_source",
    "check_schema_name",
    "check_staging",
    "connect_hint",
    "emergency_teardown",
    "encode_batch",
    "ensure_meta",
    "iter_batches",
    "load_refresh",
    "plan_columns",
    "production_marker",
    "read_inputs",
    "requalify",
    "teardown",
    "verify_report",
]
