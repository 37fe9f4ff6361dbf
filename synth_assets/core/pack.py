"""The metrics pack of a refresh: measured once, inside the privacy boundary, and summarised.

The pack records the version of the HMAC key its keyed hashes used, so the report and the
manifest can say which key a refresh needs (``privacy.hmac_key_version``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from .config import SynthConfig
from .profile import profile_source
from .schema import SchemaModel
from .secrets import Secret
from .summary import PackSpend


def measure_pack(
    conn: psycopg.Connection,
    reflected: dict[str, Any],
    cfg: SynthConfig,
    key: Secret,
    rid: str,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Profile the source reflected in ``reflected`` (schema.json: schema and roles) with
    differential privacy; the pack names the HMAC key version it hashed with."""
    model = SchemaModel.from_dict(reflected["schema"])
    pack = profile_source(conn, model, reflected["roles"], cfg, key.value, refresh_id=rid, log=log)
    pack["privacy"]["hmac_key_version"] = key.version
    return pack


def pack_summary(pack: dict[str, Any]) -> PackSpend:
    """What a refresh summary states of its pack: the exact ledger (not rounded), the
    reference tables' own epsilon when they spent any, and the privacy unit."""
    led = pack["ledger"]
    ref = pack.get("reference_ledger")
    return PackSpend(
        epsilon_spent=led["epsilon_spent"],
        delta=led["delta"],
        privacy_unit=pack.get("privacy", {}).get("unit_table"),
        reference_epsilon_spent=ref["epsilon_spent"] if ref else None,
    )
