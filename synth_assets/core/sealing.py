"""A generation made final: the spec stamped with its refresh and content hash, a fresh master
seed sealed in the secrets backend, and the generation record that binds them (only the seed's
SHA-256 commitment is written). The shard step unseals the seed only if it matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import SynthConfig
from .errors import GenerationError
from .secrets import SecretsBackend, new_master_seed, seed_commitment
from .spec import calibrate, content_hash
from .store import RefreshStore, read_json, write_json_atomic


@dataclass(frozen=True)
class SealedSpec:
    """The spec as written, where, and the seal of its seed."""

    spec: dict[str, Any]
    path: Path
    seed_commitment: str
    seed_version: str


def final_spec(pack: dict[str, Any], cfg: SynthConfig, rid: str, pack_rid: str) -> dict[str, Any]:
    """The spec calibrated from ``pack``, naming its refresh and pack, with its content hash."""
    spec = calibrate(pack, cfg)
    spec["refresh_id"] = rid
    spec["pack_refresh_id"] = pack_rid
    spec["content_hash"] = content_hash(spec)
    return spec


def seal_generation(
    store: RefreshStore, spec: dict[str, Any], secrets: SecretsBackend
) -> SealedSpec:
    """Seal a fresh master seed for ``spec``'s refresh; write spec.json and generation.json."""
    rid = spec["refresh_id"]
    seed = new_master_seed()
    version = secrets.seal_seed(rid, seed)
    commitment = seed_commitment(seed)
    paths = store.paths(rid)
    path = paths.spec
    write_json_atomic(path, spec)
    write_json_atomic(
        paths.generation,
        {
            "refresh_id": rid,
            "pack_refresh_id": spec["pack_refresh_id"],
            "spec_hash": spec["content_hash"],
            "seed_commitment": commitment,
            "seed_version": version,
            "secrets": secrets.describe(),
            "shards": spec["shards"],
        },
    )
    return SealedSpec(spec=spec, path=path, seed_commitment=commitment, seed_version=version)


def unseal_checked(
    store: RefreshStore, rid: str, secrets: SecretsBackend
) -> tuple[bytes, dict[str, Any]]:
    """(seed, generation record) of refresh ``rid``; refuses a seed that does not match the
    commitment recorded when it was sealed."""
    seed = secrets.unseal_seed(rid).value
    gen = read_json(store.paths(rid).generation)
    if seed_commitment(seed) != gen["seed_commitment"]:
        raise GenerationError(
            f"the sealed seed of {rid} does not match its recorded commitment: refusing to generate"
        )
    return seed, gen
