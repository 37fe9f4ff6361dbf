"""The refresh manifest: every artifact's SHA-256 and the facts of the refresh, HMAC-signed.

A manifest records, for one refresh: each artifact (path relative to the refresh, SHA-256,
size), the spec hash, the seed commitment, the key versions used (HMAC key of the profile,
sealed seed, signing key), epsilon spent, the gate outcomes, the code version and where it was
published. It is signed with a key derived from the secrets backend's HMAC key (domain
separated, so the signature key is never the key used for holdout selection) and names the key
version, so a manifest signed before a key rotation still verifies against Vault's old version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .digest import canonical_json
from .errors import SynthError
from .secrets import KeyVersionUnavailable, Secret, SecretsBackend
from .store import RefreshPaths
from .summary import SummaryError, read_summary

MANIFEST_FORMAT = "synth_assets.manifest/1"
MANIFEST_NAME = RefreshPaths.MANIFEST
SIGNATURE_ALG = "HMAC-SHA256"
_MANIFEST_PURPOSE = b"synth_assets/manifest/v1"


class ManifestError(SynthError):
    """A manifest is missing, malformed, or does not verify."""


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no whitespace, strict numbers): what gets signed."""
    try:
        return canonical_json(obj, strict=True).encode()
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"manifest content is not strict JSON: {exc}") from None


def derive_key(key: bytes, purpose: bytes) -> bytes:
    """A purpose-bound subkey of the HMAC key (HMAC-SHA256(key, purpose))."""
    return hmac.new(key, purpose, hashlib.sha256).digest()


def code_version() -> dict[str, str | None]:
    """Package version and the git commit of the code (``SYNTH_CODE_VERSION`` overrides the commit)."""
    from synth_assets import __version__

    commit = os.environ.get("SYNTH_CODE_VERSION")
    if not commit:
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
            commit = out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"package": __version__, "commit": commit}


def _gate_passed(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("passed") is True
    return value is True


def read_gates(summary_path: Path, report_paths: list[Path]) -> dict[str, Any]:
    """Gate outcomes of a refresh from its summary (asset checks) and privacy report, if any."""
    if not summary_path.is_file():
        raise ManifestError(
            f"refresh summary {summary_path} does not exist: the refresh did not finish (or ran with "
            "another work directory)"
        )
    try:
        summary = read_summary(summary_path)
    except SummaryError as exc:
        raise ManifestError(str(exc)) from None
    checks = {n: c.passed for n, c in summary.checks.items()}
    failures = [f"check {n} failed" for n, ok in checks.items() if not ok]
    if not checks:
        failures.append("the summary records no gate (asset check) at all")
    if not summary.passed:
        failures.append("the refresh summary is not marked passed")
    report = None
    for rp in report_paths:
        if rp.is_file():
            raw = json.loads(rp.read_text())
            gates = raw.get("gates") or {}
            if isinstance(gates, list):
                gates = {str(g.get("name")): g for g in gates if isinstance(g, dict)}
            rgates = {str(n): _gate_passed(g) for n, g in gates.items()}
            report = {"path": rp.name, "passed": raw.get("passed") is True, "gates": rgates}
            failures += [f"privacy report gate {n} failed" for n, ok in rgates.items() if not ok]
            if raw.get("passed") is not True:
                failures.append("the privacy report is not marked passed")
            own, theirs = summary.refresh_id, raw.get("refresh_id")
            if own and theirs != own:
                failures.append(
                    f"the privacy report {rp.name} is of refresh {theirs}, not of {own}: a "
                    "release needs the refresh's own passing report"
                )
            break
    if report is None:
        failures.append(
            "the refresh has no privacy report of its own (none of "
            f"{', '.join(p.name for p in report_paths) or 'its report files'} exists): "
            "a release needs its own passing report"
        )
    return {"checks": checks, "report": report, "passed": not failures, "failures": failures}


def build_manifest(
    *,
    refresh_id: str,
    artifacts: list[dict[str, Any]],
    gates: dict[str, Any],
    facts: dict[str, Any],
    store: dict[str, Any],
    secrets: SecretsBackend,
    now: Callable[[], float],
) -> dict[str, Any]:
    """Assemble and sign a manifest (signing key: the backend's current HMAC key)."""
    key = secrets.hmac_key()
    body = {
        "format": MANIFEST_FORMAT,
        "refresh_id": refresh_id,
        "published_at": datetime.fromtimestamp(now(), UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        **facts,
        "key_versions": {**facts.get("key_versions", {}), "manifest_signing_key": key.version},
        "secrets": secrets.describe(),
        "gates": gates,
        "store": store,
        "artifacts": sorted(artifacts, key=lambda a: a["path"]),
    }
    return sign(body, key)


def sign(body: dict[str, Any], key: Secret) -> dict[str, Any]:
    """Return ``body`` with its signature (over the canonical JSON of everything else)."""
    body = {k: v for k, v in body.items() if k != "signature"}
    mac = hmac.new(
        derive_key(key.value, _MANIFEST_PURPOSE), canonical(body), hashlib.sha256
    ).hexdigest()
    return {
        **body,
        "signature": {
            "alg": SIGNATURE_ALG,
            "key_version": key.version,
            "key": "hmac_key/" + _MANIFEST_PURPOSE.decode(),
            "value": mac,
        },
    }


def signature_problems(manifest: dict[str, Any], secrets: SecretsBackend) -> list[str]:
    """Why the manifest's signature does not verify (empty when it does)."""
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or sig.get("alg") != SIGNATURE_ALG or "value" not in sig:
        return ["the manifest carries no HMAC-SHA256 signature"]
    if manifest.get("format") != MANIFEST_FORMAT:
        return [f"unknown manifest format {manifest.get('format')!r}"]
    try:
        key = secrets.hmac_key_at(str(sig.get("key_version")))
    except KeyVersionUnavailable as exc:
        return [
            f"the manifest names signing key version {sig.get('key_version')}, which is not available: {exc}"
        ]
    expected = sign(manifest, key)["signature"]["value"]
    if not hmac.compare_digest(expected, str(sig["value"])):
        return [
            "the manifest signature does not match its content: the manifest was altered, or signed "
            "with another key"
        ]
    return []


def verify_manifest(
    manifest: dict[str, Any], secrets: SecretsBackend, sha_of: Callable[[str], str | None] | None
) -> list[str]:
    """Signature first, then (if ``sha_of`` is given) every artifact's SHA-256; returns the problems."""
    problems = signature_problems(manifest, secrets)
    if problems or sha_of is None:
        return problems
    for art in manifest.get("artifacts", []):
        actual = sha_of(art["path"])
        if actual is None:
            problems.append(f"artifact {art['path']} is missing")
        elif actual != art["sha256"]:
            problems.append(
                f"artifact {art['path']} was modified (sha256 {actual[:12]}…, manifest "
                f"{art['sha256'][:12]}…)"
            )
    return problems
