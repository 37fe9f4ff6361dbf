"""Benchmark: generation rows/s and peak RSS per shard worker, per band, to zstd Parquet.

Usage: python bench/generate.py [--band dev|staging|perf] [--fraction F] [--workers N]
Profiles the demo source once (embedded PostgreSQL under --workdir, built if absent), calibrates
the spec for the band, and generates every shard (or the first F of them) in a process pool,
exactly as the `synthetic_shards` asset does. Files are deleted afterwards.
"""

import argparse
import math
import os
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--band", choices=["dev", "staging", "perf"], default="dev")
    ap.add_argument(
        "--fraction", type=float, default=1.0, help="generate this share of the band's shards"
    )
    ap.add_argument("--workers", type=int, default=usable_cpus())
    ap.add_argument("--workdir", default=".synth-bench")
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
    shutil.rmtree(out, ignore_errors=True)
    seed = new_master_seed()
    os.environ.setdefault(
        "POLARS_MAX_THREADS", "1"
    )  # one thread per worker process, as in the asset
    jobs = [(spec, seed, s, str(out)) for s in range(n)]
    t1 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_shard, jobs))
    gen_s = time.perf_counter() - t1
    rows = sum(r[0] for r in results)
    print(
        f"band {args.band}: spec {sum(spec['expected_rows'].values()):,} rows in {spec['shards']} shards; "
        f"generated {n} shard(s) = {rows:,} rows with {args.workers} workers in {gen_s:.1f}s "
        f"-> {rows / gen_s:,.0f} rows/s end to end to zstd Parquet"
    )
    print(
        f"peak RSS per shard worker: {max(r[2] for r in results):,.0f} MiB; "
        f"median shard {sorted(r[1] for r in results)[len(results) // 2]:.2f}s; profile {profile_s:.1f}s"
    )
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
