"""The load's exceptions: one for a failed load, a subclass for a refusal before any write."""

from __future__ import annotations

from synth_assets.core.errors import SynthError


class LoadError(SynthError):
    """The staging load failed; the live staging schema was left as it was."""


class LoadRefused(LoadError):
    """The load was refused before anything was written to the target."""


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type name if it has none), for a short record."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
