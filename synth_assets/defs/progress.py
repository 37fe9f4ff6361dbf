"""A Dagster logger that forwards a run's progress to whoever ran it from the command line.

``dagster dev`` shows each step as it runs; the CLI ran both jobs silently until they finished
(about 48 s with no output after "generating 4 shard(s)"). Every job gets this logger; its
records go to the Python logger ``synth_assets.progress``, which has no handler (and does not
propagate) unless :func:`forward_progress` attaches one for the duration of a CLI refresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

PROGRESS = logging.getLogger("synth_assets.progress")
PROGRESS.propagate = False
PROGRESS.setLevel(logging.DEBUG)  # Dagster logs step starts and ends at DEBUG


@dg.logger(description="Step starts, step timings and the assets' own progress lines.")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    return PROGRESS


class _Forward(logging.Handler):
    """One line per step start, step end (with its time) and asset progress message."""

    def __init__(self, out: Callable[[str], None]):
        super().__init__(logging.DEBUG)
        self.out = out
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or ""
        event = meta.get("dagster_event")
        name = step.split("[")[0]
        if event is not None:
            kind = event.event_type_value
            if kind == "STEP_START":
                self.started[step] = record.created
                self.out(f"  {name} …")
            elif kind == "STEP_SUCCESS":
                took = record.created - self.started.get(step, record.created)
                self.out(f"  {name} done in {took:.1f} s")
            elif kind == "STEP_FAILURE":
                self.out(f"  {name} failed")
            return
        message = meta.get("orig_message") or record.getMessage()
        if (
            step
            and message
            and record.levelno >= logging.INFO
            and not message.startswith(
                "Dependencies for step"  # the failure that skipped them is printed at the end
            )
        ):
            self.out(f"    {message}")


@contextmanager
def forward_progress(out: Callable[[str], None]) -> Iterator[None]:
    """Forward progress records to ``out`` while the block runs."""
    handler = _Forward(out)
    PROGRESS.addHandler(handler)
    try:
        yield
    finally:
        PROGRESS.removeHandler(handler)
