"""A database superuser cannot rewind, rewrite or wipe the audit log unnoticed: the chain is keyed
and its head is anchored outside the database (work directory, unpublished refreshes)."""

import json
from pathlib import Path

import psycopg
import pytest

from synth_assets.core.audit import (
    REFRESH_ANCHOR,
    AuditChainBroken,
    AuditSigner,
    ensure_audit_schema,
    event_hash,
    event_mac,
    list_events,
    record_event,
    verify_chain,
)
from synth_assets.core.secrets import LocalSecrets, Secret, SecretsBackend, init_local_secrets
from synth_assets_tests.conftest import RID, five_events, fresh_db, signer_for
from synth_assets_tests.test_audit import _cli, _tamper


@pytest.fixture
def url(audit_url) -> str:
    """The shared five-event keyed log (conftest), its head (event 5) anchored in ``work``."""
    return audit_url


def _anchor_file(work: Path) -> Path:
    (path,) = (work / "audit").glob("anchor-*.json")
    return path


def _verify_cli(work: Path, url: str, capsys) -> tuple[int, str]:
    code = _cli(["audit", "verify", "--workdir", str(work), "--audit-url", url])
    out = capsys.readouterr()
    return code, out.out + out.err


def _rehash_from(url: str, seq: int, mac=None, key_id="keep") -> None:
    """What a superuser without the key can do: recompute every hash from ``seq`` on and the head,
    with SHA-256 (the old scheme) or a key of their own, keeping or dropping the key id."""
    events = list_events(url)
    prev = events[seq - 2].hash if seq > 1 else "0" * 64
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        for e in events[seq - 1 :]:
            kid = e.key_id if key_id == "keep" else key_id
            fields = (e.seq, e.ts, e.kind, e.refresh_id, e.actor, e.payload, prev)
            h = mac(*fields) if mac else event_hash(*fields)
            conn.execute(
                "UPDATE synth_audit.events SET prev_hash = %s, hash = %s, key_id = %s WHERE seq = %s",
                (prev, h, kid, e.seq),
            )
            prev = h
        conn.execute("UPDATE synth_audit.head SET hash = %s", (prev,))


def test_an_intact_chain_verifies_against_its_anchor(url, signer, work, capsys):
    anchor = json.loads(_anchor_file(work).read_text())
    head = list_events(url)[-1]
    assert (anchor["seq"], anchor["hash"], anchor["key_id"]) == (5, head.hash, head.key_id)
    res = verify_chain(url, signer)
    assert res.ok and res.events == 5 and any("event 5" in a for a in res.anchors)
    code, out = _verify_cli(work, url, capsys)
    assert code == 0 and "audit chain intact: 5 event(s)" in out


def test_rewind_deleting_the_newest_events_and_restoring_an_older_head_is_detected(
    url, signer, work, capsys
):
    third = list_events(url)[2]
    _tamper(url, "DELETE FROM synth_audit.events WHERE seq > 3")
    _tamper(url, f"UPDATE synth_audit.head SET seq = 3, kind = 'shards', hash = '{third.hash}'")
    res = verify_chain(url, signer)
    assert len(res.problems) == 1, res.problems  # chain and in-database head are consistent
    assert res.problems[0].startswith("the audit log ends at event 3 (shards) but the anchor ")
    assert res.problems[0].endswith(
        "records event 5: events 4..5 were deleted and the chain head rewound"
    )
    code, out = _verify_cli(work, url, capsys)
    assert code == 1 and "events 4..5 were deleted and the chain head rewound" in out
    with pytest.raises(AuditChainBroken, match="ends at event 3 but its anchor .* event 5"):
        record_event(url, "teardown", None, {"mode": "x"}, "carol", signer=signer)


def test_rewriting_one_event_and_rehashing_the_rest_is_detected_without_the_key(
    url, signer, work, capsys
):
    _tamper(url, 'UPDATE synth_audit.events SET payload = \'{"spec_hash": "00"}\' WHERE seq = 2')
    _rehash_from(url, 2)  # links and head consistent again, as the unkeyed scheme allowed
    res = verify_chain(url, signer)
    assert not any("prev_hash" in p or "chain head" in p for p in res.problems)
    assert res.problems[0].startswith(f"event 2 (spec, refresh {RID}")
    assert "was altered: its MAC does not verify under audit key" in res.problems[0]
    assert res.problems[1].startswith("events 3..5 do not verify either")
    assert any(
        p.startswith("event 5 does not match the anchor")
        and "rewritten and the chain re-hashed" in p
        for p in res.problems
    )
    code, out = _verify_cli(work, url, capsys)
    assert code == 1 and "event 2 (spec" in out


def test_rehashing_with_a_key_of_ones_own_is_detected(url, signer, tmp_path_factory):
    mallory = tmp_path_factory.mktemp("mallory")
    init_local_secrets(mallory / "secrets")
    key = signer_for(mallory).key()
    _tamper(url, "UPDATE synth_audit.events SET actor = 'mallory' WHERE seq = 4")
    _rehash_from(url, 4, mac=lambda *f: event_mac(key, *f), key_id=key.key_id)
    problems = verify_chain(url, signer).problems
    assert any(
        p.startswith("events 4..5 cannot be verified: signed with audit key " + key.key_id)
        for p in problems
    )
    assert any(p.startswith("event 5 does not match the anchor") for p in problems)


def test_downgrading_events_to_the_unkeyed_scheme_is_detected(url, signer):
    _tamper(url, "UPDATE synth_audit.events SET actor = 'mallory' WHERE seq = 3")
    _rehash_from(url, 3, key_id=None)  # legacy SHA-256 events, no key id
    problems = verify_chain(url, signer).problems
    assert any(
        p.startswith("event 3 (shards") and "is unkeyed but follows keyed event 1" in p
        for p in problems
    )
    assert any(p.startswith("event 5 does not match the anchor") for p in problems)


def test_emptying_the_log_is_detected(url, signer, work, capsys):
    _tamper(url, "TRUNCATE synth_audit.events, synth_audit.head")
    res = verify_chain(url, signer)
    assert res.events == 0 and len(res.problems) == 1
    assert res.problems[0].startswith("the audit log holds no event but the anchor ")
    assert res.problems[0].endswith("records 5 event(s): the log was emptied (wiped)")
    code, out = _verify_cli(work, url, capsys)
    assert code == 1 and "the log was emptied (wiped)" in out
    with pytest.raises(AuditChainBroken, match="ends at event 0 but its anchor"):
        record_event(url, "teardown", None, {"mode": "x"}, "carol", signer=signer)


def test_dropping_the_audit_schema_is_detected(url, signer, work, capsys):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA synth_audit CASCADE")
    res = verify_chain(url, signer)
    assert res.problems and res.problems[0].startswith("the audit log is gone (no table ")
    assert res.problems[0].endswith("records 5 event(s): the log was wiped (its schema dropped)")
    code, out = _verify_cli(work, url, capsys)
    assert code == 1 and "its schema dropped" in out


def test_a_missing_anchor_is_reported_and_fails_verify(url, signer, work, capsys):
    path = _anchor_file(work)
    path.unlink()
    res = verify_chain(url, signer)
    assert res.problems == [
        f"no anchor for this audit log at {path} although the log holds 5 event(s) (keyed since "
        f"event 1): the anchor was deleted, or {work / 'audit'} is not the audit directory of "
        "the work directory that writes this log (pass --workdir)"
    ]
    code, out = _verify_cli(work, url, capsys)
    assert code == 1 and "no anchor for this audit log" in out


def test_an_altered_anchor_is_reported(url, signer, work):
    path = _anchor_file(work)
    body = json.loads(path.read_text())
    body["seq"] = 3  # hide events 4..5 from the anchor: its MAC no longer matches
    path.write_text(json.dumps(body))
    problems = verify_chain(url, signer).problems
    assert problems == [
        f"the anchor {path} does not verify under audit key {body['key_id']}: it was altered or forged"
    ]


def test_verifying_with_the_wrong_key_names_the_key_and_fails(url, work, tmp_path_factory, capsys):
    wrong = tmp_path_factory.mktemp("wrong")
    init_local_secrets(wrong / "secrets")
    impostor = AuditSigner(LocalSecrets(wrong / "secrets"), work / "audit", work / "runs")
    problems = verify_chain(url, impostor).problems
    key_id = list_events(url)[0].key_id
    assert problems[0].startswith(
        f"events 1..5 cannot be verified: signed with audit key {key_id}, and the local secrets "
        f"backend cannot provide audit key {key_id} (it holds {impostor.key().key_id})"
    )
    assert any(
        p.startswith(f"the anchor {_anchor_file(work)} cannot be verified") for p in problems
    )


class _Fixed(SecretsBackend):
    """A backend (like a second Vault) that calls a different key by the same version."""

    name = "fixed"

    def __init__(self, key: bytes):
        self.key = key

    def hmac_key(self) -> Secret:
        return Secret(self.key, "1")

    def seal_seed(self, refresh_id: str, seed: bytes) -> str:  # pragma: no cover
        raise NotImplementedError

    def unseal_seed(self, refresh_id: str) -> Secret:  # pragma: no cover
        raise NotImplementedError


def test_another_key_under_the_same_version_is_told_apart_by_its_fingerprint(pg_workdir, tmp_path):
    u = fresh_db(pg_workdir)
    five_events(u, AuditSigner(_Fixed(b"a" * 32), tmp_path / "audit"))
    problems = verify_chain(u, AuditSigner(_Fixed(b"b" * 32), tmp_path / "audit")).problems
    assert "version 1 of the audit key in the fixed secrets backend is 1:" in problems[0]
    assert problems[0].endswith("the log was signed with another key")


def test_an_unpublished_refresh_carries_the_anchor_and_a_published_one_is_left_alone(
    pg_workdir, signer, work
):
    u = fresh_db(pg_workdir)
    rdir = work / "runs" / RID
    rdir.mkdir(parents=True)
    five_events(u, signer)
    anchor = json.loads((rdir / REFRESH_ANCHOR).read_text())
    assert anchor["seq"] == 5 and anchor["refresh_id"] == RID
    (rdir / "manifest.json").write_text("{}")  # published: artifacts are immutable from now on
    before = (rdir / REFRESH_ANCHOR).read_bytes()
    record_event(u, "release", RID, {"outcome": "issued"}, "carol", signer=signer)
    assert (rdir / REFRESH_ANCHOR).read_bytes() == before
    assert verify_chain(u, signer).ok


def test_a_refresh_anchor_still_catches_a_rewind_when_the_work_directory_anchor_is_gone(
    pg_workdir, signer, work
):
    u = fresh_db(pg_workdir)
    (work / "runs" / RID).mkdir(parents=True)
    five_events(u, signer)
    _anchor_file(work).unlink()
    third = list_events(u)[2]
    _tamper(u, "DELETE FROM synth_audit.events WHERE seq > 3")
    _tamper(u, f"UPDATE synth_audit.head SET seq = 3, kind = 'shards', hash = '{third.hash}'")
    problems = verify_chain(u, signer).problems
    assert any(REFRESH_ANCHOR in p and "events 4..5 were deleted" in p for p in problems)
    assert any(p.startswith("no anchor for this audit log") for p in problems)


def test_a_legacy_unkeyed_log_verifies_with_a_note_and_the_first_keyed_event_seals_it(
    pg_workdir, signer
):
    u = fresh_db(pg_workdir)
    with psycopg.connect(u, autocommit=True) as conn:
        ensure_audit_schema(conn)
        conn.execute("ALTER TABLE synth_audit.events DROP COLUMN key_id")  # a log from before
        prev = "0" * 64
        for seq in (1, 2, 3):
            ts = conn.execute("SELECT now()").fetchone()[0]
            h = event_hash(seq, ts, "profile", RID, "alice", {"n": seq}, prev)
            conn.execute(
                "INSERT INTO synth_audit.events (seq, ts, kind, refresh_id, actor, payload, "
                "prev_hash, hash) VALUES (%s, %s, 'profile', %s, 'alice', %s, %s, %s)",
                (seq, ts, RID, json.dumps({"n": seq}), prev, h),
            )
            prev = h
        conn.execute(
            "INSERT INTO synth_audit.head (seq, kind, hash) VALUES (3, 'profile', %s)", (h,)
        )
    res = verify_chain(u, signer)
    assert res.ok and res.notes == [
        "legacy unkeyed events up to event 3 (SHA-256 only): not protected against a database "
        "superuser until the next event is appended with the audit key"
    ]
    record_event(u, "teardown", None, {"mode": "x"}, "carol", signer=signer)  # migrates the log
    res = verify_chain(u, signer)
    assert res.ok and res.events == 4 and res.key_ids == [signer.key().key_id]
    assert res.notes == [
        "legacy unkeyed events up to event 3 (SHA-256, written before the log was keyed); "
        "keyed event 4 seals them"
    ]


def test_parallel_appends_never_move_the_anchor_backwards(url, signer, work):
    from concurrent.futures import ThreadPoolExecutor

    def append(i: int) -> None:
        for _ in range(4):
            record_event(url, "shards", RID, {"partition": i}, "worker", signer=signer_for(work))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(append, range(6)))
    anchor = json.loads(_anchor_file(work).read_text())
    assert anchor["seq"] == 5 + 24 and verify_chain(url, signer).ok


def test_the_dagster_resource_binds_its_signer_for_core_code_that_only_has_a_url(
    pg_workdir, work, monkeypatch
):
    import yaml

    from synth_assets.core.audit import keys
    from synth_assets.defs.resources import SynthResource

    monkeypatch.setattr(keys, "_BOUND", {})
    monkeypatch.setattr(keys, "_DEFAULT", [])
    u = fresh_db(pg_workdir)
    cfg = work / "synth.yaml"
    cfg.write_text(yaml.safe_dump({"target": {"url": u}}))
    synth = SynthResource(config_file=str(cfg), workdir=str(work))
    ev = record_event(synth.meta_url(), "run_failed", None, {"error": "x"}, "sensor")
    assert ev.key_id == synth.audit_signer().key().key_id
    assert verify_chain(u, signer_for(work)).ok  # anchored in the resource's work directory
