"""Fixtures of the integration tests that need an S3 store and Vault: moto's standalone S3
server and the fake Vault KV v2 server (module-scoped, like the tests that share them)."""

import boto3
import pytest
from moto.server import ThreadedMotoServer

from synth_assets.core.config import VaultConfig
from synth_assets.core.vault import init_vault_secrets
from synth_assets_tests.fake_vault import FakeVault

BUCKET = "synth-artifacts"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as mp:
        for k, v in AWS.items():
            mp.setenv(k, v)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"):
            mp.delenv(k, raising=False)
        yield mp


@pytest.fixture(scope="module")
def s3_endpoint(env):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def vault(env):
    with FakeVault() as fv:
        init_vault_secrets(VaultConfig(url=fv.url), env={"VAULT_TOKEN": fv.root_token})
        token = fv.add_token(
            {
                "secret/data/synth_assets/hmac": {"read"},
                "secret/data/synth_assets/seeds/*": {"create", "read"},
            }
        )
        env.setenv("VAULT_TOKEN", token)
        yield fv
