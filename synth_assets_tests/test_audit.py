"""The audit log: append-only, keyed (HMAC), hash-chained, and every tampering is named by verify."""

import argparse
import json

import psycopg
import pytest

from synth_assets.cli.ops import add_commands
from synth_assets.core.audit import (
    GENESIS_HASH,
    AuditError,
    event_mac,
    list_events,
    profile_payload,
    record_event,
    verify_chain,
)
from synth_assets.core.errors import SecretsError
from synth_assets_tests.conftest import RID, fresh_db, signer_for


def _tamper(url: str, statement: str) -> None:
    """Bypass the append-only triggers the way a superuser could."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement)


def _cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.fn(args)


def test_each_event_is_an_hmac_linked_to_the_previous_and_the_chain_verifies(audit_url, signer):
    events = list_events(audit_url)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    key = signer.key()
    e = events[2]
    assert e.key_id == key.key_id and all(ev.key_id == key.key_id for ev in events)
    assert e.hash == event_mac(
        key, e.seq, e.ts, e.kind, e.refresh_id, e.actor, e.payload, e.prev_hash
    )
    res = verify_chain(audit_url, signer)
    assert res.ok and res.events == 5 and res.head_hash == events[-1].hash
    assert res.key_ids == [key.key_id]


def test_the_key_id_names_the_key_without_revealing_it(audit_url, signer, work):
    key = signer.key()
    version, fingerprint = key.key_id.split(":")
    assert version == signer.secrets.hmac_key().version and len(fingerprint) == 12
    assert key.value.hex() not in key.key_id and key.value.hex() not in repr(key)
    anchor = next((work / "audit").glob("anchor-*.json")).read_text()
    assert key.value.hex() not in anchor and signer.secrets.hmac_key().value.hex() not in anchor
    # the audit key is a purpose-bound subkey, never the HMAC key used for holdout or signatures
    assert key.value != signer.secrets.hmac_key().value


def test_update_delete_and_truncate_are_refused_by_the_database(audit_url, signer):
    with psycopg.connect(audit_url, autocommit=True) as conn:
        for stmt in (
            "UPDATE synth_audit.events SET actor = 'mallory' WHERE seq = 2",
            "DELETE FROM synth_audit.events WHERE seq = 5",
            "TRUNCATE synth_audit.events",
            "UPDATE synth_audit.head SET seq = 2",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only|may only advance"):
                conn.execute(stmt)
    assert verify_chain(audit_url, signer).ok


def test_an_edited_payload_fails_verify_naming_the_event(audit_url, signer):
    _tamper(
        audit_url,
        'UPDATE synth_audit.events SET payload = \'{"passed": true, "gates": {}}\' WHERE seq = 4',
    )
    res = verify_chain(audit_url, signer)
    assert not res.ok
    assert any(
        p.startswith("event 4 (report") and "altered: its MAC does not verify" in p
        for p in res.problems
    )


def test_an_edited_actor_fails_verify(audit_url, signer):
    _tamper(audit_url, "UPDATE synth_audit.events SET actor = 'mallory' WHERE seq = 1")
    assert any("event 1 (profile" in p for p in verify_chain(audit_url, signer).problems)


def test_a_deleted_event_fails_verify_naming_the_gap(audit_url, signer):
    _tamper(audit_url, "DELETE FROM synth_audit.events WHERE seq = 3")
    problems = verify_chain(audit_url, signer).problems
    assert any(p.startswith("event 3 missing: event 4 (report") for p in problems)


def test_deleting_the_newest_event_is_caught_by_the_chain_head(audit_url, signer):
    _tamper(audit_url, "DELETE FROM synth_audit.events WHERE seq = 5")
    problems = verify_chain(audit_url, signer).problems
    assert "event 5 (load) missing: the chain head records event 5 but the log ends at event 4" in (
        problems
    )


def test_appending_after_tampering_with_the_head_is_refused(audit_url, signer):
    _tamper(audit_url, "DELETE FROM synth_audit.events WHERE seq = 5")
    with pytest.raises(AuditError, match="chain head"):
        record_event(audit_url, "teardown", None, {"mode": "teardown"}, "carol", signer=signer)


def test_without_a_signer_nothing_is_written(pg_workdir, monkeypatch):
    from synth_assets.core.audit import keys

    monkeypatch.setattr(keys, "_BOUND", {})
    monkeypatch.setattr(keys, "_DEFAULT", [])
    url = fresh_db(pg_workdir)
    with pytest.raises(AuditError, match="no audit key is configured.*never written unkeyed"):
        record_event(url, "teardown", None, {"mode": "teardown"}, "carol")
    assert list_events(url) == []


def test_a_missing_key_fails_closed_with_the_init_hint(pg_workdir, tmp_path):
    url = fresh_db(pg_workdir)
    with pytest.raises(SecretsError, match="synth-assets init"):
        record_event(url, "teardown", None, {"mode": "x"}, "carol", signer=signer_for(tmp_path))
    assert list_events(url) == []


def test_a_bound_signer_signs_for_core_code_that_only_has_a_url(pg_workdir, signer, monkeypatch):
    from synth_assets.core.audit import keys

    monkeypatch.setattr(keys, "_BOUND", {})
    monkeypatch.setattr(keys, "_DEFAULT", [])
    url = fresh_db(pg_workdir)
    keys.bind_audit_log(signer, url)
    ev = record_event(url, "teardown", None, {"mode": "teardown"}, "carol")
    assert ev.key_id == signer.key().key_id and verify_chain(url, signer).ok


def test_cli_audit_verify_exits_non_zero_and_names_the_event(audit_url, work, capsys):
    base = ["--workdir", str(work), "--audit-url", audit_url]
    assert _cli(["audit", "verify", *base]) == 0
    out = capsys.readouterr().out
    assert "intact: 5 event(s), head event 5" in out and "anchor" in out
    _tamper(
        audit_url,
        "UPDATE synth_audit.events SET refresh_id = 'r20990101T000000Z-ffffff' WHERE seq = 2",
    )
    assert _cli(["audit", "verify", *base]) == 1
    err = capsys.readouterr().err
    assert "BROKEN" in err and "event 2 (spec, refresh r20990101T000000Z-ffffff" in err


def test_cli_audit_verify_without_the_key_is_an_error_not_a_pass(audit_url, tmp_path):
    from synth_assets.cli import main

    other = tmp_path / "nokey"
    assert main(["audit", "verify", "--workdir", str(other), "--audit-url", audit_url]) == 2


def test_cli_audit_show_filters_by_refresh(audit_url, signer, work, capsys):
    record_event(
        audit_url,
        "teardown",
        None,
        {"mode": "teardown", "schemas": ["synth"]},
        "carol",
        signer=signer,
    )
    argv = ["audit", "show", "--workdir", str(work), "--audit-url", audit_url, "--refresh-id", RID]
    assert _cli(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all(RID in line for line in lines)
    assert [w.split()[2] for w in lines] == ["profile", "spec", "shards", "report", "load"]
    assert _cli([*argv[:-2], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown[-1]["kind"] == "teardown" and shown[-1]["key_id"] == signer.key().key_id


def test_payloads_must_be_strict_json_and_kinds_known(audit_url, signer):
    with pytest.raises(AuditError, match="strict JSON"):
        record_event(audit_url, "report", RID, {"auc": float("nan")}, "bob", signer=signer)
    with pytest.raises(AuditError, match="unknown audit event kind"):
        record_event(audit_url, "coffee", RID, {}, "bob", signer=signer)
    assert verify_chain(audit_url, signer).ok


def test_profile_payload_sums_the_ledger_per_mechanism():
    pack = {
        "ledger": {
            "epsilon_spent": 0.98,
            "epsilon_target": 1.0,
            "delta": 1e-6,
            "rho_spent": 0.01,
            "rho_budget": 0.011,
            "entries": [
                {"name": "a", "mechanism": "discrete_gaussian", "rho": 0.004, "detail": {}},
                {"name": "b", "mechanism": "discrete_gaussian", "rho": 0.004, "detail": {}},
                {
                    "name": "c",
                    "mechanism": "gaussian_threshold",
                    "rho": 0.002,
                    "detail": {"threshold": 17},
                },
            ],
        }
    }
    p = profile_payload(pack)
    assert p["mechanisms"]["discrete_gaussian"] == {"measurements": 2, "rho": 0.008}
    assert p["thresholds"] == {"c": 17} and p["epsilon_spent"] == 0.98
