import stat

import pytest

from synth_assets.core.errors import SecretsError
from synth_assets.core.secrets import (
    LocalSecrets,
    init_local_secrets,
    new_master_seed,
    seed_commitment,
)


def test_missing_key_fails_closed_and_says_how_to_create_it(tmp_path):
    with pytest.raises(SecretsError, match="synth-assets init"):
        LocalSecrets(tmp_path / "secrets").hmac_key()


def test_init_creates_a_private_key_once(tmp_path):
    key_file, created = init_local_secrets(tmp_path / "s")
    assert created and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_text()
    _, created_again = init_local_secrets(tmp_path / "s")
    assert not created_again and key_file.read_text() == before


def test_world_readable_key_is_refused(tmp_path):
    key_file, _ = init_local_secrets(tmp_path / "s")
    key_file.chmod(0o644)
    with pytest.raises(SecretsError, match="readable by other users"):
        LocalSecrets(tmp_path / "s").hmac_key()


def test_sealed_seed_round_trips_and_is_never_overwritten(tmp_path):
    init_local_secrets(tmp_path / "s")
    backend = LocalSecrets(tmp_path / "s")
    seed = new_master_seed()
    backend.seal_seed("r1", seed)
    assert backend.unseal_seed("r1").value == seed
    with pytest.raises(SecretsError, match="never overwritten"):
        backend.seal_seed("r1", new_master_seed())


def test_seal_needs_an_initialised_backend(tmp_path):
    with pytest.raises(SecretsError):
        LocalSecrets(tmp_path / "none").seal_seed("r1", new_master_seed())


def test_master_seeds_are_fresh_and_committed_by_sha256():
    a, b = new_master_seed(), new_master_seed()
    assert a != b and len(a) == 32
    assert seed_commitment(a) != seed_commitment(b) and len(seed_commitment(a)) == 64


def test_a_secrets_directory_that_cannot_be_traversed_is_a_clear_error(tmp_path, monkeypatch):
    """A permission error is a SecretsError naming the directory and the fix (CLI exit 2), not a
    traceback. Root ignores mode bits, so the denial is simulated at the file system call."""
    from pathlib import Path

    init_local_secrets(tmp_path / "secrets")
    real_exists = Path.exists

    def denied(self, *args, **kwargs):
        if "secrets" in self.parts:
            raise PermissionError(13, "Permission denied", str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", denied)
    backend = LocalSecrets(tmp_path / "secrets")
    with pytest.raises(SecretsError, match="Permission denied.*must be owned by the user"):
        backend.hmac_key()
    with pytest.raises(SecretsError, match="cannot reach"):
        backend.unseal_seed("r20260101T000000Z-abcdef")
