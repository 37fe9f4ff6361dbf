"""Refresh artifacts on the local file system: one directory per refresh id."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets as _secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError

_RID = re.compile(r"^r\d{8}T\d{6}Z-[0-9a-f]{6}$")


def new_refresh_id() -> str:
    """A sortable, unique refresh id (the timestamp names it; the random suffix makes it unique)."""
    return datetime.now(UTC).strftime("r%Y%m%dT%H%M%SZ") + "-" + _secrets.token_hex(3)


def check_refresh_id(rid: str) -> str:
    """Refuse ids that could escape the store directory."""
    if not _RID.match(rid):
        raise ConfigError(
            f"refresh id {rid!r} is malformed: expected e.g. r20260101T030000Z-a1b2c3"
        )
    return rid


def write_json_atomic(path: Path, obj: Any) -> str:
    """Write JSON via a temp file and rename; return the SHA-256 of the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(obj, indent=1, sort_keys=True, default=str).encode()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from creation, then renamed into place):
    a config holding a database password, a release's token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)  # an existing temp file keeps its mode through O_CREAT
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def shard_key(shard: int) -> str:
    """Partition key / file stem of a shard."""
    return f"{shard:05d}"


@dataclass(frozen=True)
class RefreshPaths:
    """The one spelling of a refresh directory's layout: every artifact's place under ``root``.

    The upper-case names are the artifacts' paths relative to the refresh directory (the keys
    a step fetches and sends, and the paths a manifest records); a directory ends in '/'.
    """

    root: Path

    SCHEMA: ClassVar[str] = "schema.json"
    PACK: ClassVar[str] = "metrics_pack.json"
    SPEC: ClassVar[str] = "spec.json"
    GENERATION: ClassVar[str] = "generation.json"
    LOAD: ClassVar[str] = "load.json"
    SUMMARY: ClassVar[str] = "summary.json"
    ANCHOR: ClassVar[str] = "audit-anchor.json"
    MANIFEST: ClassVar[str] = "manifest.json"  # the signed manifest of a published refresh
    SHARDS_DIR: ClassVar[str] = "shards/"
    REPORT_DIR: ClassVar[str] = "report/"
    REPORT_JSON: ClassVar[str] = "report/privacy_report.json"
    REPORT_HTML: ClassVar[str] = "report/index.html"
    SHARD_FILE_GLOB: ClassVar[str] = "part-*.parquet"
    SHARD_MANIFEST_GLOB: ClassVar[str] = "manifest-*.json"

    @property
    def schema(self) -> Path:
        return self.root / self.SCHEMA

    @property
    def pack(self) -> Path:
        return self.root / self.PACK

    @property
    def spec(self) -> Path:
        return self.root / self.SPEC

    @property
    def generation(self) -> Path:
        return self.root / self.GENERATION

    @property
    def load(self) -> Path:
        return self.root / self.LOAD

    @property
    def summary(self) -> Path:
        return self.root / self.SUMMARY

    @property
    def anchor(self) -> Path:
        return self.root / self.ANCHOR

    @property
    def signed_manifest(self) -> Path:
        return self.root / self.MANIFEST

    @property
    def report_dir(self) -> Path:
        return self.root / self.REPORT_DIR

    @property
    def report_json(self) -> Path:
        return self.root / self.REPORT_JSON

    @property
    def report_html(self) -> Path:
        return self.root / self.REPORT_HTML

    @property
    def shards_dir(self) -> Path:
        return self.root / self.SHARDS_DIR

    def shard_dir(self, table: str) -> Path:
        """``shards/<table>``: every shard file of one table."""
        return self.shards_dir / table

    def shard_file(self, table: str, shard: int) -> Path:
        """``shards/<table>/part-<shard:05d>.parquet``."""
        return self.shard_dir(table) / f"part-{shard_key(shard)}.parquet"

    def shard_files(self, table: str) -> list[Path]:
        """The shard files of one table present on disk, sorted."""
        return sorted(self.shard_dir(table).glob(self.SHARD_FILE_GLOB))

    def manifest(self, shard: int) -> Path:
        """``shards/manifest-<shard:05d>.json``: one shard's files, rows and hashes."""
        return self.shards_dir / f"manifest-{shard_key(shard)}.json"

    def manifests(self) -> list[Path]:
        """The shard manifests present on disk, sorted."""
        return sorted(self.shards_dir.glob(self.SHARD_MANIFEST_GLOB))


class RefreshStore:
    """Refresh directories under ``root``: <root>/<refresh_id>/, laid out as :class:`RefreshPaths`.

    With an ``s3://bucket/prefix`` store, ``root`` is the local working copy (generation and
    evaluation need a file system) and ``remote`` the location `publish_refresh` uploads to.
    """

    def __init__(self, root: str | Path, *, local: str | Path | None = None):
        self.remote: str | None = None
        if str(root).startswith("s3://"):
            if local is None:
                raise ConfigError(
                    f"artifacts.store {root} is on S3: its working copy needs a local directory; "
                    "build the store with store_for(cfg, workdir) (artifacts.local, default <workdir>/runs)"
                )
            self.remote = str(root).rstrip("/")
            root = local
        self.root = Path(root)

    def dir(self, rid: str) -> Path:
        return self.root / check_refresh_id(rid)

    def path(self, rid: str, name: str) -> Path:
        return self.dir(rid) / name

    def paths(self, rid: str) -> RefreshPaths:
        """The named artifact paths of refresh ``rid``."""
        return RefreshPaths(self.dir(rid))


def store_for(cfg: Any, workdir: str | Path) -> RefreshStore:
    """The configured store: a local directory, or an S3 location with a local working copy."""
    art = cfg.artifacts
    default = Path(workdir).expanduser().resolve() / "runs"
    if art.store and art.store.startswith("s3://"):
        return RefreshStore(art.store, local=Path(art.local) if art.local else default)
    return RefreshStore(art.store or default)
