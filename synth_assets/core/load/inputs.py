"""Inputs of a load, read from the refresh directory and verified before the target is touched:
the gated report, the spec (against its content hash) and every shard file (against its
manifest's SHA-256)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_assets.core.digest import sha256_file
from synth_assets.core.schema import SchemaModel
from synth_assets.core.spec import content_hash
from synth_assets.core.store import RefreshPaths, check_refresh_id, read_json

from .errors import LoadRefused
from .guards import verify_report


@dataclass
class ShardFile:
    """One Parquet shard file of a table, with the row count and hash its manifest records."""

    path: Path
    rows: int
    sha256: str


@dataclass
class LoadInputs:
    """Everything read from the refresh directory and verified before the target is touched."""

    refresh_id: str
    spec: dict[str, Any]
    model: SchemaModel
    order: list[str]
    files: dict[str, list[ShardFile]]
    report: dict[str, Any]

    @property
    def rows(self) -> dict[str, int]:
        return {t: sum(f.rows for f in fs) for t, fs in self.files.items()}

    @property
    def shard_hashes(self) -> dict[str, dict[str, str]]:
        return {t: {f.path.name: f.sha256 for f in fs} for t, fs in self.files.items()}


def read_inputs(refresh_dir: Path, refresh_id: str, *, check_hashes: bool = True) -> LoadInputs:
    """Verify the report, the spec hash and every shard file's hash; list files per table."""
    check_refresh_id(refresh_id)
    refresh_dir = Path(refresh_dir)
    report = verify_report(refresh_dir, refresh_id)
    paths = RefreshPaths(refresh_dir)
    spec_path = paths.spec
    if not spec_path.is_file():
        raise LoadRefused(f"refresh {refresh_id} has no {paths.SPEC} in {refresh_dir}")
    spec = read_json(spec_path)
    if content_hash(spec) != spec.get("content_hash"):
        raise LoadRefused(
            f"{spec_path} does not match its content hash: it was modified after calibration"
        )
    if spec.get("refresh_id") not in (None, refresh_id):
        raise LoadRefused(
            f"{spec_path} belongs to refresh {spec.get('refresh_id')}, not {refresh_id}"
        )
    model = SchemaModel.from_dict(spec["schema"])
    files: dict[str, list[ShardFile]] = {t: [] for t in model.tables}
    n_shards = int(spec["shards"])
    for s in range(n_shards):
        mpath = paths.manifest(s)
        if not mpath.is_file():
            raise LoadRefused(
                f"shard {s:05d} of refresh {refresh_id} has no manifest ({mpath}): "
                "the shards are incomplete; materialize every partition of synthetic_shards"
            )
        man = read_json(mpath)
        for t, f in man["tables"].items():
            if t not in files:
                raise LoadRefused(f"{mpath} lists table {t!r}, which the spec does not have")
            p = paths.shard_dir(t) / Path(f["path"]).name
            files[t].append(ShardFile(p, int(f["rows"]), f["sha256"]))
    for t, fs in files.items():
        if not fs:
            raise LoadRefused(f"no shard file holds table {t} in refresh {refresh_id}")
        if check_hashes:
            for f in fs:
                if not f.path.is_file():
                    raise LoadRefused(f"shard file {f.path} is missing")
                if sha256_file(f.path) != f.sha256:
                    raise LoadRefused(
                        f"shard file {f.path} does not match the SHA-256 in its manifest: "
                        "it was modified after generation; regenerate the shards"
                    )
    order = [t for t in spec.get("order", []) if t in model.tables]
    order += [t for t in model.tables if t not in order]
    return LoadInputs(refresh_id, spec, model, order, files, report)
