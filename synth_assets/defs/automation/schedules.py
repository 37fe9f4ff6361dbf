"""The quarterly refresh schedule (cron and timezone from synth.yaml ``automation``)."""

import dagster as dg

from synth_assets.core.config import SynthConfig

from .jobs import quarterly_refresh


def quarterly_schedule(cfg: SynthConfig) -> dg.ScheduleDefinition:
    """The quarterly refresh; stopped until switched on in the UI (it spends privacy budget)."""
    return dg.ScheduleDefinition(
        name="quarterly_refresh_schedule",
        job=quarterly_refresh,
        cron_schedule=cfg.automation.cron,
        execution_timezone=cfg.automation.timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
