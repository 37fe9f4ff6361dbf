"""Dagster Definitions: every asset, check and resource of synth_assets."""

import os

import dagster as dg

from .core.config import default_config_path, deployment, load_config
from .core.errors import ConfigError
from .defs import staging
from .defs.automation import automation_defs
from .defs.profile import assets as profile
from .defs.progress import progress_logger
from .defs.publish import assets as publish
from .defs.report import assets as report
from .defs.resources import SynthResource
from .defs.shards import assets as shards
from .defs.spec import assets as spec_assets


def executor_for(where: str) -> dg.ExecutorDefinition:
    """The executor a deployment runs steps with.

    Locally, steps run in the run's own process: they form one chain (nothing to overlap), and
    the one heavy step, the shards, spreads over the cores with its own worker pool (a process
    per step cost 8-12 s each on 2 cores: a UI run took 2 min where the CLI took 32 s). In a
    Kubernetes deployment each step runs in its own pod (``k8s_job_executor``; its run config,
    e.g. ``max_concurrent`` or step resources, is honoured).
    """
    if where == "kubernetes":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise ConfigError(
                "SYNTH_DEPLOYMENT=kubernetes needs dagster-k8s: install synth-assets[k8s] "
                "(the image of deploy/Dockerfile does)"
            ) from exc
        return k8s_job_executor
    return dg.in_process_executor


def build_definitions(
    config_file: str | None = None,
    workdir: str | None = None,
    source_url: str | None = None,
    executor: dg.ExecutorDefinition | None = None,
    resource: SynthResource | None = None,
    per_shard_runs: bool | None = None,
) -> dg.Definitions:
    """Definitions bound to one configuration (the CLI and tests pass theirs, or a whole
    resource). The executor and ``per_shard_runs`` follow ``$SYNTH_DEPLOYMENT`` unless given:
    in Kubernetes one run (one pod) per shard, so a shard is scheduled, limited and retried
    alone; locally one run holds every shard and spreads them over the cores itself."""
    where = deployment()
    if per_shard_runs is None:
        per_shard_runs = where == "kubernetes"
    resource = resource or SynthResource(
        config_file=config_file if config_file is not None else default_config_path(),
        workdir=workdir or os.environ.get("SYNTH_WORKDIR", ".synth"),
        source_url=source_url,
    )
    cfg = load_config(resource.config_file)
    return dg.Definitions.merge(
        profile.defs,
        spec_assets.defs,
        shards.shards_defs(per_shard_runs),
        report.build_defs(cfg.gates, verify_shards=per_shard_runs),
        staging.defs,
        publish.defs,
        automation_defs(cfg, resource.meta_url, per_shard_runs),
        dg.Definitions(
            resources={"synth": resource},
            loggers={"console": dg.colored_console_logger, "progress": progress_logger},
            executor=executor or executor_for(where),
        ),
    )


defs = build_definitions()
