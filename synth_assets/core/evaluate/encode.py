"""Rows encoded for distances.

Numeric and datetime columns go through a quantile transform fitted on the real sample (values
in [0, 1], nulls at -0.5), categoricals are one-hot encoded and scaled by 1/sqrt(2), so a
category mismatch adds exactly 1 to the squared Euclidean distance, like a numeric column at
opposite ends of its range (a Euclidean form of Gower's distance).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer

from synth_assets.core.kinds import EvalKind

from .views import Col

NUMERIC_NULL = -0.5  # encoded position of a numeric/datetime null (outside [0, 1])


@dataclass
class Encoded:
    """Rows encoded for distances: one-hot categorical block and continuous block."""

    cat: np.ndarray
    cont: np.ndarray
    codes: np.ndarray | None = None  # category index per categorical column (groups rows fast)
    cat_names: tuple[tuple[str, int, int], ...] = ()  # (column, first, last + 1) in ``cat``
    cont_names: tuple[str, ...] = ()
    _blocks: tuple[np.ndarray, list[np.ndarray]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def n(self) -> int:
        return self.cat.shape[0]

    def blocks(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """The distinct category combinations (as one-hot rows) and the row indices of each,
        found once: the synthetic query rows are searched against every training part."""
        if self._blocks is None:
            self._blocks = _category_blocks(self)
        return self._blocks

    def take(self, rows: np.ndarray) -> Encoded:
        """The rows ``rows`` (indices) of this encoding."""
        codes = self.codes[rows] if self.codes is not None else None
        return Encoded(self.cat[rows], self.cont[rows], codes, self.cat_names, self.cont_names)

    def head(self, n: int) -> Encoded:
        """The first ``n`` rows of this encoding."""
        return self.take(np.arange(min(n, self.n)))

    @staticmethod
    def concat(parts: Sequence[Encoded]) -> Encoded:
        """The rows of ``parts`` (same columns) one after the other: the encoding of their
        concatenated frames, since every row is encoded on its own."""
        first = parts[0]
        codes = None if first.codes is None else np.vstack([p.codes for p in parts])
        return Encoded(
            np.vstack([p.cat for p in parts]),
            np.vstack([p.cont for p in parts]),
            codes,
            first.cat_names,
            first.cont_names,
        )

    def select(self, names: Sequence[str]) -> Encoded:
        """The same rows restricted to the columns ``names``."""
        keep = [(i, c) for i, c in enumerate(self.cat_names) if c[0] in names]
        idx = [j for _, (_, a, b) in keep for j in range(a, b)]
        spans, pos = [], 0
        for _, (name, a, b) in keep:
            spans.append((name, pos, pos + b - a))
            pos += b - a
        ci = [i for i, c in enumerate(self.cont_names) if c in names]
        codes = self.codes[:, [i for i, _ in keep]] if self.codes is not None else None
        return Encoded(
            np.ascontiguousarray(self.cat[:, idx]),
            np.ascontiguousarray(self.cont[:, ci]),
            codes,
            tuple(spans),
            tuple(self.cont_names[i] for i in ci),
        )


def _category_blocks(enc: Encoded) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct category combinations of ``enc`` (as one-hot rows) and the row indices of each."""
    n = enc.n
    if enc.cat.shape[1] == 0:
        return np.zeros((1, 0)), [np.arange(n)]
    codes = enc.codes if enc.codes is not None and enc.codes.shape[0] == n else None
    if codes is None:
        _, inv = np.unique(enc.cat, axis=0, return_inverse=True)
        key = inv.ravel()
    else:
        key = np.zeros(n, dtype=np.int64)
        for j in range(codes.shape[1]):  # mixed radix, re-compressed after every column
            key = key * (int(codes[:, j].max()) + 1) + codes[:, j]
            key = np.unique(key, return_inverse=True)[1].ravel()
    order = np.argsort(key, kind="stable")
    sk = key[order]
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    bounds = np.r_[starts, n]
    members = [order[bounds[i] : bounds[i + 1]] for i in range(len(starts))]
    return enc.cat[order[starts]], members


@dataclass(frozen=True)
class _OneHotTable:
    """A fitted one-hot encoder's output column for each category it knows, and for any other
    value (-1: none, the row is all zeros), read off the encoder once. Transforming is then one
    hash lookup per value in polars: sklearn checks each value in a Python loop, which was a
    third of the report's encoding time."""

    categories: pl.Series
    columns: pl.Series
    unknown: int
    width: int

    @classmethod
    def of(cls, enc: OneHotEncoder) -> _OneHotTable | None:
        """The table of a fitted encoder; None when its categories are not all text."""
        cats = enc.categories_[0]
        if cats.dtype.kind != "U":
            return None
        onehot = enc.transform(cats.reshape(-1, 1).astype(object))
        if not (onehot.sum(axis=1) == 1).all():
            return None
        unseen = "\x00unseen"
        while unseen in set(cats.tolist()):
            unseen += "\x00"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns that the probe value is unknown
            probe = enc.transform(np.array([[unseen]], dtype=object))[0]
        return cls(
            pl.Series(cats.tolist(), dtype=pl.Utf8),
            pl.Series(onehot.argmax(axis=1), dtype=pl.Int64),
            int(probe.argmax()) if probe.any() else -1,
            onehot.shape[1],
        )

    def columns_of(self, values: pl.Series) -> np.ndarray:
        """The output column of each value (-1: none)."""
        return values.replace_strict(
            self.categories, self.columns, default=self.unknown, return_dtype=pl.Int64
        ).to_numpy()


def _one_hot(columns: np.ndarray, width: int) -> np.ndarray:
    """Rows with a 1 in the given column (none where it is -1), as the encoder outputs them."""
    out = np.zeros((columns.size, width))
    rows = np.flatnonzero(columns >= 0)
    out[rows, columns[rows]] = 1.0
    return out


class MixedEncoder:
    """Quantile-scaled numbers and 1/sqrt(2)-scaled one-hot categories, fitted on real rows."""

    def __init__(self, cols: Sequence[Col], real: pl.DataFrame, max_categories: int = 30):
        self.cols = list(cols)
        self.fitted: dict[str, Any] = {}
        self.tables: dict[str, _OneHotTable | None] = {}
        for c in self.cols:
            if c.kind == EvalKind.CATEGORICAL:
                enc = OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=max_categories,
                    sparse_output=False,
                    dtype=np.float64,
                )
                x = real[c.name].to_numpy().reshape(-1, 1).astype(object)
                if real[c.name].null_count() == 0:
                    # the same categories, counted by numpy instead of a Python loop that
                    # checks every value for NaN (~6x faster to fit)
                    x = x.astype(str)
                enc.fit(x)
                self.fitted[c.name] = enc
                self.tables[c.name] = _OneHotTable.of(enc)
            else:
                x = real[c.name].drop_nulls().to_numpy().astype(np.float64).reshape(-1, 1)
                if x.size == 0:
                    x = np.zeros((1, 1))
                qt = QuantileTransformer(
                    n_quantiles=int(min(1000, max(10, x.shape[0]))), subsample=None
                )
                qt.fit(x)
                self.fitted[c.name] = qt

    def transform(self, df: pl.DataFrame, names: Sequence[str] | None = None) -> Encoded:
        """Encoded rows of ``df`` restricted to the columns ``names`` (all by default)."""
        cat, cont, codes, cat_names, cont_names = [], [], [], [], []
        width = 0
        for c in self.cols:
            if names is not None and c.name not in names:
                continue
            if c.kind == EvalKind.CATEGORICAL:
                onehot = self._one_hot(c.name, df[c.name])
                codes.append(np.where(onehot.any(axis=1), onehot.argmax(axis=1), onehot.shape[1]))
                cat.append(onehot * (1 / math.sqrt(2)))
                cat_names.append((c.name, width, width + onehot.shape[1]))
                width += onehot.shape[1]
            else:
                v = df[c.name].to_numpy().astype(np.float64)
                null = np.isnan(v)
                out = np.full(v.shape, NUMERIC_NULL)
                if (~null).any():
                    out[~null] = self.fitted[c.name].transform(v[~null].reshape(-1, 1)).ravel()
                cont.append(out.reshape(-1, 1))
                cont_names.append(c.name)

        return self._encoded(df.height, cat, cont, codes, cat_names, cont_names)

    def _one_hot(self, name: str, values: pl.Series) -> np.ndarray:
        """One column's one-hot rows: by the lookup table for text without nulls, else sklearn."""
        table = self.tables.get(name)
        if table is not None and values.dtype == pl.Utf8 and values.null_count() == 0:
            return _one_hot(table.columns_of(values), table.width)
        return self.fitted[name].transform(values.to_numpy().reshape(-1, 1).astype(object))

    @staticmethod
    def _encoded(
        height: int,
        cat: list[np.ndarray],
        cont: list[np.ndarray],
        codes: list[np.ndarray],
        cat_names: list[tuple[str, int, int]],
        cont_names: list[str],
    ) -> Encoded:
        """The blocks of an encoding assembled (empty blocks for a side with no column)."""

        def block(parts: list[np.ndarray]) -> np.ndarray:
            return np.ascontiguousarray(np.hstack(parts)) if parts else np.zeros((height, 0))

        return Encoded(
            block(cat),
            block(cont),
            np.column_stack(codes).astype(np.int64) if codes else np.zeros((height, 0), np.int64),
            tuple(cat_names),
            tuple(cont_names),
        )
