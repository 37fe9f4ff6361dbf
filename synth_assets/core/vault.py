"""HashiCorp Vault secrets backend (KV v2): the HMAC key and the sealed master seeds.

Fails closed with one message per cause (unreachable, sealed, permission denied, path
missing, wrong engine version). Transient errors (connection failures, timeouts, 429 and 5xx
other than "sealed") are retried a bounded number of times with exponential backoff; there is
never a fallback to another backend, another auth method or a weaker seed. Credentials come
only from the environment (``VAULT_TOKEN``, or ``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID``) or, for
Kubernetes auth, the pod's service-account token file; they never appear in an error message,
a log line or a file.
"""

from __future__ import annotations

import os
import re
import secrets as _os_secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.exceptions as hx
import requests

from .config import K8S_TOKEN_FILE, K8S_TOKEN_FILE_ENV
from .errors import SecretsError
from .secrets import KeyVersionUnavailable, Secret, SecretsBackend

T = TypeVar("T")
MIN_KEY_BYTES = 32
MIN_SEED_BYTES = 16
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_MAX_BACKOFF = 30.0


_STATUS = {
    hx.InternalServerError: "HTTP 500",
    hx.BadGateway: "HTTP 502",
    hx.RateLimitExceeded: "HTTP 429",
}


def _redact(url: str) -> str:
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


def _first_error(exc: hx.VaultError) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)[:300]
    return (str(errors) if errors else "no detail")[:300]


class SecretMissing(SecretsError):
    """Nothing is stored at a Vault path the configuration names."""


class VaultSecrets(SecretsBackend):
    """Keys and seeds in a KV v2 engine; token, AppRole or Kubernetes auth; fail closed."""

    name = "vault"

    def __init__(
        self,
        cfg: Any,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cfg = cfg
        self._env = os.environ if env is None else env
        url = cfg.url or self._env.get("VAULT_ADDR")
        if not url:
            raise SecretsError(
                "secrets.backend is vault but no Vault address is set: put secrets.vault.url in "
                "synth.yaml (e.g. https://vault.example.com:8200) or export VAULT_ADDR"
            )
        self.url = url.rstrip("/")
        # Like VAULT_ADDR for the url: the Vault CLI's variable, used only when the config is silent.
        self.namespace: str | None = cfg.namespace or self._env.get("VAULT_NAMESPACE") or None
        self._sleep = sleep
        self._client: hvac.Client | None = None
        self._engine_checked = False

    # ---- plumbing ---------------------------------------------------------------------------

    def _where(self) -> str:
        return f"Vault at {_redact(self.url)}"

    def _sealed(self, client: hvac.Client) -> bool:
        try:
            return bool(client.sys.read_seal_status().get("sealed"))
        except Exception:  # noqa: BLE001 - a failing status probe means "not known to be sealed"
            return False

    def _token_invalid(self, client: hvac.Client) -> bool:
        if not client.adapter.token:
            return False
        try:
            client.adapter.get("/v1/auth/token/lookup-self")
        except hx.Forbidden:
            return True
        except Exception:  # noqa: BLE001 - the probe only refines the message
            return False
        return False

    def _call(
        self,
        what: str,
        fn: Callable[[], T],
        client: hvac.Client,
        *,
        missing: str | None = None,
        denied: str | None = None,
        bad_request: Callable[[str], str | None] | None = None,
        missing_cls: type[SecretsError] = SecretsError,
    ) -> T:
        """Run one Vault request with bounded retries; translate every failure to SecretsError."""
        attempts = self.cfg.retries + 1
        last = ""
        for attempt in range(attempts):
            try:
                return fn()
            except requests.exceptions.SSLError:
                raise SecretsError(
                    f"TLS verification of {self._where()} failed ({what}): point secrets.vault.ca_cert "
                    "or VAULT_CACERT at the CA bundle that signed Vault's certificate"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"unreachable ({type(exc).__name__})"
            except hx.VaultDown as exc:
                if "sealed" in _first_error(exc).lower() or self._sealed(client):
                    raise SecretsError(
                        f"{self._where()} is sealed ({what}): unseal it (`vault operator unseal`) "
                        "and re-run; nothing was written"
                    ) from None
                last = "unavailable (HTTP 503)"
            except (
                hx.InternalServerError,
                hx.BadGateway,
                hx.RateLimitExceeded,
                hx.UnexpectedError,
            ) as exc:
                last = f"failing ({_STATUS.get(type(exc), 'unexpected HTTP status')}: {_first_error(exc)})"
            except (hx.Forbidden, hx.Unauthorized):
                if self._token_invalid(client):
                    raise SecretsError(
                        f"permission denied by {self._where()} for {what}: the {self._auth_name()} is not "
                        "a valid token (expired, revoked or mistyped); export a fresh one"
                    ) from None
                raise SecretsError(
                    f"permission denied by {self._where()} for {what}: "
                    + (denied or f"the {self._auth_name()} lacks a policy granting it")
                ) from None
            except hx.InvalidPath:
                raise missing_cls(
                    missing or f"{self._where()} has nothing at the path of {what}"
                ) from None
            except hx.VaultNotInitialized:
                raise SecretsError(
                    f"{self._where()} is not initialized (`vault operator init`)"
                ) from None
            except hx.InvalidRequest as exc:
                detail = _first_error(exc)
                msg = bad_request(detail) if bad_request else None
                raise SecretsError(msg or f"{self._where()} rejected {what}: {detail}") from None
            except hx.VaultError as exc:
                raise SecretsError(f"{self._where()} refused {what}: {_first_error(exc)}") from None
            if attempt + 1 < attempts:
                self._sleep(min(self.cfg.backoff_seconds * 2**attempt, _MAX_BACKOFF))
        raise SecretsError(
            f"{self._where()} is {last} after {attempts} attempt(s) ({what}): check secrets.vault.url "
            "or VAULT_ADDR, the network path and that Vault is running; no other backend is tried"
        )

    def _auth_name(self) -> str:
        if self.cfg.auth == "approle":
            return f"AppRole token (auth/{self.cfg.approle_mount})"
        if self.cfg.auth == "kubernetes":
            return f"Kubernetes auth token (auth/{self.cfg.kubernetes_mount}, role {self.cfg.kubernetes_role})"
        return "token in VAULT_TOKEN"

    def _env_value(self, name: str) -> str:
        value = self._env.get(name, "")
        if not value.strip():
            how = (
                "token auth"
                if name == "VAULT_TOKEN"
                else f"AppRole auth (auth/{self.cfg.approle_mount})"
            )
            raise SecretsError(
                f"secrets.vault uses {how} but {name} is not set: export {name} in the environment "
                "of the run (credentials are never read from synth.yaml)"
            )
        return value.strip()

    def _hvac(self, token: str) -> hvac.Client:
        # token="" (not None) for a login: hvac would otherwise pick up VAULT_TOKEN or ~/.vault-token.
        c = self.cfg
        return hvac.Client(
            url=self.url,
            token=token,
            verify=c.ca_cert,
            timeout=c.timeout_seconds,
            namespace=self.namespace,
        )

    def client(self) -> hvac.Client:
        """An authenticated client (AppRole and Kubernetes log in once per backend object)."""
        if self._client is not None:
            return self._client
        auth = self.cfg.auth
        if auth == "token":
            client = self._hvac(self._env_value("VAULT_TOKEN"))
        elif auth == "approle":
            client = self._approle_login()
        elif auth == "kubernetes":
            client = self._kubernetes_login()
        else:  # never guess another method
            raise SecretsError(
                f"secrets.vault.auth {auth!r} is not supported: use token, approle or kubernetes"
            )
        self._client = client
        return client

    def _approle_login(self) -> hvac.Client:
        c = self.cfg
        role_id = self._env_value("VAULT_ROLE_ID")
        secret_id = self._env_value("VAULT_SECRET_ID")
        client = self._hvac("")
        what = f"the AppRole login at auth/{c.approle_mount}"
        denied = (
            "check VAULT_ROLE_ID and VAULT_SECRET_ID (the secret id may have expired or reached "
            "its use limit)"
        )
        self._call(
            what,
            lambda: client.auth.approle.login(
                role_id=role_id,
                secret_id=secret_id,
                mount_point=c.approle_mount,
                use_token=True,
            ),
            client,
            missing=f"{self._where()} has no AppRole auth method at auth/{c.approle_mount}: "
            "enable it (`vault auth enable approle`) or set secrets.vault.approle_mount",
            denied=denied,
            bad_request=lambda _detail: (
                f"permission denied by {self._where()} for {what}: {denied}"
            ),
        )
        return client

    def _kubernetes_jwt(self) -> str:
        """The pod's service-account token, read at login (Kubernetes rotates the file)."""
        path = self._env.get(K8S_TOKEN_FILE_ENV, "").strip() or K8S_TOKEN_FILE
        jwt = ""
        try:
            jwt = Path(path).read_text(encoding="utf-8").strip()
            problem = "is empty"
        except FileNotFoundError:
            problem = "does not exist"
        except PermissionError:
            problem = "is not readable by this process"
        except IsADirectoryError:
            problem = "is a directory"
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"cannot be read ({type(exc).__name__})"
        if jwt:
            return jwt
        c = self.cfg
        raise SecretsError(
            f"secrets.vault uses Kubernetes auth (auth/{c.kubernetes_mount}, role "
            f"{c.kubernetes_role}) but the service-account token file {path} {problem} "
            f"(${K8S_TOKEN_FILE_ENV} overrides the path): not running in a pod with a service "
            "account? mount one or use auth: token"
        )

    def _kubernetes_login(self) -> hvac.Client:
        """Exchange the service-account JWT for a Vault token, exactly as the AppRole login does."""
        c = self.cfg
        role, mount = c.kubernetes_role, c.kubernetes_mount
        jwt = self._kubernetes_jwt()  # before any request: a missing file is refused offline
        client = self._hvac("")
        what = f"the Kubernetes login at auth/{mount} (role {role})"
        denied = (
            f"the role {role} does not bind this service account: add the pod's service account "
            f"and namespace to bound_service_account_names/bound_service_account_namespaces of "
            f"auth/{mount}/role/{role}, or set secrets.vault.kubernetes_role to the role that does "
            f"(Vault answers the same to a token it cannot verify, see auth/{mount}/config, and to "
            "a mount with no Kubernetes auth method, see secrets.vault.kubernetes_mount)"
        )

        def bad_request(detail: str) -> str:
            if "invalid role name" in detail:
                return (
                    f"{self._where()} has no role {role} at auth/{mount}: create it "
                    f"(`vault write auth/{mount}/role/{role} ...`) or fix secrets.vault.kubernetes_role"
                )
            return f"permission denied by {self._where()} for {what}: {denied}"

        try:
            self._call(
                what,
                lambda: client.auth.kubernetes.login(
                    role=role, jwt=jwt, mount_point=mount, use_token=True
                ),
                client,
                missing=f"{self._where()} has no Kubernetes auth method at auth/{mount}: enable it "
                "(`vault auth enable kubernetes`) or set secrets.vault.kubernetes_mount",
                denied=denied,
                bad_request=bad_request,
            )
        except SecretsError as exc:  # a server that echoes the JWT must not make us echo it
            if jwt in str(exc):
                raise SecretsError(str(exc).replace(jwt, "***")) from None
            raise
        return client

    def _check_engine(self, client: hvac.Client) -> None:
        """Refuse a mount that is missing or not a KV version 2 engine (one clear message each)."""
        if self._engine_checked:
            return
        mount = self.cfg.mount
        # Vault answers 403 both for "no capability under the mount" and for "no such mount"
        # (so mounts cannot be enumerated): the message names both fixes.
        resp = self._call(
            f"the engine check of mount {mount}/",
            lambda: client.adapter.get(f"/v1/sys/internal/ui/mounts/{mount}"),
            client,
            missing=self._no_mount(),
            denied=f"the {self._auth_name()} has no capability under {mount}/ (grant `read` on "
            f"{mount}/data/{self.cfg.hmac_key_path}), or no KV v2 engine is mounted at {mount}/ "
            "(check secrets.vault.mount)",
            bad_request=lambda _detail: self._no_mount(),
        )
        data = (resp or {}).get("data") or {}
        kind = data.get("type")
        version = str((data.get("options") or {}).get("version") or "1")
        if kind != "kv":
            raise SecretsError(
                f"wrong secrets engine at {mount}/ in {self._where()}: it is a {kind or 'unknown'} "
                f"engine, synth_assets needs KV version 2 (`vault secrets enable -path={mount} kv-v2`) "
                "or set secrets.vault.mount"
            )
        if version != "2":
            raise SecretsError(
                f"wrong engine version at {mount}/ in {self._where()}: KV version {version}, synth_assets "
                f"needs KV version 2 for versioned keys (`vault kv enable-versioning {mount}/`) or set "
                "secrets.vault.mount to a kv-v2 mount"
            )
        self._engine_checked = True

    def _no_mount(self) -> str:
        m = self.cfg.mount
        return (
            f"no secrets engine is mounted at {m}/ in {self._where()}: enable one with "
            f"`vault secrets enable -path={m} kv-v2` or set secrets.vault.mount"
        )

    def _read(
        self,
        path: str,
        what: str,
        missing: str,
        version: int | None = None,
        missing_cls: type[SecretsError] = SecretsError,
    ) -> tuple[dict, str]:
        client = self.client()
        self._check_engine(client)
        resp = self._call(
            what,
            lambda: client.secrets.kv.v2.read_secret_version(
                path=path,
                version=version,
                mount_point=self.cfg.mount,
                raise_on_deleted_version=True,
            ),
            client,
            missing=missing,
            missing_cls=missing_cls,
            denied=f"the {self._auth_name()} needs `read` on {self.cfg.mount}/data/{path}",
        )
        body = (resp or {}).get("data") or {}
        meta = body.get("metadata") or {}
        return body.get("data") or {}, str(meta.get("version", ""))

    def _write_once(self, path: str, data: dict[str, str], what: str, cas: int = 0) -> str:
        client = self.client()
        self._check_engine(client)

        def conflict(detail: str) -> str | None:
            if "check-and-set" in detail:
                return f"{what}: {self.cfg.mount}/{path} already exists and is never overwritten"
            return None

        try:
            resp = self._call(
                what,
                lambda: client.secrets.kv.v2.create_or_update_secret(
                    path=path, secret=data, cas=cas, mount_point=self.cfg.mount
                ),
                client,
                denied=f"the {self._auth_name()} needs `create` on {self.cfg.mount}/data/{path}",
                bad_request=conflict,
            )
        except SecretsError:
            # A least-privilege policy grants `create` but not `update`: Vault then answers 403 to a
            # second write. Say what really happened when the path already holds a value.
            if cas == 0 and self._exists(client, path):
                raise SecretsError(conflict("check-and-set") or what) from None
            raise
        return str(((resp or {}).get("data") or {}).get("version", ""))

    def _exists(self, client: hvac.Client, path: str) -> bool:
        try:
            client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.cfg.mount, raise_on_deleted_version=True
            )
        except Exception:  # noqa: BLE001 - only refines an error already being raised
            return False
        return True

    # ---- SecretsBackend ---------------------------------------------------------------------

    def _key_missing(self) -> str:
        c = self.cfg
        return (
            f"no HMAC key at {c.mount}/{c.hmac_key_path} in {self._where()}: create it explicitly with "
            "`synth-assets init` (secrets.backend: vault) or "
            f"`vault kv put -mount={c.mount} {c.hmac_key_path} key=$(openssl rand -hex 32)`; "
            "a refresh never creates it"
        )

    def _parse_key(self, data: dict, version: str) -> Secret:
        raw = str(data.get("key", "")).strip()
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            key = b""
        if len(key) < MIN_KEY_BYTES:
            raise SecretsError(
                f"{self.cfg.mount}/{self.cfg.hmac_key_path} (version {version}) does not hold a field `key` "
                f"of at least {MIN_KEY_BYTES} bytes in hex: write a new version with `synth-assets init --force`"
            )
        return Secret(key, version=version)

    def _raw_key(self) -> tuple[dict, str]:
        return self._read(
            self.cfg.hmac_key_path,
            "reading the HMAC key",
            self._key_missing(),
            missing_cls=SecretMissing,
        )

    def hmac_key(self) -> Secret:
        return self._parse_key(*self._raw_key())

    def hmac_key_at(self, version: str) -> Secret:
        if not str(version).isdigit():
            raise KeyVersionUnavailable(
                f"HMAC key version {version!r} is not a Vault KV version number"
            )
        missing = (
            f"HMAC key version {version} at {self.cfg.mount}/{self.cfg.hmac_key_path} is deleted or "
            f"was never written in {self._where()}: what it signed can no longer be verified"
        )
        data, got = self._read(
            self.cfg.hmac_key_path,
            f"reading HMAC key version {version}",
            missing,
            version=int(version),
            missing_cls=KeyVersionUnavailable,
        )
        return self._parse_key(data, got)

    def _seed_path(self, refresh_id: str) -> str:
        if not _SEGMENT.match(refresh_id):
            raise SecretsError(f"refresh id {refresh_id!r} cannot name a Vault path segment")
        return f"{self.cfg.seeds_path}/{refresh_id}"

    def seal_seed(self, refresh_id: str, seed: bytes) -> str:
        if len(seed) < MIN_SEED_BYTES:
            raise SecretsError(
                f"refusing to seal a seed of {len(seed)} bytes: at least {MIN_SEED_BYTES} needed"
            )
        self.hmac_key()  # the backend must be initialised before any refresh uses it
        return self._write_once(
            self._seed_path(refresh_id),
            {"seed": seed.hex()},
            f"sealing the seed of refresh {refresh_id}",
        )

    def unseal_seed(self, refresh_id: str) -> Secret:
        path = self._seed_path(refresh_id)
        data, version = self._read(
            path,
            f"unsealing the seed of refresh {refresh_id}",
            f"no sealed seed for refresh {refresh_id} at {self.cfg.mount}/{path} in {self._where()}: the "
            "refresh was not profiled with this Vault, or its seed was deleted",
        )
        try:
            seed = bytes.fromhex(str(data.get("seed", "")))
        except ValueError:
            seed = b""
        if len(seed) < MIN_SEED_BYTES:
            raise SecretsError(
                f"the sealed seed at {self.cfg.mount}/{path} is malformed: refusing to generate"
            )
        return Secret(seed, version=version)

    def check_ready(self) -> None:
        """Preflight: the key is readable and the token may create seeds (no budget spent on a dead end)."""
        self.hmac_key()
        client = self.client()
        probe = f"{self.cfg.mount}/data/{self.cfg.seeds_path}/preflight-probe"
        resp = self._call(
            "the capability check of the seeds path",
            lambda: client.adapter.post("/v1/sys/capabilities-self", json={"paths": [probe]}),
            client,
            denied="grant the default policy (sys/capabilities-self) to check capabilities",
        )
        caps = set((resp or {}).get(probe) or (resp or {}).get("capabilities") or [])
        if not caps & {"create", "root"}:
            raise SecretsError(
                f"permission denied by {self._where()}: the {self._auth_name()} cannot create seeds under "
                f"{self.cfg.mount}/data/{self.cfg.seeds_path}/ (capabilities: {sorted(caps) or 'none'}); "
                "grant `create` and `read` there"
            )

    def describe(self) -> dict[str, str]:
        c = self.cfg
        return {
            "backend": self.name,
            "url": _redact(self.url),
            "mount": c.mount,
            "hmac_key_path": c.hmac_key_path,
            "seeds_path": c.seeds_path,
            "auth": c.auth,
        }


def init_vault_secrets(
    cfg: Any,
    *,
    force: bool = False,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, bool]:
    """Create the HMAC key in Vault (never implicit). Returns (version, created).

    An existing key is kept unless ``force``; forcing writes a new KV version (older versions stay
    readable, so manifests signed with them still verify).
    """
    backend = VaultSecrets(cfg, env=env, sleep=sleep)
    try:
        data, current = backend._raw_key()
    except SecretMissing:
        data, current = {}, ""
    if current and not force:
        return backend._parse_key(data, current).version, False  # a malformed key says: use --force
    cas = int(current) if current.isdigit() else 0
    version = backend._write_once(
        cfg.hmac_key_path,
        {"key": _os_secrets.token_bytes(32).hex()},
        "writing the HMAC key",
        cas=cas,
    )
    return version, True
