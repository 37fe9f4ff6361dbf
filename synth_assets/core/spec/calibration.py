"""The metrics pack turned into the spec, table by table; the spec's format and content hash."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from synth_assets.core import digest
from synth_assets.core.config import BANDS, SynthConfig
from synth_assets.core.errors import ConfigError, GenerationError
from synth_assets.core.kinds import TableKind
from synth_assets.core.schema import SchemaModel

from .columns import _check_releasable, _table_columns, condition_references
from .denoise import denoise_fanout, normalize
from .sizing import SIZE_FACTOR, _shard_count, _Sizing
from .tree import _dependency_tree

SPEC_FORMAT = "synth_assets.spec/1"
SPEC_VERSION = 1


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no whitespace) for hashing."""
    return digest.canonical_json(obj).encode()


def content_hash(obj: dict[str, Any]) -> str:
    """SHA-256 of an artifact's canonical JSON without its own ``content_hash`` field."""
    return hashlib.sha256(
        canonical_json({k: v for k, v in obj.items() if k != "content_hash"})
    ).hexdigest()


def calibrate(pack: dict[str, Any], cfg: SynthConfig) -> dict[str, Any]:
    """Turn the metrics pack into a generation spec (versioned, content-hashed)."""
    model = SchemaModel.from_dict(pack["schema"])
    gen = cfg.generation
    overrides = cfg.overrides
    rows_override = {**gen.rows, **overrides.get("rows", {})}
    _check_rows_override(pack, model, rows_override)
    _, deferred = model.generation_order()
    sizing = _Sizing(gen.scale, rows_override, float(pack["privacy"]["holdout_fraction"]))
    gen_order = _generation_order(pack["order"], pack["plan"], model)
    tables: dict[str, Any] = {}
    for name in gen_order:
        tables[name] = _table_entry(name, pack, model, overrides, sizing)
    _check_releasable(tables, pack)
    condition_references(tables, pack)
    for key in (*overrides.get("categorical", {}), *overrides.get("null_rate", {})):
        tname, cname = key.split(".")
        if tname not in tables or cname not in tables[tname]["columns"]:
            raise ConfigError(f"override for {key!r}: no such column in the modelled tables")
    root = pack["privacy"]["unit_table"]
    owned = [t for t, e in tables.items() if e["kind"] != TableKind.REFERENCE]
    if gen.band and root not in rows_override:
        sizing.to_band(tables[root], owned, BANDS[gen.band])
    for t, rec in sizing.sizes.items():
        tables[t]["size"] = {k: round(v, 6) if isinstance(v, float) else v for k, v in rec.items()}
    unit_rows = sum(sizing.expected[t] for t in owned)
    spec = {
        "format": SPEC_FORMAT,
        "version": SPEC_VERSION,
        "refresh_id": pack["refresh_id"],
        "pack_hash": hashlib.sha256(canonical_json(pack)).hexdigest(),
        "schema": pack["schema"],
        "roles": pack["roles"],
        "unit_table": root,
        "order": gen_order,
        "deferred": [[t, fk.name] for t, fk in deferred],
        "tables": tables,
        "shards": _shard_count(cfg, unit_rows, tables[root]["rows"]),
        "expected_rows": {k: int(round(v)) for k, v in sizing.expected.items()},
        "overrides": overrides,
        "scale": gen.scale,
        "band": gen.band,
        "size_factor": SIZE_FACTOR,
        "epsilon_spent": pack["ledger"]["epsilon_spent"],
        "delta": pack["ledger"]["delta"],
    }
    spec["content_hash"] = content_hash(spec)
    return spec


def _check_rows_override(
    pack: dict[str, Any], model: SchemaModel, rows_override: dict[str, int]
) -> None:
    """Rows can be set for the unit table and reference tables only, and only for known tables."""
    for name in rows_override:
        if name not in model.tables:
            raise ConfigError(
                f"rows override names unknown table {name!r}; tables: {', '.join(model.tables)}"
            )
        if pack["plan"][name]["kind"] == TableKind.CHILD:
            raise ConfigError(
                f"rows override for {name!r}: it is owned by the unit table, so its size follows the "
                f"fan-out; set the rows of {pack['privacy']['unit_table']!r} (or generation.scale) instead"
            )


def _table_entry(
    name: str,
    pack: dict[str, Any],
    model: SchemaModel,
    overrides: dict[str, Any],
    sizing: _Sizing,
) -> dict[str, Any]:
    """One table's spec entry: columns, dependency tree, fan-out, and its size (via ``sizing``)."""
    tp = pack["tables"][name]
    plan = pack["plan"][name]
    cols = _table_columns(name, model.tables[name], tp, overrides)
    fanout = _fanout_spec(tp)
    entry = {
        "kind": plan["kind"],
        "parent": plan["parent"],
        "parent_fk": plan["parent_fk"],
        "columns": cols,
        "tree": _dependency_tree(tp, cols),
        "fanout": fanout,
    }
    if plan["kind"] == TableKind.ROOT:
        sizing.root(name, tp, entry)
    elif plan["kind"] == TableKind.REFERENCE:
        sizing.reference(name, tp, entry)
    else:
        sizing.child(name, plan, tp, fanout)
    return entry


def _fanout_spec(tp: dict[str, Any]) -> dict[str, Any]:
    """Each FK's fan-out distribution, by FK name."""
    fanout = {}
    for fkname, f in tp["fanout"].items():
        # Primary fan-out: tails matter (one spurious far bin multiplies the row count), so
        # the support is cut where the pooled tail is noise. Reference popularity is deconvolved
        # from moments downstream, so it keeps the clipped noisy histogram.
        p = (
            denoise_fanout(f["counts"], f.get("sigma"), bins=f["bins"])
            if f["primary"]
            else normalize(f["counts"])
        )
        fanout[fkname] = {
            "parent": f["parent"],
            "column": f["column"],
            "primary": f["primary"],
            "bins": f["bins"],
            "p": p.tolist(),
            "max": f["max"],
        }
        # The report simulates this measurement's noise (achievable); a primary fan-out also
        # needs how many parents it counted (the unclipped noisy sum: clipped, noise adds).
        fanout[fkname]["sigma"] = f.get("sigma")
        if f["primary"]:
            fanout[fkname]["rows"] = max(1.0, float(np.sum(f["counts"])))
    return fanout


def _generation_order(order: list[str], plan: dict[str, Any], model: SchemaModel) -> list[str]:
    """References first, then unit-owned tables parents-first."""
    gen_order, _ = model.generation_order()
    refs = [n for n in gen_order if plan[n]["kind"] == TableKind.REFERENCE]
    rest = [n for n in gen_order if plan[n]["kind"] != TableKind.REFERENCE]
    # A child must come after its primary parent even when the FK was deferred in a cycle.
    placed: list[str] = []
    pending = list(rest)
    while pending:
        progressed = False
        for n in list(pending):
            par = plan[n]["parent"]
            if par is None or par in placed or par == n:
                placed.append(n)
                pending.remove(n)
                progressed = True
        if not progressed:
            raise GenerationError(
                f"cannot order tables {pending}: their primary parents form a cycle"
            )
    return refs + placed
