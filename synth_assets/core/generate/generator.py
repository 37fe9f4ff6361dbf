"""The shard generator: a shard's tables parents-first, their columns and foreign keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from synth_assets.core.errors import GenerationError
from synth_assets.core.fakes import fake_column
from synth_assets.core.kinds import ColumnKind, TableKind
from synth_assets.core.schema import ForeignKey, SchemaModel

from .decode import (
    _datetime_series,
    _datetime_us,
    _decode_boolean,
    _decode_categorical,
    _decode_numeric,
    _ignored,
    _key_series,
    _null_mask,
    from_text,
    random_bytes,
)
from .layout import POPULARITY_SUB, REFERENCE_STREAM, shard_units, streams
from .sampling import _groups, _inverse_cdf, _popularity, _sample_tree

# Rounds in which a reference table's rows repeating a composite UNIQUE set are drawn again
# before those still repeating are dropped (see ShardGenerator._distinct_rows).
REDRAW_ROUNDS = 20


@dataclass
class Frame:
    """A generated table inside one shard: its columns and, for unit tables, each row's unit."""

    columns: dict[str, Any]
    n: int
    unit: np.ndarray | None  # local unit index per row


@dataclass
class _Rows:
    """What every column of one table's generated rows is drawn from."""

    n: int
    ordinals: np.ndarray
    parent_idx: np.ndarray | None
    parent_frame: Frame | None
    codes: dict[str, np.ndarray]
    within: dict[str, np.ndarray]
    rng: np.random.Generator


def _parent_floor(c: dict[str, Any], rows: _Rows) -> np.ndarray | None:
    """Per row, the parent's timestamp (µs) a datetime must not precede (None when unenforced);
    a NULL parent value gives no floor."""
    pc = c.get("after_parent_column")
    if not pc or rows.parent_frame is None or rows.parent_idx is None:
        return None
    ps = rows.parent_frame.columns[pc]
    pus = ps.cast(pl.Datetime("us")).cast(pl.Int64) if ps.dtype == pl.Date else ps.cast(pl.Int64)
    floor = pus.to_numpy()[rows.parent_idx]
    floor = np.where(np.isnan(floor.astype(np.float64)), np.iinfo(np.int64).min // 2, floor)
    return floor.astype(np.int64)


def _synth_column(c: dict[str, Any], rows: _Rows) -> pl.Series:
    """A synthesized (fake) column: values faked only for the rows that are not NULL."""
    n = rows.n
    params = {}
    if c.get("words_p"):
        params["length_words"] = (list(range(len(c["words_p"]))), c["words_p"])
    null = _null_mask(c["null_p"], n, rows.rng)
    keep = np.flatnonzero(~null)  # fake only the values that will be emitted
    s = fake_column(
        c["role"],
        rows.rng,
        rows.ordinals[keep],
        unique=c["unique"],
        max_length=c["max_length"],
        pg_type=c["pg_type"],
        params=params,
    )
    if s.dtype in (pl.Date, pl.Datetime) or isinstance(s.dtype, pl.Datetime):
        if c["base_type"] not in ("date", "timestamp", "timestamptz"):
            s = s.cast(pl.Utf8)
    if keep.size < n:
        full = pl.Series([None] * n, dtype=s.dtype) if n else s.clear()
        s = full.scatter(keep, s) if keep.size else full
    return s


class ShardGenerator:
    """Generates the tables of one shard (or the reference tables) from the spec."""

    def __init__(self, spec: dict[str, Any], master_seed: bytes):
        self.spec = spec
        self.model = SchemaModel.from_dict(spec["schema"])
        self.seqs = streams(master_seed, spec["shards"])
        self._refs: dict[str, Frame] | None = None
        self._popularity: dict[tuple[str, str], np.ndarray] = {}
        self.dropped: dict[str, int] = {}  # reference rows dropped by _distinct_rows

    def _rng(self, stream: int, table: str, *sub: int) -> np.random.Generator:
        """Independent generator for (stream, table[, sub]): a child of the stream's SeedSequence."""
        ss = self.seqs[stream]
        key = (*ss.spawn_key, self.spec["order"].index(table), *sub)
        return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=key))

    def references(self) -> dict[str, Frame]:
        """Reference tables, identical in every shard (their own stream)."""
        if self._refs is None:
            frames: dict[str, Frame] = {}
            for name in self.spec["order"]:
                t = self.spec["tables"][name]
                if t["kind"] != TableKind.REFERENCE:
                    continue
                n = int(t["rows"])
                rng = self._rng(REFERENCE_STREAM, name)
                frames[name] = self._table(
                    name, n, np.arange(n, dtype=np.int64), None, None, frames, rng
                )
                for col, values in t.get("copy", {}).items():  # public.tables
                    frames[name].columns[col] = from_text(values, t["columns"][col])
                frames[name] = self._distinct_rows(name, frames, rng)
            self._refs = frames
        return self._refs

    def shard(self, shard: int) -> dict[str, Frame]:
        """Every unit-owned table of ``shard`` (reference tables not included)."""
        u0, u1 = shard_units(self.spec, shard)
        frames: dict[str, Frame] = dict(self.references())
        S = self.spec["shards"]
        out: dict[str, Frame] = {}
        for name in self.spec["order"]:
            t = self.spec["tables"][name]
            if t["kind"] == TableKind.REFERENCE:
                continue
            rng = self._rng(shard + 1, name)
            if t["kind"] == TableKind.ROOT:
                n = u1 - u0
                ordinals = np.arange(u0, u1, dtype=np.int64)
                unit = np.arange(n, dtype=np.int64)
                parent_idx = None
            else:
                f = t["fanout"][t["parent_fk"]]
                parent = frames[t["parent"]]
                k = self._fanout(f, parent.n, rng)
                parent_idx = np.repeat(np.arange(parent.n, dtype=np.int64), k)
                n = int(parent_idx.size)
                unit = parent.unit[parent_idx]
                ordinals = np.arange(n, dtype=np.int64) * S + shard
            frames[name] = self._table(name, n, ordinals, unit, parent_idx, frames, rng)
            out[name] = frames[name]
        self._fill_deferred(frames, shard)
        for name in out:
            out[name] = frames[name] = self._drop_duplicate_keys(name, frames[name])
        return out

    def _distinct_rows(
        self, name: str, frames: dict[str, Frame], rng: np.random.Generator
    ) -> Frame:
        """A reference table's rows with every composite UNIQUE set of generated columns
        distinct: rows repeating an earlier row's set are drawn again from the model (up to
        ``REDRAW_ROUNDS`` times), and those still repeating are dropped. Nothing references the
        table yet, so its children draw from the rows that remain.

        lahman's teams are unique on (year, league, team): drawn row by row from the model, a
        fifth of them repeated one (663 of 2,943) and the staging load would have refused them.
        Its released domain (11 team codes, two leagues, ~150 years) holds barely more sets than
        rows, so a few percent still repeat after the redraws: they are dropped, and counted
        (``self.dropped``, the shard manifest), and the shard check expects that many fewer.
        """
        fr = frames[name]
        table, t = self.model.tables[name], self.spec["tables"][name]
        kept = set(t.get("copy", {}))
        sets = [
            cols
            for cols in table.unique_sets
            if len(cols) > 1 and all(t["columns"][c]["kind"] != ColumnKind.KEY for c in cols)
        ]
        if not sets or fr.n == 0:
            return fr
        for round_ in range(REDRAW_ROUNDS + 1):
            dup = np.zeros(fr.n, dtype=bool)
            for cols in sets:
                df = pl.DataFrame({c: fr.columns[c] for c in cols})
                dup |= ~df.select(pl.struct(cols).is_first_distinct()).to_series().to_numpy()
            idx = np.flatnonzero(dup)
            if idx.size == 0:
                return fr
            if round_ == REDRAW_ROUNDS:
                break
            again = self._table(name, int(idx.size), idx, None, None, frames, rng)
            rest = np.flatnonzero(~dup)
            order = np.argsort(np.concatenate([rest, idx]), kind="stable")
            for c, s in again.columns.items():  # gather, not scatter: any column type
                if s is not None and c not in kept and t["columns"][c]["kind"] != ColumnKind.KEY:
                    fr.columns[c] = pl.concat([fr.columns[c].gather(rest), s]).gather(order)
        keep = np.flatnonzero(~dup)
        self.dropped[name] = int(fr.n - keep.size)
        cols = {c: s.gather(keep) if s is not None else s for c, s in fr.columns.items()}
        return Frame(cols, int(keep.size), None)

    def _drop_duplicate_keys(self, name: str, fr: Frame) -> Frame:
        """Rows whose composite key repeats within the shard, dropped (first kept).

        A link table keyed by (parent, reference) draws the reference per row: two draws for
        the same parent can coincide (3 courses of 40 per person: 4 % of rows). Only for leaf
        tables whose key holds the parent FK (unique across shards, since parents are): a
        dropped row of a referenced table would orphan its children.
        """
        table = self.model.tables[name]
        t = self.spec["tables"][name]
        parent_fk = next((fk for fk in table.foreign_keys if fk.name == t["parent_fk"]), None)
        if parent_fk is None or self.model.children(name) or fr.n == 0:
            return fr
        keep = np.ones(fr.n, dtype=bool)
        for cols in table.unique_sets:
            if len(cols) < 2 or parent_fk.columns[0] not in cols:
                continue
            df = pl.DataFrame({c: fr.columns[c] for c in cols})
            keep &= df.select(pl.struct(cols).is_first_distinct()).to_series().to_numpy()
        if keep.all():
            return fr
        idx = np.flatnonzero(keep)
        cols = {c: s.gather(idx) if s is not None else s for c, s in fr.columns.items()}
        return Frame(cols, int(idx.size), fr.unit[idx] if fr.unit is not None else None)

    @staticmethod
    def _fanout(f: dict[str, Any], n_parents: int, rng: np.random.Generator) -> np.ndarray:
        bins = np.asarray(f["bins"], dtype=np.int64)
        hi = np.append(bins[1:], max(int(bins[-1]) * 2, int(bins[-1]) + 1))
        b = _inverse_cdf(np.asarray(f["p"]), rng.random(n_parents))
        k = bins[b] + np.floor(rng.random(n_parents) * (hi[b] - bins[b])).astype(np.int64)
        return np.minimum(k, int(f["max"]))

    def _table(
        self,
        name: str,
        n: int,
        ordinals: np.ndarray,
        unit: np.ndarray | None,
        parent_idx: np.ndarray | None,
        frames: dict[str, Frame],
        rng: np.random.Generator,
    ) -> Frame:
        t = self.spec["tables"][name]
        table = self.model.tables[name]
        cols: dict[str, Any] = {}
        codes, within = _sample_tree(t, n, rng)
        parent_frame = frames.get(t["parent"]) if t["parent"] else None
        rows = _Rows(n, ordinals, parent_idx, parent_frame, codes, within, rng)
        for col in table.columns:
            c = {**t["columns"][col.name], "name": col.name}
            cols[col.name] = self._column(name, c, rows)
        # Foreign keys: the parent, references (popularity and attribute), same-unit rows.
        for fk in table.foreign_keys:
            cols[fk.columns[0]] = self._fk_column(name, t, fk, frames, rows)
        return Frame(cols, n, unit)

    def _column(self, name: str, c: dict[str, Any], rows: _Rows) -> pl.Series | None:
        """One column of table ``name`` by its kind; None for FK and public columns, which the
        table's FK pass and the caller fill once every other column exists."""
        kind, n, rng = c["kind"], rows.n, rows.rng
        if kind == ColumnKind.KEY:
            return self._key_column(name, c, rows)
        if kind == ColumnKind.CATEGORICAL:
            return _decode_categorical(c, rows.codes[c["name"]], rng)
        if kind == ColumnKind.NUMERIC:
            return _decode_numeric(c, rows.codes[c["name"]], rng, rows.within.get(c["name"]))
        if kind == ColumnKind.BOOLEAN:
            return _decode_boolean(rows.codes[c["name"]])
        if kind == ColumnKind.DATETIME:
            us = _datetime_us(c, n, rng, _parent_floor(c, rows))
            return _datetime_series(c, us, _null_mask(c["null_p"], n, rng))
        if kind == ColumnKind.SYNTH and c["role"] == "binary":
            # NULLs by a mask, not Series.scatter: polars 1.x has no scatter for binary (the
            # bench extra pins polars 1.x; the product runs on 1.x and 2.x).
            values = random_bytes(c.get("log2_bytes_p"), n, rng)
            keep = pl.Series(~_null_mask(c["null_p"], n, rng))
            return values.to_frame().select(pl.when(keep).then(pl.first())).to_series()
        if kind == ColumnKind.SYNTH:
            return _synth_column(c, rows)
        if kind in (ColumnKind.FK, ColumnKind.PUBLIC):
            return None  # fk: filled by the FK pass; public: copied by the caller (public.tables)
        return _ignored(c, n)

    def _key_column(self, name: str, c: dict[str, Any], rows: _Rows) -> pl.Series:
        """A key column: numbered within the parent when it completes a composite (parent, n)
        primary key, else from the rows' global ordinals."""
        t = self.spec["tables"][name]
        table = self.model.tables[name]
        pfk = next((fk for fk in table.foreign_keys if fk.name == t["parent_fk"]), None)
        if (
            pfk is not None
            and rows.parent_idx is not None
            and c["name"] in table.primary_key
            and pfk.columns[0] in table.primary_key
        ):
            # Composite key (parent, n): number the rows within their parent, 1..k.
            first = np.searchsorted(rows.parent_idx, rows.parent_idx, side="left")
            within = np.arange(rows.n, dtype=np.int64) - first
            return _key_series(c, within, rows.rng, name)
        return _key_series(c, rows.ordinals, rows.rng, name)

    def _fk_column(
        self, name: str, t: dict[str, Any], fk: Any, frames: dict[str, Frame], rows: _Rows
    ) -> pl.Series | None:
        """An FK column: the parent's key, a reference table's row, or None (deferred: rows of
        the same shard of a table generated later, or of this table itself)."""
        if fk.name == t["parent_fk"]:
            return rows.parent_frame.columns[fk.ref_columns[0]].gather(rows.parent_idx)
        if (
            fk.ref_table in frames
            and self.spec["tables"][fk.ref_table]["kind"] == TableKind.REFERENCE
        ):
            return self._reference_fk(
                name, t, fk, frames[fk.ref_table], rows.codes, rows.n, rows.rng
            )
        return None

    def _reference_weights(self, name: str, fk: ForeignKey, m: int) -> np.ndarray:
        """Popularity of each of the ``m`` reference rows ``name.fk`` points at: a property of
        the reference row, so drawn once from the reference stream and shared by every shard.
        Drawn per shard, each merchant got a fresh weight in every shard and its total over
        the shards averaged them out: merchant popularity came out flatter the more shards
        (the demo's fan-out score 0.57-0.64 where one draw reaches ~0.67, the staging band's
        0.47)."""
        key = (name, fk.name)
        if key not in self._popularity:
            f = self.spec["tables"][name]["fanout"].get(fk.name)
            index = self.model.tables[name].foreign_keys.index(fk)
            rng = self._rng(REFERENCE_STREAM, name, POPULARITY_SUB + index)
            self._popularity[key] = _popularity(f, m, rng) if f is not None else np.ones(m)
        return self._popularity[key]

    def _reference_fk(self, name: str, t, fk, ref: Frame, codes, n, rng) -> pl.Series:
        keycol = ref.columns[fk.ref_columns[0]]
        m = ref.n
        w = self._reference_weights(name, fk, m)
        attr_key = f"^{fk.columns[0]}"
        idx = np.empty(n, dtype=np.int64)
        # An attribute whose marginal matched the reference's mix is not used (see
        # :func:`.spec.columns.condition_references`): the rows go by popularity alone.
        if attr_key in codes and t["columns"][attr_key].get("conditioned", True):
            a = t["columns"][attr_key]
            vals = a["values"]
            ref_vals = ref.columns[a["attribute"]].cast(pl.Utf8).to_numpy()
            ref_code = np.full(m, len(vals), dtype=np.int64)
            for i, v in enumerate(vals):
                ref_code[ref_vals == v] = i
            want = codes[attr_key]
            u = rng.random(n)
            for v, rows in _groups(want):
                pool = np.nonzero(ref_code == v)[0] if v < len(vals) else np.arange(m)
                if pool.size == 0:
                    pool = np.arange(m)
                # Every row of the category idle (a share of idle rows is drawn, not
                # measured per category): the rows the category asks for spread evenly.
                wp = w[pool] if w[pool].sum() > 0 else np.ones(pool.size)
                idx[rows] = pool[_inverse_cdf(wp, u[rows])]
        else:
            idx = _inverse_cdf(w if w.sum() > 0 else np.ones(m), rng.random(n))
        s = keycol.gather(idx)
        null = _null_mask(t["columns"][fk.columns[0]].get("null_p", 0.0), n, rng)
        return s.scatter(np.nonzero(null)[0], None) if null.any() else s

    def _fill_deferred(self, frames: dict[str, Frame], shard: int) -> None:
        """Self-references and FKs to other unit-owned tables: a row of the same shard, same unit when possible."""
        for name in self.spec["order"]:
            t = self.spec["tables"][name]
            table = self.model.tables[name]
            fr = frames[name]
            for fk in table.foreign_keys:
                colname = fk.columns[0]
                if fr.columns.get(colname) is not None:
                    continue
                c = t["columns"][colname]
                stream = REFERENCE_STREAM if t["kind"] == TableKind.REFERENCE else shard + 1
                rng = self._rng(stream, name, 1 + table.foreign_keys.index(fk))
                target = frames[fk.ref_table]
                keys = target.columns[fk.ref_columns[0]]
                n = fr.n
                if target.n == 0:
                    if not c["nullable"]:
                        raise GenerationError(
                            f"{name}.{colname} needs rows of {fk.ref_table} but the shard has none"
                        )
                    fr.columns[colname] = pl.Series([None] * n, dtype=keys.dtype)
                    continue
                u = rng.random(n)
                if fk.ref_table == name:
                    # Self-reference: an earlier row of the same shard (no self-loops, no cycles).
                    idx = np.floor(u * np.arange(n)).astype(np.int64)
                    null = np.zeros(n, dtype=bool)
                    null[0] = True
                elif (
                    fr.unit is not None
                    and target.unit is not None
                    and self.spec["tables"][fk.ref_table]["kind"] != TableKind.ROOT
                ):
                    # Another row of the same unit (a card of the same account); a second FK
                    # to the unit table itself (transfer.to_id) is any unit of the shard.
                    order = np.argsort(target.unit, kind="stable")
                    su = target.unit[order]
                    lo = np.searchsorted(su, fr.unit, side="left")
                    hi = np.searchsorted(su, fr.unit, side="right")
                    cnt = hi - lo
                    has = cnt > 0
                    pick = lo + np.floor(u * np.maximum(cnt, 1)).astype(np.int64)
                    idx = np.where(
                        has,
                        order[np.minimum(pick, len(order) - 1)],
                        np.floor(u * target.n).astype(np.int64),
                    )
                    null = ~has if c["nullable"] else np.zeros(n, dtype=bool)
                else:
                    idx = np.floor(u * target.n).astype(np.int64)
                    null = np.zeros(n, dtype=bool)
                null |= _null_mask(c.get("null_p", 0.0), n, rng)
                if not c["nullable"]:
                    if null[0] and fk.ref_table == name and n > 0:
                        raise GenerationError(
                            f"{name}.{colname} is a NOT NULL self-reference: the first row cannot point "
                            "at an earlier one; make it nullable"
                        )
                    null[:] = False
                s = keys.gather(np.clip(idx, 0, target.n - 1))
                fr.columns[colname] = s.scatter(np.nonzero(null)[0], None) if null.any() else s
