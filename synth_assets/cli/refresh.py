"""`synth-assets init | demo | refresh | regenerate`: a refresh run headless, and its summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_assets.core.config import BANDS
from synth_assets.core.store import RefreshPaths

from .common import add_command

if TYPE_CHECKING:
    from synth_assets.core.config import SynthConfig
    from synth_assets.core.summary import RefreshSummary
    from synth_assets.orchestrate import Refreshed


def _cmd_init(args: argparse.Namespace) -> int:
    """Create the secrets (the local HMAC key); never implicit."""
    from synth_assets.core.config import load_config
    from synth_assets.core.secrets import init_backend

    cfg = load_config(args.config)
    print(init_backend(cfg.secrets, args.workdir, force=args.force))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo bank if absent, then refresh from it."""
    from synth_assets.core import pg
    from synth_assets.core.config import load_config
    from synth_assets.demo import build_demo, demo_exists
    from synth_assets.orchestrate import refresh

    workdir = Path(args.workdir).expanduser().resolve()
    cfg = load_config(args.config)
    gen = {k: v for k, v in (("scale", args.scale), ("band", args.band)) if v is not None}
    if gen:
        cfg = _with_options(cfg, {"generation": {**cfg.generation.model_dump(), **gen}})
    url = pg.resolve_url(cfg.source.url, workdir)
    if not demo_exists(url):
        print(
            f"building the demo bank database ({args.customers} customers) in {pg.redact(cfg.source.url)}…"
        )
        rows = build_demo(url, customers=args.customers)
        print("  " + ", ".join(f"{t}: {n:,}" for t, n in rows.items()))
    _print_summary(refresh(args.config, workdir, cfg_override=cfg))
    return 0


def _cmd_refresh(args: argparse.Namespace) -> int:
    """One refresh of the configured source, with the command line's options applied."""
    from synth_assets.core.config import load_config
    from synth_assets.orchestrate import refresh

    cfg = load_config(args.config)
    updates = {}
    if args.schema:
        updates["source"] = cfg.source.model_copy(update={"db_schema": args.schema})
    if args.scale is not None or args.shards is not None or args.band is not None:
        gen = {
            k: v
            for k, v in (("scale", args.scale), ("shards", args.shards), ("band", args.band))
            if v is not None
        }
        updates["generation"] = cfg.generation.model_copy(update=gen)
    if updates:
        cfg = _with_options(cfg, {k: v.model_dump(by_alias=True) for k, v in updates.items()})
    _print_summary(
        refresh(args.config, Path(args.workdir), source_url=args.source, cfg_override=cfg)
    )
    return 0


def _cmd_regenerate(args: argparse.Namespace) -> int:
    """A new spec and seed from an earlier refresh's metrics pack (no budget spent)."""
    from synth_assets.core.config import load_config
    from synth_assets.orchestrate import refresh

    cfg = load_config(args.config)
    _print_summary(
        refresh(args.config, Path(args.workdir), cfg_override=cfg, regenerate_from=args.refresh_id)
    )
    return 0


def _with_options(cfg: SynthConfig, sections: dict[str, Any]) -> SynthConfig:
    """The config with command-line options applied, validated like the file itself (a
    ``--scale inf`` is refused here, not by an overflow deep inside the refresh)."""
    from synth_assets.core.config import parse_config

    return parse_config({**cfg.to_json(), **sections}, "command line")


def _stage_labels() -> dict[str, str]:
    """Step key -> the word the summary shows (imported late: `init` loads no Dagster)."""
    from synth_assets.defs import constants as c

    labels = {
        c.SOURCE_SCHEMA: "reflect",
        c.METRICS_PACK: "profile",
        c.CALIBRATED_SPEC: "spec",
        c.SYNTHETIC_SHARDS: "shards",
        c.PRIVACY_REPORT: "report",
        c.STAGING_SCHEMA: "load",
    }
    return {key.to_user_string(): label for key, label in labels.items()}


def _print_summary(outcome: Refreshed) -> None:
    """What a refresh spent, made and checked, and where its report and summary are."""
    summary = outcome.summary
    _print_spend(summary)
    stages = summary.stages or {}
    named = [(label, stages[k]) for k, label in _stage_labels().items() if k in stages]
    if named:
        print("  stages: " + ", ".join(f"{label} {v:.1f}s" for label, v in named))
    for t, n in summary.rows.items():
        print(f"  {t}: {n:,} rows")
    if summary.not_modelled:
        print(
            "  not modelled, loaded as NULL (or the type's empty value where NOT NULL): "
            + ", ".join(summary.not_modelled)
            + " (give a column a role in synth.yaml columns: to model it)"
        )
    for name, c in summary.checks.items():
        print(f"  check {name}: {'passed' if c.passed else 'FAILED'}")
    report = RefreshPaths(summary.artifacts or Path("")).report_html
    if report.is_file():
        print(f"report: {report}")
    print(f"summary: {outcome.summary_path}")
    print_load_summary(summary)


def _print_spend(summary: RefreshSummary) -> None:
    """The budget lines: what the refresh spent (or that it reused a pack) and what is left."""
    pack = summary.pack
    unit = pack.privacy_unit if pack else None
    if summary.regenerated_from:
        print(
            f"refresh {summary.refresh_id}: regenerated from the metrics pack of "
            f"{summary.regenerated_from}: no budget spent"
        )
    print(
        f"refresh {summary.refresh_id}: epsilon spent {pack.epsilon_spent if pack else 0:.3f} "
        f"(delta {pack.delta if pack else 0:.0e}"
        + (f", privacy unit: one {unit} row and every row that references it" if unit else "")
        + f"), {summary.seconds}s"
    )
    if pack and pack.reference_epsilon_spent:
        print(
            f"  reference tables: epsilon {pack.reference_epsilon_spent:.3f} spent on "
            "their rows (each row its own unit; a separate guarantee)"
        )
    b = summary.budget
    if b:
        print(
            f"  annual budget of {b.source}: epsilon {b.spent_365d:.3g} of "
            f"{b.annual_cap:g} spent in the last 365 days, {b.remaining:.3g} remaining "
            "(synth-assets budget shows the ledger)"
        )


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register init, demo, refresh and regenerate on the CLI's subparsers."""
    sp = add_command(
        subparsers, "init", _cmd_init, help="create the local HMAC key (mode 0600); never implicit"
    )
    sp.add_argument(
        "--force",
        action="store_true",
        help="replace an existing key (old refreshes become unverifiable)",
    )

    sp = add_command(
        subparsers,
        "demo",
        _cmd_demo,
        help="build the demo bank database if absent and run a refresh on it",
    )
    sp.add_argument(
        "--scale", type=float, default=None, help="synthetic size relative to the source"
    )
    sp.add_argument("--customers", type=int, default=40_000, help="size of the demo source")
    sp.add_argument("--band", choices=list(BANDS), default=None)

    sp = add_command(
        subparsers,
        "refresh",
        _cmd_refresh,
        help="profile a Postgres source and generate synthetic shards",
    )
    sp.add_argument(
        "--source",
        default=None,
        help="postgresql://… URL of the source (read-only user); default: source.url of the config",
    )
    sp.add_argument("--schema", default=None, help="source schema (default from config: public)")
    sp.add_argument("--scale", type=float, default=None)
    sp.add_argument("--shards", type=int, default=None)
    sp.add_argument(
        "--band",
        choices=list(BANDS),
        default=None,
        help="size the largest table: dev ~5M, staging ~100M, perf ~300M rows",
    )

    sp = add_command(
        subparsers,
        "regenerate",
        _cmd_regenerate,
        help="after a failed gate: a new spec and seed from a refresh's metrics pack, with the "
        "config as it is now (a relaxed gate, an override); spends no budget",
    )
    sp.add_argument("--refresh-id", required=True, help="the refresh whose metrics pack to reuse")


def print_load_summary(summary: RefreshSummary) -> None:
    """After a refresh: what was loaded where and how to connect (reads <artifacts>/load.json)."""
    path = RefreshPaths(summary.artifacts or Path("")).load
    if not path.is_file():
        if summary.passed:
            print("staging: not loaded (staging_schema is not part of this run)")
        return
    load = json.loads(path.read_text())
    print(
        f"staging: {load['total_rows']:,} rows loaded into schema {load['schema']} of {load['target']} "
        f"in {load['seconds']}s ({load['rows_per_second']:,} rows/s)"
    )
    print(f"  connect: {load['connect']}")
