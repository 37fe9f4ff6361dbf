"""The kind -> generator table and ``fake_column``, the one entry point (argument checks here)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from synth_assets.core.errors import GenerationError

from .free_text import _free_text
from .kinds import (
    _address,
    _birth_date,
    _card_number,
    _email,
    _iban,
    _ip_address,
    _names,
    _national_id,
    _phone,
    _postal_code,
)

_GENERATORS: dict[str, Callable[..., pl.Series]] = {
    "email": _email,
    "person_name": _names("person_name"),
    "first_name": _names("first_name"),
    "last_name": _names("last_name"),
    "phone": _phone,
    "address": _address,
    "postal_code": _postal_code,
    "birth_date": _birth_date,
    "national_id": _national_id,
    "card_number": _card_number,
    "iban": _iban,
    "ip_address": _ip_address,
    "free_text": _free_text,
    "city": _names("city"),
    "company_name": _names("company_name"),
}
# The PII kinds, in the order messages list them; core/roles.py checks them against its Role.
PII_KINDS: tuple[str, ...] = tuple(_GENERATORS)


def fake_column(
    kind: str,
    rng: np.random.Generator,
    ordinals: np.ndarray,
    *,
    unique: bool = False,
    max_length: int | None = None,
    pg_type: str = "text",
    params: dict | None = None,
) -> pl.Series:
    """n = len(ordinals) fake values of `kind`. `ordinals` are int64 row numbers that are unique
    across the whole dataset (all shards); when unique=True the values must be unique across
    any set of calls whose ordinals are disjoint — derive uniqueness from the ordinal (e.g. embed
    it), never from a retry loop.

    Returns a Utf8 Series named ``kind`` (``birth_date``: Date, or Datetime when ``pg_type``
    mentions "timestamp"; UTC-aware for timestamptz). Raises GenerationError for an unknown
    kind, a ``max_length`` too short for the (unique) format, or ordinals past the capacity of
    a reserved range.
    """
    gen = _GENERATORS.get(kind)
    if gen is None:
        raise GenerationError(f"unknown PII kind {kind!r}; fix: use one of {', '.join(PII_KINDS)}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fake_column({kind!r}) needs a numpy.random.Generator, got {rng!r}")
    if max_length is not None and (isinstance(max_length, bool) or int(max_length) < 1):
        raise GenerationError(
            f"{kind}: max_length must be a positive integer, got {max_length!r}; "
            "fix: pass the column's character limit or None"
        )
    ords = np.asarray(ordinals)
    if ords.ndim != 1 or (ords.size and not np.issubdtype(ords.dtype, np.integer)):
        raise GenerationError(
            f"{kind}: ordinals must be a 1-D integer array, got dtype {ords.dtype} and shape "
            f"{ords.shape}; fix: pass np.arange(start, stop, dtype=np.int64)"
        )
    ords = ords.astype(np.int64, copy=False)
    if ords.size and int(ords.min()) < 0:
        raise GenerationError(
            f"{kind}: ordinals must be non-negative row numbers, got {int(ords.min())}; "
            "fix: number rows from 0"
        )
    out = gen(
        rng,
        ords,
        bool(unique),
        None if max_length is None else int(max_length),
        pg_type or "text",
        params or {},
    )
    return out.alias(kind)
