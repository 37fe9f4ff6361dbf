"""The Vault secrets backend against a fake Vault HTTP server: versions, auth, and failing closed."""

import logging

import pytest

from synth_assets.core.config import VaultConfig, parse_config
from synth_assets.core.errors import ConfigError, SecretsError
from synth_assets.core.secrets import (
    KeyVersionUnavailable,
    backend_from_config,
    init_backend,
    new_master_seed,
)
from synth_assets.core.vault import VaultSecrets, init_vault_secrets
from synth_assets.orchestrate import run_refresh
from synth_assets_tests.conftest import make_config
from synth_assets_tests.fake_vault import FakeVault

RID = "r20260101T030000Z-a1b2c3"
SYNTH_POLICY = {
    "secret/data/synth_assets/hmac": {"read"},
    "secret/data/synth_assets/seeds/*": {"create", "read"},
}


@pytest.fixture
def vault():
    with FakeVault() as fv:
        init_vault_secrets(VaultConfig(url=fv.url), env={"VAULT_TOKEN": fv.root_token})
        yield fv


@pytest.fixture
def cfg(vault) -> VaultConfig:
    return VaultConfig(url=vault.url, backoff_seconds=0.0)


@pytest.fixture
def token(vault) -> str:
    return vault.add_token(SYNTH_POLICY)


def backend(cfg: VaultConfig, token: str, **kw) -> VaultSecrets:
    return VaultSecrets(cfg, env={"VAULT_TOKEN": token}, **kw)


# ---- normal operation -----------------------------------------------------------------------


def test_hmac_key_is_read_with_its_kv_version(cfg, token):
    key = backend(cfg, token).hmac_key()
    assert len(key.value) == 32 and key.version == "1"


def test_seed_is_sealed_once_and_unsealed_with_its_version(cfg, token):
    b = backend(cfg, token)
    seed = new_master_seed()
    assert b.seal_seed(RID, seed) == "1"
    assert b.unseal_seed(RID).value == seed
    with pytest.raises(SecretsError, match="never overwritten"):
        b.seal_seed(RID, new_master_seed())
    assert b.unseal_seed(RID).value == seed


def test_init_keeps_an_existing_key_and_force_writes_a_new_version(vault, cfg):
    env = {"VAULT_TOKEN": vault.root_token}
    assert init_vault_secrets(cfg, env=env) == ("1", False)
    old = VaultSecrets(cfg, env=env).hmac_key()
    assert init_vault_secrets(cfg, env=env, force=True) == ("2", True)
    b = VaultSecrets(cfg, env=env)
    assert b.hmac_key().version == "2" and b.hmac_key().value != old.value
    assert b.hmac_key_at("1") == old  # what the old key signed still verifies
    with pytest.raises(KeyVersionUnavailable):
        b.hmac_key_at("7")


def test_a_malformed_key_is_refused_until_replaced_with_force(vault, cfg):
    env = {"VAULT_TOKEN": vault.root_token}
    vault.put("secret", "synth_assets/hmac", {"key": "not-hex"})
    with pytest.raises(SecretsError, match="does not hold a field `key`.*init --force"):
        VaultSecrets(cfg, env=env).hmac_key()
    with pytest.raises(SecretsError, match="does not hold a field `key`"):
        init_vault_secrets(cfg, env=env)
    assert init_vault_secrets(cfg, env=env, force=True) == ("3", True)
    assert len(VaultSecrets(cfg, env=env).hmac_key().value) == 32


def test_init_backend_dispatches_on_the_configured_backend(vault, monkeypatch, tmp_path):
    monkeypatch.setenv("VAULT_TOKEN", vault.root_token)
    scfg = parse_config({"secrets": {"backend": "vault", "vault": {"url": vault.url}}}).secrets
    assert (
        "kept existing HMAC key in Vault at secret/synth_assets/hmac (version 1)"
        == init_backend(scfg, tmp_path)
    )
    assert isinstance(backend_from_config(scfg, tmp_path), VaultSecrets)


def test_a_refresh_never_creates_the_key(cfg):
    with FakeVault() as empty:
        b = backend(cfg.model_copy(update={"url": empty.url}), empty.root_token)
        with pytest.raises(SecretsError, match="create it explicitly with `synth-assets init`"):
            b.hmac_key()
        with pytest.raises(SecretsError):
            b.seal_seed(RID, new_master_seed())
        assert empty.writes() == []
        assert ("secret", "synth_assets/hmac") not in empty.kv


def test_approle_login_then_reads_the_key(vault, cfg):
    role_id, secret_id = vault.add_approle(SYNTH_POLICY)
    b = VaultSecrets(
        cfg.model_copy(update={"auth": "approle"}),
        env={"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id},
    )
    assert b.hmac_key().version == "1"
    assert ("POST", "/v1/auth/approle/login") in vault.log
    b.check_ready()


def test_approle_with_a_wrong_secret_id_is_permission_denied(vault, cfg):
    role_id, _ = vault.add_approle(SYNTH_POLICY)
    b = VaultSecrets(
        cfg.model_copy(update={"auth": "approle"}),
        env={"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": "wrong"},
    )
    with pytest.raises(
        SecretsError, match="permission denied .* check VAULT_ROLE_ID and VAULT_SECRET_ID"
    ):
        b.hmac_key()


@pytest.mark.parametrize(
    ("auth", "env", "missing"),
    [
        ("token", {}, "VAULT_TOKEN"),
        ("approle", {"VAULT_ROLE_ID": "r"}, "VAULT_SECRET_ID"),
        ("approle", {"VAULT_SECRET_ID": "s"}, "VAULT_ROLE_ID"),
    ],
)
def test_missing_credentials_name_the_environment_variable(cfg, auth, env, missing):
    with pytest.raises(SecretsError, match=f"{missing} is not set: export {missing}"):
        VaultSecrets(cfg.model_copy(update={"auth": auth}), env=env).hmac_key()


def test_vault_address_comes_from_config_or_vault_addr(vault, token):
    b = VaultSecrets(
        VaultConfig(backoff_seconds=0.0), env={"VAULT_ADDR": vault.url, "VAULT_TOKEN": token}
    )
    assert b.hmac_key().version == "1"
    with pytest.raises(SecretsError, match="VAULT_ADDR"):
        VaultSecrets(VaultConfig(), env={"VAULT_TOKEN": token})


@pytest.mark.parametrize("key", ["token", "role_id", "secret_id"])
def test_credentials_in_the_config_file_are_refused(key):
    with pytest.raises(ConfigError, match="must not be written in a config file"):
        parse_config(
            {
                "secrets": {
                    "backend": "vault",
                    "vault": {"url": "http://127.0.0.1:8200", key: "s3cr3t"},
                }
            }
        )


def test_check_ready_refuses_a_token_that_cannot_create_seeds(vault, cfg):
    read_only = vault.add_token({"secret/data/synth_assets/hmac": {"read"}})
    b = backend(cfg, read_only)
    assert b.hmac_key().version == "1"
    with pytest.raises(
        SecretsError, match="cannot create seeds under secret/data/synth_assets/seeds/"
    ):
        b.check_ready()


def test_key_versions_are_described_without_credentials(cfg, token):
    d = backend(cfg, token).describe()
    assert d["backend"] == "vault" and d["mount"] == "secret" and token not in str(d)


# ---- failing closed -------------------------------------------------------------------------


def _unreachable(vault, cfg, token):
    return cfg.model_copy(update={"url": "http://127.0.0.1:9"}), token


def _sealed(vault, cfg, token):
    vault.sealed = True
    return cfg, token


def _denied(vault, cfg, token):
    return cfg, vault.add_token({"secret/data/elsewhere": {"read"}})


def _invalid_token(vault, cfg, token):
    return cfg, "hvs.revoked-or-mistyped"


def _path_missing(vault, cfg, token):
    return cfg.model_copy(update={"hmac_key_path": "synth_assets/absent"}), vault.add_token(
        {"secret/data/synth_assets/*": {"read"}}
    )


def _kv_v1(vault, cfg, token):
    vault.mounts["secret"] = {"type": "kv", "version": "1"}
    return cfg, token


def _not_kv(vault, cfg, token):
    vault.mounts["secret"] = {"type": "transit", "version": ""}
    return cfg, token


FAILURES = {
    "unreachable": (_unreachable, r"is unreachable \(ConnectionError\) after \d attempt\(s\)"),
    "sealed": (_sealed, r"is sealed .*vault operator unseal"),
    "permission denied": (
        _denied,
        r"permission denied .*needs `read` on secret/data/synth_assets/hmac",
    ),
    "invalid token": (_invalid_token, r"permission denied .*not a valid token"),
    "path missing": (_path_missing, r"no HMAC key at secret/synth_assets/absent .*vault kv put"),
    "wrong engine version": (_kv_v1, r"wrong engine version at secret/ .*KV version 1"),
    "not a kv engine": (_not_kv, r"wrong secrets engine at secret/ .*transit engine"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_each_failure_has_one_clear_message(vault, cfg, token, case):
    setup, message = FAILURES[case]
    c, t = setup(vault, cfg.model_copy(update={"retries": 2}), token)
    with pytest.raises(SecretsError, match=message) as err:
        backend(c, t, sleep=lambda s: None).hmac_key()
    assert t not in str(err.value) and vault.root_token not in str(err.value)


@pytest.mark.parametrize(
    "case", ["unreachable", "sealed", "permission denied", "path missing", "wrong engine version"]
)
def test_each_failure_stops_the_run_before_any_artifact_is_written(
    vault, cfg, token, case, workdir, demo_url, ephemeral, monkeypatch
):
    # `workdir` holds an initialised *local* key: there must be no fallback to it.
    setup, message = FAILURES[case]
    c, t = setup(vault, cfg.model_copy(update={"retries": 1}), token)
    monkeypatch.setenv("VAULT_TOKEN", t)
    run_cfg = make_config(
        demo_url, secrets={"backend": "vault", "vault": c.model_dump(exclude_none=True)}
    )
    writes_before = len(vault.writes())
    with pytest.raises(SecretsError, match=message):
        run_refresh(None, workdir, cfg_override=run_cfg, instance=ephemeral, log=lambda m: None)
    assert not (workdir / "runs").exists() and not (workdir / "effective-synth.yaml").exists()
    assert len(vault.writes()) == writes_before
    assert ephemeral.get_runs() == []


def test_transient_errors_are_retried_with_exponential_backoff(vault, cfg, token):
    vault.fail_next = [502, 500, 429]
    slept: list[float] = []
    b = backend(
        cfg.model_copy(update={"retries": 3, "backoff_seconds": 0.25}), token, sleep=slept.append
    )
    assert b.hmac_key().version == "1"
    assert slept == [0.25, 0.5, 1.0]


def test_retries_are_bounded(vault, cfg, token):
    vault.fail_next = [500] * 10
    slept: list[float] = []
    b = backend(
        cfg.model_copy(update={"retries": 2, "backoff_seconds": 1.0}), token, sleep=slept.append
    )
    n = len(vault.log)
    with pytest.raises(
        SecretsError, match=r"is failing \(HTTP 500.*after 3 attempt\(s\).*no other backend"
    ):
        b.hmac_key()
    assert len(vault.log) - n == 3 and slept == [1.0, 2.0]


def test_a_sealed_vault_is_not_retried(vault, cfg, token):
    vault.sealed = True
    slept: list[float] = []
    with pytest.raises(SecretsError, match="sealed"):
        backend(cfg.model_copy(update={"retries": 5}), token, sleep=slept.append).hmac_key()
    assert slept == []


def test_credentials_never_reach_error_messages_or_logs(vault, cfg, caplog):
    role_id, secret_id = vault.add_approle(SYNTH_POLICY)
    caplog.set_level(logging.DEBUG)
    approle = cfg.model_copy(update={"auth": "approle", "retries": 1})
    messages = []
    for env in (
        {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id + "x"},
        {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id},
    ):
        try:
            b = VaultSecrets(approle, env=env, sleep=lambda s: None)
            b.hmac_key()
            vault.sealed = True
            VaultSecrets(approle, env=env, sleep=lambda s: None).hmac_key()
        except SecretsError as exc:
            messages.append(str(exc))
    vault.sealed = False
    assert len(messages) == 2
    text = "\n".join(messages) + caplog.text
    for secret in (secret_id, vault.root_token, *vault.policies):
        assert secret not in text
