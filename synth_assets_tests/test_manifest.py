"""The refresh manifest (core/manifest.py): canonical JSON, a purpose-bound signing key, a
signature that breaks on any change, artifact hashes, and the gates a release requires."""

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synth_assets.core.digest import sha256_file
from synth_assets.core.manifest import (
    MANIFEST_FORMAT,
    ManifestError,
    build_manifest,
    canonical,
    code_version,
    derive_key,
    read_gates,
    sign,
    signature_problems,
    verify_manifest,
)
from synth_assets.core.secrets import KeyVersionUnavailable, Secret, SecretsBackend

KEY = Secret(b"k" * 32, "v1")


class _Keys(SecretsBackend):
    """An in-memory backend: a current HMAC key and the older versions it still holds."""

    name = "memory"

    def __init__(self, current: Secret = KEY, *older: Secret) -> None:
        self.current, self.versions = current, {k.version: k for k in (current, *older)}

    def hmac_key(self) -> Secret:
        return self.current

    def hmac_key_at(self, version: str) -> Secret:
        if version not in self.versions:
            raise KeyVersionUnavailable(f"version {version} is gone")
        return self.versions[version]

    def seal_seed(self, refresh_id: str, seed: bytes) -> str:
        raise NotImplementedError

    def unseal_seed(self, refresh_id: str) -> Secret:
        raise NotImplementedError


ARTIFACTS = [
    {"path": "spec.json", "sha256": "b" * 64, "bytes": 20},
    {"path": "metrics_pack.json", "sha256": "a" * 64, "bytes": 10},
]


def _manifest(secrets: SecretsBackend | None = None, **facts) -> dict:
    return build_manifest(
        refresh_id="r-1",
        artifacts=ARTIFACTS,
        gates={"passed": True},
        facts={"epsilon_spent": 0.5, "key_versions": {"seed": "1"}, **facts},
        store={"kind": "local"},
        secrets=secrets or _Keys(),
        now=lambda: 0.0,
    )


# ---- canonical JSON and keys -----------------------------------------------------------------


def test_canonical_json_is_sorted_and_compact_whatever_the_key_order():
    assert (
        canonical({"b": 1, "a": [1, 2]}) == canonical({"a": [1, 2], "b": 1}) == b'{"a":[1,2],"b":1}'
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}, b"raw"])
def test_canonical_json_refuses_what_is_not_strict_json(value):
    with pytest.raises(ManifestError, match="not strict JSON"):
        canonical({"x": value})


def test_a_derived_key_is_bound_to_its_purpose():
    key = b"k" * 32
    a, b = derive_key(key, b"manifest"), derive_key(key, b"audit")
    assert a == derive_key(key, b"manifest") and a != b and key not in (a, b) and len(a) == 32


def test_a_file_hash_streamed_in_chunks_is_the_whole_file_hash(tmp_path):
    data = bytes(range(256)) * 41
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk=7) == hashlib.sha256(data).hexdigest()


def test_the_code_version_names_the_commit_from_the_environment(monkeypatch):
    monkeypatch.setenv("SYNTH_CODE_VERSION", "abc123")
    from synth_assets import __version__

    assert code_version() == {"package": __version__, "commit": "abc123"}


# ---- building and signing --------------------------------------------------------------------


def test_a_built_manifest_verifies():
    assert signature_problems(_manifest(), _Keys()) == []


def test_a_manifest_lists_artifacts_by_path_and_names_its_signing_key():
    m = _manifest()
    assert [a["path"] for a in m["artifacts"]] == ["metrics_pack.json", "spec.json"]
    assert m["key_versions"] == {"seed": "1", "manifest_signing_key": "v1"}
    assert m["signature"]["key_version"] == "v1" and m["format"] == MANIFEST_FORMAT
    assert m["published_at"] == "1970-01-01T00:00:00+00:00" and m["secrets"] == {
        "backend": "memory"
    }


def test_the_signature_is_not_a_plain_hmac_under_the_stored_key():
    """Domain separation: the holdout key never signs manifests directly."""
    m = _manifest()
    body = canonical({k: v for k, v in m.items() if k != "signature"})
    plain = hmac.new(KEY.value, body, hashlib.sha256).hexdigest()
    assert m["signature"]["value"] != plain


def test_signing_again_replaces_the_signature_instead_of_signing_it():
    m = _manifest()
    assert sign(m, KEY) == m


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(facts=st.dictionaries(st.sampled_from(["a", "b", "c"]), _json, min_size=1), new=_json)
def test_any_change_to_a_signed_fact_breaks_the_signature(facts, new):
    m = _manifest(**facts)
    key = sorted(facts)[0]
    changed = {**m, key: new}
    problems = signature_problems(changed, _Keys())
    assert (problems == []) == (canonical(new) == canonical(m[key]))


def test_a_manifest_signed_with_another_key_does_not_verify():
    m = _manifest(_Keys(Secret(b"o" * 32, "v1")))
    assert "does not match its content" in signature_problems(m, _Keys())[0]


def test_a_manifest_signed_before_a_rotation_verifies_with_the_old_version():
    old = _manifest(_Keys(KEY))
    assert signature_problems(old, _Keys(Secret(b"n" * 32, "v2"), KEY)) == []


def test_a_manifest_whose_key_version_is_gone_names_it():
    old = _manifest(_Keys(KEY))
    assert (
        "signing key version v1, which is not available"
        in (signature_problems(old, _Keys(Secret(b"n" * 32, "v2")))[0])
    )


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda m: m.pop("signature"), "carries no HMAC-SHA256 signature"),
        (lambda m: m["signature"].update(alg="none"), "carries no HMAC-SHA256 signature"),
        (lambda m: m.update(format="other/1"), "unknown manifest format"),
    ],
    ids=["unsigned", "other-alg", "other-format"],
)
def test_a_manifest_that_is_not_ours_is_named_as_such(change, problem):
    m = json.loads(json.dumps(_manifest()))
    change(m)
    assert problem in signature_problems(m, _Keys())[0]


# ---- artifacts -------------------------------------------------------------------------------


def test_verification_reports_missing_and_modified_artifacts():
    hashes = {"metrics_pack.json": "a" * 64, "spec.json": "c" * 64}
    problems = verify_manifest(_manifest(), _Keys(), hashes.get)
    assert problems == [
        f"artifact spec.json was modified (sha256 {'c' * 12}…, manifest {'b' * 12}…)"
    ]
    assert verify_manifest(_manifest(), _Keys(), {}.get) == [
        "artifact metrics_pack.json is missing",
        "artifact spec.json is missing",
    ]


def test_a_bad_signature_is_reported_before_any_artifact_is_hashed():
    m = {**_manifest(), "refresh_id": "r-2"}
    looked: list[str] = []
    problems = verify_manifest(m, _Keys(), lambda p: looked.append(p))
    assert len(problems) == 1 and looked == []


def test_without_a_hash_function_only_the_signature_is_verified():
    assert verify_manifest(_manifest(), _Keys(), None) == []


# ---- gates -----------------------------------------------------------------------------------


def _refresh(tmp_path: Path, summary: dict | None, report: dict | None) -> tuple[Path, list[Path]]:
    if summary is not None:
        (tmp_path / "summary.json").write_text(json.dumps(summary))
    if report is not None:
        (tmp_path / "privacy_report.json").write_text(json.dumps(report))
    return tmp_path / "summary.json", [tmp_path / "report.json", tmp_path / "privacy_report.json"]


PASSED = {"refresh_id": "r-1", "passed": True, "checks": {"budget": {"passed": True}, "pii": True}}
REPORT = {"refresh_id": "r-1", "passed": True, "gates": {"dcr": {"passed": True}}}


def test_a_passed_refresh_with_its_own_passing_report_passes(tmp_path):
    gates = read_gates(*_refresh(tmp_path, PASSED, REPORT))
    assert gates["passed"] and gates["failures"] == []
    assert gates["checks"] == {"budget": True, "pii": True}
    assert gates["report"] == {
        "path": "privacy_report.json",
        "passed": True,
        "gates": {"dcr": True},
    }


def test_report_gates_may_be_a_list_of_named_gates(tmp_path):
    report = {
        **REPORT,
        "gates": [{"name": "dcr", "passed": True}, {"name": "mia", "passed": False}],
    }
    gates = read_gates(*_refresh(tmp_path, PASSED, report))
    assert gates["report"]["gates"] == {"dcr": True, "mia": False}
    assert gates["failures"] == ["privacy report gate mia failed"]


@pytest.mark.parametrize(
    "summary, report, failure",
    [
        ({**PASSED, "checks": {"budget": {"passed": False}}}, REPORT, "check budget failed"),
        ({**PASSED, "checks": {}}, REPORT, "the summary records no gate (asset check) at all"),
        ({**PASSED, "passed": False}, REPORT, "the refresh summary is not marked passed"),
        (PASSED, {**REPORT, "passed": False}, "the privacy report is not marked passed"),
        (PASSED, {**REPORT, "refresh_id": "r-0"}, "is of refresh r-0, not of r-1"),
        (PASSED, None, "the refresh has no privacy report of its own"),
    ],
    ids=[
        "failed-check",
        "no-checks",
        "summary-not-passed",
        "report-not-passed",
        "stale-report",
        "no-report",
    ],
)
def test_a_refresh_without_every_gate_passed_is_refused_saying_why(
    tmp_path, summary, report, failure
):
    gates = read_gates(*_refresh(tmp_path, summary, report))
    assert not gates["passed"] and any(failure in f for f in gates["failures"])


def test_a_missing_summary_means_the_refresh_did_not_finish(tmp_path):
    with pytest.raises(ManifestError, match="did not finish"):
        read_gates(*_refresh(tmp_path, None, REPORT))
