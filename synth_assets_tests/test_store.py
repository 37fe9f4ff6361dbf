"""The refresh store (core/store.py): ids that cannot escape it, atomic and private writes."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest

from synth_assets.core.errors import ConfigError
from synth_assets.core.store import (
    RefreshStore,
    check_refresh_id,
    new_refresh_id,
    read_json,
    write_json_atomic,
    write_private,
)


def test_new_ids_are_valid_unique_and_sort_by_time():
    ids = [new_refresh_id() for _ in range(50)]
    assert all(check_refresh_id(r) == r for r in ids) and len(set(ids)) == 50
    stamps = [r[:17] for r in ids]  # r + date + T + time + Z: later ids sort after earlier ones
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    "rid",
    ["../etc", "r20260101T030000Z-a1b2c3/../x", "r20260101T030000Z-A1B2C3", "", "latest"],
)
def test_ids_that_could_escape_the_store_are_refused(rid, tmp_path):
    with pytest.raises(ConfigError, match="malformed"):
        check_refresh_id(rid)
    with pytest.raises(ConfigError):
        RefreshStore(tmp_path).path(rid, "spec.json")


def test_json_is_written_whole_with_the_hash_of_its_bytes(tmp_path):
    path = tmp_path / "a" / "spec.json"
    digest = write_json_atomic(path, {"b": 1, "a": [1.5, "x"]})
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_json(path) == {"a": [1.5, "x"], "b": 1}
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    write_json_atomic(path, {"a": 2})  # replaced, never appended
    assert json.loads(path.read_text()) == {"a": 2}


def test_private_files_are_owner_only_even_when_replacing_a_readable_one(tmp_path):
    path = tmp_path / "effective-synth.yaml"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "source: {url: postgresql://u:secret@h/db}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "secret" in path.read_text()


def test_an_s3_store_needs_a_local_working_copy(tmp_path):
    with pytest.raises(ConfigError, match="working copy"):
        RefreshStore("s3://bucket/prefix")
    s = RefreshStore("s3://bucket/prefix/", local=tmp_path)
    assert s.remote == "s3://bucket/prefix" and s.root == tmp_path
