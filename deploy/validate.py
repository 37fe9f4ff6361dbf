"""Validate the deploy files offline against vendored schemas (see deploy/schemas/README.md).

    python deploy/validate.py                  # deploy/helm/values.yaml and deploy/compose.yaml
    python deploy/validate.py --values V.yaml  # another values file
    python deploy/validate.py --chart-dir DIR  # a chart from `helm pull dagster/dagster --untar`

The Helm values are validated the way Helm does it: the chart's default values.yaml coalesced
with ours (maps merged, lists replaced, null deletes), checked against the chart's
values.schema.json; the dagster-user-deployments subchart's values (its defaults, our
`dagster-user-deployments` section and `global`) against the subchart's schema. Kubernetes
definitions the chart references by URL are resolved from the vendored subset; any other
remote reference is an error, never a network fetch and never a skip. Exit status 1 with each
error's file, path and message; 0 when everything validates.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

DEPLOY = Path(__file__).resolve().parent
SCHEMAS = DEPLOY / "schemas"
CHART_SCHEMA = SCHEMAS / "dagster-chart.values.schema.json"
CHART_DEFAULTS = SCHEMAS / "dagster-chart.values.yaml"
SUBCHART_SCHEMA = SCHEMAS / "dagster-user-deployments.values.schema.json"
SUBCHART_DEFAULTS = SCHEMAS / "dagster-user-deployments.values.yaml"
COMPOSE_SCHEMA = SCHEMAS / "compose-spec.json"
K8S_DEFINITIONS = SCHEMAS / "k8s-v1.25.0-definitions.subset.json"
SUBCHART = "dagster-user-deployments"

# The remote documents the chart schemas reference, served from the vendored subset.
K8S_URIS = (
    "https://raw.githubusercontent.com/yannh/kubernetes-json-schema/master/v1.19.0/_definitions.json",
)
_REMOTE_REF = re.compile(r'"\$ref":\s*"(https?://[^"#]*)')


class ValidationFailed(Exception):
    """The schemas themselves cannot be used (a remote reference we do not vendor)."""


def _refuse_remote(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)


def k8s_registry() -> Registry:
    """A registry that serves the vendored Kubernetes definitions and refuses every other URI."""
    contents = json.loads(K8S_DEFINITIONS.read_text())
    resource = Resource.from_contents(contents, default_specification=DRAFT202012)
    return Registry(retrieve=_refuse_remote).with_resources((uri, resource) for uri in K8S_URIS)


def check_remote_refs(schema_text: str, source: Path) -> None:
    """Fail loudly if the schema references a remote document the registry does not serve."""
    missing = sorted(set(_REMOTE_REF.findall(schema_text)) - set(K8S_URIS))
    if missing:
        raise ValidationFailed(
            f"{source}: references remote schemas that are not vendored: {', '.join(missing)}; "
            "vendor them into deploy/schemas/ and add them to K8S_URIS"
        )


def coalesce(defaults: Any, overrides: Any) -> Any:
    """Helm's coalescing of values: maps merge recursively, a null deletes, anything else replaces."""
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _path(error: Any) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(root)"


def _errors(validator: Any, instance: Any, label: str) -> list[str]:
    found = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        detail = best_match([error]) if error.context else error
        found.append(f"{label}: {_path(detail)}: {detail.message}")
    return found


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) or {}


def validate_values(values_path: Path, chart_dir: Path | None = None) -> list[str]:
    """Errors of a Helm values file against the chart (vendored, or an untarred chart directory)."""
    if chart_dir is None:
        paths = (CHART_SCHEMA, CHART_DEFAULTS, SUBCHART_SCHEMA, SUBCHART_DEFAULTS)
    else:
        sub = chart_dir / "charts" / SUBCHART
        paths = (
            chart_dir / "values.schema.json",
            chart_dir / "values.yaml",
            sub / "values.schema.json",
            sub / "values.yaml",
        )
    schema_path, defaults_path, sub_schema_path, sub_defaults_path = paths
    registry = k8s_registry()
    ours = _load_yaml(values_path)
    merged = coalesce(_load_yaml(defaults_path), ours)
    errors = []
    for schema_file, instance, label in (
        (schema_path, merged, f"{values_path} (chart dagster)"),
        (
            sub_schema_path,
            _subchart_values(merged, sub_defaults_path),
            f"{values_path} ({SUBCHART})",
        ),
    ):
        text = schema_file.read_text()
        check_remote_refs(text, schema_file)
        validator = Draft202012Validator(json.loads(text), registry=registry)
        errors += _errors(validator, instance, label)
    return errors


def _unresolvable(exc: Exception) -> ValidationFailed:
    return ValidationFailed(f"a schema reference cannot be resolved offline: {exc}")


def _subchart_values(parent: dict, sub_defaults_path: Path) -> dict:
    """The values Helm hands the subchart: its defaults, the parent's section, and `global`."""
    values = coalesce(_load_yaml(sub_defaults_path), parent.get(SUBCHART) or {})
    values["global"] = coalesce(values.get("global") or {}, parent.get("global") or {})
    return values


def validate_compose(compose_path: Path) -> list[str]:
    """Errors of a Compose file against the Compose specification's schema (draft 7)."""
    text = COMPOSE_SCHEMA.read_text()
    check_remote_refs(text, COMPOSE_SCHEMA)
    validator = Draft7Validator(json.loads(text), registry=Registry(retrieve=_refuse_remote))
    return _errors(validator, _load_yaml(compose_path), str(compose_path))


def main(argv: list[str] | None = None) -> int:
    """Validate the Helm values and the Compose file; print every error; 1 if any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=Path, default=DEPLOY / "helm" / "values.yaml")
    parser.add_argument("--compose", type=Path, default=DEPLOY / "compose.yaml")
    parser.add_argument("--chart-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        errors = validate_values(args.values, args.chart_dir) + validate_compose(args.compose)
    except Unresolvable as exc:
        print(f"error: {_unresolvable(exc)}", file=sys.stderr)
        return 1
    except ValidationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"ok: {args.values} (dagster chart + {SUBCHART}), {args.compose} (compose spec)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
