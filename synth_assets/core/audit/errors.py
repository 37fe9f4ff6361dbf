"""The audit log's exceptions: one base, a broken chain, an unavailable key."""

from __future__ import annotations

from synth_assets.core.errors import SynthError


class AuditError(SynthError):
    """The audit log cannot be written or read."""


class AuditChainBroken(AuditError):
    """The audit chain does not verify: an event was altered, removed or reordered."""


class AuditKeyUnavailable(AuditError):
    """The audit key an event or anchor names cannot be obtained from the secrets backend."""
