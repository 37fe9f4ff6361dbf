"""Headless refresh: the CLI drives the same Definitions as the UI, run by run."""

import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import dagster as dg

from synth_assets.core import budget, pg
from synth_assets.core.artifacts import ArtifactError, summary_path
from synth_assets.core.audit import AuditSigner, record_event
from synth_assets.core.config import SynthConfig, load_config
from synth_assets.core.errors import ConfigError, GateFailed, RunFailed, SynthError
from synth_assets.core.kinds import ColumnKind
from synth_assets.core.pack import pack_summary
from synth_assets.core.plan import build_plan
from synth_assets.core.preflight import PreflightError, existing_database, is_source, preflight
from synth_assets.core.schema import SchemaModel
from synth_assets.core.store import (
    RefreshPaths,
    RefreshStore,
    check_refresh_id,
    new_refresh_id,
    read_json,
    store_for,
    write_private,
)
from synth_assets.core.summary import AnnualBudget, CheckResult, RefreshSummary, write_summary
from synth_assets.definitions import build_definitions
from synth_assets.defs.automation.jobs import (
    generate_and_load,
    publish_refresh,
    quarterly_refresh,
    regenerate_from_spec,
)
from synth_assets.defs.constants import METRICS_PACK, PACK_TAG, REFRESH_TAG, SYNTHETIC_SHARDS
from synth_assets.defs.progress import forward_progress
from synth_assets.defs.shards.assets import shard_range_tags

# Step logs stay in the Dagster instance's event log (`dagster dev` shows them); the console of a
# headless run shows the CLI's own progress lines and, on failure, one summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# The CLI's jobs: Dagster's console quiet, the steps' progress forwarded (defs/progress.py).
REPORTING = {"loggers": {**QUIET["loggers"], "progress": {}}}


def instance_for(workdir: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance of a work directory (SQLite under DAGSTER_HOME)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(workdir / "dagster_home")
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    conf = Path(home) / "dagster.yaml"
    if not conf.exists():
        # The repository's dagster.yaml: SQLite storage (the default) and no telemetry.
        conf.write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.get()


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, CheckResult]:
    """Every check a run evaluated: its verdict, its asset and its metadata's plain values."""
    return {
        ev.check_name: CheckResult(
            passed=bool(ev.passed),
            asset=ev.asset_key.to_user_string(),
            metadata={k: getattr(v, "value", v) for k, v in ev.metadata.items()},
        )
        for ev in result.get_asset_check_evaluations()
    }


def _stages(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Seconds per step (asset or check) of a run."""
    return {
        ev.step_key: round(ev.event_specific_data.duration_ms / 1000, 2)
        for ev in result.all_events
        if ev.event_type_value == "STEP_SUCCESS"
    }


def _failure(result: dg.ExecuteInProcessResult) -> str:
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.event_specific_data.error
            msg = err.cause.message if err and err.cause else (err.message if err else "")
            # The whole message (a refusal lists one column per line), without the class name.
            text = " ".join(line.strip() for line in msg.strip().splitlines())
            text = re.sub(r"^[\w.]+(Error|Exception|Failed|Violation): ", "", text)
            return f"{ev.step_key}: {text or 'failed'}"
    return "the run failed"


def _unmeasured(result: dg.ExecuteInProcessResult, store, rid: str, cfg: SynthConfig) -> str | None:
    """Why a failed profiling run measured nothing, or None when it may have measured.

    Only metrics_pack measures. When it never started, nothing was measured. When it
    started, the unit plan it builds before its first measurement is rebuilt from the
    refresh's schema.json: if that fails, the step failed there. Any other failure may have
    come after a measurement, and the reservation stays (conservative).
    """
    step = METRICS_PACK.to_user_string()
    started = {ev.step_key for ev in result.all_events if ev.event_type_value == "STEP_START"}
    if step not in started:
        return _failure(result)
    schema_path = store.paths(rid).schema
    if store.paths(rid).pack.exists() or not schema_path.exists():
        return None
    reflected = read_json(schema_path)
    try:
        build_plan(
            SchemaModel.from_dict(reflected["schema"]), reflected["roles"], cfg.privacy.unit_table
        )
    except SynthError as exc:
        return f"{step}: {exc}"
    return None


def _release_unmeasured(
    cfg: SynthConfig, workdir: Path, meta: str, rid: str, reason: str, log: Callable[[str], None]
) -> bool:
    """Release the reservation of a refresh that measured nothing; the ledger keeps the reason."""
    if not budget.release(meta, rid, reason):
        return False
    record_event(
        meta,
        "reservation_released",
        rid,
        {"reason": reason, "epsilon": 0.0},
        signer=AuditSigner.for_config(cfg, workdir),
    )
    log(f"budget: released the reservation of {rid}: it measured nothing")
    return True


def _record_refusal(cfg: SynthConfig, workdir: Path, problems: list[str]) -> list[str]:
    """Record a preflight refusal in the audit log when its database already exists and is not
    the source (a refusal creates nothing). Returns a problem line when it could not be written."""
    meta = cfg.audit_url()
    try:
        if is_source(meta, cfg, workdir):
            return []
        url = existing_database(meta, workdir)
        if url is None:
            return []
        record_event(
            url,
            "refusal",
            None,
            {"stage": "preflight", "problems": [p[:500] for p in problems]},
            signer=AuditSigner.for_config(cfg, workdir),
        )
    except SynthError as exc:
        return [f"(this refusal could not be written to the audit log: {exc})"]
    return []


@dataclass(frozen=True)
class Refreshed:
    """A refresh that passed and was published: its summary, the file it was written to and
    where its manifest was published."""

    summary: RefreshSummary
    summary_path: Path
    manifest: str

    def to_json(self) -> dict[str, Any]:
        """The summary as written, with ``summary_path`` and ``manifest`` added."""
        return {
            **self.summary.to_json(),
            "summary_path": str(self.summary_path),
            "manifest": self.manifest,
        }


def run_refresh(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`refresh` (same arguments), its outcome as JSON: the summary as written, with
    ``summary_path`` and ``manifest``, for scripts and benchmarks that keep results as JSON."""
    return refresh(*args, **kwargs).to_json()


def refresh(
    config_file: str | None,
    workdir: Path,
    source_url: str | None = None,
    cfg_override: SynthConfig | None = None,
    log: Callable[[str], None] = print,
    instance: dg.DagsterInstance | None = None,
    regenerate_from: str | None = None,
) -> Refreshed:
    """Profile, calibrate and generate one refresh; write its summary and publish it.

    Preflight first: a refresh it refuses reserves no budget and writes nothing. Run 1
    materializes the boundary assets and the spec; run 2 the shard partitions (one single-run
    backfill) and everything downstream. Blocking checks stop each run. A run 1 that failed
    before its first DP measurement releases its budget reservation.

    ``regenerate_from`` names a refresh whose metrics pack is reused: run 1 only calibrates a
    new spec and seal a new seed (no query to the source's rows for profiling, no budget), with
    the configuration as it is now (a relaxed gate, an override); run 2 is the same.
    """
    workdir = workdir.expanduser().resolve()
    cfg = cfg_override or load_config(config_file)
    if source_url:
        cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"url": source_url})})
    if regenerate_from:
        regenerate_from = check_refresh_id(regenerate_from)
        pack = store_for(cfg, workdir).paths(regenerate_from).pack
        if not pack.is_file():
            raise ConfigError(
                f"refresh {regenerate_from} has no metrics pack in {pack.parent}: name a refresh "
                "that profiled the source (`synth-assets budget` lists them)"
            )
    try:
        preflight(cfg, workdir, spends=not regenerate_from)
    except PreflightError as exc:
        raise PreflightError(exc.problems + _record_refusal(cfg, workdir, exc.problems)) from exc
    # One refresh at a time per work directory and per target schema: a lock in the audit
    # database (not a file), so that the second refresh is refused, not mixed into the first.
    meta, locks = refresh_locks(cfg, workdir)
    with pg.session_locks(meta, locks):
        return _refresh(
            cfg,
            config_file,
            source_url,
            workdir,
            cfg_override,
            log,
            instance,
            meta,
            regenerate_from,
        )


def _stopped(
    failed: list[str], summary: RefreshSummary, summary_file: Path | None, rdir: Path
) -> str:
    """What stopped a refresh, one failed gate per line with the `gates:` key that sets its
    threshold, then where to read more: the report (when there is one) and the summary."""
    from synth_assets.core.evaluate import GATES_BY_NAME

    rid = summary.refresh_id
    if not failed:
        head = f"refresh {rid} stopped: {summary.failure or 'the run failed'}"
        if summary.budget_released:
            head += "; nothing was measured, so its budget reservation was released"
        lines = [head]
    else:
        lines = [f"refresh {rid} stopped by {len(failed)} failed gate(s):"]
        for f in failed:
            spec = GATES_BY_NAME.get(f.split(":", 1)[0])
            lines.append(f"  - {f}" + (f" [gates.{spec.key}]" if spec else ""))
    report = RefreshPaths(rdir).report_html
    if report.is_file():
        lines.append(f"report: {report}")
    if summary_file is not None:
        lines.append(f"summary: {summary_file}")
    return "\n".join(lines)


def refresh_locks(cfg: SynthConfig, workdir: Path) -> tuple[str, dict[str, str]]:
    """(database, {what: lock key}) of a refresh: its work directory's store and its target
    schema, held in the audit database (the target's unless ``audit.url`` is set)."""
    meta = pg.resolve_url(cfg.audit_url(), workdir)
    root = store_for(cfg, workdir).root
    target = str(workdir / "pg") if pg.is_embedded(cfg.target.url) else pg.redact(cfg.target.url)
    return meta, {
        f"work directory {root}": f"synth-refresh:store:{root}",
        f"target schema {cfg.target.db_schema}": f"synth-refresh:target:{target}:"
        f"{cfg.target.db_schema}",
    }


def _effective_config(
    cfg: SynthConfig,
    config_file: str | None,
    source_url: str | None,
    workdir: Path,
    cfg_override: SynthConfig | None,
) -> str | None:
    """The configuration file the assets read: the given one, or (options or an override
    applied) the effective configuration persisted for this work directory."""
    if cfg_override is None and not source_url:
        return config_file
    import yaml

    path = workdir / "effective-synth.yaml"
    # It may hold the source's password: readable by its owner only.
    write_private(path, yaml.safe_dump(cfg.to_json(), sort_keys=False))
    return str(path)


@dataclass
class _Run:
    """One headless refresh: its Definitions, instance, tags and summary, as its runs go (the
    summary's file once it is written)."""

    cfg: SynthConfig
    workdir: Path
    meta: str
    defs: dg.Definitions
    instance: dg.DagsterInstance
    rid: str
    tags: dict[str, str]
    log: Callable[[str], None]
    store: RefreshStore
    summary: RefreshSummary
    summary_file: Path | None = None

    def note(self, **facts: Any) -> None:
        """Add ``facts`` (fields of :class:`RefreshSummary`) to the summary."""
        self.summary = replace(self.summary, **facts)

    def execute(self, job: str, tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
        """Run the job named ``job`` in process: the named job the UI shows (not an ephemeral
        asset job), so a CLI run and a UI run read the same in the run list."""
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance,
            tags={**self.tags, **(tags or {})},
            raise_on_error=False,
            run_config=REPORTING,
        )

    def execute_reporting(
        self, job: str, tags: dict[str, str] | None = None
    ) -> dg.ExecuteInProcessResult:
        """`execute`, with the steps' progress forwarded to the log."""
        with forward_progress(self.log):
            return self.execute(job, tags)

    def record(self, result: dg.ExecuteInProcessResult) -> bool:
        """Add a run's checks and step times to the summary; whether it and every check passed."""
        self.note(
            checks={**self.summary.checks, **_checks(result)},
            stages={**(self.summary.stages or {}), **_stages(result)},
        )
        return result.success and self.summary.checks_passed


def _generate(run: _Run) -> bool:
    """Run 2: every shard partition of the spec (one single-run backfill) and downstream."""
    spec = read_json(run.store.paths(run.rid).spec)
    run.log(f"[2/2] {run.rid}: generating {spec['shards']} shard(s)…")
    r2 = run.execute_reporting(generate_and_load.name, shard_range_tags(spec["shards"]))
    ok = run.record(r2)
    if not r2.success:
        run.note(error=_failure(r2))
    return ok


def _profile_and_generate(run: _Run, regenerate_from: str | None) -> bool:
    """Run 1 (profile, or calibrate from an earlier pack), then run 2 if it passed; a run 1
    that measured nothing releases its budget reservation."""
    if regenerate_from:
        run.note(regenerated_from=regenerate_from)
        run.log(
            f"[1/2] {run.rid}: a new spec and seed from the metrics pack of {regenerate_from} (no budget)…"
        )
    else:
        run.log(f"[1/2] {run.rid}: reflecting and profiling the source with differential privacy…")
    r1 = run.execute_reporting(
        (regenerate_from_spec if regenerate_from else quarterly_refresh).name
    )
    if run.record(r1):
        return _generate(run)
    run.note(error=_failure(r1) if not r1.success else None)
    reason = _unmeasured(r1, run.store, run.rid, run.cfg) if not r1.success else None
    if reason and _release_unmeasured(run.cfg, run.workdir, run.meta, run.rid, reason, run.log):
        run.note(budget_released=True)
    return False


def _describe(run: _Run) -> None:
    """What the refresh spent, what the source has left, the spec and the rows generated."""
    store, cfg = run.store, run.cfg
    pack_path = store.paths(run.rid).pack
    if pack_path.exists():
        run.note(pack=pack_summary(read_json(pack_path)))
    key, label = budget.source_key(cfg.source.url, cfg.source.db_schema, cfg.privacy.budget_key)
    st = budget.standing(run.meta, key, cfg.privacy.annual_epsilon_cap)
    run.note(
        budget=AnnualBudget(
            source=label,
            annual_cap=st.cap,
            spent_365d=st.spent,
            remaining=max(0.0, st.cap - st.spent),
        )
    )
    spec_path = store.paths(run.rid).spec
    if spec_path.exists():
        spec = read_json(spec_path)
        run.note(
            spec_hash=spec["content_hash"],
            # Said, not silent: columns of a type no model covers load as NULL (NOT NULL ones
            # were refused at preflight unless the type has an empty value of its own, e.g.
            # tsvector).
            not_modelled=tuple(
                f"{t}.{c} ({col['pg_type']})"
                for t, e in spec["tables"].items()
                for c, col in e.get("columns", {}).items()
                if col.get("kind") == ColumnKind.IGNORE and not col.get("generated")
            ),
            seed_commitment=read_json(store.paths(run.rid).generation)["seed_commitment"],
        )
    shards = SYNTHETIC_SHARDS.to_user_string()
    for c in run.summary.checks.values():
        if c.asset == shards and "rows" in c.metadata:
            run.note(rows=dict(c.metadata["rows"]))


def _publish(run: _Run) -> str:
    """Publication last (its own job and asset, as a deployment runs it): every artifact,
    the summary included, hashed in the signed manifest and sent to the store. Returns where
    the manifest was published."""
    r3 = run.execute(publish_refresh.name)
    if not r3.success:
        raise ArtifactError(f"refresh {run.rid} passed but was not published: {_failure(r3)}")
    manifest = read_json(run.store.paths(run.rid).signed_manifest)
    return manifest["store"]["location"]


def _fail(run: _Run) -> NoReturn:
    """Record a stopped refresh in the audit log (a headless run has no failure sensor) and
    raise what stopped it: the failed gates (exit 3) or the error (exit 1)."""
    summary = run.summary
    failed = [
        f"{n}: {'; '.join(c.metadata.get('failures', [])) or 'failed'}"
        for n, c in summary.checks.items()
        if not c.passed
    ]
    unrecorded = ""
    try:
        record_event(
            run.meta,
            "gate_failed" if failed else "run_failed",
            run.rid,
            {"failed_checks": failed, "error": (summary.failure or "")[:1000]},
            signer=AuditSigner.for_config(run.cfg, run.workdir),
        )
    except SynthError as exc:  # said, never swallowed: the failure itself still stands
        unrecorded = f"; the failure could not be written to the audit log: {exc}"
    error = GateFailed if failed else RunFailed
    stopped = _stopped(failed, summary, run.summary_file, run.store.dir(run.rid))
    raise error(stopped + unrecorded)


def _refresh(
    cfg: SynthConfig,
    config_file: str | None,
    source_url: str | None,
    workdir: Path,
    cfg_override: SynthConfig | None,
    log: Callable[[str], None],
    instance: dg.DagsterInstance | None,
    meta: str,
    regenerate_from: str | None = None,
) -> Refreshed:
    """The refresh itself, once preflight passed and the locks are held."""
    cfg_path = _effective_config(cfg, config_file, source_url, workdir, cfg_override)
    rid = new_refresh_id()
    tags = {REFRESH_TAG: rid, **({PACK_TAG: regenerate_from} if regenerate_from else {})}
    store = store_for(cfg, workdir)
    run = _Run(
        cfg=cfg,
        workdir=workdir,
        meta=meta,
        defs=build_definitions(config_file=cfg_path, workdir=str(workdir)),
        instance=instance or instance_for(workdir),
        rid=rid,
        tags=tags,
        log=log,
        store=store,
        summary=RefreshSummary(refresh_id=rid, artifacts=store.dir(rid)),
    )
    started = time.monotonic()
    ok = _profile_and_generate(run, regenerate_from)
    _describe(run)
    run.note(passed=bool(ok), seconds=round(time.monotonic() - started, 1))
    path = summary_path(workdir, rid)
    if store.dir(rid).exists() or ok:
        write_summary(path, run.summary)
        run.summary_file = path
    if not ok:
        _fail(run)
    return Refreshed(run.summary, path, _publish(run))


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr)
