"""Staging load throughput: ≥10M rows of the demo bank's shape, COPY + constraints + indexes + swap.

Builds a small demo source only to reflect its schema (5 tables, 15 PK/UNIQUE/CHECK constraints
per the source, 5 FKs, 6 secondary indexes), writes synthetic Parquet shards of that shape
directly (vectorized, valid keys and CHECK values), then runs the real loader against an
embedded PostgreSQL target and prints rows/s with a breakdown.

    .venv/bin/python bench/load.py [--rows 10000000] [--workers 2] [--workdir /tmp/synth-bench-load]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from synth_assets.core import pg
from synth_assets.core.audit import AuditSigner, bind_audit_log
from synth_assets.core.generate import write_parquet_atomic
from synth_assets.core.load import (
    COPY_SIGNATURE,
    COPY_TRAILER,
    encode_batch,
    iter_batches,
    load_refresh,
    plan_columns,
    read_inputs,
)
from synth_assets.core.schema import reflect
from synth_assets.core.secrets import LocalSecrets, init_local_secrets
from synth_assets.core.spec import content_hash
from synth_assets.core.store import write_json_atomic
from synth_assets.demo import build_demo, demo_exists

RID = "r20260101T000000Z-be0c00"
SEGMENTS = ["retail", "premium", "private", "business"]
TYPES = ["checking", "savings", "credit", "loan"]
CHANNELS = ["card_present", "online", "atm", "transfer"]
TX_STATUS = ["settled", "pending", "declined", "reversed"]
US = 1_000_000
T0 = int(np.datetime64("2023-01-01T00:00:00", "us").astype(np.int64))


def _pick(values: list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(values).gather(idx)


def _ts(us: np.ndarray) -> pl.Series:
    return pl.Series(us.astype(np.int64)).cast(pl.Datetime("us", "UTC"))


def _ids(lo: int, hi: int) -> np.ndarray:
    return np.arange(lo + 1, hi + 1, dtype=np.int64)


def shard_frames(
    shard: int, n_shards: int, sizes: dict[str, int], rng: np.random.Generator
) -> dict[str, pl.DataFrame]:
    """One shard: a contiguous block of ids per table; FKs point into earlier blocks or this one."""

    def block(t: str) -> tuple[int, int]:
        n = sizes[t]
        return shard * n // n_shards, (shard + 1) * n // n_shards

    out: dict[str, pl.DataFrame] = {}
    c0, c1 = block("customers")
    cid = _ids(c0, c1)
    n = len(cid)
    ref = np.where(rng.random(n) < 0.2, np.maximum(1, (cid * rng.random(n)).astype(np.int64)), 0)
    ref = np.where(ref >= cid, 0, ref)
    s = pl.Series(cid)
    out["customers"] = pl.DataFrame(
        {
            "id": cid,
            "full_name": pl.select(pl.format("Person {} Synthetic", s)).to_series(),
            "email": pl.select(pl.format("user{}@example.test", s)).to_series(),
            "phone": pl.select(
                pl.format("+44 7700 9{}", (s % 100000).cast(pl.Utf8).str.zfill(5))
            ).to_series(),
            "date_of_birth": pl.Series((rng.integers(-15000, 10000, n)).astype(np.int32)).cast(
                pl.Date
            ),
            "national_id": pl.select(pl.format("9{}", s.cast(pl.Utf8).str.zfill(10))).to_series(),
            "street_address": pl.select(
                pl.format("{} Synthetic Road, Testtown", s % 997)
            ).to_series(),
            "postal_code": pl.select(pl.format("ZZ{} 1AA", s % 99)).to_series(),
            "segment": _pick(SEGMENTS, rng.integers(0, 4, n)),
            "created_at": _ts(T0 + rng.integers(0, 700 * 86400, n) * US),
            "referred_by": pl.Series(np.where(ref > 0, ref, 0)).replace(0, None),
        }
    )
    m0, m1 = block("merchants")
    mid = _ids(m0, m1)
    k = len(mid)
    out["merchants"] = pl.DataFrame(
        {
            "id": mid,
            "name": pl.select(pl.format("Merchant {}", pl.Series(mid))).to_series(),
            "category_code": pl.Series(rng.integers(1000, 9999, k)).cast(pl.Utf8),
            "city": _pick(["London", "Leeds", "Bristol"], rng.integers(0, 3, k)),
            "country": _pick(["GB", "IE", "FR"], rng.integers(0, 3, k)),
        }
    )
    a0, a1 = block("accounts")
    aid = _ids(a0, a1)
    na = len(aid)
    status = rng.choice(3, na, p=[0.8, 0.15, 0.05])
    bal = np.round(rng.lognormal(6, 1.5, na), 2)
    out["accounts"] = pl.DataFrame(
        {
            "id": aid,
            "customer_id": rng.integers(c0 + 1, c1 + 1, na),
            "iban": pl.select(
                pl.format("GB00SYNT{}", pl.Series(aid).cast(pl.Utf8).str.zfill(14))
            ).to_series(),
            "account_type": _pick(TYPES, rng.integers(0, 4, na)),
            "status": _pick(["active", "dormant", "closed"], status),
            "opened_at": _ts(T0 + rng.integers(0, 700 * 86400, na) * US),
            "balance": np.where(status == 2, 0.0, bal),
        }
    )
    k0, k1 = block("cards")
    kid = _ids(k0, k1)
    nk = len(kid)
    out["cards"] = pl.DataFrame(
        {
            "id": kid,
            "account_id": rng.integers(a0 + 1, a1 + 1, nk),
            "card_number": pl.Series(4_000_000_000_000_000 + kid).cast(pl.Utf8),
            "network": _pick(["visa", "mastercard"], rng.integers(0, 2, nk)),
            "expiry": pl.Series(rng.integers(19000, 22000, nk).astype(np.int32)).cast(pl.Date),
        }
    )
    t0, t1 = block("transactions")
    tid = _ids(t0, t1)
    nt = len(tid)
    amount = np.round(rng.lognormal(3, 1.2, nt), 2) + 0.01
    amount = np.where(rng.random(nt) < 0.3, -amount, amount)
    memo = pl.Series(["Groceries", "Rent", "Coffee", "Gift"]).gather(rng.integers(0, 4, nt))
    memo = memo.scatter(np.nonzero(rng.random(nt) < 0.7)[0], None)
    out["transactions"] = pl.DataFrame(
        {
            "id": tid,
            "account_id": rng.integers(a0 + 1, a1 + 1, nt),
            "merchant_id": rng.integers(1, sizes["merchants"] + 1, nt),
            "ts": _ts(T0 + rng.integers(0, 900 * 86400, nt) * US),
            "amount": amount,
            "channel": _pick(CHANNELS, rng.integers(0, 4, nt)),
            "status": _pick(TX_STATUS, rng.choice(4, nt, p=[0.9, 0.05, 0.04, 0.01])),
            "memo": memo,
        }
    )
    return out


def write_refresh(root: Path, model_dict: dict, rows: int, n_shards: int) -> Path:
    """Shards, manifests, spec and a passing report in the store layout."""
    rdir = root / RID
    if rdir.exists():
        shutil.rmtree(rdir)
    tx = int(rows * 0.85)
    sizes = {
        "customers": rows // 25,
        "merchants": 5000,
        "accounts": rows * 3 // 50,
        "cards": rows // 20,
        "transactions": tx,
    }
    sizes["transactions"] = rows - sum(v for k, v in sizes.items() if k != "transactions")
    root_ss = np.random.SeedSequence(20260101)
    for shard, ss in enumerate(root_ss.spawn(n_shards)):
        frames = shard_frames(shard, n_shards, sizes, np.random.default_rng(ss))
        files = {}
        for t, df in frames.items():
            p = rdir / "shards" / t / f"part-{shard:05d}.parquet"
            files[t] = {"rows": df.height, "path": str(p), "sha256": write_parquet_atomic(df, p)}
        write_json_atomic(
            rdir / "shards" / f"manifest-{shard:05d}.json", {"shard": shard, "tables": files}
        )
    spec = {
        "refresh_id": RID,
        "schema": model_dict,
        "shards": n_shards,
        "expected_rows": sizes,
        "order": ["customers", "merchants", "accounts", "cards", "transactions"],
    }
    spec["content_hash"] = content_hash(spec)
    write_json_atomic(rdir / "spec.json", spec)
    write_json_atomic(
        rdir / "report" / "privacy_report.json",
        {"refresh_id": RID, "passed": True, "gates": {"bench": {"passed": True}}},
    )
    return rdir


def copy_floor(rdir: Path, target: str, staged: str) -> tuple[int, float]:
    """The floor: every shard file through the loader's own binary encoder in ONE COPY stream
    per table, one after another on one connection, into tables with no key, CHECK, FK or index
    (``LIKE`` the loaded ones: column types and NOT NULL only). Returns (rows, seconds)."""
    inputs = read_inputs(rdir, RID)
    rows = 0
    with pg.connect(target) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_floor CASCADE")
        conn.execute("CREATE SCHEMA bench_floor")
        conn.commit()
        t0 = time.perf_counter()
        for name in inputs.order:
            files = inputs.files[name]
            table = inputs.model.tables[name]
            cols = plan_columns(
                name,
                table.columns,
                pq.ParquetFile(files[0].path).schema_arrow,
                set(),
                {c.name: c.pg_type for c in table.columns},
            )
            names = [c.name for c in cols]
            conn.execute(f"CREATE TABLE bench_floor.{name} (LIKE {staged}.{name})")
            with conn.cursor().copy(
                f"COPY bench_floor.{name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY, FREEZE)"
            ) as cp:
                cp.write(COPY_SIGNATURE)
                for f in files:
                    for batch in iter_batches(f.path, names, 100_000):
                        cp.write(encode_batch(batch, cols, name))
                        rows += batch.num_rows
                cp.write(COPY_TRAILER)
        conn.commit()
        seconds = time.perf_counter() - t0
        conn.execute("DROP SCHEMA bench_floor CASCADE")
        conn.commit()
    return rows, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/synth-bench-load")
    ap.add_argument("--reuse", action="store_true", help="reuse shards written by an earlier run")
    args = ap.parse_args()
    wd = Path(args.workdir)
    src = pg.resolve_url("embedded:///bench_src", wd)
    if not demo_exists(src):
        build_demo(src, customers=500)
    with pg.connect(src) as conn:
        model = reflect(conn, "public")
    root = wd / "runs"
    t = time.perf_counter()
    if not (args.reuse and (root / RID / "spec.json").exists()):
        write_refresh(root, model.to_dict(), args.rows, args.shards)
        print(f"wrote {args.rows:,} rows of shards in {time.perf_counter() - t:.1f}s")
    tgt = pg.resolve_url("embedded:///bench_staging", wd)
    # the loader appends a keyed audit event; the bench keys it with its own local secrets
    init_local_secrets(wd / "secrets")
    bind_audit_log(AuditSigner(LocalSecrets(wd / "secrets"), wd / "audit"), tgt)
    res = load_refresh(root / RID, RID, tgt, "synth_bench", source_url=src, workers=args.workers)
    d = res.durations
    print(json.dumps({k: v for k, v in d.items() if k != "steps"}, indent=1))
    slow = sorted(d["steps"].items(), key=lambda kv: -kv[1])[:8]
    print("slowest steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in slow))
    f_rows, f_s = copy_floor(root / RID, tgt, "synth_bench")
    print(
        f"floor (same run): bare single-stream binary COPY of the same files into tables with no "
        f"constraint or index: {f_rows:,} rows in {f_s:.1f}s = {f_rows / f_s:,.0f} rows/s"
    )
    print(
        f"loaded {res.total_rows:,} rows in {res.seconds:.1f}s = {res.rows_per_second:,.0f} rows/s "
        f"(COPY, PK/UNIQUE/CHECK, FKs, indexes, ANALYZE, verify, swap; {args.workers} workers)"
    )


if __name__ == "__main__":
    main()
