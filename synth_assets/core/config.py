"""`synth.yaml`: one validated configuration file for a refresh."""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .roles import ROLE_NAMES

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class _Model(BaseModel):
    # allow_inf_nan=False: an infinite scale or a NaN epsilon is refused at load time, naming
    # the key, instead of overflowing (or silently comparing false) deep inside a refresh.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Keys checked by their range alone -> (the test a value must pass, what the message says it
# must be). One table, so every such message names its key and the value the same way.
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "privacy.reference_epsilon": (lambda v: 0 < v <= 20, "must be in (0, 20] (got {v})"),
    "privacy.delta": (
        lambda v: 0 < v < 1e-3,
        "must be in (0, 1e-3) (got {v}); the default is 1e-6",
    ),
    "privacy.holdout_fraction": (lambda v: 0 < v < 0.5, "must be in (0, 0.5) (got {v})"),
    "generation.rows_per_shard": (
        lambda v: 10_000 <= v <= 50_000_000,
        "must be between 10000 and 50000000 (got {v})",
    ),
    "generation.scale": (lambda v: v > 0, "must be > 0 (got {v})"),
    "generation.shards": (
        lambda v: v is None or 1 <= v <= 10_000,
        "must be between 1 and 10000 (got {v})",
    ),
    "secrets.vault.timeout_seconds": (lambda v: 0 < v <= 300, "must be in (0, 300] (got {v})"),
    "secrets.vault.retries": (lambda v: 0 <= v <= 10, "must be between 0 and 10 (got {v})"),
    "secrets.vault.backoff_seconds": (
        lambda v: 0 <= v <= 30,
        "must be between 0 and 30 (got {v})",
    ),
    "automation.stale_after_days": (
        lambda v: 1 <= v <= 3650,
        "must be between 1 and 3650 (got {v})",
    ),
}


def _in_range(section: str, v: Any, info: ValidationInfo) -> Any:
    """The field validator of every key in _RANGES: ``v`` unchanged, or a ValueError."""
    key = f"{section}.{info.field_name}"
    ok, must = _RANGES[key]
    if not ok(v):
        raise ValueError(f"{key} {must.format(v=v)}")
    return v


# Schemas a staging load must never replace: the product's own (budget ledger, audit log, load
# metadata), PostgreSQL's, the default one, and the loader's swap names.
RESERVED_SCHEMAS = frozenset(
    {"public", "information_schema", "synth_meta", "synth_audit", "synth_budget"}
)


def reserved_schema(name: str) -> bool:
    """True for a schema name a staging load may not use (see RESERVED_SCHEMAS, pg_*, swaps)."""
    return name in RESERVED_SCHEMAS or name.startswith("pg_") or name.endswith(("__next", "__prev"))


class SourceConfig(_Model):
    url: str = "embedded:///bank_prod"
    db_schema: str = Field("public", alias="schema")
    tables: list[str] | None = None  # include list; None = every table of the schema
    exclude: list[str] = []


class TargetConfig(_Model):
    url: str = "embedded:///synth_staging"
    db_schema: str = Field("synth", alias="schema")

    @field_validator("db_schema")
    @classmethod
    def _safe(cls, v: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_]{0,40}$", v):
            raise ValueError(
                f"target schema {v!r} is not a safe identifier: use lowercase letters, digits "
                "and underscores (at most 41 characters)"
            )
        if reserved_schema(v):
            raise ValueError(
                f"target schema {v!r} is reserved ({', '.join(sorted(RESERVED_SCHEMAS))}, pg_*, "
                "*__next, *__prev): the load replaces the whole schema, so choose a name of its own "
                "such as synth"
            )
        return v


class PrivacyConfig(_Model):
    epsilon: float = 1.0
    delta: float = 1e-6
    # Row-level epsilon for reference tables (tables no unit owns, e.g. a merchant list): they hold
    # no unit's data, so they do not spend the unit budget; accounted and reported separately.
    reference_epsilon: float = 4.0
    annual_epsilon_cap: float = 4.0
    unit_table: str | None = None
    holdout_fraction: float = 0.10
    # Each privacy unit contributes at most this many rows of a (non-root) table to its
    # column measurements; the bound is part of the ledger.
    max_rows_per_unit: int = 8
    max_rows_per_unit_by_table: dict[str, int] = {}
    fanout_parents_per_unit: int = 4
    work_mem_mb: int = 256  # session work_mem / temp_buffers on the source while profiling
    # Identity of the source for the annual budget (default: its URL without credentials, and
    # the schema). Pin it when the same database is reached through several URLs.
    budget_key: str | None = None
    max_categories: int = 100
    # Bins of a numeric column whose rows are not estimated (bounds declared below), and the
    # widest integer range kept at one bin per value; otherwise the bins follow rows over noise.
    numeric_bins: int = 24
    # Exact values of a numeric column released as point masses (the most frequent that clear
    # the DP threshold), e.g. 0 for most rows or a few common prices.
    max_point_masses: int = 16
    max_fanout: int = 4096
    # Budget split (fractions of rho): counts and 1-way marginals, pair selection, pairs,
    # fan-out and temporal histograms, numeric/datetime bounds.
    split: dict[str, float] = {
        "bounds": 0.26,
        "one_way": 0.17,
        "select": 0.05,
        "pairs": 0.20,
        "fanout": 0.14,
        "temporal": 0.18,
    }

    @field_validator("epsilon")
    @classmethod
    def _eps(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"privacy.epsilon must be > 0 (got {v}); the default is 1.0")
        if v > 20:
            raise ValueError(f"privacy.epsilon = {v} gives no meaningful protection; use ≤ 20")
        return v

    @field_validator("reference_epsilon", "delta", "holdout_fraction")
    @classmethod
    def _ranges(cls, v: float, info: ValidationInfo) -> float:
        return _in_range("privacy", v, info)

    @model_validator(mode="after")
    def _split(self) -> PrivacyConfig:
        need = {"bounds", "one_way", "select", "pairs", "fanout", "temporal"}
        if set(self.split) != need or any(v <= 0 for v in self.split.values()):
            raise ValueError(f"privacy.split needs positive fractions for exactly {sorted(need)}")
        if abs(sum(self.split.values()) - 1.0) > 1e-6:
            raise ValueError(
                f"privacy.split fractions must add up to 1 (got {sum(self.split.values())})"
            )
        if self.annual_epsilon_cap < self.epsilon:
            raise ValueError(
                f"privacy.annual_epsilon_cap ({self.annual_epsilon_cap}) is below the epsilon of one "
                f"refresh ({self.epsilon}): no refresh could run"
            )
        return self

    def rows_per_unit(self, table: str) -> int:
        """Contribution bound for ``table``."""
        return int(self.max_rows_per_unit_by_table.get(table, self.max_rows_per_unit))


BANDS = {"dev": 5_000_000, "staging": 100_000_000, "perf": 300_000_000}  # rows in the largest table


class GenerationConfig(_Model):
    scale: float = 1.0
    # A band sizes the largest table (dev ~5M, staging ~100M, perf ~300M rows) and overrides scale.
    band: Literal["dev", "staging", "perf"] | None = None
    rows: dict[str, int] = {}  # explicit target rows for the root or reference tables
    shards: int | None = None  # default: 4, or chosen from the band (rows_per_shard per shard)
    rows_per_shard: int = 1_000_000

    @field_validator("rows_per_shard", "scale", "shards")
    @classmethod
    def _ranges(cls, v: float | None, info: ValidationInfo) -> float | None:
        return _in_range("generation", v, info)


K8S_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
K8S_TOKEN_FILE_ENV = "SYNTH_VAULT_K8S_TOKEN_FILE"
# Config keys that would hold a credential -> where that credential comes from instead.
_VAULT_CREDENTIALS = {
    "token": "export VAULT_TOKEN in the environment of the run instead",
    "role_id": "export VAULT_ROLE_ID in the environment of the run instead",
    "secret_id": "export VAULT_SECRET_ID in the environment of the run instead",
    "jwt": (
        "auth: kubernetes reads the service-account token from its file "
        f"({K8S_TOKEN_FILE}, or the path in ${K8S_TOKEN_FILE_ENV})"
    ),
}
_VAULT_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_VAULT_ROLE = re.compile(r"^\w([\w.@-]*\w)?$")  # Vault's own rule for role names


class VaultConfig(_Model):
    """Where the HMAC key and the sealed seeds live in Vault (KV v2). Credentials: env only."""

    url: str | None = None  # default $VAULT_ADDR
    mount: str = "secret"  # KV version 2 mount
    hmac_key_path: str = "synth_assets/hmac"  # field `key`: at least 32 bytes, hex
    seeds_path: str = "synth_assets/seeds"  # one entry per refresh id, written once (cas=0)
    # VAULT_TOKEN, VAULT_ROLE_ID + VAULT_SECRET_ID, or the pod's service-account token file
    auth: Literal["token", "approle", "kubernetes"] = "token"
    approle_mount: str = "approle"
    kubernetes_role: str | None = None  # the Vault role bound to the pod's service account
    kubernetes_mount: str = "kubernetes"
    namespace: str | None = None  # Vault Enterprise / HCP namespace
    ca_cert: str | None = None  # PEM bundle to verify Vault's TLS certificate
    timeout_seconds: float = 10.0
    retries: int = 3  # extra attempts for transient errors (connection, 429, 5xx other than sealed)
    backoff_seconds: float = 0.5  # doubled after every attempt, at most 30 s

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, instead in _VAULT_CREDENTIALS.items():
                if key in data:
                    raise ValueError(
                        f"secrets.vault.{key} must not be written in a config file: remove it; "
                        f"{instead}"
                    )
        return data

    @model_validator(mode="after")
    def _kubernetes_role(self) -> VaultConfig:
        """A role names which service accounts may log in; without auth: kubernetes it would be ignored."""
        if self.auth == "kubernetes" and not self.kubernetes_role:
            raise ValueError(
                "secrets.vault.auth is kubernetes but secrets.vault.kubernetes_role is not set: name "
                "the Vault role bound to the pod's service account (vault write "
                f"auth/{self.kubernetes_mount}/role/<name> bound_service_account_names=...)"
            )
        if self.auth != "kubernetes" and self.kubernetes_role is not None:
            raise ValueError(
                f"secrets.vault.kubernetes_role applies to auth: kubernetes only (auth is {self.auth}): "
                "remove it, or set secrets.vault.auth: kubernetes"
            )
        return self

    @field_validator("kubernetes_role")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        if v is not None and not _VAULT_ROLE.match(v):
            raise ValueError(
                f"secrets.vault.kubernetes_role {v!r} is not a Vault role name: letters, digits, "
                "'_', '-', '.' and '@', starting and ending with a letter or digit"
            )
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if "@" in v:  # never echo what may be a credential
            raise ValueError(
                "secrets.vault.url must not hold credentials: export VAULT_TOKEN instead"
            )
        if not re.match(r"^https?://[^/@\s]+/?$", v):
            raise ValueError(
                f"secrets.vault.url {v!r} must look like https://vault.example.com:8200 "
                "(scheme, host and port only, no path)"
            )
        return v.rstrip("/")

    @field_validator("mount", "hmac_key_path", "seeds_path", "approle_mount", "kubernetes_mount")
    @classmethod
    def _path(cls, v: str) -> str:
        if not _VAULT_PATH.match(v) or ".." in v.split("/"):
            raise ValueError(
                f"Vault path {v!r} is not valid: use segments of letters, digits, '_', '-' and '.' "
                "separated by '/', without leading or trailing '/'"
            )
        return v

    @field_validator("timeout_seconds", "retries", "backoff_seconds")
    @classmethod
    def _ranges(cls, v: float, info: ValidationInfo) -> float:
        return _in_range("secrets.vault", v, info)


class SecretsConfig(_Model):
    backend: Literal["local", "vault"] = "local"
    path: str | None = None  # local backend: default <workdir>/secrets
    vault: VaultConfig = VaultConfig()

    @model_validator(mode="after")
    def _backend_fields(self) -> SecretsConfig:
        if self.backend == "vault" and self.path is not None:
            raise ValueError(
                "secrets.path applies to the local backend only: remove it, or set secrets.backend: local"
            )
        return self


_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9!_.*'()/-]*)?$")


class ArtifactsConfig(_Model):
    store: str | None = None  # local directory or s3://bucket/prefix; default <workdir>/runs
    local: str | None = None  # working copy of an s3:// store; default <workdir>/runs
    sse: Literal["AES256", "aws:kms"] = "AES256"  # S3 server-side encryption of every object
    kms_key_id: str | None = (
        None  # with sse: aws:kms (key id, ARN or alias); default the AWS-managed key
    )
    endpoint_url: str | None = None  # S3-compatible endpoint (MinIO, LocalStack); default AWS
    region: str | None = None  # default from the AWS environment

    @field_validator("store")
    @classmethod
    def _store(cls, v: str | None) -> str | None:
        if v is not None and v.startswith("s3://"):
            if not _S3_URL.match(v.rstrip("/")) or "//" in v[5:].rstrip("/"):
                raise ValueError(
                    f"artifacts.store {v!r} is not a valid S3 location: use s3://bucket/prefix "
                    "(bucket: 3-63 lowercase letters, digits, '.' or '-')"
                )
            return v.rstrip("/")
        if v is not None and "://" in v:
            raise ValueError(f"artifacts.store {v!r}: use a local directory or s3://bucket/prefix")
        return v

    @model_validator(mode="after")
    def _s3_options(self) -> ArtifactsConfig:
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError("artifacts.kms_key_id needs artifacts.sse: aws:kms")
        if self.local is not None and not self.is_s3:
            raise ValueError(
                "artifacts.local names the working copy of an s3:// store; with a local "
                "store, set artifacts.store to the directory instead"
            )
        return self

    @property
    def is_s3(self) -> bool:
        """True when artifacts are published to S3."""
        return bool(self.store and self.store.startswith("s3://"))


class AuditConfig(_Model):
    """Where the hash-chained audit log lives (``synth_audit.events``)."""

    url: str | None = None  # default: the target database (target.url)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("embedded:///", "postgresql://", "postgres://")):
            raise ValueError(
                f"audit.url must be a PostgreSQL URL (postgresql://user@host/db) or embedded:///<db>, "
                f"not {v.split('://')[0] + '://…' if '://' in v else 'a bare string'}"
            )
        return v


class AutomationConfig(_Model):
    """Schedule and sensors (Dagster daemon)."""

    cron: str = "0 3 1 1,4,7,10 *"  # quarterly, 03:00 on the first day of the quarter
    timezone: str = "UTC"
    stale_after_days: int = 90  # staging older than this triggers a refresh
    overrides_file: str | None = None  # YAML with an `overrides:` mapping; a change regenerates

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(
                f"automation.cron {v!r} must have five fields (minute hour day month weekday)"
            )
        return v

    @field_validator("stale_after_days")
    @classmethod
    def _ranges(cls, v: int, info: ValidationInfo) -> int:
        return _in_range("automation", v, info)


# The valid range of every `gates:` key (the evaluator's GATE_SPECS name the same keys; a test
# keeps the two in step). Shares, AUCs, similarity scores and correlations are in [0, 1];
# ratios and counts are non-negative; autocorrelation differences are at most 2.
GATE_RANGES: dict[str, tuple[float, float]] = {
    "dcr_share_max": (0.0, 1.0),
    "nndr_ratio_min": (0.0, math.inf),
    "mia_auc_max": (0.0, 1.0),
    "exact_match_excess_max": (0.0, 1.0),
    "rare_combination_ratio_max": (0.0, math.inf),
    "identifier_overlap_max": (0.0, math.inf),
    "column_shapes_min": (0.0, 1.0),
    "fanout_similarity_min": (0.0, 1.0),
    "hour_of_week_corr_min": (0.0, 1.0),
    "pair_trends_min": (0.0, 1.0),
    "acf_diff_max": (0.0, 2.0),
    "null_rate_diff_max": (0.0, 1.0),
}


def _gate_problems(gates: dict[str, float | None]) -> list[str]:
    """One line per unknown gate key (with the closest known one) or out-of-range threshold."""
    problems = []
    for key, value in gates.items():
        if key not in GATE_RANGES:
            close = difflib.get_close_matches(key, GATE_RANGES, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(GATE_RANGES)}"
            problems.append(f"gates.{key} is not a gate ({hint})")
            continue
        lo, hi = GATE_RANGES[key]
        if value is not None and not lo <= value <= hi:
            span = f"[{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g}"
            problems.append(
                f"gates.{key} = {value:g} is out of range: use a value in {span}, or null to "
                "measure without gating"
            )
    return problems


class SynthConfig(_Model):
    source: SourceConfig = SourceConfig()
    target: TargetConfig = TargetConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    generation: GenerationConfig = GenerationConfig()
    secrets: SecretsConfig = SecretsConfig()
    artifacts: ArtifactsConfig = ArtifactsConfig()
    audit: AuditConfig = AuditConfig()
    automation: AutomationConfig = AutomationConfig()
    # "table.column": role, e.g. {"transactions.memo": "free_text"}
    columns: dict[str, str] = {}
    # "table.column": [low, high] bounds for numeric columns, or [first, last] dates for a
    # datetime column (public knowledge: no budget spent on the range then)
    bounds: dict[str, tuple[float, float] | tuple[date, date]] = {}
    gates: dict[str, float | None] = {}  # null: measure and report, do not gate
    # What the user declares public (spends no budget): public.values {"t.c": [v, ...]} is a
    # categorical column's domain (a product or country list); its frequencies stay DP.
    # public.tables [t, ...] are reference tables (a geography, a catalogue) copied as they are:
    # keys and values verbatim, PII-role columns still synthesized.
    public: dict[str, Any] = {}
    # Post-processing overrides applied when the spec is calibrated (no budget spent):
    #   rows: {table: n}, categorical: {"t.c": {value: weight}}, null_rate: {"t.c": share}
    overrides: dict[str, dict[str, Any]] = {}

    @field_validator("gates")
    @classmethod
    def _gates(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        problems = _gate_problems(v)
        if problems:
            raise ValueError("\n".join(problems))
        return v

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = set(v) - {"rows", "categorical", "null_rate"}
        if unknown:
            raise ValueError(
                f"overrides: unknown section(s) {sorted(unknown)}; use rows, categorical, null_rate"
            )
        problems = []
        for sec in ("null_rate", "categorical"):
            problems += [
                f"overrides.{sec} key {key!r} must be 'table.column'"
                for key in v.get(sec, {})
                if not isinstance(key, str) or key.count(".") != 1
            ]
        for key, share in v.get("null_rate", {}).items():
            if not (_number(share) and 0 <= share <= 1):
                problems.append(f"overrides.null_rate[{key!r}] = {share} must be between 0 and 1")
        for key, weights in v.get("categorical", {}).items():
            if (
                not isinstance(weights, dict)
                or not weights
                or not all(_number(w) and w >= 0 for w in weights.values())
            ):
                problems.append(
                    f"overrides.categorical[{key!r}] must map values to finite, non-negative weights"
                )
        for key, n in v.get("rows", {}).items():
            if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
                problems.append(
                    f"overrides.rows[{key!r}] = {n} must be a whole number of at least 1"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return v

    @field_validator("public")
    @classmethod
    def _public(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = set(v) - {"values", "tables"}
        if unknown:
            raise ValueError(f"public: unknown section(s) {sorted(unknown)}; use values, tables")
        tables = v.get("tables", [])
        if not isinstance(tables, list) or not all(isinstance(t, str) and t for t in tables):
            raise ValueError("public.tables must be a list of table names")
        for key, values in v.get("values", {}).items():
            if key.count(".") != 1:
                raise ValueError(f"public.values key {key!r} must be 'table.column'")
            if not isinstance(values, list) or not values:
                raise ValueError(f"public.values[{key!r}] must be a non-empty list of values")
        return v

    def audit_url(self) -> str:
        """The database holding the budget ledger and the audit log: ``audit.url``, else the
        target's (one rule for every caller)."""
        return self.audit.url or self.target.url

    def public_tables(self) -> list[str]:
        """Tables declared public: copied verbatim, no budget."""
        return list(self.public.get("tables", []))

    def public_values(self, table: str, column: str) -> list[str] | None:
        """The declared public domain of a column, as text (None when not declared)."""
        vals = self.public.get("values", {}).get(f"{table}.{column}")
        return [str(x) for x in vals] if vals else None

    @field_validator("columns")
    @classmethod
    def _roles(cls, v: dict[str, str]) -> dict[str, str]:
        for key, role in v.items():
            if key.count(".") != 1:
                raise ValueError(f"columns key {key!r} must be 'table.column'")
            if role not in ROLE_NAMES:
                raise ValueError(
                    f"columns[{key!r}] = {role!r} is not a role; use one of {', '.join(ROLE_NAMES)}"
                )
        return v

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, v: dict[str, tuple]) -> dict[str, tuple]:
        for key, (lo, hi) in v.items():
            if key.count(".") != 1:
                raise ValueError(f"bounds key {key!r} must be 'table.column'")
            if not lo < hi:
                raise ValueError(f"bounds[{key!r}] = [{lo}, {hi}]: low must be below high")
        return v

    def table_names_mentioned(self) -> set[str]:
        """Every table the config names, to check against the reflected schema."""
        names = set(self.source.tables or []) | set(self.source.exclude)
        names |= {
            k.split(".")[0] for k in (*self.columns, *self.bounds, *self.public.get("values", {}))
        }
        names |= set(self.public_tables())
        names |= set(self.privacy.max_rows_per_unit_by_table) | set(self.generation.rows)
        names |= set(self.overrides.get("rows", {}))
        names |= {
            k.split(".")[0]
            for sec in ("categorical", "null_rate")
            for k in self.overrides.get(sec, {})
        }
        if self.privacy.unit_table:
            names.add(self.privacy.unit_table)
        return names

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _number(x: Any) -> bool:
    """A finite int or float (not a bool, not a string)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _format_validation(exc: ValidationError, origin: str) -> str:
    """One line per problem; of a union's alternatives (bounds: numbers or dates), the first."""
    lines: list[str] = []
    branch: dict[tuple, str] = {}  # union location -> the branch whose errors are reported
    for err in exc.errors():
        raw = [str(p) for p in err["loc"]]
        tag = next((i for i, p in enumerate(raw) if "[" in p), None)  # e.g. "tuple[float, float]"
        if tag is not None and branch.setdefault(tuple(raw[:tag]), raw[tag]) != raw[tag]:
            continue
        loc = ".".join(p for p in raw if "[" not in p) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against the README's synth.yaml reference)"
        elif err["type"] == "finite_number":
            msg = f"must be a finite number (got {err['input']})"
        # A validator that found several problems reports one per line, each naming its key.
        lines += [m if m.startswith(f"{loc}.") else f"{loc}: {m}" for m in msg.split("\n")]
    if len(lines) == 1:
        return f"invalid configuration in {origin}: {lines[0]}"
    return f"invalid configuration in {origin} ({len(lines)} problems):\n  - " + "\n  - ".join(
        lines
    )


def parse_config(data: dict[str, Any] | None, origin: str = "synth.yaml") -> SynthConfig:
    """Validate a configuration mapping; raise ConfigError naming every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin} must hold a YAML mapping at the top level, not {type(data).__name__}"
        )
    try:
        return SynthConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, origin)) from None


def _duplicate_keys(node: yaml.Node | None) -> list[str]:
    """Every key written twice in one mapping, with its dotted path and both lines.

    PyYAML keeps the last of two equal keys without a word (`epsilon: 1` then `epsilon: 3`
    spends 3), so the composed node tree is checked before the document is constructed.
    """
    found: list[tuple[int, str]] = []
    todo: list[tuple[yaml.Node | None, str]] = [(node, "")]
    seen: set[int] = set()
    while todo:
        n, where = todo.pop()
        if n is None or id(n) in seen:  # aliases share nodes; anchors may recurse
            continue
        seen.add(id(n))
        if isinstance(n, yaml.SequenceNode):
            todo += [(item, f"{where}[{i}]") for i, item in enumerate(n.value)]
        elif isinstance(n, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in n.value:
                if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
                    continue
                name = f"{where}.{key.value}" if where else str(key.value)
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    found.append(
                        (
                            line,
                            f"duplicate key {name} at line {line} (first at line "
                            f"{first[(key.tag, key.value)]}): YAML would keep only the last value; "
                            "remove one",
                        )
                    )
                else:
                    first[(key.tag, key.value)] = line
                todo.append((value, name))
    return [m for _, m in sorted(found)]


def read_yaml(p: Path) -> Any:
    """A YAML file's content, refusing invalid YAML and duplicate keys with their lines."""
    try:
        text = p.read_text()
        problems = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if len(problems) == 1:
        raise ConfigError(f"{p}: {problems[0]}")
    if problems:
        raise ConfigError(f"{p} ({len(problems)} problems):\n  - " + "\n  - ".join(problems))
    return data


def default_config_path() -> str | None:
    """``$SYNTH_CONFIG``, else ``./synth.yaml`` when it exists, else None (the defaults): the
    CLI and the UI find the same file, so they apply the same gates and caps."""
    env = os.environ.get("SYNTH_CONFIG")
    if env:
        return env
    return "synth.yaml" if Path("synth.yaml").is_file() else None


# Database URLs from the environment (a Kubernetes Secret, a CI variable): each overrides the
# URL in synth.yaml, so a password never has to be written in a file or a ConfigMap.
URL_ENV = {
    "SYNTH_SOURCE_URL": ("source", "url"),
    "SYNTH_TARGET_URL": ("target", "url"),
    "SYNTH_AUDIT_URL": ("audit", "url"),
}
DEPLOYMENTS = ("local", "kubernetes")


def deployment() -> str:
    """Where this process runs, from ``$SYNTH_DEPLOYMENT``: ``local`` (the default: one machine,
    embedded databases allowed) or ``kubernetes`` (steps in their own pods: preflight refuses
    anything a pod would keep to itself, and Dagster runs steps with the k8s_job_executor)."""
    v = os.environ.get("SYNTH_DEPLOYMENT", "").strip() or "local"
    if v not in DEPLOYMENTS:
        raise ConfigError(
            f"SYNTH_DEPLOYMENT={v!r} is not a deployment: use one of {', '.join(DEPLOYMENTS)} "
            "(unset means local)"
        )
    return v


def with_env_urls(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the database URLs the environment sets (``URL_ENV``) put in place."""
    out = dict(data)
    for env, (section, key) in URL_ENV.items():
        url = os.environ.get(env, "").strip()
        if url:
            block = out.get(section)
            out[section] = {**(block if isinstance(block, dict) else {}), key: url}
    return out


def load_config(path: str | Path | None) -> SynthConfig:
    """Read and validate ``synth.yaml`` (``None``: the defaults), with the database URLs that
    the environment sets (``URL_ENV``) in place of the file's."""
    if path is None:
        return parse_config(with_env_urls({}), "the defaults and the environment")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"config file {p} does not exist: pass --config with the path of your synth.yaml"
        )
    data = read_yaml(p)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return parse_config(data, str(p))  # refused there, naming the file
    return parse_config(with_env_urls(data), str(p))


def is_identifier(name: str) -> bool:
    """True for a plain SQL identifier."""
    return bool(_IDENT.match(name))


def with_overrides_file(cfg: SynthConfig) -> SynthConfig:
    """Merge `automation.overrides_file` (YAML: an `overrides:` mapping) into the config's overrides."""
    path = cfg.automation.overrides_file
    if not path:
        return cfg
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"automation.overrides_file {p} does not exist: create it or remove the setting"
        )
    data = read_yaml(p) or {}
    extra = data.get("overrides", data) if isinstance(data, dict) else None
    if not isinstance(extra, dict):
        raise ConfigError(f"{p} must hold a mapping (optionally under `overrides:`)")
    merged = {k: {**cfg.overrides.get(k, {}), **v} for k, v in extra.items()}
    merged = {**cfg.overrides, **merged}
    return parse_config({**cfg.to_json(), "overrides": merged}, str(p))
