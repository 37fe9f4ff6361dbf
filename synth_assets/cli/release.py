"""`synth-assets publish` and `synth-assets release [verify]`: signed, gated, ticket-bound access.

The commands raise ``SynthError`` subclasses, which `synth-assets` turns into one clear line
and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from synth_assets.core.errors import ConfigError
from synth_assets.core.store import write_private

from .common import add_command, add_common, settings


def _settings(args: argparse.Namespace) -> tuple[Any, Path, Any]:
    """Configuration, work directory and the secrets backend that signs and verifies."""
    from synth_assets.core.secrets import backend_from_config

    cfg, workdir = settings(args)
    return cfg, workdir, backend_from_config(cfg.secrets, workdir)


def _need(args: argparse.Namespace, *names: str) -> None:
    """Refuse a command missing a required option (one line naming them all)."""
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n, None)]
    if missing:
        raise ConfigError(f"synth-assets {args.command} needs {' and '.join(missing)}")


def _cmd_publish(args: argparse.Namespace) -> int:
    from synth_assets.core.artifacts import publish_refresh, verify_refresh

    _need(args, "refresh_id")
    cfg, workdir, secrets = _settings(args)
    if args.verify:
        manifest, problems = verify_refresh(cfg, workdir, args.refresh_id, secrets, deep=True)
        if problems:
            print(f"refresh {args.refresh_id}: manifest does NOT verify")
            for p in problems:
                print(f"  - {p}")
            return 1
        assert manifest is not None
        print(
            f"refresh {args.refresh_id}: manifest signature and {len(manifest['artifacts'])} artifact "
            f"hash(es) verify ({manifest['store']['location']})"
        )
        return 0
    manifest = publish_refresh(cfg, workdir, args.refresh_id, secrets)
    print(
        f"published refresh {args.refresh_id}: {len(manifest['artifacts'])} artifact(s) to "
        f"{manifest['store']['location']} (manifest signed with HMAC key version "
        f"{manifest['signature']['key_version']})"
    )
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from synth_assets.core.release import issue_release, parse_ttl

    _need(args, "refresh_id", "ticket")
    ttl = parse_ttl(args.ttl)
    cfg, workdir, secrets = _settings(args)
    doc = issue_release(cfg, workdir, args.refresh_id, args.ticket, ttl, secrets)
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.out:
        write_private(Path(args.out), text + "\n")
        print(
            f"release {doc['release_id']} of refresh {doc['refresh_id']} for {doc['ticket']}, valid until "
            f"{doc['expires_at']}: token and {len(doc['urls'])} presigned URL(s) in {args.out} (mode 0600)"
        )
    else:
        print(text)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from synth_assets.core.release import verify_token

    cfg, workdir, secrets = _settings(args)
    token = args.token
    if token == "-":
        token = sys.stdin.read().strip()
    check = verify_token(
        token,
        secrets,
        ticket=getattr(args, "ticket", None),
        refresh_id=getattr(args, "refresh_id", None),
    )
    print(json.dumps(check.to_dict(now=time.time()), indent=1, sort_keys=True))
    return 0 if check.valid else 1


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `publish` and `release` (with `release verify`) to the `synth-assets` parser."""

    sp = add_command(
        subparsers,
        "publish",
        _cmd_publish,
        help="hash, sign and publish a refresh's artifacts (manifest last)",
    )
    sp.add_argument("--refresh-id", required=True)
    sp.add_argument(
        "--verify",
        action="store_true",
        help="verify an already published refresh instead (signature and every artifact's SHA-256)",
    )

    sp = add_command(
        subparsers,
        "release",
        _cmd_release,
        help="issue expiring, ticket-bound access to a published refresh whose gates all passed",
        description="synth-assets release --refresh-id R --ticket T [--ttl 1h] | synth-assets release verify TOKEN",
    )
    sp.add_argument("--refresh-id", default=None)
    sp.add_argument(
        "--ticket",
        default=None,
        help="change/ticket reference the release is bound to, e.g. CHG-1234",
    )
    sp.add_argument(
        "--ttl", default="1h", help="lifetime: 900, 30m, 1h, 2d (1 minute to 7 days); default 1h"
    )
    sp.add_argument(
        "--out", default=None, help="write the release (token, URLs) to this file, mode 0600"
    )
    sub = sp.add_subparsers(dest="release_command")
    vp = sub.add_parser("verify", help="say whether a release token is valid and what it grants")
    vp.add_argument("token", help="the release token (or - to read it from stdin)")
    vp.add_argument(
        "--ticket", default=argparse.SUPPRESS, help="valid only if issued for this ticket"
    )
    vp.add_argument(
        "--refresh-id", default=argparse.SUPPRESS, help="valid only if issued for this refresh"
    )
    add_common(vp, suppress=True)
    vp.set_defaults(fn=_cmd_verify)
