"""Benchmark: DP profiling time with SQL pushdown on a source whose largest table has >= 10M rows.

Usage: python bench/profile.py [--transactions 10000000] [--workdir .synth-bench]
Builds (once) a demo bank database sized so that `transactions` has the requested rows, then
times `profile_source` (every measurement of the metrics pack) on it.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_assets.core import pg  # noqa: E402
from synth_assets.core.config import parse_config  # noqa: E402
from synth_assets.core.profile import profile_source  # noqa: E402
from synth_assets.core.roles import infer_roles  # noqa: E402
from synth_assets.core.schema import reflect  # noqa: E402
from synth_assets.demo import build_demo, demo_exists  # noqa: E402

TX_PER_CUSTOMER = 27.3  # the demo's ratio (546,922 transactions for 20,000 customers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transactions", type=int, default=10_000_000)
    ap.add_argument("--workdir", default=".synth-bench")
    args = ap.parse_args()
    wd = Path(args.workdir).resolve()
    customers = int(args.transactions / TX_PER_CUSTOMER) + 1
    url = pg.resolve_url(f"embedded:///bank_{customers}", wd)
    if not demo_exists(url):
        t = time.perf_counter()
        rows = build_demo(url, customers=customers)
        print(f"built source: {rows} in {time.perf_counter() - t:.0f}s")
    cfg = parse_config({"source": {"url": url}})
    with pg.connect(url) as conn:
        n_tx = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
        t0 = time.perf_counter()
        model = reflect(conn, "public")
        roles = infer_roles(conn, model)
        t1 = time.perf_counter()
        times = {}
        pack = profile_source(
            conn,
            model,
            roles,
            cfg,
            b"b" * 32,
            refresh_id="bench",
            log=lambda m: times.setdefault(m, time.perf_counter()),
        )
        t2 = time.perf_counter()
    print(
        f"transactions: {n_tx:,} rows; reflect + roles {t1 - t0:.1f}s; profile {t2 - t1:.1f}s "
        f"({len(pack['ledger']['entries'])} DP measurements, epsilon {pack['ledger']['epsilon_spent']:.3f})"
    )
    for msg in times:
        if "measured in" in msg:
            print("  " + msg)


if __name__ == "__main__":
    main()
