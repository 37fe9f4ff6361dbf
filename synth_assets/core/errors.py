"""Exception hierarchy: every message says what is wrong and what to change."""


class SynthError(Exception):
    """Base class for every error raised by synth_assets."""


class ConfigError(SynthError):
    """The configuration (synth.yaml or a command-line option) is invalid."""


class SecretsError(SynthError):
    """A secret is missing, unreadable or the secrets backend failed (fail closed)."""


class SourceError(SynthError):
    """The source database cannot be reached or read."""


class SchemaError(SynthError):
    """The reflected schema cannot be modelled as configured."""


class BudgetError(SynthError):
    """The privacy budget would be exceeded or the ledger is inconsistent."""


class PrivacyViolation(SynthError):
    """An artifact would leak a raw value from the privacy boundary."""


class GateFailed(SynthError):
    """A release gate failed; nothing downstream may run."""


class GenerationError(SynthError):
    """The spec cannot be turned into synthetic rows."""


class DomainError(SynthError):
    """A column's values cannot be released at this budget and nothing public states them:
    generating it would mean inventing values, so the refresh stops before generation."""


class RefreshBusy(SynthError):
    """Another refresh holds the work directory or the target: one refresh at a time on each."""


class RunFailed(SynthError):
    """A refresh stopped on an error inside one of its steps (not a gate: see GateFailed)."""
