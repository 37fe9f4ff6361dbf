"""A small in-process Vault HTTP server for tests: KV v2, AppRole, seal state and failure answers.

It speaks the subset of Vault's HTTP API that hvac uses here, with Vault's status codes and
error bodies: KV v2 read/write with versions, metadata and check-and-set; the UI mounts
endpoint hvac-based clients use for engine detection; ``sys/seal-status`` and ``sys/health``;
``sys/capabilities-self``; AppRole login; Kubernetes login (a role, the JWT it accepts, the
policy of the token it returns); 403 for an unknown token or a missing capability
(and, as Vault does, for an unknown mount); 404 for a missing path; 503 while sealed.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

ALL = frozenset({"create", "read", "update", "delete", "list", "sudo"})


@dataclass
class FakeVault:
    """State of the fake server; start() serves it on 127.0.0.1 at a random port."""

    root_token: str = field(default_factory=lambda: "hvs." + secrets.token_hex(12))
    sealed: bool = False
    mounts: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"secret": {"type": "kv", "version": "2"}}
    )
    kv: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    policies: dict[str, dict[str, frozenset[str]]] = field(
        default_factory=dict
    )  # token -> glob -> caps
    approles: dict[str, tuple[str, dict[str, frozenset[str]]]] = field(default_factory=dict)
    # (mount, role) -> (does this JWT pass?, policy of the login token)
    k8s_roles: dict[tuple[str, str], tuple[Callable[[str], bool], dict[str, frozenset[str]]]] = (
        field(default_factory=dict)
    )
    fail_next: list[int] = field(default_factory=list)  # statuses for the next requests (transient)
    log: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    # ---- control ------------------------------------------------------------------------------

    def start(self) -> FakeVault:
        handler = type("Handler", (_Handler,), {"vault": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeVault:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_token(self, policy: dict[str, set[str] | frozenset[str]]) -> str:
        """A token with ACL ``policy``: {"secret/data/path" or "secret/data/prefix/*": capabilities}."""
        token = "hvs." + secrets.token_hex(12)
        self.policies[token] = {k: frozenset(v) for k, v in policy.items()}
        return token

    def add_approle(self, policy: dict[str, set[str] | frozenset[str]]) -> tuple[str, str]:
        """An AppRole (role_id, secret_id) whose login token gets ``policy``."""
        role_id, secret_id = secrets.token_hex(8), secrets.token_hex(16)
        self.approles[role_id] = (secret_id, {k: frozenset(v) for k, v in policy.items()})
        return role_id, secret_id

    def add_kubernetes_role(
        self,
        role: str,
        jwt: str | Callable[[str], bool],
        policy: dict[str, set[str] | frozenset[str]],
        mount: str = "kubernetes",
    ) -> None:
        """A Kubernetes auth role at auth/``mount`` that accepts ``jwt`` (or a JWT ``jwt`` approves)."""
        accepts = jwt if callable(jwt) else (lambda given, expected=jwt: given == expected)
        self.k8s_roles[(mount, role)] = (accepts, {k: frozenset(v) for k, v in policy.items()})

    def put(self, mount: str, path: str, data: dict[str, Any]) -> int:
        """Write a KV v2 version directly (what `vault kv put` would do); returns the version."""
        versions = self.kv.setdefault((mount, path), [])
        versions.append({"data": dict(data), "created_time": _now()})
        return len(versions)

    def writes(self) -> list[str]:
        """Paths of every write request received."""
        return [p for m, p in self.log if m in ("POST", "PUT")]

    # ---- ACL ----------------------------------------------------------------------------------

    def caps(self, token: str | None, path: str) -> frozenset[str]:
        if token == self.root_token:
            return frozenset({"root"})
        policy = self.policies.get(token or "")
        if policy is None:
            return frozenset()
        out: set[str] = set()
        for pattern, caps in policy.items():
            if pattern == path or (pattern.endswith("*") and path.startswith(pattern[:-1])):
                out |= caps
        return frozenset(out)

    def known_token(self, token: str | None) -> bool:
        return token == self.root_token or (token or "") in self.policies


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _Handler(BaseHTTPRequestHandler):
    vault: FakeVault
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per keep-alive request
    wbufsize = 1 << 16  # headers and body leave in one write

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    # ---- helpers ------------------------------------------------------------------------------

    def _send(self, status: int, body: dict[str, Any] | None = None) -> None:
        raw = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, *errors: str) -> None:
        self._send(status, {"errors": list(errors)})

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}") if n else {}

    def _allowed(self, path: str, cap: str) -> bool:
        caps = self.vault.caps(self.headers.get("X-Vault-Token"), path)
        return "root" in caps or cap in caps

    # ---- dispatch -----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        v = self.vault
        parts = urlsplit(self.path)
        path = parts.path
        v.log.append((method, path))
        v.headers_seen.append({k.lower(): val for k, val in self.headers.items()})
        body = self._body() if method == "POST" else {}
        if v.fail_next:
            status = v.fail_next.pop(0)
            return self._error(status, "transient failure injected by the test")
        if self._open_route(method, path, body):
            return None
        token = self.headers.get("X-Vault-Token")
        if not v.known_token(token):
            return self._error(403, "permission denied")
        if self._token_route(method, path, body, token):
            return None
        return self._kv(method, parts, body)

    def _open_route(self, method: str, path: str, body: dict[str, Any]) -> bool:
        """Routes that need no token (status, health, logins) and the sealed refusal; True when
        the request was answered."""
        v = self.vault
        if path == "/v1/sys/seal-status":
            self._send(
                200,
                {
                    "type": "shamir",
                    "initialized": True,
                    "sealed": v.sealed,
                    "t": 1,
                    "n": 1,
                    "progress": 0,
                    "version": "1.17.0-fake",
                },
            )
        elif path == "/v1/sys/health":
            self._send(
                503 if v.sealed else 200,
                {"initialized": True, "sealed": v.sealed, "standby": False},
            )
        elif v.sealed:
            self._error(503, "Vault is sealed")
        elif path == "/v1/auth/approle/login" and method == "POST":
            self._approle(body)
        else:
            auth_mount = path.removeprefix("/v1/auth/").removesuffix("/login")
            if not (method == "POST" and any(m == auth_mount for m, _ in v.k8s_roles)):
                return False
            self._kubernetes(auth_mount, body)
        return True

    def _token_route(self, method: str, path: str, body: dict[str, Any], token: str | None) -> bool:
        """The token's own lookups (self, capabilities, UI mounts); True when answered."""
        v = self.vault
        if path == "/v1/auth/token/lookup-self":
            self._send(200, {"data": {"policies": ["default"], "ttl": 3600}})
        elif path == "/v1/sys/capabilities-self" and method == "POST":
            out: dict[str, Any] = {}
            for p in body.get("paths", []):
                caps = sorted(v.caps(token, p)) or ["deny"]
                out[p] = caps
            if len(out) == 1:
                out["capabilities"] = next(iter(out.values()))
            self._send(200, {**out, "data": dict(out)})
        elif path.startswith("/v1/sys/internal/ui/mounts/"):
            self._ui_mount(path.removeprefix("/v1/sys/internal/ui/mounts/"), token)
        else:
            return False
        return True

    def _kv(self, method: str, parts: SplitResult, body: dict[str, Any]) -> None:
        """A secrets mount: KV v2 reads and writes under ``data/``; anything else is not there."""
        v = self.vault
        segs = parts.path.removeprefix("/v1/").split("/")
        mount = segs[0]
        if mount not in v.mounts:
            return self._error(
                404, f"no handler for route '{'/'.join(segs)}'. route entry not found."
            )
        rest = "/".join(segs[1:])
        if v.mounts[mount].get("version") != "2" or not rest.startswith("data/"):
            if not self._allowed(f"{mount}/{rest}", "read"):
                return self._error(403, "permission denied")
            return self._error(404)  # a KV v1 mount has no "data/" sub-path: nothing there
        key = rest.removeprefix("data/")
        acl_path = f"{mount}/data/{key}"
        if method == "GET":
            return self._kv_read(mount, key, acl_path, parse_qs(parts.query))
        return self._kv_write(mount, key, acl_path, body)

    def _approle(self, body: dict[str, Any]) -> None:
        v = self.vault
        entry = v.approles.get(str(body.get("role_id")))
        if entry is None or entry[0] != body.get("secret_id"):
            return self._error(400, "invalid role or secret ID")
        return self._login(entry[1])

    def _login(self, policy: dict[str, frozenset[str]]) -> None:
        token = self.vault.add_token(policy)
        return self._send(
            200,
            {
                "auth": {
                    "client_token": token,
                    "accessor": "acc",
                    "policies": ["synth"],
                    "lease_duration": 3600,
                    "renewable": True,
                }
            },
        )

    def _kubernetes(self, mount: str, body: dict[str, Any]) -> None:
        for name in ("role", "jwt"):
            if not body.get(name):
                return self._error(400, f"missing {name}")
        entry = self.vault.k8s_roles.get((mount, str(body["role"])))
        if entry is None or not entry[0](str(body["jwt"])):
            return self._error(403, "permission denied")
        return self._login(entry[1])

    def _ui_mount(self, name: str, token: str | None) -> None:
        v = self.vault
        name = name.strip("/")
        mount = v.mounts.get(name)
        caps = v.caps(token, name + "/")
        anything = "root" in caps or any(
            p.startswith(name + "/") for p in v.policies.get(token or "", {})
        )
        if mount is None or not anything:
            return self._error(
                403,
                "preflight capability check returned 403, please ensure client's "
                f'policies grant access to path "{name}/"',
            )
        options = {"version": mount["version"]} if mount.get("version") else None
        return self._send(
            200,
            {
                "data": {
                    "type": mount["type"],
                    "path": name + "/",
                    "options": options,
                    "description": "",
                    "local": False,
                    "seal_wrap": False,
                }
            },
        )

    def _kv_read(self, mount: str, key: str, acl_path: str, query: dict[str, list[str]]) -> None:
        if not self._allowed(acl_path, "read"):
            return self._error(403, "permission denied")
        versions = self.vault.kv.get((mount, key))
        if not versions:
            return self._error(404)
        n = int(query.get("version", [str(len(versions))])[0] or len(versions))
        if not 1 <= n <= len(versions):
            return self._error(404)
        entry = versions[n - 1]
        return self._send(
            200,
            {
                "request_id": "fake",
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": {
                    "data": entry["data"],
                    "metadata": {
                        "created_time": entry["created_time"],
                        "custom_metadata": None,
                        "deletion_time": "",
                        "destroyed": False,
                        "version": n,
                    },
                },
                "wrap_info": None,
                "warnings": None,
                "auth": None,
            },
        )

    def _kv_write(self, mount: str, key: str, acl_path: str, body: dict[str, Any]) -> None:
        versions = self.vault.kv.setdefault((mount, key), [])
        if not self._allowed(acl_path, "update" if versions else "create"):
            if not versions:
                self.vault.kv.pop((mount, key), None)
            return self._error(403, "permission denied")
        cas = (body.get("options") or {}).get("cas")
        if cas is not None and int(cas) != len(versions):
            if not versions:
                self.vault.kv.pop((mount, key), None)
            return self._error(400, "check-and-set parameter did not match the current version")
        versions.append({"data": dict(body.get("data") or {}), "created_time": _now()})
        return self._send(
            200,
            {
                "data": {
                    "created_time": versions[-1]["created_time"],
                    "custom_metadata": None,
                    "deletion_time": "",
                    "destroyed": False,
                    "version": len(versions),
                }
            },
        )
