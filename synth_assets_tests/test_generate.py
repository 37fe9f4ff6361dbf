"""The generator's promises (core/generate/): a shard is a function of the seed and its index,
every key resolves, unique columns stay unique, and the spec's NULL rates and CHECKs hold.

Specs are profiled once per module from the session's small demo and shop sources; every
assertion is about generation given that spec, so DP noise in the spec cannot make it flaky."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synth_assets.core import pg
from synth_assets.core.errors import GenerationError
from synth_assets.core.fakes import is_luhn_valid
from synth_assets.core.generate import (
    ShardGenerator,
    generate_shard,
    shard_path,
    shard_units,
    streams,
)
from synth_assets.core.profile import profile_source
from synth_assets.core.roles import infer_roles
from synth_assets.core.schema import SchemaModel, reflect
from synth_assets.core.spec import calibrate
from synth_assets_tests.conftest import make_config
from synth_assets_tests.shop_schema import SHOP_BOUNDS, SHOP_PUBLIC

SEED = bytes(range(32))
NULL_RATE = 0.3  # the override set on nullable columns, far from what the sources hold


def _spec(url: str, **sections) -> dict:
    cfg = make_config(url, generation={"shards": 3}, **sections)
    with pg.connect(url) as conn:
        model = reflect(conn, cfg.source.db_schema, None, [])
        roles = infer_roles(conn, model, cfg.columns)
        pack = profile_source(
            conn, model, roles, cfg, b"k" * 32, refresh_id="gen-test", log=lambda m: None
        )
    return calibrate(pack, cfg)


@pytest.fixture(scope="module")
def demo_spec(demo_url) -> dict:
    """The demo bank: a reference table, a self-reference, card numbers, CHECK lists."""
    nulls = {"customers.phone": NULL_RATE, "transactions.memo": NULL_RATE}
    return _spec(demo_url, overrides={"null_rate": nulls})


@pytest.fixture(scope="module")
def shop_spec(shop_url) -> dict:
    """The shop: an FK cycle through a reference table, a composite key, uuid and enum."""
    nulls = {"orders.note": NULL_RATE, "users.vip": NULL_RATE}
    return _spec(
        shop_url,
        source={"schema": "shop"},
        public=SHOP_PUBLIC,
        bounds=SHOP_BOUNDS,
        overrides={"null_rate": nulls},
    )


def _write_all(spec: dict, out: Path, seed: bytes = SEED) -> dict[str, list[pl.DataFrame]]:
    """Every shard written as the asset writes it: per table, its frame of each shard."""
    for s in range(spec["shards"]):
        generate_shard(spec, seed, s, out)
    return {
        t: [pl.read_parquet(p) for p in sorted((out / "shards" / t).glob("*.parquet"))]
        for t in spec["order"]
    }


@pytest.fixture(scope="module")
def demo_shards(demo_spec, tmp_path_factory) -> dict[str, list[pl.DataFrame]]:
    return _write_all(demo_spec, tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def shop_shards(shop_spec, tmp_path_factory) -> dict[str, list[pl.DataFrame]]:
    return _write_all(shop_spec, tmp_path_factory.mktemp("shop"))


@pytest.fixture(params=["demo", "shop"])
def generated(request) -> tuple[dict, dict[str, pl.DataFrame]]:
    """(spec, every table's rows over all shards), for each source."""
    spec = request.getfixturevalue(f"{request.param}_spec")
    shards = request.getfixturevalue(f"{request.param}_shards")
    return spec, {t: pl.concat(frames) for t, frames in shards.items()}


# ---- seeds and streams -----------------------------------------------------------------------


def test_the_same_seed_writes_byte_identical_shards(demo_spec, tmp_path):
    a = generate_shard(demo_spec, SEED, 1, tmp_path / "a")
    b = generate_shard(demo_spec, SEED, 1, tmp_path / "b")
    assert {t: f["sha256"] for t, f in a["tables"].items()} == {
        t: f["sha256"] for t, f in b["tables"].items()
    }


def test_another_seed_writes_other_values(demo_spec, tmp_path):
    a = generate_shard(demo_spec, SEED, 1, tmp_path / "a")
    b = generate_shard(demo_spec, bytes(32), 1, tmp_path / "b")
    balance = [pl.read_parquet(r["tables"]["accounts"]["path"])["balance"] for r in (a, b)]
    assert not balance[0].equals(balance[1])


def test_shards_draw_from_independent_streams(demo_shards):
    """Were two shards to share a stream, their balances would match row for row; independent
    draws coincide only where both hit the same point mass (a balance of exactly 0)."""
    first, second = (df["balance"].head(100).to_numpy() for df in demo_shards["accounts"][:2])
    assert (first == second).sum() < 50


def test_a_reference_rows_popularity_is_the_same_in_every_shard(demo_spec):
    """Popularity is a property of the reference row: drawn per shard, every merchant got a
    fresh weight in each shard and its total over the shards averaged them out (the more
    shards, the flatter the popularity). With a strongly overdispersed popularity the same
    merchants must be the busy ones in every shard."""
    import copy

    spec = copy.deepcopy(demo_spec)
    fanout = spec["tables"]["transactions"]["fanout"]
    fk = next(k for k, f in fanout.items() if f["parent"] == "merchants")
    bins = fanout[fk]["bins"]
    p = [0.0] * len(bins)
    p[1], p[bins.index(16)] = 0.5, 0.5  # half the merchants quiet, half busy: CV ~0.9
    fanout[fk]["p"] = p
    per_shard = []
    for s in (0, 1):
        gen = ShardGenerator(spec, SEED)
        merchants = gen.references()["merchants"]
        ids = merchants.columns["id"].to_numpy()
        got = gen.shard(s)["transactions"].columns["merchant_id"].drop_nulls().to_numpy()
        per_shard.append(np.array([np.count_nonzero(got == i) for i in ids], dtype=float))
    assert np.corrcoef(per_shard[0], per_shard[1])[0, 1] > 0.8


def test_a_seed_shorter_than_128_bits_is_refused():
    with pytest.raises(GenerationError, match="128 bits"):
        streams(b"x" * 15, 2)


def test_reference_tables_are_written_by_shard_zero_only(demo_spec, tmp_path):
    zero = generate_shard(demo_spec, SEED, 0, tmp_path)
    one = generate_shard(demo_spec, SEED, 1, tmp_path)
    refs = {t for t, e in demo_spec["tables"].items() if e["kind"] == "reference"}
    assert refs and refs <= set(zero["tables"]) and not refs & set(one["tables"])


def test_every_generator_rebuilds_the_same_reference_tables(demo_spec):
    a, b = (
        ShardGenerator(demo_spec, SEED).references(),
        ShardGenerator(demo_spec, SEED).references(),
    )
    assert a.keys() == b.keys()
    for name in a:
        assert all(a[name].columns[c].equals(b[name].columns[c]) for c in a[name].columns)


# ---- sizes -----------------------------------------------------------------------------------


@given(rows=st.integers(1, 10_000), shards=st.integers(1, 64))
def test_shards_split_the_unit_rows_into_contiguous_blocks(rows, shards):
    spec = {"unit_table": "u", "tables": {"u": {"rows": rows}}, "shards": shards}
    blocks = [shard_units(spec, s) for s in range(shards)]
    assert blocks[0][0] == 0 and blocks[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))
    assert max(e - s for s, e in blocks) - min(e - s for s, e in blocks) <= 1


def test_a_shard_outside_the_spec_is_refused(demo_spec):
    with pytest.raises(GenerationError, match="out of range"):
        shard_units(demo_spec, demo_spec["shards"])


def test_the_unit_table_has_exactly_the_rows_the_spec_states(generated):
    spec, dfs = generated
    assert dfs[spec["unit_table"]].height == spec["tables"][spec["unit_table"]]["rows"]


# ---- keys ------------------------------------------------------------------------------------


def test_every_foreign_key_value_exists_in_its_parent(generated):
    spec, dfs = generated
    model = SchemaModel.from_dict(spec["schema"])
    for name, table in model.tables.items():
        for fk in table.foreign_keys:
            values = dfs[name][fk.columns[0]].drop_nulls()
            parent = dfs[fk.ref_table][fk.ref_columns[0]]
            assert values.len() and values.is_in(parent.implode()).all(), (name, fk.name)


def test_a_unit_owned_foreign_key_resolves_inside_its_own_shard(demo_spec, demo_shards):
    """A shard is a block of units with all their descendants: loadable on its own."""
    model = SchemaModel.from_dict(demo_spec["schema"])
    owned = {t for t, e in demo_spec["tables"].items() if e["kind"] != "reference"}
    for s in range(demo_spec["shards"]):
        for name in owned:
            for fk in model.tables[name].foreign_keys:
                if fk.ref_table not in owned:
                    continue
                values = demo_shards[name][s][fk.columns[0]].drop_nulls()
                parent = demo_shards[fk.ref_table][s][fk.ref_columns[0]]
                assert values.is_in(parent.implode()).all(), (s, name, fk.name)


def test_a_self_reference_points_at_another_row(demo_shards):
    customers = pl.concat(demo_shards["customers"])
    assert (customers["referred_by"] != customers["id"]).fill_null(True).all()


def test_unique_column_sets_hold_no_duplicates_across_shards(generated):
    spec, dfs = generated
    model = SchemaModel.from_dict(spec["schema"])
    for name, table in model.tables.items():
        assert table.unique_sets, name
        for cols in table.unique_sets:
            rows = dfs[name].drop_nulls(list(cols)).select(list(cols))
            assert not rows.is_duplicated().any(), (name, cols)


# ---- values ----------------------------------------------------------------------------------


def _spec_null_rate(c: dict) -> float | None:
    if "null_p" in c:
        return c["null_p"]
    if c["kind"] in ("categorical", "numeric", "boolean") and c.get("p"):
        return c["p"][-1]  # codes: values (or atoms, bins)..., then NULL last
    return None


def test_null_rates_follow_the_spec(generated):
    """Within 6 standard errors (plus 1 %) of the spec's NULL share, column by column; NOT NULL
    columns hold none."""
    spec, dfs = generated
    model = SchemaModel.from_dict(spec["schema"])
    checked = 0
    for name, entry in spec["tables"].items():
        n = dfs[name].height
        for col in model.tables[name].columns:
            p = _spec_null_rate(entry["columns"][col.name])
            if p is None or entry["columns"][col.name]["kind"] == "fk":
                continue
            got = dfs[name][col.name].null_count() / n
            if not col.nullable:
                assert got == 0, (name, col.name)
                continue
            assert abs(got - p) <= 6 * np.sqrt(p * (1 - p) / n) + 0.01, (name, col.name, got, p)
            checked += 1
    assert checked >= 2  # at least the two overridden columns


def test_null_rate_overrides_reach_the_generated_rows(generated):
    spec, dfs = generated
    for key in spec["overrides"]["null_rate"]:
        table, col = key.split(".")
        n = dfs[table].height
        share = dfs[table][col].null_count() / n
        assert abs(share - NULL_RATE) <= 6 * np.sqrt(NULL_RATE * (1 - NULL_RATE) / n), key


def test_check_lists_and_excluded_values_of_the_schema_hold(demo_spec, demo_shards):
    dfs = {t: pl.concat(frames) for t, frames in demo_shards.items()}
    checked = 0
    for name, entry in demo_spec["tables"].items():
        for col, c in entry["columns"].items():
            rules = c.get("check") or {}
            values = dfs[name][col].drop_nulls() if col in dfs[name].columns else None
            if "allowed" in rules:
                assert values.cast(pl.Utf8).is_in(rules["allowed"]).all(), (name, col)
                checked += 1
            for x in rules.get("exclude", []):
                assert not (values == x).any(), (name, col, x)
                checked += 1
    assert checked >= 5  # segment, account_type, status, network, amount <> 0, ...


def _with_check(spec: dict, table: str, col: str, check: dict) -> dict:
    """A copy of ``spec`` whose column ``table.col`` has the CHECK rules ``check``."""
    tables = dict(spec["tables"])
    columns = {**tables[table]["columns"], col: {**tables[table]["columns"][col], "check": check}}
    tables[table] = {**tables[table], "columns": columns}
    return {**spec, "tables": tables}


def _shard_zero(spec: dict, table: str, col: str) -> pl.Series:
    return ShardGenerator(spec, SEED).shard(0)[table].columns[col].drop_nulls()


@pytest.mark.parametrize("strict", [False, True], ids=["inclusive", "strict"])
def test_numeric_check_bounds_are_kept_where_the_measured_range_crosses_them(demo_spec, strict):
    """Balances are measured down to -500,000; a CHECK of (0, 1000] clips every draw."""
    check = {"min": 0.0, "min_strict": strict, "max": 1000.0, "max_strict": strict}
    balance = _shard_zero(
        _with_check(demo_spec, "accounts", "balance", check), "accounts", "balance"
    )
    assert ((balance > 0) if strict else (balance >= 0)).all()
    assert ((balance < 1000) if strict else (balance <= 1000)).all()
    assert balance.n_unique() > 1


def test_an_excluded_value_is_never_emitted(shop_spec):
    """Quantities are small integers; a CHECK (qty <> its most common value) moves them all."""
    qty = _shard_zero(shop_spec, "order_items", "qty")
    common = qty.mode()[0]
    spec = _with_check(shop_spec, "order_items", "qty", {"exclude": [float(common)]})
    assert (qty == common).sum() > 1 and not (
        _shard_zero(spec, "order_items", "qty") == common
    ).any()


def test_a_check_list_narrower_than_the_released_values_is_kept(demo_spec):
    kinds = _shard_zero(demo_spec, "accounts", "account_type")
    assert kinds.n_unique() > 1
    top = kinds.mode()[0]
    spec = _with_check(demo_spec, "accounts", "account_type", {"allowed": [top]})
    assert set(_shard_zero(spec, "accounts", "account_type").to_list()) == {top}


def test_card_numbers_are_sixteen_luhn_valid_digits(demo_shards):
    cards = pl.concat(demo_shards["cards"])["card_number"].drop_nulls().to_list()
    assert cards and all(len(n) == 16 and n.isdigit() and is_luhn_valid(n) for n in cards)


def test_shard_files_are_named_by_table_and_shard(tmp_path):
    assert shard_path(tmp_path, "cards", 7) == tmp_path / "shards" / "cards" / "part-00007.parquet"


def test_idle_reference_rows_stay_idle():
    """Popularity with most reference rows idle (1,400 airports, ~100 with flights): the idle
    share is deconvolved from the rows with no sampled child, so idle rows get weight 0 instead
    of each getting a log-normal weight (and flights)."""
    from synth_assets.core.generate import _popularity
    from synth_assets.core.profile import fanout_bins

    bins = fanout_bins(4096)
    rng = np.random.default_rng(0)
    busy = np.zeros(1400)
    busy[:100] = rng.lognormal(np.log(150), 1.0, 100).round()  # sampled children per airport
    hist = np.bincount(np.searchsorted(bins, busy, side="right") - 1, minlength=len(bins))
    w = _popularity({"bins": bins, "p": (hist / hist.sum()).tolist()}, 1400, rng)
    assert 0.85 <= float(np.mean(w == 0)) <= 0.97  # 1,300 of 1,400 idle
    flat = rng.lognormal(np.log(20), 0.5, 1000).round()  # no excess idle rows
    hist = np.bincount(np.searchsorted(bins, flat, side="right") - 1, minlength=len(bins))
    w = _popularity({"bins": bins, "p": (hist / hist.sum()).tolist()}, 1000, rng)
    assert np.all(w > 0)
