"""Audit keys and signers: the HMAC key an event names, the signer that holds a configuration's
key and anchor paths, and the signers bound to audit databases in this process."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from synth_assets.core.errors import SynthError
from synth_assets.core.pg import redact
from synth_assets.core.secrets import KeyVersionUnavailable, SecretsBackend
from synth_assets.core.store import RefreshPaths

from .errors import AuditError, AuditKeyUnavailable

ANCHOR_DIR = "audit"  # under the work directory
REFRESH_ANCHOR = RefreshPaths.ANCHOR  # in a refresh's directory of the store


@dataclass(frozen=True)
class AuditKey:
    """An audit key and the backend version it derives from (the key never leaves this object)."""

    value: bytes = field(repr=False)
    version: str

    @property
    def key_id(self) -> str:
        """``<backend key version>:<first 12 hex of SHA-256 of the audit key>``: names, never reveals."""
        return f"{self.version}:{hashlib.sha256(self.value).hexdigest()[:12]}"

    def mac(self, body: bytes) -> str:
        """HMAC-SHA256 of ``body`` under this key, hex."""
        return hmac.new(self.value, body, hashlib.sha256).hexdigest()


# Every audit key this process loaded from a secrets backend, by key id: lets verify_chain(url)
# without a signer check a log written by several configurations of this process (the tests).
_KNOWN_KEYS: dict[str, AuditKey] = {}


class AuditSigner:
    """Signs and anchors events for one configuration: its secrets backend's audit key, the work
    directory's anchor directory and the refresh store (both optional, e.g. in unit tests)."""

    def __init__(
        self,
        secrets: SecretsBackend,
        anchor_dir: str | Path | None = None,
        store_root: str | Path | None = None,
    ):
        self.secrets = secrets
        self.anchor_dir = Path(anchor_dir) if anchor_dir is not None else None
        self.store_root = Path(store_root) if store_root is not None else None
        self._keys: dict[str, AuditKey] = {}
        self._current: AuditKey | None = None

    @classmethod
    def for_config(cls, cfg: Any, workdir: str | Path) -> AuditSigner:
        """The signer of a configuration: its secrets backend, ``<workdir>/audit`` and its store."""
        from synth_assets.core.secrets import backend_from_config
        from synth_assets.core.store import store_for

        work = Path(workdir).expanduser().resolve()
        return cls(
            backend_from_config(cfg.secrets, work), work / ANCHOR_DIR, store_for(cfg, work).root
        )

    def key(self) -> AuditKey:
        """The current audit key; a missing key raises the backend's SecretsError (fail closed)."""
        if self._current is None:
            secret = self.secrets.audit_key()
            self._current = self._remember(AuditKey(secret.value, secret.version))
        return self._current

    def key_for(self, key_id: str) -> AuditKey:
        """The audit key an event names, from this signer's backend only (older versions too)."""
        if key_id in self._keys:
            return self._keys[key_id]
        current = self.key()
        if key_id == current.key_id:
            return current
        version = key_id.rpartition(":")[0]
        where = f"the {self.secrets.name} secrets backend"
        try:
            secret = self.secrets.audit_key_at(version)
        except KeyVersionUnavailable:
            raise AuditKeyUnavailable(
                f"{where} cannot provide audit key {key_id} (it holds {current.key_id}): the log was "
                "written with another secrets backend or work directory (pass the right --workdir/"
                "--config), or the key was replaced since (`synth-assets init --force`)"
            ) from None
        got = AuditKey(secret.value, secret.version)
        if got.key_id != key_id:
            raise AuditKeyUnavailable(
                f"version {version} of the audit key in {where} is {got.key_id}, not {key_id}: "
                "the log was signed with another key"
            )
        return self._remember(got)

    def _remember(self, key: AuditKey) -> AuditKey:
        self._keys[key.key_id] = key
        _KNOWN_KEYS[key.key_id] = key
        return key

    def anchor_path(self, database: str) -> Path | None:
        """The work directory's anchor file of one audit database (None without an anchor dir)."""
        if self.anchor_dir is None:
            return None
        tag = hashlib.sha256(database.encode()).hexdigest()[:16]
        return self.anchor_dir / f"anchor-{tag}.json"

    def refresh_anchor_path(self, refresh_id: str | None) -> Path | None:
        """``<store>/<rid>/audit-anchor.json`` while that refresh exists and is unpublished."""
        if not refresh_id or self.store_root is None:
            return None
        from synth_assets.core.store import check_refresh_id

        try:
            paths = RefreshPaths(self.store_root / check_refresh_id(refresh_id))
        except SynthError:
            return None
        # A published refresh is immutable: no anchor is written into it.
        if not paths.root.is_dir() or paths.signed_manifest.exists():
            return None
        return paths.anchor


# Signers bound to audit databases in this process (by host, port, database), and the default.
_BOUND: dict[tuple[str, str, str], AuditSigner] = {}
_DEFAULT: list[AuditSigner] = []


def _url_key(url: str) -> tuple[str, str, str]:
    try:
        d = conninfo_to_dict(url)
    except psycopg.Error:
        return ("", "", url)
    return (str(d.get("host") or ""), str(d.get("port") or "5432"), str(d.get("dbname") or ""))


def bind_audit_log(signer: AuditSigner, url: str | None = None) -> None:
    """Sign every event this process appends to the audit log at ``url`` with ``signer``.

    Core code that knows only a URL or a connection (loader, teardown, release) then signs with
    the configured key. The last signer bound is also the process default for unbound databases:
    one process serves one configuration (the CLI, a Dagster code server or step process).
    """
    if url is not None:
        _BOUND[_url_key(url)] = signer
    _DEFAULT[:] = [signer]


def bound_signer(
    url: str | None = None, conn: psycopg.Connection | None = None
) -> AuditSigner | None:
    """The signer bound to the database of ``url`` or ``conn``, else the process default."""
    if url is not None and _url_key(url) in _BOUND:
        return _BOUND[_url_key(url)]
    if conn is not None:
        info = conn.info
        key = (str(info.host or ""), str(info.port or "5432"), str(info.dbname or ""))
        if key in _BOUND:
            return _BOUND[key]
        for (host, port, db), signer in _BOUND.items():
            if not host and (port, db) == key[1:]:
                return signer
    return _DEFAULT[0] if _DEFAULT else None


def _require_signer(
    signer: AuditSigner | None, url: str | None, conn: psycopg.Connection | None, what: str
) -> AuditSigner:
    signer = signer or bound_signer(url, conn)
    if signer is None:
        where = redact(url) if url else "this connection"
        raise AuditError(
            f"refusing to {what} the audit log at {where}: no audit key is configured in this "
            "process. The log is keyed (HMAC under the secrets backend's audit key) and never "
            "written unkeyed: pass signer=AuditSigner.for_config(cfg, workdir) or call "
            "bind_audit_log(signer, url) first"
        )
    return signer
