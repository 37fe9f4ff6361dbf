"""The `synth-assets` parser and its exit codes: 0 done, 1 a step or a check stopped after
preflight (or a verification failed), 2 the input was refused, 3 a release gate failed."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from synth_assets.core.errors import GateFailed, RunFailed, SynthError

from . import ops, refresh, release

DESCRIPTION = (
    "`synth-assets`: the headless entry point (it drives the same Dagster Definitions as the UI)."
)


def build_parser() -> argparse.ArgumentParser:
    """Every command: refresh (init, demo, refresh, regenerate), operations (teardown, budget,
    emergency-teardown, audit) and release (publish, release)."""
    p = argparse.ArgumentParser(prog="synth-assets", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True)
    refresh.add_commands(sub)
    ops.add_commands(sub)
    release.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become one line on stderr and an exit code."""
    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except GateFailed as exc:  # the input was fine; the data did not pass: exit 3, not 2
        print(f"synth-assets: gate failed: {exc}", file=sys.stderr)
        return 3
    except RunFailed as exc:  # a step stopped on an error after preflight: exit 1
        print(f"synth-assets: error: {exc}", file=sys.stderr)
        return 1
    except SynthError as exc:
        print(f"synth-assets: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130
