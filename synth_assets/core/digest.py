"""One home for the bytes that get hashed, signed or compared: canonical JSON and file SHA-256.

A spec's content hash, a manifest's signature and an audit event's MAC must each be computed
from exactly one serialisation; a second spelling of the same ``json.dumps`` arguments is a
second chance for two signers to disagree on one byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def canonical_json(obj: Any, *, strict: bool = False, default: Callable | None = None) -> str:
    """Sorted keys, no whitespace, ASCII only; ``strict`` refuses NaN and infinities (what gets
    signed must round-trip through strict JSON parsers)."""
    return json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=not strict,
        default=default,
    )


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, streamed, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
