"""What every asset shares in the Dagster UI: owners, column schemas, the pipeline assets'
decorator, and the source database as the external asset at the head of the lineage (the group
names and the data flow are in ``constants``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import dagster as dg

from synth_assets.core.schema import SchemaModel

from .constants import BOUNDARY, FLOW, MEASURE, PRODUCTION_DATABASE


def owners() -> list[str]:
    """Owners shown on every asset: ``SYNTH_OWNERS`` (comma-separated e-mails or ``team:``
    names), else the team that runs the pipeline."""
    raw = os.environ.get("SYNTH_OWNERS", "team:data-platform")
    return [o.strip() for o in raw.split(",") if o.strip()]


production_database = dg.AssetSpec(
    PRODUCTION_DATABASE,
    group_name=MEASURE,
    kinds={"postgres"},
    tags=BOUNDARY,
    owners=owners(),
    description="The source database (source.url and source.schema in synth.yaml). Read inside "
    "the privacy boundary with a read-only role, never written; every refresh starts here.",
)


def stage_asset(key: dg.AssetKey, **kwargs: Any) -> Callable[..., dg.AssetsDefinition]:
    """``dg.asset`` for a pipeline stage: its group and deps from ``FLOW`` (the data flow in one
    table) and the owners every asset shows; ``kwargs`` say the rest (kinds, description...)."""
    group, deps = FLOW[key]
    return dg.asset(key=key, group_name=group, deps=list(deps), owners=owners(), **kwargs)


def table_schemas(model: SchemaModel) -> dict[str, dg.MetadataValue]:
    """Dagster's column schema of every table (names, types, NOT NULL, keys), one entry each:
    the assets hold whole schemas, and ``dagster/column_schema`` describes one table."""
    out: dict[str, dg.MetadataValue] = {}
    for t in model.tables.values():
        single = {tuple(u)[0] for u in t.unique_sets if len(tuple(u)) == 1}
        refs = {fk.columns[0]: f"{fk.ref_table}.{fk.ref_columns[0]}" for fk in t.foreign_keys}
        cols = []
        for c in t.columns:
            other = ["primary key"] if c.name in t.primary_key else []
            if c.name in refs:
                other.append(f"references {refs[c.name]}")
            cols.append(
                dg.TableColumn(
                    name=c.name,
                    type=c.declared_type,
                    constraints=dg.TableColumnConstraints(
                        nullable=c.nullable, unique=c.name in single, other=other
                    ),
                )
            )
        out[f"columns/{t.name}"] = dg.MetadataValue.table_schema(dg.TableSchema(columns=cols))
    return out
