"""Errors of the evaluator."""

from __future__ import annotations

from synth_assets.core.errors import SynthError


class EvaluationError(SynthError):
    """The refresh cannot be evaluated (missing artifacts, shards or source tables)."""
