"""Benchmark: generate >= 10M rows from the demo spec to zstd Parquet; print rows/s and peak RSS.

Usage: python bench/generate.py [--rows 10000000] [--workers N] [--workdir .synth-bench]
Profiles the demo source once (embedded PostgreSQL under --workdir), then scales the spec's
unit table so the shards hold at least --rows rows, and generates every shard in a process pool.
"""

import argparse
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
from synth_assets.core.demo import build_demo, demo_exists  # noqa: E402
from synth_assets.core.generate import generate_shard  # noqa: E402
from synth_assets.core.profile import profile_source  # noqa: E402
from synth_assets.core.roles import infer_roles  # noqa: E402
from synth_assets.core.schema import reflect  # noqa: E402
from synth_assets.core.secrets import new_master_seed  # noqa: E402
from synth_assets.core.spec import calibrate  # noqa: E402
from synth_assets.defs.shards.assets import usable_cpus  # noqa: E402


def _shard(args):
    spec, seed, shard, out = args
    t0 = time.perf_counter()
    res = generate_shard(spec, seed, shard, Path(out))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return sum(f["rows"] for f in res["tables"].values()), time.perf_counter() - t0, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--workers", type=int, default=usable_cpus())
    ap.add_argument("--rows-per-shard", type=int, default=750_000)
    ap.add_argument("--workdir", default=".synth-bench")
    args = ap.parse_args()
    wd = Path(args.workdir).resolve()
    url = pg.resolve_url("embedded:///bank_prod", wd)
    if not demo_exists(url):
        build_demo(url)
    cfg = parse_config({"source": {"url": url}})
    t0 = time.perf_counter()
    with pg.connect(url) as conn:
        model = reflect(conn, "public")
        roles = infer_roles(conn, model)
        pack = profile_source(conn, model, roles, cfg, b"b" * 32, refresh_id="bench", log=lambda m: None)
    spec = calibrate(pack, cfg)
    profile_s = time.perf_counter() - t0
    root = spec["unit_table"]
    per_unit = sum(spec["expected_rows"][t] for t, e in spec["tables"].items() if e["kind"] != "reference")
    per_unit /= spec["tables"][root]["rows"]
    units = int(args.rows / per_unit * 1.02) + 1
    spec["tables"][root]["rows"] = units
    spec["shards"] = max(args.workers, round(args.rows / args.rows_per_shard))
    out = wd / "bench-out"
    shutil.rmtree(out, ignore_errors=True)
    seed = new_master_seed()
    jobs = [(spec, seed, s, str(out)) for s in range(spec["shards"])]
    os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one thread per worker process
    t1 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_shard, jobs))
    gen_s = time.perf_counter() - t1
    rows = sum(r[0] for r in results)
    size = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    print(f"profile (demo, {sum(1 for _ in model.tables)} tables): {profile_s:.1f}s")
    print(f"generated {rows:,} rows in {spec['shards']} shards with {args.workers} workers: {gen_s:.1f}s "
          f"-> {rows / gen_s:,.0f} rows/s end to end to zstd Parquet ({size / 1e6:,.0f} MB)")
    print(f"peak RSS per shard worker: {max(r[2] for r in results):,.0f} MiB; "
          f"median shard time {sorted(r[1] for r in results)[len(results) // 2]:.2f}s")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
