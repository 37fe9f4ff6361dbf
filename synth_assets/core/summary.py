"""The refresh summary (``summary.json``): what one refresh spent, made and checked.

One typed model for every writer (a headless refresh; ``published_refresh`` for a refresh run
only in Dagster) and every reader (the CLI, the gates a manifest states, publication). Its JSON
form is spelled in :meth:`RefreshSummary.to_json` and :meth:`RefreshSummary.from_json` only,
and the file is written by :func:`write_summary` and read by :func:`read_summary` only.

The JSON keeps the shape refreshes have always written, so an existing summary reads and
re-writes to the same bytes: a key is absent where its writer never set it (a refresh run only
in Dagster has no budget, stages or timing), and ``error`` may be present with a null value (run
1 was stopped by its gates alone, not by an error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Literal

from .errors import SynthError
from .store import read_json, write_json_atomic


class SummaryError(SynthError):
    """A summary file is not shaped like a refresh summary: it was damaged or hand-edited."""


class SummaryWriter(StrEnum):
    """Who wrote a summary other than the headless refresh (its ``written_by``)."""

    PUBLISHED_REFRESH = "published_refresh"


class Unset(Enum):
    """A key the summary does not carry, as distinct from a key whose value is null."""

    KEY = "unset"


UNSET: Literal[Unset.KEY] = Unset.KEY


@dataclass(frozen=True)
class CheckResult:
    """One asset check's verdict: passed, the asset it checks, and the metadata it recorded
    (kept as recorded, so the summary states the same values the UI shows)."""

    passed: bool
    asset: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"passed", "asset", **metadata}``, as the summary has always stored a check."""
        head: dict[str, Any] = {"passed": self.passed}
        if self.asset is not None:
            head["asset"] = self.asset
        return {**head, **self.metadata}

    @classmethod
    def from_json(cls, raw: Any) -> CheckResult:
        """A check as stored; a bare boolean is a verdict alone. Anything but ``passed: true``
        is a failed check (fail closed: a release reads its gates from here)."""
        if not isinstance(raw, Mapping):
            return cls(passed=raw is True)
        meta = {k: v for k, v in raw.items() if k not in ("passed", "asset")}
        return cls(passed=raw.get("passed") is True, asset=raw.get("asset"), metadata=meta)


@dataclass(frozen=True)
class PackSpend:
    """What a summary states of its metrics pack: the exact ledger (not rounded), the reference
    tables' own epsilon when they spent any, and the privacy unit (None: no unit table)."""

    epsilon_spent: float
    delta: float
    privacy_unit: str | None
    reference_epsilon_spent: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epsilon_spent": self.epsilon_spent, "delta": self.delta}
        if self.reference_epsilon_spent is not None:
            out["reference_epsilon_spent"] = self.reference_epsilon_spent
        out["privacy_unit"] = self.privacy_unit
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PackSpend | None:
        """The pack's facts of a summary, or None when the refresh wrote no pack."""
        if "epsilon_spent" not in raw:
            return None
        return cls(
            epsilon_spent=raw["epsilon_spent"],
            delta=raw.get("delta"),
            privacy_unit=raw.get("privacy_unit"),
            reference_epsilon_spent=raw.get("reference_epsilon_spent"),
        )


@dataclass(frozen=True)
class AnnualBudget:
    """The source's annual budget when the refresh ended: the cap, what the last 365 days
    spent, and what remains."""

    source: str
    annual_cap: float
    spent_365d: float
    remaining: float


@dataclass(frozen=True)
class RefreshSummary:
    """One refresh's summary. ``rows`` is stored as ``tables`` (``{table: {"rows": n}}``);
    ``None`` (and ``UNSET`` for ``error``) is a key the summary does not carry."""

    refresh_id: str
    checks: Mapping[str, CheckResult] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    passed: bool = False
    artifacts: Path | None = None
    regenerated_from: str | None = None
    stages: Mapping[str, float] | None = None
    error: str | None | Unset = UNSET
    budget_released: bool = False
    pack: PackSpend | None = None
    budget: AnnualBudget | None = None
    spec_hash: str | None = None
    not_modelled: tuple[str, ...] | None = None
    seed_commitment: str | None = None
    seconds: float | None = None
    written_by: SummaryWriter | None = None

    @property
    def checks_passed(self) -> bool:
        """Every recorded check passed (vacuously true when none ran)."""
        return all(c.passed for c in self.checks.values())

    @property
    def failure(self) -> str | None:
        """The error that stopped a run of the refresh, if any."""
        return self.error if isinstance(self.error, str) else None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``summary.json`` (only :func:`write_summary` and a caller that
        hands the summary on as JSON need it)."""
        out: dict[str, Any] = {
            "refresh_id": self.refresh_id,
            "checks": {n: c.to_json() for n, c in self.checks.items()},
            "tables": rows_json(self.rows),
        }
        optional: dict[str, Any] = {
            "artifacts": None if self.artifacts is None else str(self.artifacts),
            "regenerated_from": self.regenerated_from,
            "stages": None if self.stages is None else dict(self.stages),
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.error is not UNSET:
            out["error"] = self.error
        if self.budget_released:
            out["budget_released"] = True
        out.update(self.pack.to_json() if self.pack else {})
        optional = {
            "budget": None if self.budget is None else asdict(self.budget),
            "spec_hash": self.spec_hash,
            "not_modelled": None if self.not_modelled is None else list(self.not_modelled),
            "seed_commitment": self.seed_commitment,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        out["passed"] = self.passed
        tail = {"seconds": self.seconds, "written_by": self.written_by}
        out.update(
            {k: (v.value if isinstance(v, Enum) else v) for k, v in tail.items() if v is not None}
        )
        return out

    @classmethod
    def from_json(cls, raw: Any) -> RefreshSummary:
        """The summary stored as ``raw``; keys it does not know are ignored. Raises
        :class:`SummaryError` when ``raw`` is not shaped like a summary."""
        try:
            return cls(
                refresh_id=str(raw.get("refresh_id") or ""),
                checks={str(n): CheckResult.from_json(c) for n, c in _items(raw, "checks")},
                rows={str(t): v["rows"] for t, v in _items(raw, "tables")},
                passed=raw.get("passed") is True,
                artifacts=_opt(raw, "artifacts", Path),
                regenerated_from=raw.get("regenerated_from"),
                stages=raw.get("stages"),
                error=raw["error"] if "error" in raw else UNSET,
                budget_released=raw.get("budget_released") is True,
                pack=PackSpend.from_json(raw),
                budget=_opt(raw, "budget", lambda b: AnnualBudget(**b)),
                spec_hash=raw.get("spec_hash"),
                not_modelled=_opt(raw, "not_modelled", tuple),
                seed_commitment=raw.get("seed_commitment"),
                seconds=raw.get("seconds"),
                written_by=_opt(raw, "written_by", SummaryWriter),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise SummaryError(f"not a refresh summary ({type(exc).__name__}: {exc})") from None


def _items(raw: Mapping[str, Any], key: str) -> list[tuple[Any, Any]]:
    """The items of the object under ``key`` (none when it is absent or null)."""
    return list((raw.get(key) or {}).items())


def _opt(raw: Mapping[str, Any], key: str, conv: Callable[[Any], Any]) -> Any:
    """``conv`` of the value under ``key``, or None when it is absent or null."""
    value = raw.get(key)
    return None if value is None else conv(value)


def rows_json(rows: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Rows per table as summaries and manifests state them: ``{table: {"rows": n}}``."""
    return {t: {"rows": n} for t, n in rows.items()}


def write_summary(path: Path, summary: RefreshSummary) -> str:
    """Write ``summary.json`` (atomically, in the store's one JSON form); return its SHA-256."""
    return write_json_atomic(path, summary.to_json())


def read_summary(path: Path) -> RefreshSummary:
    """The summary at ``path``; :class:`SummaryError` names the file when it is malformed."""
    try:
        return RefreshSummary.from_json(read_json(path))
    except SummaryError as exc:
        raise SummaryError(f"{path}: {exc}; the refresh summary was damaged or edited") from None
