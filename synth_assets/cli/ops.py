"""`synth-assets` commands for staging teardown, the privacy budget and the audit log."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import add_actor, add_audit_url, add_command, add_target, settings


def _target(args: argparse.Namespace, cfg: Any, work: Path) -> str:
    """libpq URL of the target (--target, else target.url), starting the embedded server if named."""
    from synth_assets.core import pg

    return pg.resolve_url(getattr(args, "target", None) or cfg.target.url, work)


def _audit(args: argparse.Namespace, cfg: Any, work: Path) -> str:
    """libpq URL of the audit database: --audit-url, else audit.url, else the target."""
    from synth_assets.core import pg

    url = args.audit_url or cfg.audit.url or getattr(args, "target", None) or cfg.target.url
    return pg.resolve_url(url, work)


def _bind_audit(cfg: Any, work: Path, url: str) -> Any:
    """Sign this command's audit events with the configured audit key (the loader only has a URL)."""
    from synth_assets.core.audit import AuditSigner, bind_audit_log

    signer = AuditSigner.for_config(cfg, work)
    signer.key()  # fail closed before anything is dropped
    bind_audit_log(signer, url)
    return signer


def _cmd_teardown(args: argparse.Namespace) -> int:
    from synth_assets.core.audit import anchor_head
    from synth_assets.core.load import teardown

    cfg, work = settings(args)
    target, audit = _target(args, cfg, work), _audit(args, cfg, work)
    signer = _bind_audit(cfg, work, audit)
    res = teardown(target, args.schema or cfg.target.db_schema, actor=args.actor, audit_url=audit)
    anchor_head(audit, signer)
    if res.dropped:
        print(
            f"dropped {', '.join(res.dropped)} (recorded in synth_meta.teardowns and the audit log)"
        )
    else:
        print(
            f"nothing to tear down: no schema {args.schema or cfg.target.db_schema} created by synth_assets"
        )
    return 0


def _cmd_emergency(args: argparse.Namespace) -> int:
    from synth_assets.core.audit import anchor_head
    from synth_assets.core.errors import ConfigError
    from synth_assets.core.load import emergency_teardown
    from synth_assets.core.store import RefreshStore

    if not args.yes:
        raise ConfigError(
            "emergency-teardown drops every synthetic schema in the target and deletes every "
            "refresh's artifacts: pass --yes to confirm"
        )
    cfg, work = settings(args)
    target, audit = _target(args, cfg, work), _audit(args, cfg, work)
    signer = _bind_audit(cfg, work, audit)
    store = RefreshStore(cfg.artifacts.store or work / "runs")
    res = emergency_teardown(target, store.root, actor=args.actor, audit_url=audit)
    anchor_head(audit, signer)
    print(f"dropped {len(res.dropped)} schema(s): {', '.join(res.dropped) or '-'}")
    if res.skipped:
        print(
            f"left alone (listed in synth_meta but without the synth_assets marker): {', '.join(res.skipped)}"
        )
    if res.also_removed:
        print(f"also removed (depended on them): {', '.join(res.also_removed)}")
    print(f"deleted the artifacts of {len(res.artifacts)} refresh(es) under {store.root}")
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    """Every MAC and link, the head, and the anchors outside the database; exit 1 on any break."""
    from synth_assets.core.artifacts import fetch_anchors
    from synth_assets.core.audit import AuditSigner, verify_chain
    from synth_assets.core.store import store_for

    cfg, work = settings(args)
    audit = _audit(args, cfg, work)
    signer = AuditSigner.for_config(cfg, work)
    if signer.anchor_dir is not None:  # a deployment's anchors live in its S3 store
        fetch_anchors(cfg, store_for(cfg, work), signer.anchor_dir)
    res = verify_chain(audit, signer)  # no key: SecretsError, exit 2
    if res.ok:
        keys = ", ".join(res.key_ids) or "none (legacy events only)"
        print(
            f"audit chain intact: {res.events} event(s), head event {res.head_seq} "
            f"{res.head_hash}; audit key(s) {keys}"
        )
        for line in res.anchors + res.notes:
            print(f"  {line}")
        return 0
    print(
        f"audit chain BROKEN ({len(res.problems)} problem(s) in {res.events} event(s)):",
        file=sys.stderr,
    )
    for p in res.problems:
        print(f"  {p}", file=sys.stderr)
    for line in res.notes:
        print(f"  note: {line}", file=sys.stderr)
    return 1


def _cmd_audit_show(args: argparse.Namespace) -> int:
    from synth_assets.core.audit import format_event, list_events

    audit = _audit(args, *settings(args))
    events = list_events(audit, args.refresh_id)
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=1, default=str))
    else:
        for e in events:
            print(format_event(e))
        if not events:
            print(
                "no audit events" + (f" for refresh {args.refresh_id}" if args.refresh_id else "")
            )
    return 0


def _cmd_budget(args: argparse.Namespace) -> int:
    """The annual privacy budget of each source: spent, remaining, when it frees up, the ledger."""
    from datetime import UTC, datetime

    from synth_assets.core import budget
    from synth_assets.core.preflight import existing_database

    cfg, work = settings(args)
    url = existing_database(args.audit_url or cfg.audit_url(), work)
    cap = cfg.privacy.annual_epsilon_cap
    key = None
    if args.source or args.schema:
        key, _ = budget.source_key(
            args.source or cfg.source.url,
            args.schema or cfg.source.db_schema,
            cfg.privacy.budget_key,
        )
    rows = budget.ledger(url, key) if url else []
    if not rows:
        print(
            f"no refresh has spent budget{' on this source' if key else ''} (annual cap epsilon={cap:g})"
        )
        return 0
    now = datetime.now(UTC)
    for skey in dict.fromkeys(r["source_key"] for r in rows):
        mine = [r for r in rows if r["source_key"] == skey]
        st = budget.standing(url, skey, cap, now)
        frees = st.frees_up(cfg.privacy.epsilon)
        print(
            f"source {mine[-1]['source']}: epsilon {st.spent:.3g} of {cap:g} spent in the last 365 "
            f"days, {max(0.0, cap - st.spent):.3g} remaining"
            + (
                f"; a refresh at epsilon={cfg.privacy.epsilon:g} fits again on {frees:%Y-%m-%d}"
                if frees
                else ""
            )
        )
        for r in mine:
            note = f"  ({r['note']})" if r["note"] else ""
            print(
                f"  {r['spent_at']:%Y-%m-%d %H:%M} UTC  {r['refresh_id']}  epsilon={r['epsilon']:.3g}  "
                f"delta={r['delta']:.0e}  {r['status']}{note}"
            )
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register teardown, budget, emergency-teardown and audit {verify,show} on the CLI's
    subparsers."""
    sp = add_command(
        subparsers,
        "teardown",
        _cmd_teardown,
        help="drop a staging schema created by synth_assets (and its __next/__prev)",
    )
    add_target(sp)
    sp.add_argument("--schema", default=None, help="staging schema (default target.schema)")
    add_audit_url(sp)
    add_actor(sp)

    sp = add_command(
        subparsers,
        "budget",
        _cmd_budget,
        help="the annual privacy budget per source: spent, remaining, the ledger",
    )
    sp.add_argument("--source", default=None, help="only this source (default: every source)")
    sp.add_argument("--schema", default=None, help="with --source: its schema (default config)")
    add_audit_url(sp)

    sp = add_command(
        subparsers,
        "emergency-teardown",
        _cmd_emergency,
        help="drop every synthetic schema in the target and delete every refresh's artifacts",
    )
    add_target(sp)
    add_audit_url(sp)
    add_actor(sp)
    sp.add_argument("--yes", action="store_true", help="confirm: this deletes data and artifacts")

    sp = subparsers.add_parser("audit", help="the keyed, hash-chained audit log: verify or show it")
    asub = sp.add_subparsers(dest="audit_command", required=True)
    v = add_command(
        asub,
        "verify",
        _cmd_audit_verify,
        help="check every MAC and link, the chain head and the anchors outside the database "
        "(<workdir>/audit, the store's refreshes); exit 1 on any break",
    )
    add_audit_url(v)
    s = add_command(
        asub, "show", _cmd_audit_show, help="print the events (optionally of one refresh)"
    )
    add_audit_url(s)
    s.add_argument("--refresh-id", default=None, help="only the events of this refresh")
    s.add_argument("--json", action="store_true", help="JSON instead of one line per event")
