"""The audit log: append-only, hash-chained, and every tampering is named by `audit verify`."""

import argparse
import uuid

import psycopg
import pytest

from synth_assets.cli_ops import add_commands
from synth_assets.core import pg
from synth_assets.core.audit import (
    GENESIS_HASH,
    AuditError,
    event_hash,
    list_events,
    profile_payload,
    record_event,
    verify_chain,
)

RID = "r20260101T000000Z-a1b2c3"


@pytest.fixture
def audit_url(pg_workdir) -> str:
    """A fresh database holding a five-event chain."""
    url = pg.resolve_url(f"embedded:///audit_{uuid.uuid4().hex[:10]}", pg_workdir)
    record_event(
        url,
        "profile",
        RID,
        {"epsilon_spent": 0.99, "mechanisms": {"discrete_gaussian": 12}},
        "alice",
    )
    record_event(url, "spec", RID, {"spec_hash": "ab" * 32}, "alice")
    record_event(
        url,
        "shards",
        RID,
        {"seed_commitment": "cd" * 32, "files": {"t/part-00000.parquet": "ef" * 32}},
        "alice",
    )
    record_event(
        url,
        "report",
        RID,
        {"passed": True, "gates": {"dcr": {"passed": True, "value": 1e-20}}},
        "bob",
    )
    record_event(url, "load", RID, {"status": "loaded", "rows": {"t": 10}}, "bob")
    return url


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


def test_each_event_links_to_the_previous_hash_and_the_chain_verifies(audit_url):
    events = list_events(audit_url)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    e = events[2]
    assert e.hash == event_hash(e.seq, e.ts, e.kind, e.refresh_id, e.actor, e.payload, e.prev_hash)
    res = verify_chain(audit_url)
    assert res.ok and res.events == 5 and res.head_hash == events[-1].hash


def test_update_delete_and_truncate_are_refused_by_the_database(audit_url):
    with psycopg.connect(audit_url, autocommit=True) as conn:
        for stmt in (
            "UPDATE synth_audit.events SET actor = 'mallory' WHERE seq = 2",
            "DELETE FROM synth_audit.events WHERE seq = 5",
            "TRUNCATE synth_audit.events",
            "UPDATE synth_audit.head SET seq = 2",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only|may only advance"):
                conn.execute(stmt)
    assert verify_chain(audit_url).ok


def test_an_edited_payload_fails_verify_naming_the_event(audit_url):
    _tamper(
        audit_url,
        'UPDATE synth_audit.events SET payload = \'{"passed": true, "gates": {}}\' WHERE seq = 4',
    )
    res = verify_chain(audit_url)
    assert not res.ok
    assert any(p.startswith("event 4 (report") and "altered" in p for p in res.problems)


def test_an_edited_actor_fails_verify(audit_url):
    _tamper(audit_url, "UPDATE synth_audit.events SET actor = 'mallory' WHERE seq = 1")
    assert any("event 1 (profile" in p for p in verify_chain(audit_url).problems)


def test_a_deleted_event_fails_verify_naming_the_gap(audit_url):
    _tamper(audit_url, "DELETE FROM synth_audit.events WHERE seq = 3")
    problems = verify_chain(audit_url).problems
    assert any(p.startswith("event 3 missing: event 4 (report") for p in problems)


def test_deleting_the_newest_event_is_caught_by_the_chain_head(audit_url):
    _tamper(audit_url, "DELETE FROM synth_audit.events WHERE seq = 5")
    problems = verify_chain(audit_url).problems
    assert problems == [
        "event 5 (load) missing: the chain head records event 5 but the log ends at event 4"
    ]


def test_appending_after_tampering_with_the_head_is_refused(audit_url):
    _tamper(audit_url, "DELETE FROM synth_audit.events WHERE seq = 5")
    with pytest.raises(AuditError, match="chain head"):
        record_event(audit_url, "teardown", None, {"mode": "teardown"}, "carol")


def test_cli_audit_verify_exits_non_zero_and_names_the_event(audit_url, tmp_path, capsys):
    base = ["--workdir", str(tmp_path), "--audit-url", audit_url]
    assert _cli(["audit", "verify", *base]) == 0
    assert "intact: 5 event(s)" in capsys.readouterr().out
    _tamper(
        audit_url,
        "UPDATE synth_audit.events SET refresh_id = 'r20990101T000000Z-ffffff' WHERE seq = 2",
    )
    assert _cli(["audit", "verify", *base]) == 1
    err = capsys.readouterr().err
    assert "BROKEN" in err and "event 2 (spec, refresh r20990101T000000Z-ffffff" in err


def test_cli_audit_show_filters_by_refresh(audit_url, tmp_path, capsys):
    record_event(audit_url, "teardown", None, {"mode": "teardown", "schemas": ["synth"]}, "carol")
    assert (
        _cli(
            [
                "audit",
                "show",
                "--workdir",
                str(tmp_path),
                "--audit-url",
                audit_url,
                "--refresh-id",
                RID,
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all(RID in line for line in lines)
    assert [w.split()[2] for w in lines] == ["profile", "spec", "shards", "report", "load"]


def test_payloads_must_be_strict_json_and_kinds_known(audit_url):
    with pytest.raises(AuditError, match="strict JSON"):
        record_event(audit_url, "report", RID, {"auc": float("nan")}, "bob")
    with pytest.raises(AuditError, match="unknown audit event kind"):
        record_event(audit_url, "coffee", RID, {}, "bob")
    assert verify_chain(audit_url).ok


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
