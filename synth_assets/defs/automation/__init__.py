"""Jobs (``jobs``), the quarterly schedule (``schedules``) and the sensors (``sensors``)."""

import dagster as dg

from synth_assets.core.config import SynthConfig

from . import jobs
from .schedules import quarterly_schedule
from .sensors import gate_failure_sensor, overrides_sensor, spec_ready_sensor, staleness_sensor


def automation_defs(cfg: SynthConfig, meta_url, per_shard_runs: bool = False) -> dg.Definitions:
    """Jobs, schedule and sensors for one configuration (``per_shard_runs``: a Kubernetes
    deployment, see `spec_ready_sensor`)."""
    return dg.Definitions.merge(
        jobs.defs,
        dg.Definitions(
            schedules=[quarterly_schedule(cfg)],
            sensors=[
                spec_ready_sensor(per_shard_runs),
                staleness_sensor(cfg),
                overrides_sensor(cfg),
                gate_failure_sensor(meta_url),
            ],
        ),
    )
