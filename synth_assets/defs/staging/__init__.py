"""Staging load (the last asset of the graph), teardown jobs and the audit of loads."""

import dagster as dg

from . import assets, jobs
from .assets import staging_schema, staging_schema_intact
from .jobs import emergency_teardown, teardown_staging

defs = dg.Definitions.merge(assets.defs, jobs.defs)

__all__ = [
    "defs",
    "emergency_teardown",
    "staging_schema",
    "staging_schema_intact",
    "teardown_staging",
]
