"""Benchmark: one full refresh of a band on the demo source through the CLI (profile, generate,
report, load), timed end to end; prints the per-stage seconds from the summary.

Usage: python bench/refresh.py [--band dev] [--workdir .synth-bench]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--band", choices=["dev", "staging", "perf"], default="dev")
    ap.add_argument("--workdir", default=".synth-bench")
    args = ap.parse_args()
    wd = Path(args.workdir).resolve()
    cli = [sys.executable, "-m", "synth_assets.cli"]
    subprocess.run([*cli, "init", "--workdir", str(wd)], check=True, cwd=ROOT)
    cfg = ROOT / "synth.yaml"  # the demo's configuration (its gates, its budget cap)
    # Make sure the demo source exists (built once, not timed).
    subprocess.run(
        [*cli, "demo", "--workdir", str(wd), "--config", str(cfg)],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            *cli,
            "refresh",
            "--source",
            "embedded:///bank_prod",
            "--workdir",
            str(wd),
            "--config",
            str(cfg),
            "--band",
            args.band,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    print(out.stdout[-3000:])
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        sys.exit(out.returncode)
    summary_path = next(
        line.split("summary: ", 1)[1] for line in out.stdout.splitlines() if "summary: " in line
    )
    summary = json.loads(Path(summary_path.strip()).read_text())
    rows = sum(v["rows"] for v in summary["tables"].values())
    print(
        f"band {args.band}: {rows:,} rows, full refresh (profile, generate, report, load) {seconds:.1f}s "
        f"end to end; stages: {json.dumps(summary.get('stages', {}))}"
    )


if __name__ == "__main__":
    main()
