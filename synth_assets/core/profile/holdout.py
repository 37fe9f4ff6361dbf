"""The holdout: a keyed-hash slice of privacy units kept out of profiling for the evaluator.

SQL and Python compute the same rule, so the profiler (in the source) and the evaluator (on
fetched unit ids) agree on which units were never measured.
"""

from __future__ import annotations

import hashlib

import numpy as np

from synth_assets.core.secrets import keyed_hash


def holdout_sql(unit_expr: str) -> str:
    """SQL predicate true for units in the keyed-hash holdout (same rule as :func:`in_holdout`)."""
    return (
        f"(('x' || substr(md5(%(hkey)s || ({unit_expr})::text), 1, 8))::bit(32)::bigint < %(hcut)s)"
    )


def holdout_key(hmac_key: bytes) -> str:
    """Sub-key used for holdout selection (the HMAC key itself never goes into SQL)."""
    return keyed_hash(hmac_key, "synth_assets/holdout/v1")


def in_holdout(hkey: str, unit_values: list[str], fraction: float) -> np.ndarray:
    """Python twin of :func:`holdout_sql` for the evaluator."""
    cut = int(fraction * 2**32)
    return np.array(
        [int(hashlib.md5((hkey + v).encode()).hexdigest()[:8], 16) < cut for v in unit_values],
        dtype=bool,
    )
