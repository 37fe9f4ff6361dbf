"""The kinds of the plan and the profile: what each table is to the privacy unit, and how
each column is measured, specified and generated.

The one home of both vocabularies. A member equals its plain string and serialises as it
(``json.dumps(TableKind.ROOT) == '"root"'``), so kinds read back from ``metrics_pack.json``
or ``spec.json`` (plain strings) compare with the members as they are, and the artifacts keep
their bytes.
"""

from __future__ import annotations

from enum import StrEnum


class TableKind(StrEnum):
    """What a table is to the privacy unit (``TablePlan.kind``, the pack's and spec's
    ``tables[t]["kind"]``)."""

    ROOT = "root"  # the privacy unit: one row per person or account
    CHILD = "child"  # owned by a unit through required foreign keys
    REFERENCE = "reference"  # owned by no unit: generated once, measured row by row


class ColumnKind(StrEnum):
    """How a column is measured and generated (``ColumnModel.kind``, the pack's and spec's
    ``columns[c]["kind"]``)."""

    KEY = "key"  # generated: a primary key or unique column
    FK = "fk"  # a foreign key: null rate and fan-out measured, drawn from its parent
    SYNTH = "synth"  # PII, free text and binary: faked, only lengths or presence measured
    CATEGORICAL = "categorical"
    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    IGNORE = "ignore"  # not measured, not generated
    REF_ATTRIBUTE = "ref_attribute"  # a ``^fk`` entry: the referenced rows' attribute marginal
    PUBLIC = "public"  # a column of a public table, copied as it is


# Kinds measured as one-way marginals and candidates for the pairs of the tree.
MODELLED_KINDS = (ColumnKind.CATEGORICAL, ColumnKind.NUMERIC, ColumnKind.BOOLEAN)


class EvalKind(StrEnum):
    """How the evaluation compares a column (``evaluate.views.Col.kind``).

    A vocabulary of its own, not a subset of ``ColumnKind``: a boolean column is compared as
    a categorical one, and keys, foreign keys and PII are not compared at all. Its members
    share their spellings with ``ColumnKind``'s, so the report reads the same words.
    """

    CATEGORICAL = "categorical"  # categorical and boolean columns: shares of each value
    NUMERIC = "numeric"
    DATETIME = "datetime"
