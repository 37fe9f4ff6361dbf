"""Secrets backends: the HMAC key and sealed master seeds. Fail closed, never fall back."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as _os_secrets
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from .errors import SecretsError
from .store import write_private

SEED_BYTES = 32
_AUDIT_PURPOSE = b"synth_assets/audit/v1"


class KeyVersionUnavailable(SecretsError):
    """A key version an artifact names is gone (replaced or deleted): what it signed cannot be verified."""


@dataclass(frozen=True)
class Secret:
    """A secret value and the version the backend stored it under."""

    value: bytes
    version: str


class SecretsBackend(ABC):
    """Where keys and seeds live. Implementations raise SecretsError, never return a default."""

    name: str

    @abstractmethod
    def hmac_key(self) -> Secret:
        """The keyed-hash key (holdout selection, identifier overlap, signatures)."""

    @abstractmethod
    def seal_seed(self, refresh_id: str, seed: bytes) -> str:
        """Store a refresh's master seed; return its version. Refuse to overwrite."""

    @abstractmethod
    def unseal_seed(self, refresh_id: str) -> Secret:
        """The sealed master seed of a refresh."""

    def describe(self) -> dict[str, str]:
        return {"backend": self.name}

    def hmac_key_at(self, version: str) -> Secret:
        """The HMAC key as it was at ``version`` (to verify what an older key signed)."""
        key = self.hmac_key()
        if key.version != version:
            raise KeyVersionUnavailable(
                f"HMAC key version {version} is not available from the {self.name} secrets backend "
                f"(current version {key.version}): the key was replaced after that artifact was signed"
            )
        return key

    def check_ready(self) -> None:
        """Preflight: everything a refresh needs from the backend is reachable and permitted."""
        self.hmac_key()

    def audit_key(self) -> Secret:
        """The audit log's HMAC key: a purpose-bound subkey of the HMAC key, same version.

        Derived rather than stored apart so that `synth-assets init` (or Vault's key and its
        versions) provisions it with nothing new to create, and rotates with the HMAC key.
        """
        return derive_audit_key(self.hmac_key())

    def audit_key_at(self, version: str) -> Secret:
        """The audit key as it was at ``version`` (to verify events signed before a rotation)."""
        return derive_audit_key(self.hmac_key_at(version))


def new_master_seed() -> bytes:
    """Fresh master entropy from the OS CSPRNG (never the clock, never a global RNG)."""
    return _os_secrets.token_bytes(SEED_BYTES)


def seed_commitment(seed: bytes) -> str:
    """SHA-256 commitment of a seed: what the audit trail records instead of the seed."""
    return hashlib.sha256(seed).hexdigest()


def derive_audit_key(key: Secret) -> Secret:
    """HMAC-SHA256(key, "synth_assets/audit/v1"): never the key used for holdout or signatures."""
    return Secret(hmac.new(key.value, _AUDIT_PURPOSE, hashlib.sha256).digest(), key.version)


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a string value, hex (one-shot ``hmac.digest``: no HMAC object per value)."""
    return hmac.digest(key, value.encode(), "sha256").hex()


class LocalSecrets(SecretsBackend):
    """Development backend: files under a 0700 directory, created only by `synth-assets init`."""

    name = "local"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def key_file(self) -> Path:
        return self.path / "hmac.key"

    def _exists(self, p: Path) -> bool:
        """Whether ``p`` exists; a directory this user cannot traverse is a SecretsError naming
        it (not a traceback)."""
        try:
            return p.exists()
        except OSError as exc:
            raise SecretsError(
                f"cannot reach {p}: {exc.strerror}. The secrets directory {self.path} must be "
                "owned by the user running synth-assets, mode 0700"
            ) from None

    def _check_private(self, p: Path) -> None:
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            raise SecretsError(
                f"{p} is readable by other users (mode {oct(mode)}): run `chmod 600 {p}` "
                "or re-create it with `synth-assets init`"
            )

    def hmac_key(self) -> Secret:
        p = self.key_file
        if not self._exists(p):
            raise SecretsError(
                f"the HMAC key file {p} does not exist. Create it explicitly with "
                f"`synth-assets init --workdir {self.path.parent}` (nothing is generated implicitly)."
            )
        try:
            self._check_private(p)
            raw = p.read_text().strip()
        except OSError as exc:
            raise SecretsError(f"cannot read the HMAC key file {p}: {exc.strerror}") from None
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            raise SecretsError(
                f"{p} does not hold a hex key: re-create it with `synth-assets init --force`"
            ) from None
        if len(key) < 32:
            raise SecretsError(
                f"{p} holds a key shorter than 32 bytes: re-create it with `synth-assets init --force`"
            )
        return Secret(key, version=hashlib.sha256(key).hexdigest()[:12])

    def seal_seed(self, refresh_id: str, seed: bytes) -> str:
        self.hmac_key()  # the backend must be initialised before any refresh uses it
        d = self.path / "seeds"
        p = d / f"{refresh_id}.seed"
        try:
            d.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SecretsError(
                f"a seed is already sealed for refresh {refresh_id}; seeds are never overwritten"
            ) from None
        except OSError as exc:
            raise SecretsError(f"cannot seal the seed in {d}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(seed.hex())
        return "1"

    def unseal_seed(self, refresh_id: str) -> Secret:
        p = self.path / "seeds" / f"{refresh_id}.seed"
        if not self._exists(p):
            raise SecretsError(
                f"no sealed seed for refresh {refresh_id} in {p.parent}: the refresh was not "
                "profiled with this secrets backend, or its seed was removed"
            )
        self._check_private(p)
        try:
            return Secret(bytes.fromhex(p.read_text().strip()), version="1")
        except (OSError, ValueError) as exc:
            raise SecretsError(f"cannot read the sealed seed {p}: {exc}") from None

    def describe(self) -> dict[str, str]:
        return {"backend": self.name, "path": str(self.path)}


def init_local_secrets(path: str | Path, *, force: bool = False) -> tuple[Path, bool]:
    """Create the local key file (mode 0600). Returns (path, created). Never overwrites unless forced."""
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    key_file = d / "hmac.key"
    if key_file.exists() and not force:
        return key_file, False
    write_private(key_file, _os_secrets.token_bytes(32).hex() + "\n")
    return key_file, True


def backend_from_config(secrets_cfg, workdir: str | Path) -> SecretsBackend:
    """The configured backend (`local` or `vault`); never a fallback from one to the other."""
    if secrets_cfg.backend == "local":
        return LocalSecrets(secrets_cfg.path or Path(workdir) / "secrets")
    if secrets_cfg.backend == "vault":
        from .vault import VaultSecrets

        return VaultSecrets(secrets_cfg.vault)
    raise SecretsError(f"unknown secrets backend {secrets_cfg.backend!r}")


def init_backend(secrets_cfg, workdir: str | Path, *, force: bool = False) -> str:
    """Create the HMAC key of the configured backend explicitly; return what was done."""
    if secrets_cfg.backend == "vault":
        from .vault import init_vault_secrets

        version, created = init_vault_secrets(secrets_cfg.vault, force=force)
        where = f"{secrets_cfg.vault.mount}/{secrets_cfg.vault.hmac_key_path}"
        return f"{'created' if created else 'kept existing'} HMAC key in Vault at {where} (version {version})"
    path = Path(secrets_cfg.path or Path(workdir) / "secrets")
    key_file, created = init_local_secrets(path, force=force)
    return f"{'created' if created else 'kept existing'} HMAC key {key_file} (mode 0600)"
