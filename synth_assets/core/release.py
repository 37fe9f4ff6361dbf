"""Controlled, ticket-bound release of a published refresh.

A release is refused unless every gate of the refresh passed (the summary's asset checks and,
when present, the privacy report), the refresh is published and its signed manifest verifies.
It then issues a signed release token bound to the ticket (and, for an S3 store, presigned GET
URLs that expire with it and carry the ticket in a signed ``x-synth-ticket`` parameter, which
S3 writes to its access logs), and records the release in the audit log before anything is
handed out. Tokens are ``sat1.<payload>.<mac>``: base64url JSON claims and an HMAC-SHA256
under a purpose-bound subkey of the secrets backend's HMAC key (the claims name its version).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets as _os_secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from .artifacts import S3Artifacts, report_paths, summary_path, verify_refresh
from .errors import ConfigError, SynthError
from .manifest import MANIFEST_NAME, ManifestError, canonical, derive_key, read_gates
from .secrets import KeyVersionUnavailable, SecretsBackend
from .store import RefreshStore, check_refresh_id, store_for

TOKEN_PREFIX = "sat1"
MIN_TTL = 60
MAX_TTL = 7 * 24 * 3600  # the longest a SigV4 presigned URL can live
CLOCK_SKEW = 300
_TOKEN_PURPOSE = b"synth_assets/release-token/v1"
_TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:#/-]{1,63}$")
_TTL = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ReleaseRefused(SynthError):
    """A release was refused (failed gate, unpublished or unverifiable refresh, no audit log)."""


def parse_ttl(text: str | int) -> int:
    """``90``, ``30m``, ``1h``, ``2d`` -> seconds, between 1 minute and 7 days."""
    m = _TTL.match(str(text).strip().lower())
    if not m:
        raise ConfigError(f"--ttl {text!r} is not a duration: use e.g. 900, 30m, 1h or 2d")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if not MIN_TTL <= seconds <= MAX_TTL:
        raise ConfigError(
            f"--ttl {text!r} must be between 1m and 7d (S3 presigned URLs live at most 7 days)"
        )
    return seconds


def check_ticket(ticket: str) -> str:
    """A change/ticket reference such as CHG-1234 or JIRA#42 (no spaces, at most 64 characters)."""
    if not isinstance(ticket, str) or not _TICKET.match(ticket):
        raise ConfigError(
            f"--ticket {ticket!r} is not a ticket reference: use letters, digits and . _ : # / - "
            "(2-64 characters, e.g. CHG-1234)"
        )
    return ticket


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> str:
    return _b64(hmac.new(derive_key(key, _TOKEN_PURPOSE), signed.encode(), hashlib.sha256).digest())


def issue_token(claims: dict[str, Any], secrets: SecretsBackend) -> str:
    """Sign ``claims`` (the key version is added as ``kid``)."""
    key = secrets.hmac_key()
    payload = _b64(canonical({**claims, "kid": key.version}))
    signed = f"{TOKEN_PREFIX}.{payload}"
    return f"{signed}.{_mac(key.value, signed)}"


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of verifying a release token."""

    valid: bool
    reason: str
    claims: dict[str, Any] | None = None

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"valid": self.valid, "reason": self.reason}
        c = self.claims or {}
        if c:
            out.update(
                {
                    "refresh_id": c.get("rid"),
                    "ticket": c.get("ticket"),
                    "release_id": c.get("jti"),
                    "issued_at": _iso(c["iat"]),
                    "expires_at": _iso(c["exp"]),
                    "grants": c.get("grants"),
                }
            )
            if now is not None and self.valid:
                out["expires_in_seconds"] = int(c["exp"] - now)
        return out


def verify_token(
    token: str,
    secrets: SecretsBackend,
    *,
    now: Callable[[], float] = time.time,
    ticket: str | None = None,
    refresh_id: str | None = None,
) -> TokenCheck:
    """Whether a release token is authentic and unexpired, and what it grants.

    ``ticket`` and ``refresh_id``, when given, must be the ones the token was issued for: a valid
    token for another change ticket or refresh is not a valid token for this one."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return TokenCheck(
            False, f"not a release token (expected {TOKEN_PREFIX}.<payload>.<signature>)"
        )
    try:
        claims = json.loads(_unb64(parts[1]))
        kid, exp, iat = str(claims["kid"]), float(claims["exp"]), float(claims["iat"])
    except (ValueError, KeyError, TypeError):
        return TokenCheck(False, "the token payload is malformed")
    try:
        key = secrets.hmac_key_at(kid)
    except KeyVersionUnavailable as exc:
        return TokenCheck(False, f"its signing key (version {kid}) is no longer available: {exc}")
    if not hmac.compare_digest(_mac(key.value, f"{parts[0]}.{parts[1]}"), parts[2]):
        return TokenCheck(
            False, "the signature does not match: the token was altered or not issued here"
        )
    t = now()
    if t >= exp:
        return TokenCheck(False, f"expired at {_iso(exp)}", claims)
    if iat > t + CLOCK_SKEW:
        return TokenCheck(False, f"issued in the future ({_iso(iat)}): check the clocks", claims)
    if ticket is not None and claims.get("ticket") != ticket:
        return TokenCheck(
            False, f"issued for ticket {claims.get('ticket')!r}, not {ticket!r}", claims
        )
    if refresh_id is not None and claims.get("rid") != refresh_id:
        return TokenCheck(
            False, f"issued for refresh {claims.get('rid')!r}, not {refresh_id!r}", claims
        )
    return TokenCheck(True, "valid", claims)


# ---- audit ----------------------------------------------------------------------------------


def audit_url(cfg: Any, workdir: str | Path) -> str:
    """libpq URL of the audit log: ``audit.url`` if configured, else the target database."""
    from . import pg

    url = getattr(getattr(cfg, "audit", None), "url", None) or cfg.target.url
    return pg.resolve_url(url, Path(workdir))


def record_release_event(cfg: Any, workdir: str | Path, rid: str, payload: dict[str, Any]) -> None:
    """Append a ``release`` event to the audit log, signed with the configuration's audit key;
    raise (so nothing is released) when it cannot be recorded."""
    from .audit import AuditSigner, record_event  # audit imports this module's neighbours

    record_event(
        audit_url(cfg, workdir),
        "release",
        rid,
        payload,
        signer=AuditSigner.for_config(cfg, workdir),
    )


# ---- release --------------------------------------------------------------------------------


# A refusal of this release with these reasons, recorded in the audit log (see :func:`_refuse`).
_Refuse = Callable[[list[str]], ReleaseRefused]


def _refuse(
    cfg: Any,
    workdir: Path,
    rid: str,
    ticket: str,
    reasons: list[str],
    audit: Callable[[Any, Path, str, dict[str, Any]], None],
) -> ReleaseRefused:
    note = ""
    try:
        audit(cfg, workdir, rid, {"outcome": "refused", "ticket": ticket, "reasons": reasons})
    except SynthError as exc:
        note = f" (the refusal could not be written to the audit log: {exc})"
    return ReleaseRefused(
        f"release of refresh {rid} for {ticket} refused: " + "; ".join(reasons) + note
    )


def issue_release(
    cfg: Any,
    workdir: str | Path,
    rid: str,
    ticket: str,
    ttl: int,
    secrets: SecretsBackend,
    *,
    now: Callable[[], float] = time.time,
    s3: S3Artifacts | None = None,
    audit: Callable[[Any, Path, str, dict[str, Any]], None] = record_release_event,
) -> dict[str, Any]:
    """Check gates and manifest, issue a ticket-bound token (and presigned URLs), audit it, return it."""
    workdir = Path(workdir).expanduser().resolve()
    rid, ticket = check_refresh_id(rid), check_ticket(ticket)
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ConfigError(
            f"the release ttl must be between {MIN_TTL} s and {MAX_TTL} s (got {ttl})"
        )
    store = store_for(cfg, workdir)
    refuse: _Refuse = partial(_refuse, cfg, workdir, rid, ticket, audit=audit)
    _require_passed_gates(workdir, store, rid, refuse)
    remote = (s3 or S3Artifacts(store.remote, cfg.artifacts)) if store.remote else None
    manifest = _verified_manifest(cfg, workdir, rid, secrets, remote, refuse)

    issued = now()
    release_id = _os_secrets.token_hex(8)
    claims = _claims(manifest, rid, ticket, release_id, issued, ttl)
    token = issue_token(claims, secrets)
    urls = _presigned_urls(remote, manifest, rid, ticket, release_id, ttl)
    audit(cfg, workdir, rid, _granted_event(claims, token, ttl, len(urls)))
    return {
        "release_id": release_id,
        "refresh_id": rid,
        "ticket": ticket,
        "issued_at": _iso(claims["iat"]),
        "expires_at": _iso(claims["exp"]),
        "ttl_seconds": ttl,
        "grants": claims["grants"],
        "token": token,
        "urls": urls,
    }


def _require_passed_gates(workdir: Path, store: RefreshStore, rid: str, refuse: _Refuse) -> None:
    """Refuse unless the refresh's summary (and privacy report, when present) say every gate passed."""
    try:
        gates = read_gates(summary_path(workdir, rid), report_paths(workdir, store, rid))
    except ManifestError as exc:
        raise refuse([str(exc)]) from None
    if not gates["passed"]:
        raise refuse(gates["failures"])


def _verified_manifest(
    cfg: Any,
    workdir: Path,
    rid: str,
    secrets: SecretsBackend,
    remote: S3Artifacts | None,
    refuse: _Refuse,
) -> dict[str, Any]:
    """The refresh's signed manifest; refuse when it is unpublished, does not verify, or records
    a failed gate."""
    # Local artifacts are re-hashed; on S3 the signed manifest is checked against each object's size
    # and recorded SHA-256 (`synth-assets publish --verify` streams and re-hashes every object).
    manifest, problems = verify_refresh(cfg, workdir, rid, secrets, deep=remote is None, s3=remote)
    if manifest is None:
        raise refuse(
            [f"refresh {rid} is not published: run `synth-assets publish --refresh-id {rid}` first"]
        )
    if problems:
        raise refuse(["its manifest does not verify: " + "; ".join(problems[:5])])
    if not (manifest.get("gates") or {}).get("passed"):
        raise refuse(["its signed manifest records a failed gate"])
    return manifest


def _claims(
    manifest: dict[str, Any], rid: str, ticket: str, release_id: str, issued: float, ttl: int
) -> dict[str, Any]:
    """The token's claims: who (ticket), what (read access to the manifest's artifacts), until when."""
    manifest_sha = hashlib.sha256(canonical(manifest)).hexdigest()
    grants = {
        "access": "read",
        "store": manifest["store"]["kind"],
        "location": manifest["store"]["location"],
        "manifest_sha256": manifest_sha,
        "artifacts": len(manifest["artifacts"]),
    }
    return {
        "v": 1,
        "rid": rid,
        "ticket": ticket,
        "jti": release_id,
        "iat": int(issued),
        "exp": int(issued) + ttl,
        "grants": grants,
    }


def _presigned_urls(
    remote: S3Artifacts | None,
    manifest: dict[str, Any],
    rid: str,
    ticket: str,
    release_id: str,
    ttl: int,
) -> dict[str, str]:
    """Presigned GET URLs of the manifest and every artifact (S3 stores only), ticket attached."""
    urls: dict[str, str] = {}
    if remote is not None:
        query = {"x-synth-ticket": ticket, "x-synth-release": release_id}
        for rel in [MANIFEST_NAME, *(a["path"] for a in manifest["artifacts"])]:
            urls[rel] = remote.presign(rid, rel, ttl, query)
    return urls


def _granted_event(claims: dict[str, Any], token: str, ttl: int, n_urls: int) -> dict[str, Any]:
    """The audit payload of a granted release: the claims, and the token by its hash only."""
    return {
        "outcome": "granted",
        "ticket": claims["ticket"],
        "release_id": claims["jti"],
        "ttl_seconds": ttl,
        "issued_at": _iso(claims["iat"]),
        "expires_at": _iso(claims["exp"]),
        "grants": claims["grants"],
        "presigned_urls": n_urls,
        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
        "key_version": json.loads(_unb64(token.split(".")[1]))["kid"],
    }
