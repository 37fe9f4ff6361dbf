"""The refresh store (core/store.py): ids that cannot escape it, atomic and private writes, and
the layout of a refresh directory (today's file names, which old refreshes must still read)."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from synth_assets.core.errors import ConfigError
from synth_assets.core.store import (
    RefreshPaths,
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


RID = "r20260101T030000Z-a1b2c3"


@pytest.mark.parametrize(
    ("artifact", "name"),
    [
        ("schema", "schema.json"),
        ("pack", "metrics_pack.json"),
        ("spec", "spec.json"),
        ("generation", "generation.json"),
        ("load", "load.json"),
        ("summary", "summary.json"),
        ("anchor", "audit-anchor.json"),
        ("signed_manifest", "manifest.json"),
        ("report_dir", "report"),
        ("report_json", "report/privacy_report.json"),
        ("report_html", "report/index.html"),
        ("shards_dir", "shards"),
    ],
)
def test_each_artifact_of_a_refresh_keeps_its_file_name(artifact, name, tmp_path):
    assert getattr(RefreshStore(tmp_path).paths(RID), artifact) == tmp_path / RID / name


def test_a_shard_file_is_named_by_table_and_five_digit_shard(tmp_path):
    paths = RefreshPaths(tmp_path)
    assert paths.shard_file("cards", 7) == tmp_path / "shards" / "cards" / "part-00007.parquet"


def test_a_shard_manifest_is_named_by_five_digit_shard(tmp_path):
    assert RefreshPaths(tmp_path).manifest(12) == tmp_path / "shards" / "manifest-00012.json"


def test_a_table_s_shard_directory_is_under_shards(tmp_path):
    assert RefreshPaths(tmp_path).shard_dir("cards") == tmp_path / "shards" / "cards"


@pytest.mark.parametrize(
    ("name", "relative"),
    [
        ("SCHEMA", "schema.json"),
        ("PACK", "metrics_pack.json"),
        ("SPEC", "spec.json"),
        ("GENERATION", "generation.json"),
        ("LOAD", "load.json"),
        ("SUMMARY", "summary.json"),
        ("ANCHOR", "audit-anchor.json"),
        ("MANIFEST", "manifest.json"),
        ("SHARDS_DIR", "shards/"),
        ("REPORT_DIR", "report/"),
        ("REPORT_JSON", "report/privacy_report.json"),
        ("REPORT_HTML", "report/index.html"),
    ],
)
def test_relative_names_are_the_keys_steps_fetch_and_send(name, relative):
    assert getattr(RefreshPaths, name) == relative


def test_shard_files_and_manifests_on_disk_are_listed_in_order(tmp_path):
    paths = RefreshPaths(tmp_path)
    for s in (2, 0, 1):
        for p in (paths.shard_file("cards", s), paths.manifest(s)):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x")
    (paths.shard_dir("cards") / ".part-00003.parquet.tmp-1").write_text("x")  # not a shard file
    assert paths.shard_files("cards") == [paths.shard_file("cards", s) for s in range(3)]
    assert paths.manifests() == [paths.manifest(s) for s in range(3)]


def test_the_layout_of_a_stored_refresh_is_its_directory(tmp_path):
    store = RefreshStore(tmp_path)
    assert store.paths(RID) == RefreshPaths(store.dir(RID))
    assert store.paths(RID).root == Path(tmp_path) / RID


def test_the_layout_refuses_ids_that_could_escape_the_store(tmp_path):
    with pytest.raises(ConfigError, match="malformed"):
        RefreshStore(tmp_path).paths("../etc")
