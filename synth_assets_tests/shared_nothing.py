"""Definitions for the shared-nothing test: each step is a process of the multiprocess executor
that starts in an empty work directory of its own, as a step pod would; the configuration comes
from ``$SYNTH_CONFIG`` and the directories go under ``$SYNTH_TEST_STEPS``."""

import os
from pathlib import Path

import dagster as dg

from synth_assets.definitions import build_definitions
from synth_assets.defs.resources import SynthResource


class StepOwnDirectory(SynthResource):
    """The work directory of this process alone (the multiprocess executor runs each step in a
    process of its own)."""

    @property
    def work(self) -> Path:
        p = Path(self.workdir).expanduser().resolve() / f"step-{os.getpid()}"
        p.mkdir(parents=True, exist_ok=True)
        return p


def definitions() -> dg.Definitions:
    resource = StepOwnDirectory(
        config_file=os.environ["SYNTH_CONFIG"], workdir=os.environ["SYNTH_TEST_STEPS"]
    )
    # One run per shard, as a Kubernetes deployment runs them (its executor aside).
    return build_definitions(
        resource=resource, executor=dg.multiprocess_executor, per_shard_runs=True
    )


def quarterly_refresh() -> dg.JobDefinition:
    return definitions().resolve_job_def("quarterly_refresh")


def generate_and_load() -> dg.JobDefinition:
    return definitions().resolve_job_def("generate_and_load")
