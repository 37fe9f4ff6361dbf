"""Benchmark: generation rows/s and peak RSS per shard worker, per band, to zstd Parquet.

Usage: python bench/generate.py [--band dev|staging|perf] [--fraction F] [--workers N] [--rounds R]
Profiles the demo source once (embedded PostgreSQL under --workdir, built if absent), calibrates
the spec for the band, and generates every shard (or the first F of them) in a process pool,
exactly as the `synthetic_shards` asset does. Files are deleted afterwards.

The anchor, in the same run: `tpchgen-cli` (the Rust TPC-H generator, a dev dependency) writes
zstd(1) Parquet at the scale factor that gives about as many rows, on as many threads as we have
workers. The two alternate R times; the ratio of the median rows/s is printed.
"""

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_assets.core import pg  # noqa: E402
from synth_assets.core.config import parse_config  # noqa: E402
from synth_assets.core.generate import generate_shard, usable_cpus  # noqa: E402
from synth_assets.core.profile import profile_source  # noqa: E402
from synth_assets.core.roles import infer_roles  # noqa: E402
from synth_assets.core.schema import reflect  # noqa: E402
from synth_assets.core.secrets import new_master_seed  # noqa: E402
from synth_assets.core.spec import calibrate  # noqa: E402
from synth_assets.demo import build_demo, demo_exists  # noqa: E402


def _shard(args):
    spec, seed, shard, out = args
    t0 = time.perf_counter()
    res = generate_shard(spec, seed, shard, Path(out))
    for f in res["tables"].values():  # keep the disk bounded on big bands
        Path(f["path"]).unlink()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return sum(f["rows"] for f in res["tables"].values()), time.perf_counter() - t0, rss


TPCH_ROWS_PER_SF = 8_661_245  # rows of all eight tables at scale factor 1


def _tpchgen(rows: int, threads: int, out: Path) -> tuple[int, float]:
    """One tpchgen-cli run sized to about ``rows`` rows: (rows written, seconds)."""
    exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).with_name("tpchgen-cli"))
    sf = max(0.01, round(rows / TPCH_ROWS_PER_SF, 2))
    shutil.rmtree(out, ignore_errors=True)
    cmd = [exe, "parquet", "-s", str(sf), "-c", "ZSTD(1)", "-n", str(threads)]
    t0 = time.perf_counter()
    subprocess.run([*cmd, "--output-dir", str(out), "-q", "--no-progress"], check=True)
    seconds = time.perf_counter() - t0
    written = sum(pq.ParquetFile(f).metadata.num_rows for f in out.rglob("*.parquet"))
    shutil.rmtree(out, ignore_errors=True)
    return written, seconds


def _product(spec, n: int, workers: int, out: Path):
    """One generation of the first ``n`` shards: (rows, seconds, per-shard results)."""
    shutil.rmtree(out, ignore_errors=True)
    seed = new_master_seed()
    jobs = [(spec, seed, s, str(out)) for s in range(n)]
    t1 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_shard, jobs))
    seconds = time.perf_counter() - t1
    shutil.rmtree(out, ignore_errors=True)
    return sum(r[0] for r in results), seconds, results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--band", choices=["dev", "staging", "perf"], default="dev")
    ap.add_argument(
        "--fraction", type=float, default=1.0, help="generate this share of the band's shards"
    )
    ap.add_argument("--workers", type=int, default=usable_cpus())
    ap.add_argument("--workdir", default=".synth-bench")
    ap.add_argument("--rounds", type=int, default=2, help="alternations with the tpchgen anchor")
    ap.add_argument("--no-anchor", action="store_true", help="skip tpchgen-cli")
    args = ap.parse_args()
    wd = Path(args.workdir).resolve()
    url = pg.resolve_url("embedded:///bank_prod", wd)
    if not demo_exists(url):
        build_demo(url)
    cfg = parse_config({"source": {"url": url}, "generation": {"band": args.band}})
    t0 = time.perf_counter()
    with pg.connect(url) as conn:
        model = reflect(conn, "public")
        roles = infer_roles(conn, model)
        pack = profile_source(
            conn, model, roles, cfg, b"b" * 32, refresh_id="bench", log=lambda m: None
        )
    spec = calibrate(pack, cfg)
    profile_s = time.perf_counter() - t0
    n = spec["shards"] if args.fraction >= 1 else max(1, math.ceil(spec["shards"] * args.fraction))
    out = wd / "bench-out"
    os.environ.setdefault(
        "POLARS_MAX_THREADS", "1"
    )  # one thread per worker process, as in the asset
    ours, anchor, results = [], [], []
    for _ in range(max(1, args.rounds)):
        rows, gen_s, results = _product(spec, n, args.workers, out)
        ours.append((rows, gen_s))
        print(f"  product: {rows:,} rows in {gen_s:.1f}s = {rows / gen_s:,.0f} rows/s")
        if not args.no_anchor:
            t_rows, t_s = _tpchgen(rows, args.workers, wd / "tpch-out")
            anchor.append((t_rows, t_s))
            print(f"  tpchgen-cli: {t_rows:,} rows in {t_s:.1f}s = {t_rows / t_s:,.0f} rows/s")
    rate = statistics.median(r / s for r, s in ours)
    rows = ours[-1][0]
    print(
        f"band {args.band}: spec {sum(spec['expected_rows'].values()):,} rows in {spec['shards']} shards; "
        f"generated {n} shard(s) = {rows:,} rows with {args.workers} workers, median "
        f"{rate:,.0f} rows/s end to end to zstd Parquet"
    )
    if anchor:
        t_rate = statistics.median(r / s for r, s in anchor)
        print(
            f"tpchgen-cli (same run, {args.workers} threads, zstd(1) Parquet): median "
            f"{t_rate:,.0f} rows/s -> product / tpchgen = {rate / t_rate:.2f}x"
        )
    print(
        f"peak RSS per shard worker: {max(r[2] for r in results):,.0f} MiB; "
        f"median shard {sorted(r[1] for r in results)[len(results) // 2]:.2f}s; profile {profile_s:.1f}s"
    )


if __name__ == "__main__":
    main()
