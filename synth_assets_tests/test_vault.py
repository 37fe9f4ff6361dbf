"""The Vault secrets backend against a fake Vault HTTP server: versions, auth, and failing closed."""

import logging

import pytest

from synth_assets.core.config import K8S_TOKEN_FILE, VaultConfig, parse_config
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


def test_vault_namespace_comes_from_config_or_vault_namespace(vault, cfg, token):
    env = {"VAULT_TOKEN": token, "VAULT_NAMESPACE": "team-env"}
    for c, expected in (
        (cfg, "team-env"),
        (cfg.model_copy(update={"namespace": "team-cfg"}), "team-cfg"),
    ):
        n = len(vault.headers_seen)
        assert VaultSecrets(c, env=env).hmac_key().version == "1"
        assert {h.get("x-vault-namespace") for h in vault.headers_seen[n:]} == {expected}


@pytest.mark.parametrize("key", ["token", "role_id", "secret_id", "jwt"])
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


# ---- Kubernetes auth ------------------------------------------------------------------------

K8S_ROLE = "synth-assets"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c3ludGg6c3ludGgifQ.c2lnbmF0dXJl"


@pytest.fixture
def k8s(vault, cfg, tmp_path) -> tuple[VaultConfig, dict[str, str]]:
    """A role bound to the pod's service account, and the env pointing at its token file."""
    vault.add_kubernetes_role(K8S_ROLE, JWT, SYNTH_POLICY)
    token_file = tmp_path / "token"
    token_file.write_text(JWT + "\n")
    c = cfg.model_copy(update={"auth": "kubernetes", "kubernetes_role": K8S_ROLE})
    return c, {"SYNTH_VAULT_K8S_TOKEN_FILE": str(token_file)}


def test_kubernetes_login_reads_the_key_and_seals_a_seed_as_the_token_path_does(vault, k8s, cfg):
    c, env = k8s
    b = VaultSecrets(c, env=env)
    assert b.hmac_key() == backend(cfg, vault.root_token).hmac_key()
    seed = new_master_seed()
    assert b.seal_seed(RID, seed) == "1"
    assert b.unseal_seed(RID).value == seed
    with pytest.raises(SecretsError, match="never overwritten"):
        b.seal_seed(RID, new_master_seed())
    b.check_ready()
    assert vault.log.count(("POST", "/v1/auth/kubernetes/login")) == 1  # once per backend object
    assert b.describe()["auth"] == "kubernetes"


def test_kubernetes_login_uses_the_configured_mount_namespace_and_retries(vault, k8s):
    c, env = k8s
    vault.add_kubernetes_role(K8S_ROLE, JWT, SYNTH_POLICY, mount="k8s-prod")
    c = c.model_copy(update={"kubernetes_mount": "k8s-prod", "namespace": "team", "retries": 2})
    vault.fail_next = [502, 429]
    slept: list[float] = []
    n = len(vault.log)
    b = VaultSecrets(c.model_copy(update={"backoff_seconds": 0.5}), env=env, sleep=slept.append)
    assert b.hmac_key().version == "1"
    assert vault.log[n : n + 3] == [("POST", "/v1/auth/k8s-prod/login")] * 3
    assert slept == [0.5, 1.0]
    assert {h.get("x-vault-namespace") for h in vault.headers_seen[n:]} == {"team"}


def test_kubernetes_login_accepts_whatever_jwt_the_fake_validator_approves(vault, k8s):
    c, env = k8s
    vault.add_kubernetes_role("by-claim", lambda jwt: jwt.startswith("eyJ"), SYNTH_POLICY)
    assert VaultSecrets(c.model_copy(update={"kubernetes_role": "by-claim"}), env=env).hmac_key()


@pytest.mark.parametrize("wrong", ["role", "jwt"])
def test_kubernetes_login_refused_names_the_role_and_the_fix(vault, k8s, tmp_path, wrong):
    c, env = k8s
    if wrong == "role":
        c = c.model_copy(update={"kubernetes_role": "other-app"})
    else:
        (tmp_path / "token").write_text(JWT[:-4] + "AAAA")
    role = c.kubernetes_role
    with pytest.raises(
        SecretsError,
        match=f"permission denied .* the role {role} does not bind this service account: "
        f".*auth/kubernetes/role/{role}",
    ) as err:
        VaultSecrets(c, env=env, sleep=lambda s: None).hmac_key()
    assert JWT not in str(err.value) and JWT[:-4] not in str(err.value)


def test_kubernetes_login_at_a_mount_without_the_method_names_the_mount_setting(vault, k8s):
    c, env = k8s
    # Vault answers 403, not 404, to a login at a path where nothing is mounted.
    with pytest.raises(
        SecretsError, match="permission denied .*auth/elsewhere.*secrets.vault.kubernetes_mount"
    ):
        VaultSecrets(c.model_copy(update={"kubernetes_mount": "elsewhere"}), env=env).hmac_key()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text(" \n"), "is empty"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "cannot be read"),
    ],
)
def test_an_unusable_token_file_is_refused_before_any_request(vault, k8s, tmp_path, make, problem):
    c, _ = k8s
    path = tmp_path / "absent" if problem == "does not exist" else tmp_path / "sa-token"
    make(path)
    # Working token and AppRole credentials in the environment: never a fallback to them.
    role_id, secret_id = vault.add_approle(SYNTH_POLICY)
    env = {
        "SYNTH_VAULT_K8S_TOKEN_FILE": str(path),
        "VAULT_TOKEN": vault.root_token,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
    }
    n = len(vault.log)
    with pytest.raises(
        SecretsError,
        match=f"token file {path} {problem} .*not running in a pod with a service account\\? "
        "mount one or use auth: token",
    ):
        VaultSecrets(c, env=env).hmac_key()
    assert vault.log[n:] == []


def test_the_token_file_defaults_to_the_pods_service_account_mount(monkeypatch, k8s):
    c, _ = k8s
    monkeypatch.setattr(
        "synth_assets.core.vault.K8S_TOKEN_FILE", "/nonexistent/serviceaccount/token"
    )
    with pytest.raises(SecretsError, match="/nonexistent/serviceaccount/token does not exist"):
        VaultSecrets(c, env={}).hmac_key()
    assert K8S_TOKEN_FILE == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_kubernetes_without_a_vault_address_is_refused(k8s):
    c, env = k8s
    with pytest.raises(SecretsError, match="no Vault address is set.*export VAULT_ADDR"):
        VaultSecrets(c.model_copy(update={"url": None}), env=env)


def test_the_service_account_jwt_never_reaches_messages_or_logs(vault, k8s, tmp_path, caplog):
    c, env = k8s
    caplog.set_level(logging.DEBUG)
    # urllib3's own level: another library (the kubernetes client of dagster-k8s) may raise it
    caplog.set_level(logging.DEBUG, logger="urllib3")
    messages = []
    attempts = [
        (c.model_copy(update={"kubernetes_role": "other-app"}), []),  # refused login
        (c.model_copy(update={"retries": 1}), [500, 500]),  # failing Vault
        (c.model_copy(update={"kubernetes_mount": "elsewhere"}), []),  # no such mount
        (c, []),  # a good login, then sealed
    ]
    for conf, failures in attempts:
        vault.fail_next = list(failures)
        try:
            VaultSecrets(conf, env=env, sleep=lambda s: None).hmac_key()
            vault.sealed = True
            VaultSecrets(conf, env=env, sleep=lambda s: None).hmac_key()
        except SecretsError as exc:
            messages.append(str(exc))
    vault.sealed = False
    assert len(messages) == 4 and "/v1/auth/kubernetes/login" in caplog.text  # logs were captured
    text = "\n".join(messages) + caplog.text
    for secret in (JWT, *JWT.split("."), vault.root_token, *vault.policies):
        assert secret not in text


@pytest.mark.parametrize(
    ("vault_cfg", "message"),
    [
        ({"auth": "kubernetes"}, "auth is kubernetes but secrets.vault.kubernetes_role is not set"),
        ({"kubernetes_role": "synth"}, "kubernetes_role applies to auth: kubernetes only"),
        ({"auth": "kubernetes", "kubernetes_role": "a/b"}, "is not a Vault role name"),
        (
            {"auth": "kubernetes", "kubernetes_role": "synth", "kubernetes_mount": "/k8s"},
            "Vault path '/k8s' is not valid",
        ),
        (
            {"auth": "kubernetes", "kubernetes_role": "synth", "jwt": "eyJ.e30.c2ln"},
            "jwt must not be written in a config file.*SYNTH_VAULT_K8S_TOKEN_FILE",
        ),
        (
            {"auth": "kubernetes", "kubernetes_role": "synth", "token": "hvs.x"},
            "token must not be written in a config file",
        ),
    ],
)
def test_kubernetes_config_is_validated(vault_cfg, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_config(
            {
                "secrets": {
                    "backend": "vault",
                    "vault": {"url": "http://127.0.0.1:8200", **vault_cfg},
                }
            }
        )
    assert "eyJ.e30.c2ln" not in str(err.value) and "hvs.x" not in str(err.value)


def test_kubernetes_config_has_defaults_for_everything_but_the_role():
    c = parse_config(
        {
            "secrets": {
                "backend": "vault",
                "vault": {"auth": "kubernetes", "kubernetes_role": "synth"},
            }
        }
    ).secrets.vault
    assert (c.auth, c.kubernetes_role, c.kubernetes_mount) == ("kubernetes", "synth", "kubernetes")
