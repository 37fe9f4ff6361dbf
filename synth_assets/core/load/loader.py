"""The load itself: refusals, ``synth_meta`` bookkeeping and the advisory lock around building
``<name>__next``, verifying it and swapping it in; audit events for success and failure."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from synth_assets.core.audit import append_event, default_actor, ensure_audit_schema, record_event
from synth_assets.core.errors import SynthError
from synth_assets.core.pg import connect, redact

from .check import _verify
from .ddl import TablePlan, _resolve_types, _table_ddl
from .errors import LoadError, LoadRefused, _first_line
from .guards import _check_target, assert_not_source, check_schema_name
from .inputs import LoadInputs, read_inputs
from .meta import _lock_key, ensure_meta
from .scheduler import _run_tasks
from .steps import Build, Progress, _build_tasks
from .swap import _create_next, _fail, _swap

DEFAULT_BATCH_ROWS = 131_072


@dataclass
class LoadResult:
    """What a load did: where, how many rows, how long, and the load id in synth_meta."""

    load_id: int
    refresh_id: str
    schema: str
    target: str  # redacted URL
    rows: dict[str, int]
    durations: dict[str, Any]
    seconds: float
    spec_hash: str
    replaced_previous: bool
    connect_hint: str = ""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "refresh_id": self.refresh_id,
            "schema": self.schema,
            "target": self.target,
            "rows": self.rows,
            "total_rows": self.total_rows,
            "durations": self.durations,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "spec_hash": self.spec_hash,
            "replaced_previous": self.replaced_previous,
            "connect": self.connect_hint,
        }


def connect_hint(target_url: str, schema: str) -> str:
    """A psql command line that opens the staging schema (password redacted)."""
    url = redact(target_url)
    sep = "&" if "?" in url else "?"
    return f'psql "{url}{sep}options=-csearch_path%3D{schema}"'


@dataclass(frozen=True)
class _Job:
    """One load's settings, fixed before the target is written and read by every step after."""

    inputs: LoadInputs
    target_url: str
    schema: str
    actor: str
    run_id: str | None
    audit_target: str  # the audit database: the target unless audit_url names another
    workers: int
    batch_rows: int
    progress: Progress | None
    started: float

    @property
    def audit_inline(self) -> bool:
        """Whether the load's audit event shares the swap's transaction (audit log in the target)."""
        return self.audit_target == self.target_url

    @property
    def next_schema(self) -> str:
        return f"{self.schema}__next"


def load_refresh(
    refresh_dir: Path,
    refresh_id: str,
    target_url: str,
    schema: str,
    *,
    source_url: str | None,
    actor: str | None = None,
    run_id: str | None = None,
    audit_url: str | None = None,
    workers: int = 2,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> LoadResult:
    """Load a gated refresh into ``schema`` of ``target_url`` (see the package docstring)."""
    started = time.perf_counter()
    schema = check_schema_name(schema)
    actor = actor or default_actor()
    next_s, prev_s = f"{schema}__next", f"{schema}__prev"
    t0 = time.perf_counter()
    inputs = read_inputs(Path(refresh_dir), refresh_id)
    assert_not_source(source_url, target_url)
    durations: dict[str, Any] = {"verify_inputs": round(time.perf_counter() - t0, 3)}
    job = _Job(
        inputs=inputs,
        target_url=target_url,
        schema=schema,
        actor=actor,
        run_id=run_id,
        audit_target=audit_url or target_url,
        workers=workers,
        batch_rows=batch_rows,
        progress=progress,
        started=started,
    )
    main = connect(target_url)
    locked = False
    try:
        _check_target(main, target_url, [schema, next_s, prev_s])
        ddl_types, type_ddl = _resolve_types(main, inputs.model, next_s)
        locked = bool(
            main.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(schema),)).fetchone()[0]
        )
        main.commit()
        if not locked:
            raise LoadRefused(
                f"another load into schema {schema} of {redact(target_url)} is running; retry later"
            )
        # ---- from here on the target is written ----
        load_id = _start_run(main, job)
        try:
            result = _load(main, job, load_id, ddl_types, type_ddl, durations)
        except BaseException as exc:
            _record_failure(main, job, load_id, exc)
            if isinstance(exc, psycopg.Error):
                raise LoadError(
                    f"loading refresh {refresh_id} into {schema} failed: {_first_line(exc)}; "
                    f"the live schema {schema} was not changed"
                ) from exc
            raise
        if not job.audit_inline:
            _audit_elsewhere(job, result)
        return result
    finally:
        _unlock(main, schema, locked)
        main.close()


def _unlock(main: psycopg.Connection, schema: str, locked: bool) -> None:
    """Release the schema's advisory lock if this load took it; never raises a database error."""
    try:
        if locked:
            main.rollback()
            main.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(schema),))
            main.commit()
    except psycopg.Error:
        pass


def _start_run(main: psycopg.Connection, job: _Job) -> int:
    """Create the metadata (and audit) tables, mark a crashed load of ``schema`` abandoned and
    record this one as running; its load id (committed)."""
    ensure_meta(main)
    if job.audit_inline:
        ensure_audit_schema(main)
    with main.transaction():
        main.execute(
            "UPDATE synth_meta.load_runs SET status = 'abandoned', finished_at = now(), "
            "error = 'the loading process ended without finishing' "
            "WHERE schema_name = %s AND status = 'running'",
            (job.schema,),
        )
        load_id = main.execute(
            "INSERT INTO synth_meta.load_runs (refresh_id, schema_name, status, spec_hash, shard_hashes, "
            "actor, run_id) VALUES (%s, %s, 'running', %s, %s::jsonb, %s, %s) RETURNING load_id",
            (
                job.inputs.refresh_id,
                job.schema,
                job.inputs.spec["content_hash"],
                json.dumps(job.inputs.shard_hashes),
                job.actor,
                job.run_id,
            ),
        ).fetchone()[0]
    main.commit()
    return load_id


def _record_failure(main: psycopg.Connection, job: _Job, load_id: int, exc: BaseException) -> None:
    """Drop ``__next``, mark the load failed and audit the failure (best effort: never raises
    over the load's own error)."""
    _fail(main, job.next_schema, load_id, exc)
    _audit_safely(
        job.audit_target,
        job.inputs.refresh_id,
        {
            "status": "failed",
            "schema": job.schema,
            "target": redact(job.target_url),
            "load_id": load_id,
            "spec_hash": job.inputs.spec["content_hash"],
            "error": _first_line(exc),
            "run_id": job.run_id,
        },
        job.actor,
    )


def _audit_elsewhere(job: _Job, result: LoadResult) -> None:
    """Write the load's audit event to an audit log in another database (after the swap: it
    cannot share the load's transaction), saying the data is live if that fails."""
    rid = job.inputs.refresh_id
    try:
        record_event(job.audit_target, "load", rid, _load_payload(result, job), job.actor)
    except SynthError as exc:
        raise LoadError(
            f"refresh {rid} is live in {result.schema}, but its audit event could not be "
            f"written ({exc}); record it before using the data"
        ) from exc


def _audit_safely(url: str, refresh_id: str, payload: dict[str, Any], actor: str) -> None:
    """Audit a failed load, best effort: the load's own error is what the caller must see."""
    try:
        record_event(url, "load", refresh_id, payload, actor)
    except SynthError:
        pass


def _load_payload(result: LoadResult, job: _Job) -> dict[str, Any]:
    """The audit event of a successful load (the shard hashes tie it to the generated files)."""
    return {
        "status": "loaded",
        "schema": result.schema,
        "target": result.target,
        "load_id": result.load_id,
        "spec_hash": result.spec_hash,
        "rows": result.rows,
        "shard_hashes": job.inputs.shard_hashes,
        "seconds": round(result.seconds, 3),
        "replaced_previous": result.replaced_previous,
        "run_id": job.run_id,
    }


def _load(
    main: psycopg.Connection,
    job: _Job,
    load_id: int,
    ddl_types: dict[str, dict[str, str]],
    type_ddl: list[sql.Composable],
    durations: dict[str, Any],
) -> LoadResult:
    """Build ``__next``, verify it, swap it in and record the load, in that order."""
    inputs, schema, target_url = job.inputs, job.schema, job.target_url
    next_s = job.next_schema
    rid = inputs.refresh_id
    t0 = time.perf_counter()
    _create_next(main, next_s, load_id, rid, type_ddl)
    plans = _table_ddl(inputs.model, inputs, next_s, ddl_types)
    durations["prepare"] = round(time.perf_counter() - t0, 3)

    copied, counted, unvalidated, repaired = _build_next(job, plans, durations)

    t0 = time.perf_counter()
    _verify(main, next_s, inputs, plans, copied, counted)
    main.commit()
    durations["verify"] = round(time.perf_counter() - t0, 3)
    durations["checks_not_validated"] = unvalidated  # CHECKs kept NOT VALID: rows violating each
    durations["checks_repaired"] = repaired  # rows whose two ordered columns were swapped

    t0 = time.perf_counter()
    with main.transaction():
        replaced = _swap(main, schema)
        durations["swap"] = round(time.perf_counter() - t0, 3)
        seconds = time.perf_counter() - job.started
        durations["total"] = round(seconds, 3)
        result = LoadResult(
            load_id,
            rid,
            schema,
            redact(target_url),
            inputs.rows,
            durations,
            seconds,
            inputs.spec["content_hash"],
            replaced,
            connect_hint(target_url, schema),
        )
        main.execute(
            "UPDATE synth_meta.load_runs SET status = 'loaded', rows = %s::jsonb, durations = %s::jsonb, "
            "finished_at = now() WHERE load_id = %s",
            (json.dumps(inputs.rows), json.dumps(durations), load_id),
        )
        if job.audit_inline:
            append_event(main, "load", rid, _load_payload(result, job), job.actor)
    main.commit()
    return result


def _build_next(
    job: _Job, plans: dict[str, TablePlan], durations: dict[str, Any]
) -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, int]]:
    """Run every load step on ``job.workers`` connections; rows copied and counted per table,
    and rows breaking (or repaired for) each cross-column CHECK."""
    t0 = time.perf_counter()
    next_s = job.next_schema
    build = Build(next_s, job.batch_rows, job.progress)
    tasks = _build_tasks(plans, build)
    steps = _run_tasks(job.target_url, tasks, job.workers, [next_s, "public"], build.abort)
    durations["build"] = round(time.perf_counter() - t0, 3)
    durations["steps"] = steps
    durations["copy"] = round(sum(v for k, v in steps.items() if k.startswith("copy:")), 3)
    durations["constraints_and_indexes"] = round(
        sum(
            v
            for k, v in steps.items()
            if k.split(":")[0] in ("key-index", "index", "constraints", "fk")
        ),
        3,
    )
    return build.copied, build.counted, build.unvalidated, build.repaired
