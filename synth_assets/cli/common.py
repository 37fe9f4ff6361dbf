"""The arguments every `synth-assets` command shares, defined once, and the settings they name."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_assets.core.config import default_config_path

if TYPE_CHECKING:
    from synth_assets.core.config import SynthConfig

ACTOR_HELP = "who acts, e.g. alice/CHG-123 (default $SYNTH_ACTOR or the OS user)"


def add_common(sp: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """--workdir and --config. ``suppress``: a nested subcommand's copy that leaves the values
    parsed before it alone (argparse would otherwise reset them to the defaults)."""
    sp.add_argument(
        "--workdir",
        default=argparse.SUPPRESS if suppress else os.environ.get("SYNTH_WORKDIR", ".synth"),
        help="work directory (embedded Postgres, secrets, runs); default .synth",
    )
    sp.add_argument(
        "--config",
        default=argparse.SUPPRESS if suppress else default_config_path(),
        help="path of synth.yaml",
    )


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    fn: Callable[[argparse.Namespace], int],
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subcommand that runs ``fn``, its --workdir and --config first (``kwargs``: help,
    description); the caller adds the rest of its arguments."""
    sp = subparsers.add_parser(name, **kwargs)
    add_common(sp)
    sp.set_defaults(fn=fn)
    return sp


def add_target(sp: argparse.ArgumentParser) -> None:
    """--target: the database whose staging schemas a command works on."""
    sp.add_argument(
        "--target", default=None, help="postgresql://… or embedded:///db (default target.url)"
    )


def add_audit_url(sp: argparse.ArgumentParser) -> None:
    """--audit-url: where the audit log and the budget ledger live."""
    sp.add_argument(
        "--audit-url", default=None, help="audit database (default audit.url, else the target)"
    )


def add_actor(sp: argparse.ArgumentParser) -> None:
    """--actor: who a recorded action is attributed to."""
    sp.add_argument("--actor", default=None, help=ACTOR_HELP)


def settings(args: argparse.Namespace) -> tuple[SynthConfig, Path]:
    """The configuration --config names and the resolved --workdir."""
    from synth_assets.core.config import load_config

    return load_config(args.config), Path(args.workdir).expanduser().resolve()
