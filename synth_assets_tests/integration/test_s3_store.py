"""A full demo refresh with the Vault backend and an S3 store (moto's standalone S3 server)."""

import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import dagster as dg
import pytest
import requests

from synth_assets import orchestrate
from synth_assets.core import pg
from synth_assets.core.artifacts import ArtifactError, S3Artifacts, publish_refresh, verify_refresh
from synth_assets.core.audit import list_events
from synth_assets.core.manifest import MANIFEST_NAME
from synth_assets.core.release import issue_release, verify_token
from synth_assets.core.secrets import backend_from_config
from synth_assets.core.store import RefreshStore, read_json
from synth_assets.defs import resources
from synth_assets_tests.conftest import make_config
from synth_assets_tests.fake_vault import FakeVault
from synth_assets_tests.integration.conftest import AWS, BUCKET  # noqa: F401


def _config(
    demo_url: str,
    audit_url: str,
    vault: FakeVault,
    s3_endpoint: str,
    prefix: str = "team/synth",
    **artifacts,
):
    return make_config(
        demo_url,
        target={"url": audit_url},
        secrets={"backend": "vault", "vault": {"url": vault.url, "backoff_seconds": 0.0}},
        artifacts={
            "store": f"s3://{BUCKET}/{prefix}",
            "endpoint_url": s3_endpoint,
            "region": "us-east-1",
            **artifacts,
        },
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory, demo_url, pg_workdir, vault, s3_endpoint, env):
    """Run the refresh with Vault + S3 config, then publish it (a no-op once run_refresh publishes)."""
    wd = tmp_path_factory.mktemp("s3wd")
    audit_url = pg.resolve_url("embedded:///s3_audit", pg_workdir)
    cfg = _config(demo_url, audit_url, vault, s3_endpoint)

    # Until orchestrate and resources build the store with store_for(cfg, workdir); harmless after.
    def store_shim(root, **kw):
        return RefreshStore(root, local=kw.get("local") or wd.resolve() / "runs")

    env.setattr(orchestrate, "RefreshStore", store_shim, raising=False)
    env.setattr(resources, "RefreshStore", store_shim, raising=False)
    with dg.DagsterInstance.ephemeral() as inst:
        summary = orchestrate.run_refresh(
            None, wd, cfg_override=cfg, instance=inst, log=lambda m: None
        )
    rid = summary["refresh_id"]
    secrets = backend_from_config(cfg.secrets, wd)
    s3 = S3Artifacts(cfg.artifacts.store, cfg.artifacts)
    manifest = publish_refresh(cfg, wd, rid, secrets, s3=s3)
    return {
        "wd": wd,
        "cfg": cfg,
        "rid": rid,
        "summary": summary,
        "secrets": secrets,
        "s3": s3,
        "manifest": manifest,
        "audit_url": audit_url,
    }


def _raw(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def test_refresh_ran_on_vault_keys_and_seeds(published, vault):
    rid, m = published["rid"], published["manifest"]
    # The seed is sealed in Vault, not on disk.
    assert ("secret", f"synth_assets/seeds/{rid}") in vault.kv
    assert not (published["wd"] / "secrets").exists()
    assert m["secrets"]["backend"] == "vault" and m["key_versions"] == {
        "seed": "1",
        "hmac_key_profile": "1",
        "manifest_signing_key": "1",
    }
    gen = read_json(published["wd"] / "runs" / rid / "generation.json")
    assert gen["seed_version"] == "1" and gen["secrets"]["backend"] == "vault"
    assert all(vault.root_token not in json.dumps(h) for h in [m, gen])


def test_every_artifact_is_uploaded_encrypted_with_its_hash_and_the_manifest_last(
    published, s3_endpoint
):
    rid, m = published["rid"], published["manifest"]
    client = _raw(s3_endpoint)
    prefix = f"team/synth/{rid}/"
    listed = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]}
    assert listed == {prefix + a["path"] for a in m["artifacts"]} | {prefix + MANIFEST_NAME}
    for a in m["artifacts"]:
        head = client.head_object(Bucket=BUCKET, Key=prefix + a["path"])
        assert (
            head["ServerSideEncryption"] == "AES256" and head["Metadata"]["sha256"] == a["sha256"]
        )
        body = client.get_object(Bucket=BUCKET, Key=prefix + a["path"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == a["sha256"]
    assert m["store"] == {
        "kind": "s3",
        "location": f"s3://{BUCKET}/{prefix}",
        "sse": "AES256",
        "kms_key_id": None,
    }


def test_the_manifest_is_written_last(published, demo_url, vault, s3_endpoint):
    p = published
    cfg = _config(demo_url, p["audit_url"], vault, s3_endpoint, prefix="ordered")
    s3 = S3Artifacts(cfg.artifacts.store, cfg.artifacts)
    writes: list[str] = []
    s3.client.meta.events.register(
        "before-parameter-build.s3",
        lambda params, model, **_: writes.append(f"{model.name}:{params.get('Key', '')}"),
    )
    m = publish_refresh(cfg, p["wd"], p["rid"], p["secrets"], s3=s3)
    puts = [w for w in writes if w.startswith(("PutObject", "CreateMultipartUpload"))]
    assert len(puts) == len(m["artifacts"]) + 1
    assert puts[-1] == f"PutObject:ordered/{p['rid']}/{MANIFEST_NAME}"


def test_published_refresh_verifies_deeply(published):
    p = published
    assert verify_refresh(p["cfg"], p["wd"], p["rid"], p["secrets"], deep=True, s3=p["s3"])[1] == []


def test_tampered_remote_manifest_fails_verification(published, s3_endpoint):
    p = published
    client = _raw(s3_endpoint)
    key = f"team/synth/{p['rid']}/{MANIFEST_NAME}"
    original = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    forged = json.loads(original)
    forged["gates"]["checks"] = {n: True for n in forged["gates"]["checks"]}
    forged["privacy"]["epsilon_spent"] = 0.001
    client.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(forged).encode())
    try:
        _, problems = verify_refresh(p["cfg"], p["wd"], p["rid"], p["secrets"], s3=p["s3"])
        assert problems and "signature does not match" in problems[0]
    finally:
        client.put_object(Bucket=BUCKET, Key=key, Body=original)


def test_replaced_remote_shard_fails_deep_verification(published, s3_endpoint):
    p = published
    client = _raw(s3_endpoint)
    shard = next(a for a in p["manifest"]["artifacts"] if a["path"].endswith(".parquet"))
    key = f"team/synth/{p['rid']}/{shard['path']}"
    original = client.get_object(Bucket=BUCKET, Key=key)
    body, meta = original["Body"].read(), original["Metadata"]
    client.put_object(
        Bucket=BUCKET, Key=key, Body=body + b"x", Metadata=meta
    )  # keeps the recorded hash
    try:
        _, problems = verify_refresh(
            p["cfg"], p["wd"], p["rid"], p["secrets"], deep=True, s3=p["s3"]
        )
        assert any(shard["path"] in x and "was modified" in x for x in problems)
    finally:
        client.put_object(
            Bucket=BUCKET, Key=key, Body=body, Metadata=meta, ServerSideEncryption="AES256"
        )


def test_republishing_is_idempotent_and_a_changed_artifact_is_refused(published):
    p = published
    assert publish_refresh(p["cfg"], p["wd"], p["rid"], p["secrets"], s3=p["s3"]) == p["manifest"]
    spec = p["wd"] / "runs" / p["rid"] / "spec.json"
    original = spec.read_bytes()
    try:
        spec.write_bytes(original.replace(b'"version"', b'"versi0n"', 1))
        with pytest.raises(ArtifactError, match="immutable"):
            publish_refresh(p["cfg"], p["wd"], p["rid"], p["secrets"], s3=p["s3"])
    finally:
        spec.write_bytes(original)


def test_kms_encryption_is_applied_when_configured(published, demo_url, vault, s3_endpoint):
    p = published
    cfg = _config(
        demo_url,
        p["audit_url"],
        vault,
        s3_endpoint,
        prefix="kms",
        sse="aws:kms",
        kms_key_id="alias/synth-artifacts",
    )
    m = publish_refresh(cfg, p["wd"], p["rid"], p["secrets"])
    head = _raw(s3_endpoint).head_object(Bucket=BUCKET, Key=f"kms/{p['rid']}/spec.json")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(
        "alias/synth-artifacts"
    )
    assert m["store"]["sse"] == "aws:kms" and m["store"]["kms_key_id"] == "alias/synth-artifacts"


def _sigv4_query_signature(url: str, secret: str) -> str:
    """Recompute a presigned URL's SigV4 signature from every query parameter but the signature."""
    parts = urlsplit(url)
    params = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"
    ]
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params))
    canonical = "\n".join(
        [
            "GET",
            quote(parts.path, safe="/-_.~"),
            query,
            f"host:{parts.netloc}",
            "",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    q = dict(params)
    date, scope = q["X-Amz-Date"], q["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_release_issues_expiring_presigned_urls_bound_to_the_ticket(published):
    p = published
    doc = issue_release(p["cfg"], p["wd"], p["rid"], "CHG-2001", 900, p["secrets"], s3=p["s3"])
    assert set(doc["urls"]) == {a["path"] for a in p["manifest"]["artifacts"]} | {MANIFEST_NAME}
    spec_url = doc["urls"]["spec.json"]
    q = dict(parse_qsl(urlsplit(spec_url).query))
    assert q["x-synth-ticket"] == "CHG-2001" and q["x-synth-release"] == doc["release_id"]
    assert q["X-Amz-Expires"] == "900"
    # The ticket is inside the signed canonical request: changing it breaks the signature.
    assert _sigv4_query_signature(spec_url, AWS["AWS_SECRET_ACCESS_KEY"]) == q["X-Amz-Signature"]
    forged = spec_url.replace("CHG-2001", "CHG-6666")
    assert _sigv4_query_signature(forged, AWS["AWS_SECRET_ACCESS_KEY"]) != q["X-Amz-Signature"]
    body = requests.get(spec_url, timeout=10).content
    spec = next(a for a in p["manifest"]["artifacts"] if a["path"] == "spec.json")
    assert hashlib.sha256(body).hexdigest() == spec["sha256"]
    check = verify_token(doc["token"], p["secrets"])
    assert check.valid and check.claims["grants"]["store"] == "s3"
    assert check.claims["grants"]["location"] == f"s3://{BUCKET}/team/synth/{p['rid']}/"
    events = [e for e in list_events(p["audit_url"], p["rid"]) if e.kind == "release"]
    assert any(
        e.payload.get("release_id") == doc["release_id"]
        and e.payload["presigned_urls"] == len(doc["urls"])
        for e in events
    )
    assert not any(spec_url in json.dumps(e.payload) for e in events)


def test_s3_without_credentials_fails_closed(published, monkeypatch, tmp_path):
    p = published
    for k in AWS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ArtifactError, match="no AWS credentials"):
        publish_refresh(
            p["cfg"],
            p["wd"],
            p["rid"],
            p["secrets"],
            s3=S3Artifacts(
                p["cfg"].artifacts.store,
                p["cfg"].artifacts.model_copy(update={"region": "us-east-1"}),
            ),
        )


def test_local_working_copy_is_where_the_pipeline_wrote(published):
    p = published
    rdir = Path(p["summary"]["artifacts"])
    assert rdir == p["wd"].resolve() / "runs" / p["rid"] and (rdir / MANIFEST_NAME).is_file()


@pytest.mark.parametrize(
    ("artifacts", "message"),
    [
        ({"store": "s3://Bad_Bucket/x"}, "not a valid S3 location"),
        ({"store": "gs://bucket/x"}, "use a local directory or s3://bucket/prefix"),
        ({"store": "s3://bucket-ok/x", "kms_key_id": "alias/k"}, "needs artifacts.sse: aws:kms"),
        ({"local": "/tmp/wc"}, "working copy of an s3:// store"),
    ],
)
def test_artifact_store_configuration_is_validated(artifacts, message):
    from synth_assets.core.config import parse_config
    from synth_assets.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_config({"artifacts": artifacts})


def test_an_s3_store_needs_a_local_working_copy():
    from synth_assets.core.errors import ConfigError

    with pytest.raises(ConfigError, match="store_for"):
        RefreshStore("s3://bucket-ok/x")
