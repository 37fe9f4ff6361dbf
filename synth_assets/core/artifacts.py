"""The artifact store: publish a refresh (local directory or S3), manifest last.

Generation and evaluation work on a local copy (``store_for(cfg, workdir).dir(rid)``). At the
end of a refresh, :func:`publish_refresh` hashes every artifact, signs a manifest with the
secrets backend's HMAC key and publishes: for a local store the manifest is written next to the
artifacts; for ``s3://bucket/prefix`` every artifact is uploaded to ``prefix/<rid>/<path>``
with server-side encryption and its SHA-256 as object metadata, and the manifest is written
last with a conditional put, so a refresh is visible (``<rid>/manifest.json`` exists) only once
all of it is there, and never twice. Publishing is idempotent: a second call with unchanged
artifacts returns the existing manifest; changed artifacts under a published manifest are refused.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .digest import sha256_file
from .errors import SynthError
from .manifest import (
    MANIFEST_NAME,
    ManifestError,
    build_manifest,
    read_gates,
    signature_problems,
)
from .secrets import SecretsBackend
from .store import (
    RefreshPaths,
    RefreshStore,
    check_refresh_id,
    read_json,
    store_for,
    write_json_atomic,
)
from .summary import (
    CheckResult,
    RefreshSummary,
    SummaryWriter,
    read_summary,
    rows_json,
    write_summary,
)


class ArtifactError(SynthError):
    """The artifact store cannot be written or read, or a publication was refused."""


def report_paths(workdir: Path, store: RefreshStore, rid: str) -> list[Path]:
    """Where the privacy report of a refresh may be (working copy first)."""
    work_copy = RefreshPaths(Path(workdir).expanduser().resolve() / "runs" / rid)
    paths = [store.paths(rid).report_json, work_copy.report_json]
    return list(dict.fromkeys(paths))


def summary_path(workdir: Path, rid: str) -> Path:
    """The refresh summary (always under <workdir>/runs, where `run_refresh` writes it)."""
    return RefreshPaths(
        Path(workdir).expanduser().resolve() / "runs" / check_refresh_id(rid)
    ).summary


def write_checks_summary(
    workdir: Path, store: RefreshStore, rid: str, checks: dict[str, CheckResult]
) -> None:
    """The summary of a refresh that ran only in Dagster (a headless refresh writes its own):
    the check verdicts its runs recorded and the rows it loaded, for the manifest to state."""
    load = store.paths(rid).load
    rows = read_json(load)["rows"] if load.is_file() else {}
    summary = RefreshSummary(
        refresh_id=rid,
        checks=checks,
        passed=bool(checks) and all(c.passed for c in checks.values()),
        rows=rows,
        written_by=SummaryWriter.PUBLISHED_REFRESH,
    )
    write_summary(summary_path(workdir, rid), summary)


def artifact_files(refresh_dir: Path) -> list[tuple[str, Path]]:
    """(relative path, file) of every artifact of a refresh: no hidden or temporary file, no manifest."""
    out = []
    for p in sorted(refresh_dir.rglob("*")):
        rel = p.relative_to(refresh_dir)
        if (
            not p.is_file()
            or any(part.startswith(".") for part in rel.parts)
            or rel.as_posix() == MANIFEST_NAME
        ):
            continue
        out.append((rel.as_posix(), p))
    return out


# ---- S3 -------------------------------------------------------------------------------------


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes)."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


@contextmanager
def _s3_errors(what: str, where: str) -> Iterator[None]:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise ArtifactError(
            f"no AWS credentials to {what} at {where}: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE, or run with an instance/pod role); credentials never go in synth.yaml"
        ) from None
    except EndpointConnectionError as exc:
        raise ArtifactError(
            f"cannot reach the S3 endpoint to {what} at {where}: {exc}; check "
            "artifacts.endpoint_url / artifacts.region and the network"
        ) from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, msg = str(err.get("Code", "")), str(err.get("Message", ""))
        if code == "NoSuchBucket":
            raise ArtifactError(
                f"S3 bucket of {where} does not exist: create it or fix artifacts.store"
            ) from None
        if code in (
            "AccessDenied",
            "403",
            "AllAccessDisabled",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        ):
            raise ArtifactError(
                f"S3 denied access to {what} at {where} ({code}): the credentials need "
                "s3:PutObject, s3:GetObject and s3:ListBucket there (and kms:GenerateDataKey "
                "with sse aws:kms)"
            ) from None
        if code.startswith("KMS") or "kms" in msg.lower():
            raise ArtifactError(
                f"S3 could not use the KMS key to {what} at {where} ({code}: {msg}): check "
                "artifacts.kms_key_id and the key policy"
            ) from None
        raise ArtifactError(f"S3 refused to {what} at {where}: {code} {msg}".rstrip()) from None
    except BotoCoreError as exc:
        raise ArtifactError(f"S3 failed to {what} at {where}: {exc}") from None


def s3_client(art_cfg: Any) -> Any:
    """A boto3 S3 client for the configured endpoint (SigV4, bounded retries, creds from the environment)."""
    import boto3
    from botocore.config import Config

    custom_endpoint = (
        art_cfg.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    config = Config(
        signature_version="s3v4",
        retries={"max_attempts": 5, "mode": "standard"},
        # S3-compatible stores (MinIO, LocalStack) want path-style URLs; AWS itself chooses.
        s3={"addressing_style": "path" if custom_endpoint else "auto"},
    )
    # A fresh session, not boto3's shared default: credentials as the environment holds them now.
    session = boto3.session.Session()
    return session.client(
        "s3", endpoint_url=art_cfg.endpoint_url, region_name=art_cfg.region, config=config
    )


class S3Artifacts:
    """Published refreshes under ``s3://bucket/prefix/<rid>/``."""

    kind = "s3"

    def __init__(self, url: str, art_cfg: Any, client: Any | None = None):
        self.url = url.rstrip("/")
        self.bucket, self.prefix = split_s3(self.url)
        self.cfg = art_cfg
        self.client = client if client is not None else s3_client(art_cfg)

    def key(self, rid: str, rel: str) -> str:
        """Object key of an artifact."""
        parts = (
            [self.prefix, check_refresh_id(rid), rel]
            if self.prefix
            else [check_refresh_id(rid), rel]
        )
        return "/".join(parts)

    def location(self, rid: str) -> str:
        return f"s3://{self.bucket}/{self.key(rid, '')}"

    def _sse(self) -> dict[str, str]:
        extra = {"ServerSideEncryption": self.cfg.sse}
        if self.cfg.sse == "aws:kms" and self.cfg.kms_key_id:
            extra["SSEKMSKeyId"] = self.cfg.kms_key_id
        return extra

    def upload(self, rid: str, rel: str, path: Path, sha256: str) -> None:
        """Upload one artifact with SSE and its SHA-256 as metadata."""
        self.upload_key(self.key(rid, rel), path, sha256)

    def upload_key(self, key: str, path: Path, sha256: str) -> None:
        """Upload one file to ``key`` with SSE and its SHA-256 as metadata."""
        with _s3_errors("upload an artifact", f"s3://{self.bucket}/{key}"):
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={**self._sse(), "Metadata": {"sha256": sha256}},
            )

    def under(self, rel_dir: str) -> str:
        """Object key of a path outside any refresh (e.g. ``audit/``) under the store's prefix."""
        return f"{self.prefix}/{rel_dir}" if self.prefix else rel_dir

    def keys(self, prefix_key: str) -> list[str]:
        """Every object key under ``prefix_key``."""
        out: list[str] = []
        with _s3_errors("list artifacts", f"s3://{self.bucket}/{prefix_key}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix_key
            )
            for page in pages:
                out += [obj["Key"] for obj in page.get("Contents", [])]
        return out

    def download(self, key: str, path: Path) -> None:
        """Fetch one object to ``path`` (via a temp file), checking the SHA-256 it was
        uploaded with: a step never works on a damaged or half-written input."""
        import hashlib

        where = f"s3://{self.bucket}/{key}"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with _s3_errors("download an artifact", where):
            obj = self.client.get_object(Bucket=self.bucket, Key=key)
            want = obj.get("Metadata", {}).get("sha256")
            h = hashlib.sha256()
            with open(tmp, "wb") as fh:
                for chunk in obj["Body"].iter_chunks(1 << 20):
                    h.update(chunk)
                    fh.write(chunk)
        if want and h.hexdigest() != want:
            tmp.unlink(missing_ok=True)
            raise ArtifactError(
                f"{where} does not match the SHA-256 it was uploaded with: it was altered or "
                "damaged; investigate before using it"
            )
        os.replace(tmp, path)

    def put_manifest(self, rid: str, manifest: dict[str, Any]) -> None:
        """Write the manifest last, only if none exists (conditional put)."""
        key = self.key(rid, MANIFEST_NAME)
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        from botocore.exceptions import ClientError

        with _s3_errors("write the manifest", f"s3://{self.bucket}/{key}"):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ContentType="application/json",
                    **self._sse(),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                    raise ArtifactError(
                        f"refresh {rid} was published concurrently: "
                        f"s3://{self.bucket}/{key} already exists"
                    ) from None
                raise

    def read_manifest(self, rid: str) -> dict[str, Any] | None:
        """The published manifest, or None when the refresh is not published."""
        from botocore.exceptions import ClientError

        key = self.key(rid, MANIFEST_NAME)
        with _s3_errors("read the manifest", f"s3://{self.bucket}/{key}"):
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            raw = obj["Body"].read()
        try:
            return json.loads(raw)
        except ValueError:
            raise ArtifactError(
                f"s3://{self.bucket}/{key} is not valid JSON: the manifest is damaged"
            ) from None

    def head(self, rid: str, rel: str) -> dict[str, Any] | None:
        """Size, SHA-256 metadata and encryption of a published artifact (None when missing)."""
        from botocore.exceptions import ClientError

        key = self.key(rid, rel)
        with _s3_errors("inspect an artifact", f"s3://{self.bucket}/{key}"):
            try:
                h = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
        return {
            "bytes": h["ContentLength"],
            "sha256": h.get("Metadata", {}).get("sha256"),
            "sse": h.get("ServerSideEncryption"),
        }

    def sha_of(self, rid: str, *, deep: bool) -> Callable[[str], str | None]:
        """SHA-256 of a published artifact: streamed from S3 (deep) or its recorded metadata (shallow)."""
        import hashlib

        from botocore.exceptions import ClientError

        def shallow(rel: str) -> str | None:
            h = self.head(rid, rel)
            return None if h is None else (h["sha256"] or "")

        def stream(rel: str) -> str | None:
            key = self.key(rid, rel)
            with _s3_errors("read an artifact", f"s3://{self.bucket}/{key}"):
                try:
                    body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                        return None
                    raise
                digest = hashlib.sha256()
                for block in iter(lambda: body.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()

        return stream if deep else shallow

    def presign(self, rid: str, rel: str, ttl: int, query: dict[str, str]) -> str:
        """A presigned GET URL valid ``ttl`` seconds; ``query`` (x-… parameters) is covered by the signature.

        S3 ignores query parameters that start with ``x-`` but writes them to its access logs, so
        the ticket travels with every download and cannot be altered without breaking the URL.
        """
        if any(not k.startswith("x-") for k in query):
            raise ArtifactError(
                "presigned URL parameters must start with 'x-' (S3 ignores only those)"
            )
        extra = urlencode(sorted(query.items()))

        def add_query(request: Any, **_: Any) -> None:
            request.url += ("&" if "?" in request.url else "?") + extra

        event, uid = "before-sign.s3.GetObject", "synth-assets-release-query"
        self.client.meta.events.register(event, add_query, unique_id=uid)
        try:
            with _s3_errors("presign an artifact", self.location(rid) + rel):
                return self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": self.key(rid, rel)},
                    ExpiresIn=ttl,
                )
        finally:
            self.client.meta.events.unregister(event, unique_id=uid)


# ---- publication ----------------------------------------------------------------------------


def _facts(refresh_dir: Path, rid: str, summary: RefreshSummary) -> dict[str, Any]:
    gen_path = RefreshPaths(refresh_dir).generation
    if not gen_path.is_file():
        raise ArtifactError(
            f"refresh {rid} has no generation record ({gen_path}): it never reached "
            "calibrated_spec, so there is nothing to publish"
        )
    gen = read_json(gen_path)
    pack_path = RefreshPaths(refresh_dir).pack
    pack = read_json(pack_path) if pack_path.is_file() else None
    led = (pack or {}).get("ledger", {})
    spent = summary.pack  # the summary's own figures when the pack is not in the refresh
    return {
        "spec_hash": gen["spec_hash"],
        "seed_commitment": gen["seed_commitment"],
        "pack_refresh_id": gen.get("pack_refresh_id"),
        "privacy": {
            # Only a refresh that profiled the source spent budget; a regeneration spends none.
            "epsilon_spent": float(led.get("epsilon_spent", spent.epsilon_spent if spent else 0.0)),
            "delta": float(led.get("delta", spent.delta if spent else 0.0)),
            "budget_spent_by": gen.get("pack_refresh_id") or rid,
        },
        "key_versions": {
            "seed": gen.get("seed_version"),
            "hmac_key_profile": (pack or {}).get("privacy", {}).get("hmac_key_version"),
        },
        "rows": rows_json(summary.rows),
    }


def _collect(refresh_dir: Path, summary: Path) -> list[tuple[str, Path]]:
    files = artifact_files(refresh_dir)
    if summary.is_file() and RefreshPaths.SUMMARY not in {rel for rel, _ in files}:
        files.append((RefreshPaths.SUMMARY, summary))
    return files


def _same_artifacts(manifest: dict[str, Any], entries: list[dict[str, Any]]) -> bool:
    old = {(a["path"], a["sha256"]) for a in manifest.get("artifacts", [])}
    return old == {(a["path"], a["sha256"]) for a in entries}


def publish_refresh(
    cfg: Any,
    workdir: str | Path,
    rid: str,
    secrets: SecretsBackend,
    *,
    now: Callable[[], float] = time.time,
    s3: S3Artifacts | None = None,
) -> dict[str, Any]:
    """Hash, sign and publish every artifact of a refresh whose gates all passed; return the manifest."""
    workdir = Path(workdir).expanduser().resolve()
    store = store_for(cfg, workdir)
    rdir = store.dir(rid)
    if not rdir.is_dir():
        raise ArtifactError(
            f"refresh {rid} has no artifacts in {rdir}: check --workdir and the refresh id"
        )
    spath = summary_path(workdir, rid)
    try:
        gates = read_gates(spath, report_paths(workdir, store, rid))
    except ManifestError as exc:
        raise ArtifactError(f"cannot publish refresh {rid}: {exc}") from None
    if not gates["passed"]:
        raise ArtifactError(f"refusing to publish refresh {rid}: " + "; ".join(gates["failures"]))
    facts = _facts(rdir, rid, read_summary(spath))
    entries = [
        {"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size}
        for rel, p in _collect(rdir, spath)
    ]
    remote = None
    if store.remote:
        remote = s3 or S3Artifacts(store.remote, cfg.artifacts)
        location = {
            "kind": "s3",
            "location": remote.location(rid),
            "sse": cfg.artifacts.sse,
            "kms_key_id": cfg.artifacts.kms_key_id,
        }
        existing = remote.read_manifest(rid)
    else:
        location = {"kind": "local", "location": str(rdir)}
        local_manifest = RefreshPaths(rdir).signed_manifest
        existing = read_json(local_manifest) if local_manifest.is_file() else None
    if existing is not None:
        problems = signature_problems(existing, secrets)
        if problems:
            raise ArtifactError(
                f"refresh {rid} already has a manifest that does not verify: "
                + "; ".join(problems)
                + ". Investigate before publishing anything"
            )
        if not _same_artifacts(existing, entries):
            raise ArtifactError(
                f"refresh {rid} was already published with other artifacts; published "
                "refreshes are immutable (start a new refresh instead)"
            )
        return existing
    manifest = build_manifest(
        refresh_id=rid,
        artifacts=entries,
        gates=gates,
        facts=facts,
        store=location,
        secrets=secrets,
        now=now,
    )
    if remote is not None:
        by_path = dict(_collect(rdir, spath))
        for e in entries:
            remote.upload(rid, e["path"], by_path[e["path"]], e["sha256"])
        remote.put_manifest(rid, manifest)  # last: the refresh becomes visible only now
    write_json_atomic(RefreshPaths(rdir).signed_manifest, manifest)
    return manifest


def published_manifest(
    cfg: Any, workdir: str | Path, rid: str, *, s3: S3Artifacts | None = None
) -> dict[str, Any] | None:
    """The manifest as published (S3 for an s3:// store, else the local copy), or None."""
    store = store_for(cfg, workdir)
    if store.remote:
        return (s3 or S3Artifacts(store.remote, cfg.artifacts)).read_manifest(rid)
    p = store.paths(rid).signed_manifest
    if not p.is_file():
        return None
    try:
        return read_json(p)
    except ValueError:
        raise ArtifactError(f"{p} is not valid JSON: the manifest is damaged") from None


def artifact_hasher(
    cfg: Any, workdir: str | Path, rid: str, *, deep: bool = True, s3: S3Artifacts | None = None
) -> Callable[[str], str | None]:
    """SHA-256 of a published artifact by relative path (None when missing)."""
    workdir = Path(workdir).expanduser().resolve()
    store = store_for(cfg, workdir)
    if store.remote:
        return (s3 or S3Artifacts(store.remote, cfg.artifacts)).sha_of(rid, deep=deep)
    rdir = store.dir(rid)
    spath = summary_path(workdir, rid)

    def local(rel: str) -> str | None:
        p = rdir / rel
        if rel == RefreshPaths.SUMMARY and not p.is_file():
            p = spath
        if ".." in Path(rel).parts or not p.is_file():
            return None
        return sha256_file(p)

    return local


def verify_refresh(
    cfg: Any,
    workdir: str | Path,
    rid: str,
    secrets: SecretsBackend,
    *,
    deep: bool = True,
    s3: S3Artifacts | None = None,
) -> tuple[dict[str, Any] | None, list[str]]:
    """(manifest, problems) of a published refresh: signature, then every artifact's SHA-256."""
    from .manifest import verify_manifest

    manifest = published_manifest(cfg, workdir, rid, s3=s3)
    if manifest is None:
        return None, [f"refresh {rid} is not published (no {MANIFEST_NAME})"]
    if manifest.get("refresh_id") != rid:
        return manifest, [f"the manifest names refresh {manifest.get('refresh_id')!r}, not {rid}"]
    return manifest, verify_manifest(
        manifest, secrets, artifact_hasher(cfg, workdir, rid, deep=deep, s3=s3)
    )


# --------------------------------------------------------------------------------------------
# Steps that share nothing but the store: fetch inputs, send outputs
# --------------------------------------------------------------------------------------------


def _remote(cfg: Any, store: RefreshStore) -> S3Artifacts | None:
    return S3Artifacts(store.remote, cfg.artifacts) if store.remote else None


def fetch_inputs(cfg: Any, store: RefreshStore, rid: str, *rels: str) -> None:
    """Bring a refresh's artifacts from an S3 store into this step's working copy: each of
    ``rels`` is a file (``spec.json``) or a directory (``shards/``, every object under it; ``""``
    the whole refresh).
    A local store is its own working copy (nothing to do). With S3, a step in its own pod (or
    an empty work directory) reads exactly what earlier steps sent, checked against the SHA-256
    they were sent with; a file already in the working copy is kept (this step's or earlier
    steps' own)."""
    remote = _remote(cfg, store)
    if remote is None:
        return
    base = remote.key(rid, "")
    for rel in rels:
        want = remote.key(rid, rel)
        for key in remote.keys(want):  # absent: absent locally too, as a local store would be
            if rel and not rel.endswith("/") and key != want:
                continue
            local = store.dir(rid) / key[len(base) :]
            if not local.exists():
                remote.download(key, local)


def send_outputs(cfg: Any, store: RefreshStore, rid: str, *rels: str) -> None:
    """Send a step's outputs (files or directories, as in :func:`fetch_inputs`) from its
    working copy to an S3 store, so that later steps, in other pods, read them there. Not a
    publication: a refresh is published (visible) only when its manifest is written last."""
    remote = _remote(cfg, store)
    if remote is None:
        return
    root = store.dir(rid)
    for rel in rels:
        p = root / rel
        files = (
            [(r, f) for r, f in artifact_files(root) if r.startswith(rel)]
            if rel.endswith("/")
            else [(rel, p)]
        )
        for r, f in files:
            if f.is_file():
                remote.upload(rid, r, f, sha256_file(f))


def fetch_anchors(cfg: Any, store: RefreshStore, anchor_dir: Path) -> None:
    """The audit log's anchors from an S3 store into this step's anchor directory, keeping the
    newer of each (an anchor never moves back). In a deployment every step may start with an
    empty work directory: without this, its appends would check no anchor at all."""
    from .audit import read_anchor

    remote = _remote(cfg, store)
    if remote is None:
        return
    for key in remote.keys(remote.under("audit/")):
        name = key.rsplit("/", 1)[-1]
        if not (name.startswith("anchor-") and name.endswith(".json")):
            continue
        local, tmp = anchor_dir / name, anchor_dir / f".{name}.remote"
        remote.download(key, tmp)
        theirs, mine = read_anchor(tmp), read_anchor(local)
        if theirs is not None and (mine is None or theirs.seq > mine.seq):
            os.replace(tmp, local)
        else:
            tmp.unlink(missing_ok=True)


def send_anchors(cfg: Any, store: RefreshStore, anchor_dir: Path) -> None:
    """This step's anchors to an S3 store (see :func:`fetch_anchors`). Two steps appending at
    once may leave the older of their anchors there: an anchor behind the head still detects
    a log rewound or rewritten before it."""
    remote = _remote(cfg, store)
    if remote is None or not anchor_dir.is_dir():
        return
    for f in sorted(anchor_dir.glob("anchor-*.json")):
        remote.upload_key(remote.under(f"audit/{f.name}"), f, sha256_file(f))
