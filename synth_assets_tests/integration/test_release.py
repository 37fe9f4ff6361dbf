"""Publication, manifest verification and ticket-bound release on a real refresh (local store)."""

import argparse
import base64
import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synth_assets.cli.release import add_commands
from synth_assets.core import pg
from synth_assets.core.artifacts import ArtifactError, publish_refresh, verify_refresh
from synth_assets.core.audit import list_events
from synth_assets.core.config import parse_config
from synth_assets.core.manifest import MANIFEST_NAME
from synth_assets.core.release import ReleaseRefused, issue_release, parse_ttl, verify_token
from synth_assets.core.secrets import LocalSecrets, init_local_secrets
from synth_assets.core.store import read_json, write_json_atomic
from synth_assets.orchestrate import run_refresh
from synth_assets_tests.conftest import make_config


@pytest.fixture(scope="module")
def audit_url(pg_workdir) -> str:
    return pg.resolve_url("embedded:///release_audit", pg_workdir)


@pytest.fixture(scope="module")
def refresh(tmp_path_factory, demo_url, audit_url):
    """A passing demo refresh, published to the local store: (workdir, config, secrets, rid)."""
    wd = tmp_path_factory.mktemp("release")
    init_local_secrets(wd / "secrets")
    cfg = make_config(demo_url, target={"url": audit_url})
    with dg.DagsterInstance.ephemeral() as inst:
        summary = run_refresh(None, wd, cfg_override=cfg, instance=inst, log=lambda m: None)
    secrets = LocalSecrets(wd / "secrets")
    publish_refresh(cfg, wd, summary["refresh_id"], secrets)
    return wd, cfg, secrets, summary["refresh_id"]


def _clone(wd: Path, rid: str, new_rid: str) -> Path:
    """A copy of a refresh under another id (to damage it without touching the original)."""
    dst = wd / "runs" / new_rid
    shutil.copytree(wd / "runs" / rid, dst)
    (dst / MANIFEST_NAME).unlink()
    return dst


def test_manifest_records_hashes_spec_seed_keys_budget_gates_and_code(refresh):
    wd, cfg, secrets, rid = refresh
    m = read_json(wd / "runs" / rid / MANIFEST_NAME)
    summary = read_json(wd / "runs" / rid / "summary.json")
    paths = {a["path"] for a in m["artifacts"]}
    assert {
        "schema.json",
        "metrics_pack.json",
        "spec.json",
        "generation.json",
        "summary.json",
    } <= paths
    assert any(p.startswith("shards/") and p.endswith(".parquet") for p in paths)
    assert (
        m["spec_hash"] == summary["spec_hash"]
        and m["seed_commitment"] == summary["seed_commitment"]
    )
    assert m["privacy"]["epsilon_spent"] == pytest.approx(summary["epsilon_spent"])
    assert m["key_versions"]["seed"] == "1" and m["key_versions"]["hmac_key_profile"]
    assert m["key_versions"]["manifest_signing_key"] == secrets.hmac_key().version
    assert m["gates"]["passed"] and m["gates"]["checks"] == {n: True for n in summary["checks"]}
    assert m["code_version"]["package"] and m["signature"]["alg"] == "HMAC-SHA256"
    assert verify_refresh(cfg, wd, rid, secrets)[1] == []


def test_publishing_again_is_idempotent(refresh):
    wd, cfg, secrets, rid = refresh
    before = read_json(wd / "runs" / rid / MANIFEST_NAME)
    assert publish_refresh(cfg, wd, rid, secrets) == before


def test_tampered_manifest_fails_verification(refresh):
    wd, cfg, secrets, rid = refresh
    path = wd / "runs" / rid / MANIFEST_NAME
    original = path.read_bytes()
    try:
        m = json.loads(original)
        m["privacy"]["epsilon_spent"] = 0.01  # understate the budget spent
        path.write_text(json.dumps(m))
        _, problems = verify_refresh(cfg, wd, rid, secrets)
        assert problems and "signature does not match" in problems[0]
    finally:
        path.write_bytes(original)


def test_tampered_artifact_fails_verification_and_blocks_republishing(refresh):
    wd, cfg, secrets, rid = refresh
    shard = sorted((wd / "runs" / rid / "shards").rglob("*.parquet"))[0]
    original = shard.read_bytes()
    try:
        shard.write_bytes(original + b"\0")
        _, problems = verify_refresh(cfg, wd, rid, secrets)
        assert any("was modified" in p and shard.name in p for p in problems)
        with pytest.raises(ArtifactError, match="immutable"):
            publish_refresh(cfg, wd, rid, secrets)
    finally:
        shard.write_bytes(original)


def test_release_issues_a_ticket_bound_token_and_audits_it(refresh, audit_url):
    wd, cfg, secrets, rid = refresh
    doc = issue_release(cfg, wd, rid, "CHG-1001", 3600, secrets, now=lambda: 1_800_000_000.0)
    check = verify_token(doc["token"], secrets, now=lambda: 1_800_000_000.0 + 60)
    assert check.valid and check.claims["ticket"] == "CHG-1001" and check.claims["rid"] == rid
    assert check.claims["grants"]["access"] == "read" and check.claims["grants"]["store"] == "local"
    events = [e for e in list_events(audit_url, rid) if e.kind == "release"]
    granted = [e for e in events if e.payload.get("release_id") == doc["release_id"]]
    assert (
        granted
        and granted[0].payload["ticket"] == "CHG-1001"
        and granted[0].payload["outcome"] == "granted"
    )
    assert doc["token"] not in json.dumps(
        granted[0].payload
    )  # the audit holds a fingerprint, not the token


def test_a_token_verifies_only_for_its_own_ticket_and_refresh(refresh, capsys):
    from synth_assets.cli import main

    wd, cfg, secrets, rid = refresh
    doc = issue_release(cfg, wd, rid, "CHG-1004", 3600, secrets)
    assert verify_token(doc["token"], secrets, ticket="CHG-1004", refresh_id=rid).valid
    other = verify_token(doc["token"], secrets, ticket="CHG-9999")
    assert not other.valid and "issued for ticket 'CHG-1004', not 'CHG-9999'" in other.reason
    assert not verify_token(doc["token"], secrets, refresh_id=rid[:-6] + "000000").valid
    cfg_file = wd / "cfg.yaml"
    cfg_file.write_text(__import__("yaml").safe_dump(cfg.to_json()))
    base = ["release", "verify", doc["token"], "--workdir", str(wd), "--config", str(cfg_file)]
    assert main([*base, "--ticket", "CHG-1004"]) == 0
    assert main([*base, "--ticket", "CHG-9999"]) == 1
    assert "not 'CHG-9999'" in capsys.readouterr().out
    # given before the verb, the ticket binds the same way
    assert main(["release", "--ticket", "CHG-9999", *base[1:]]) == 1


def test_expired_token_is_rejected(refresh):
    wd, cfg, secrets, rid = refresh
    doc = issue_release(cfg, wd, rid, "CHG-1002", 60, secrets, now=lambda: 1_800_000_000.0)
    check = verify_token(doc["token"], secrets, now=lambda: 1_800_000_000.0 + 61)
    assert not check.valid and check.reason.startswith("expired at")


def test_altered_token_is_rejected(refresh):
    wd, cfg, secrets, rid = refresh
    doc = issue_release(cfg, wd, rid, "CHG-1003", 3600, secrets)
    head, payload, mac = doc["token"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["ticket"] = "CHG-9999"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert not verify_token(f"{head}.{forged_payload}.{mac}", secrets).valid
    assert not verify_token("not-a-token", secrets).valid


def test_release_of_a_refresh_with_a_failed_gate_is_refused(refresh, audit_url):
    wd, cfg, secrets, rid = refresh
    bad = rid[:-6] + "0badc0"
    dst = _clone(wd, rid, bad)
    summary = read_json(dst / "summary.json")
    name = next(iter(summary["checks"]))
    summary["checks"][name]["passed"] = False
    summary["passed"] = False
    write_json_atomic(dst / "summary.json", summary)
    with pytest.raises(ReleaseRefused, match=f"check {name} failed"):
        issue_release(cfg, wd, bad, "CHG-1004", 3600, secrets)
    with pytest.raises(ArtifactError, match="refusing to publish"):
        publish_refresh(cfg, wd, bad, secrets)
    refused = [e for e in list_events(audit_url, bad) if e.kind == "release"]
    assert refused and refused[-1].payload["outcome"] == "refused"


def test_release_is_refused_when_the_privacy_report_failed(refresh):
    wd, cfg, secrets, rid = refresh
    bad = rid[:-6] + "0badc1"
    dst = _clone(wd, rid, bad)
    write_json_atomic(
        dst / "report" / "privacy_report.json",
        {
            "passed": False,
            "gates": {"dcr_share": {"passed": False}, "exact_match": {"passed": True}},
        },
    )
    with pytest.raises(ReleaseRefused, match="privacy report gate dcr_share failed"):
        issue_release(cfg, wd, bad, "CHG-1005", 3600, secrets)


def test_release_needs_the_refreshs_own_passing_report(refresh):
    """A refresh whose report is missing, or is another refresh's, is never released."""
    wd, cfg, secrets, rid = refresh
    lone = rid[:-6] + "0badc3"
    dst = _clone(wd, rid, lone)
    shutil.rmtree(dst / "report")
    with pytest.raises(ReleaseRefused, match="no privacy report of its own"):
        issue_release(cfg, wd, lone, "CHG-1007", 3600, secrets)
    borrowed = rid[:-6] + "0badc4"
    dst = _clone(wd, rid, borrowed)
    summary = read_json(dst / "summary.json")
    write_json_atomic(dst / "summary.json", {**summary, "refresh_id": borrowed})
    with pytest.raises(ReleaseRefused, match=f"is of refresh {rid}, not of {borrowed}"):
        issue_release(cfg, wd, borrowed, "CHG-1008", 3600, secrets)


def test_release_of_an_unpublished_or_altered_refresh_is_refused(refresh):
    wd, cfg, secrets, rid = refresh
    other = rid[:-6] + "0badc2"
    dst = _clone(wd, rid, other)
    with pytest.raises(ReleaseRefused, match="not published"):
        issue_release(cfg, wd, other, "CHG-1006", 3600, secrets)
    publish_refresh(cfg, wd, other, secrets)
    (dst / "spec.json").write_text("{}")
    with pytest.raises(ReleaseRefused, match="does not verify"):
        issue_release(cfg, wd, other, "CHG-1006", 3600, secrets)


@pytest.mark.parametrize("bad", ["", "has space", "x" * 80, "-leading"])
def test_malformed_tickets_are_refused(refresh, bad):
    from synth_assets.core.errors import ConfigError

    wd, cfg, secrets, rid = refresh
    with pytest.raises(ConfigError, match="ticket"):
        issue_release(cfg, wd, rid, bad, 3600, secrets)


def test_ttl_parsing_and_bounds():
    from synth_assets.core.errors import ConfigError

    assert [parse_ttl(t) for t in ("90", "30m", "1h", "2d")] == [90, 1800, 3600, 172800]
    for bad in ("0", "30s", "8d", "soon"):
        with pytest.raises(ConfigError):
            parse_ttl(bad)


def _cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="synth-assets")
    sub = p.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = p.parse_args(argv)
    return args.fn(args)


def test_cli_release_and_verify(refresh, tmp_path, capsys):
    wd, cfg, secrets, rid = refresh
    cfg_file = wd / "effective-synth.yaml"
    assert parse_config(yaml.safe_load(cfg_file.read_text())) == cfg
    out = tmp_path / "release.json"
    common = ["--workdir", str(wd), "--config", str(cfg_file)]
    assert (
        _cli(
            [
                "release",
                "--refresh-id",
                rid,
                "--ticket",
                "CHG-1007",
                "--ttl",
                "15m",
                "--out",
                str(out),
                *common,
            ]
        )
        == 0
    )
    assert out.stat().st_mode & 0o777 == 0o600
    token = json.loads(out.read_text())["token"]
    capsys.readouterr()
    assert _cli(["release", *common, "verify", token]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["valid"] and shown["ticket"] == "CHG-1007" and shown["grants"]["access"] == "read"
    assert _cli(["release", "verify", token[:-2] + "xx", *common]) == 1
    assert _cli(["publish", "--refresh-id", rid, "--verify", *common]) == 0
