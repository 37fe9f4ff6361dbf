"""The asset graph as the Dagster UI reads it: the project's Definitions loaded by a real code
server (out of process, as `dagster dev` loads them) and queried through Dagster's GraphQL."""

from __future__ import annotations

import pytest

dagster_graphql = pytest.importorskip("dagster_graphql")
import dagster as dg  # noqa: E402
from dagster_graphql.test.utils import (  # noqa: E402
    define_out_of_process_context,
    execute_dagster_graphql,
)

from synth_assets.core.evaluate import GATE_SPECS  # noqa: E402
from synth_assets.core.secrets import init_local_secrets  # noqa: E402
from synth_assets.orchestrate import run_refresh  # noqa: E402
from synth_assets_tests.conftest import make_config  # noqa: E402

QUERY = """{ assetNodes { assetKey { path } groupName isExecutable
  owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
  dependencyKeys { path }
  assetChecksOrError { ... on AssetChecks { checks { name blocking
    executionForLatestMaterialization { status
      evaluation { success metadataEntries { label } } } } } } } }"""


def test_the_ui_sees_the_source_at_the_head_three_domains_owners_and_blocking_gates(
    tmp_path, monkeypatch, demo_url
):
    monkeypatch.setenv("SYNTH_WORKDIR", str(tmp_path / "wd"))
    monkeypatch.setenv("SYNTH_OWNERS", "team:privacy-eng,dpo@example.com")
    ws = tmp_path / "workspace.yaml"
    ws.write_text(
        "load_from:\n  - python_module:\n      module_name: synth_assets.definitions\n"
        "      attribute: defs\n"
    )
    (tmp_path / "home").mkdir()
    wd = tmp_path / "wd"
    init_local_secrets(wd / "secrets")
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as inst:
        # one refresh recorded in the instance, so the checks have executions to show
        summary = run_refresh(
            None, wd, cfg_override=make_config(demo_url), instance=inst, log=lambda m: None
        )
        with define_out_of_process_context(str(ws), None, inst) as ctx:
            res = execute_dagster_graphql(ctx, QUERY)
    assert not res.errors, res.errors
    nodes = {"/".join(n["assetKey"]["path"]): n for n in res.data["assetNodes"]}
    assert set(nodes) == {
        "production_database",
        "source_schema",
        "metrics_pack",
        "calibrated_spec",
        "synthetic_shards",
        "privacy_report",
        "staging_schema",
        "published_refresh",
    }
    head = nodes["production_database"]
    assert not head["isExecutable"] and head["dependencyKeys"] == []
    assert nodes["source_schema"]["dependencyKeys"] == [{"path": ["production_database"]}]
    assert {n["groupName"] for n in nodes.values()} == {"measure", "synthesize", "release"}
    for name, n in nodes.items():
        assert {"team": "privacy-eng"} in n["owners"] and {"email": "dpo@example.com"} in n[
            "owners"
        ], name
    checks = {
        c["name"]: c["blocking"] for c in nodes["privacy_report"]["assetChecksOrError"]["checks"]
    }
    # the repo's synth.yaml: every gate with a threshold blocks, a report-only metric does not
    assert checks == {g.name: g.default is not None for g in GATE_SPECS}
    # each gate's latest execution carries its verdict, value, threshold and config key
    assert summary["passed"]
    for c in nodes["privacy_report"]["assetChecksOrError"]["checks"]:
        ex = c["executionForLatestMaterialization"]
        assert ex["status"] == "SUCCEEDED" and ex["evaluation"]["success"], c["name"]
        labels = {m["label"] for m in ex["evaluation"]["metadataEntries"]}
        assert {"refresh_id", "value", "config_key", "gated"} <= labels, c["name"]
