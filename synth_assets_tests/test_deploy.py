"""The deploy files validate offline against the vendored chart and Compose schemas."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def validate():
    spec = importlib.util.spec_from_file_location("deploy_validate", DEPLOY / "validate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _values_with(tmp_path: Path, edit) -> Path:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    edit(values)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_deploy_files_validate(validate):
    assert validate.main([]) == 0


def test_helm_values_with_a_wrong_type_are_rejected(validate, tmp_path):
    def edit(v):
        v["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"][
            "maxConcurrentRuns"
        ] = "4"

    errors = validate.validate_values(_values_with(tmp_path, edit))
    assert any("queuedRunCoordinator/maxConcurrentRuns" in e for e in errors)
    assert validate.main(["--values", str(tmp_path / "values.yaml")]) == 1


def test_kubernetes_definitions_are_resolved_offline(validate, tmp_path):
    def edit(v):
        v["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"][0]["mountPath"] = 7

    errors = validate.validate_values(_values_with(tmp_path, edit))
    assert any("volumeMounts/0/mountPath: 7 is not of type 'string'" in e for e in errors)


def test_an_unknown_remote_reference_fails_loudly(validate):
    with pytest.raises(validate.ValidationFailed, match="not vendored"):
        validate.check_remote_refs('{"$ref": "https://example.org/x.json#/a"}', Path("s.json"))


def test_compose_with_a_wrong_type_is_rejected(validate, tmp_path):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    compose["services"]["postgres"]["ports"] = "5432:5432"
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(compose))
    assert any("services/postgres/ports" in e for e in validate.validate_compose(path))


def test_helm_coalesce_merges_maps_replaces_lists_and_deletes_nulls(validate):
    merged = validate.coalesce({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "d": None})
    assert merged == {"a": {"b": 1, "c": [2]}}
