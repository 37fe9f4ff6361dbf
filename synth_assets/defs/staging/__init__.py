"""Staging load (the last asset of the graph), teardown jobs and the audit of loads."""

from .assets import (
    defs,
    emergency_teardown,
    staging_schema,
    staging_schema_intact,
    teardown_staging,
)

__all__ = [
    "defs",
    "emergency_teardown",
    "staging_schema",
    "staging_schema_intact",
    "teardown_staging",
]
