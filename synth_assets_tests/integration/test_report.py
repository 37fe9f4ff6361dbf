"""The privacy report and its release gates in real Dagster runs on the demo bank (real PostgreSQL,
real Parquet shards), with negative controls: generators that leak or distort must fail the
named gate and stop the run before anything downstream."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from synth_assets.core import pg
from synth_assets.core.evaluate import GATE_SPECS, EvaluationError, evaluate_refresh
from synth_assets.core.generate import generate_shard, shard_key
from synth_assets.core.report_html import SECTIONS, glance_scores
from synth_assets.core.secrets import init_local_secrets
from synth_assets.core.store import RefreshStore, new_refresh_id, read_json
from synth_assets.definitions import build_definitions
from synth_assets.defs.automation.jobs import PROFILE
from synth_assets.defs.constants import CALIBRATED_SPEC, REFRESH_TAG
from synth_assets.defs.lineage import upstream_refresh
from synth_assets.defs.report import assets as report_assets
from synth_assets.defs.resources import SynthResource
from synth_assets.orchestrate import QUIET
from synth_assets_tests.bad_generators import CONTROLS, Context
from synth_assets_tests.conftest import make_config

# The test source is small (1,500 customers, a holdout of ~150): at epsilon 1 the DP noise drowns
# the hour-of-week profile, and the temporal control would have nothing left to destroy.
CONFIG = {"privacy": {"epsilon": 8.0}}
RUN_CONFIG = {
    **QUIET,
    "ops": {"privacy_report": {"config": {"sample_rows": 4000, "reference_rows": 16000}}},
}
ALL_GATES = [g.name for g in GATE_SPECS]
SECTION_IDS = [a for a, _ in SECTIONS]


@dg.asset(
    deps=["privacy_report"], description="Stands for everything downstream of the report (staging)."
)
def staging_probe() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"ran": True})


@dataclass
class Env:
    workdir: Path
    config_file: Path
    instance: dg.DagsterInstance
    assets: list[Any]
    checks: list[Any]
    resources: dict[str, Any]
    refresh_id: str
    good: dg.ExecuteInProcessResult

    @property
    def store(self) -> RefreshStore:
        return RefreshStore(self.workdir / "runs")


def _definitions(config_file: Path, workdir: Path) -> tuple[list, list, dict]:
    base = build_definitions(config_file=str(config_file), workdir=str(workdir))
    assets, checks = list(base.assets or []), list(base.asset_checks or [])
    keys = {k.to_user_string() for a in assets for k in getattr(a, "keys", None) or [a.key]}
    if "privacy_report" not in keys:
        assets.append(report_assets.privacy_report)
        checks.append(report_assets.release_gates)
    return [*assets, staging_probe], checks, dict(base.resources)


def _write_config(path: Path, url: str, **extra: Any) -> Path:
    """synth.yaml of the session's conventions (shared target/audit database, generous budget cap)."""
    data = {
        **make_config(url, **CONFIG).to_json(),
        "gates": {},
        **extra,
    }  # the strict default gates
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory, demo_url) -> Env:
    wd = tmp_path_factory.mktemp("report")
    init_local_secrets(wd / "secrets")
    cfg = _write_config(wd / "synth.yaml", demo_url)
    assets, checks, resources = _definitions(cfg, wd)
    with dg.DagsterInstance.ephemeral() as inst:
        rid = new_refresh_id()
        r1 = dg.materialize(
            [*assets, *checks],
            selection=PROFILE,
            instance=inst,
            resources=resources,
            tags={REFRESH_TAG: rid},
            run_config=QUIET,
        )
        spec = read_json(RefreshStore(wd / "runs").path(rid, "spec.json"))
        keys = [shard_key(i) for i in range(spec["shards"])]
        good = dg.materialize(
            [*assets, *checks],
            selection=["synthetic_shards", "privacy_report", "staging_probe"],
            instance=inst,
            resources=resources,
            run_config=RUN_CONFIG,
            raise_on_error=False,
            tags={
                REFRESH_TAG: rid,
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
        )
        assert r1.success
        yield Env(wd, cfg, inst, assets, checks, resources, rid, good)


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {ev.check_name: ev for ev in result.get_asset_check_evaluations()}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    }


def _meta(ev: dg.AssetCheckEvaluation, key: str) -> Any:
    v = ev.metadata[key]
    return getattr(v, "value", v)


def _report(env: Env, rid: str) -> dict:
    return json.loads(env.store.path(rid, "report/privacy_report.json").read_text())


def _bad_shards(control: str) -> dg.AssetsDefinition:
    """A ``synthetic_shards`` asset that runs the real generator, then the broken one on top."""

    @dg.asset(name="synthetic_shards", deps=["calibrated_spec"])
    def bad_synthetic_shards(
        context: dg.AssetExecutionContext, synth: SynthResource
    ) -> dg.MaterializeResult:
        rid = upstream_refresh(context, CALIBRATED_SPEC)
        store = synth.store()
        spec = read_json(store.path(rid, "spec.json"))
        seed = synth.secrets().unseal_seed(rid).value
        for s in range(spec["shards"]):
            generate_shard(spec, seed, s, store.dir(rid))
        with pg.connect(pg.resolve_url(synth.settings().source.url, synth.work)) as conn:
            CONTROLS[control](Context(store.dir(rid), conn, synth.secrets().hmac_key().value))
        return dg.MaterializeResult(metadata={"refresh_id": rid})

    return bad_synthetic_shards


@pytest.fixture(scope="module")
def control_runs(env) -> dict[str, tuple[dg.ExecuteInProcessResult, str]]:
    """Each negative control in a real run: a new generation from the same DP profile (no budget)."""
    out = {}
    for name in CONTROLS:
        assets = [
            a
            for a in env.assets
            if "synthetic_shards"
            not in {k.to_user_string() for k in getattr(a, "keys", None) or [a.key]}
        ]
        checks = [
            c
            for c in env.checks
            if c is not None
            and "synthetic_shards" not in {k.asset_key.to_user_string() for k in c.check_keys}
        ]
        res = dg.materialize(
            [*assets, _bad_shards(name), *checks],
            selection=["calibrated_spec", "synthetic_shards", "privacy_report", "staging_probe"],
            instance=env.instance,
            resources=env.resources,
            run_config=RUN_CONFIG,
            raise_on_error=False,
        )
        rid = str(_meta(_checks(res)["privacy_dcr_share"], "refresh_id"))
        out[name] = (res, rid)
    return out


# --- the report of the default pipeline -----------------------------------------------------------


def test_partitioned_shards_and_the_report_run_in_one_run(env):
    assert {"synthetic_shards", "privacy_report"} <= _materialized(env.good)


def test_every_gate_is_a_blocking_asset_check_with_value_and_threshold(env):
    checks = _checks(env.good)
    assert set(ALL_GATES) <= set(checks)
    specs = {s.key.name: s for c in env.checks for s in getattr(c, "check_specs", [])}
    defaults = {g.name: g.default for g in GATE_SPECS}
    for name in ALL_GATES:
        # a report-only metric (no threshold) never blocks, so it never reads as a passed gate
        assert specs[name].blocking == (defaults[name] is not None), name
        ev = checks[name]
        assert _meta(ev, "refresh_id") == env.refresh_id
        assert "threshold" in ev.metadata or not _meta(ev, "gated"), name


def test_report_json_and_html_are_written_beside_the_shards_and_linked_from_metadata(env):
    mat = next(
        e.event_specific_data.materialization
        for e in env.good.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key.to_user_string() == "privacy_report"
    )
    meta = mat.metadata
    d = env.store.dir(env.refresh_id)
    assert Path(meta["report"].value) == d / "report" / "privacy_report.json"
    assert Path(meta["report_html"].value) == d / "report" / "index.html"
    assert "report_url" not in meta  # no file:// link a browser would refuse
    assert (d / "shards").is_dir() and (d / "report" / "index.html").read_text().startswith(
        "<!doctype html>"
    )
    md = meta["summary"].value
    assert all(f"| {g} |" in md for g in ALL_GATES)
    assert "Privacy: epsilon " in md and " per `customers` unit; reference tables epsilon " in md
    rep = _report(env, env.refresh_id)
    assert rep["refresh_id"] == env.refresh_id and set(rep["gates"]) == set(ALL_GATES)
    for name, g in rep["gates"].items():
        assert {"value", "threshold", "passed", "failures"} <= set(g), name
    # the guarantee, the contents and the scores at a glance head the page
    g = rep["guarantee"]
    led = json.loads(env.store.path(env.refresh_id, "metrics_pack.json").read_text())["ledger"]
    assert g["epsilon"] == round(led["epsilon_spent"], 4) > 0 and g["delta"] == led["delta"]
    assert g["unit_table"] == "customers" and g["rows_per_unit"]["transactions"] >= 1
    assert g["reference"]["tables"] == ["merchants"] and g["reference"]["epsilon"] > 0
    html = (d / "report" / "index.html").read_text()
    assert html.index("Privacy guarantee") < html.index("<h2 id='glance'>Scores at a glance")
    assert all(f"href='#{a}'" in html and f"<h2 id='{a}'>" in html for a in SECTION_IDS)
    scores = glance_scores(rep)
    assert set(scores) == {
        "customers",
        "accounts",
        "cards",
        "transactions",
        "merchants",
        "(database)",
    }
    db = scores["(database)"]
    assert 0 < db["overall"] <= 1 and {"column shapes", "cardinality", "temporal"} <= set(db)
    assert (
        scores["transactions"]["inter-table trends"]
        == rep["views"]["transactions+accounts"]["pair_trends"]["score"]
    )
    view = rep["views"]["transactions+accounts"]
    assert {"dcr_share", "nndr", "mia", "exact_match"} <= set(view["privacy"])
    assert view["privacy"]["dcr_share"]["baseline"] == 0.5 and "pair_trends" in view
    assert {"accounts.customer_id->customers", "transactions.merchant_id->merchants"} <= set(
        rep["fanout"]
    )
    assert {"customers.created_at", "transactions.ts"} <= set(rep["temporal"])
    assert len(rep["temporal"]["transactions.ts"]["acf_real"]) == 14


def test_report_holds_no_real_identifier_pii_or_free_text(env, demo_url):
    d = env.store.dir(env.refresh_id) / "report"
    text = (d / "privacy_report.json").read_text() + (d / "index.html").read_text()
    with pg.connect(demo_url) as conn:
        real = {
            r[0]
            for r in conn.execute(
                "SELECT email FROM customers UNION SELECT full_name FROM customers UNION SELECT phone FROM customers "
                "UNION SELECT national_id FROM customers UNION SELECT street_address FROM customers "
                "UNION SELECT postal_code FROM customers UNION SELECT date_of_birth::text FROM customers "
                "UNION SELECT iban FROM accounts UNION SELECT card_number FROM cards "
                "UNION SELECT memo FROM transactions UNION SELECT name FROM merchants"
            )
            if r[0] and len(r[0]) >= 6
        }
    spec = read_json(env.store.path(env.refresh_id, "spec.json"))
    released = {
        str(v)
        for t in spec["tables"].values()
        for c in t["columns"].values()
        for v in c.get("values", [])
    }
    # A DP-released category value may coincide with a free-text value (e.g. a memo "savings").
    assert not [v for v in real - released if v in text]


def test_plot_labels_are_only_values_the_spec_released(env):
    rep = _report(env, env.refresh_id)
    spec = read_json(env.store.path(env.refresh_id, "spec.json"))
    for key, m in rep["marginals"].items():
        if m["kind"] != "categorical":
            continue
        t, c = key.split(".")
        released = set(map(str, spec["tables"][t]["columns"][c]["values"]))
        assert set(m["labels"]) - {"(other)", "(null)"} <= released, key


def test_default_pipeline_privacy_measures_sit_at_the_holdout_baseline(env):
    gates = _report(env, env.refresh_id)["gates"]
    assert gates["privacy_identifier_overlap"]["value"] == 0
    assert gates["privacy_exact_match"]["value"] <= 0.005
    assert gates["privacy_rare_combinations"]["value"] <= 1.0
    assert gates["privacy_membership_inference"]["value"] < 0.65


def test_the_downstream_asset_runs_when_every_gate_passes(env, demo_url, tmp_path):
    lenient = {
        "dcr_share_max": 1.0,
        "nndr_ratio_min": 0.0,
        "mia_auc_max": 1.0,
        "exact_match_excess_max": 1.0,
        "rare_combination_ratio_max": 1e9,
        "column_shapes_min": 0.0,
        "fanout_similarity_min": 0.0,
        "hour_of_week_corr_min": 0.0,
    }
    cfg = _write_config(
        tmp_path / "lenient.yaml",
        demo_url,
        gates=lenient,
        secrets={"path": str(env.workdir / "secrets")},
        artifacts={"store": str(env.workdir / "runs")},
    )
    assets, checks, resources = _definitions(cfg, env.workdir)
    res = dg.materialize(
        [*assets, *checks],
        selection=["privacy_report", "staging_probe"],
        instance=env.instance,
        resources=resources,
        run_config=RUN_CONFIG,
        raise_on_error=False,
    )
    assert res.success
    assert all(ev.passed for ev in _checks(res).values())
    assert "staging_probe" in _materialized(res)


def test_the_report_fails_closed_without_the_hmac_key(env, demo_url, tmp_path):
    cfg = _write_config(
        tmp_path / "nokey.yaml",
        demo_url,
        secrets={"path": str(tmp_path / "empty")},
        artifacts={"store": str(env.workdir / "runs")},
    )
    assets, checks, resources = _definitions(cfg, env.workdir)
    before = env.store.path(env.refresh_id, "report/privacy_report.json").stat().st_mtime_ns
    res = dg.materialize(
        [*assets, *checks],
        selection=["privacy_report", "staging_probe"],
        instance=env.instance,
        resources=resources,
        run_config=RUN_CONFIG,
        raise_on_error=False,
    )
    assert not res.success and "staging_probe" not in _materialized(res)
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "synth-assets init" in str(failure.event_specific_data.error)
    assert env.store.path(env.refresh_id, "report/privacy_report.json").stat().st_mtime_ns == before


def test_report_and_gate_outcomes_are_in_the_hash_chained_audit_log(env, meta_url):
    from synth_assets.core.audit import list_events, verify_chain

    events = [e for e in list_events(meta_url) if e.refresh_id == env.refresh_id]
    kinds = [e.kind for e in events]
    assert kinds.index("shards") < kinds.index("report") < kinds.index("gates")
    gates = next(e for e in events if e.kind == "gates").payload
    assert set(gates["gates"]) == set(ALL_GATES)
    assert gates["passed"] is all(g["passed"] for g in gates["gates"].values())
    report = [e for e in events if e.kind == "report"][
        -1
    ].payload  # the newest report of this refresh
    assert report["report_sha256"] == _sha256(
        env.store.path(env.refresh_id, "report/privacy_report.json")
    )
    assert verify_chain(meta_url).ok


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_key_other_than_the_profiles_cannot_reproduce_the_holdout(env, demo_url):
    with pg.connect(demo_url) as conn, pytest.raises(EvaluationError, match="HMAC key version"):
        evaluate_refresh(
            conn, env.store.dir(env.refresh_id), b"k" * 32, key_version="not-the-profile-key"
        )


# --- negative controls ---------------------------------------------------------------------------

NAMED_GATES = {
    "copy_training_rows": [
        "privacy_dcr_share",
        "privacy_nndr",
        "privacy_membership_inference",
        "privacy_exact_match",
        "privacy_rare_combinations",
        "privacy_identifier_overlap",
    ],
    "copy_outlier_customers": ["privacy_rare_combinations"],
    "leak_real_emails": ["privacy_identifier_overlap"],
    "uniform_timestamps": ["fidelity_hour_of_week"],
    "ignore_fanout": ["fidelity_fanout"],
}


@pytest.mark.parametrize("control", list(CONTROLS))
def test_negative_control_fails_its_gate_and_stops_the_run_before_downstream(control, control_runs):
    res, rid = control_runs[control]
    checks = _checks(res)
    for gate in NAMED_GATES[control]:
        assert not checks[gate].passed, (control, gate)
        assert _meta(checks[gate], "failures"), gate
    assert not res.success
    assert "privacy_report" in _materialized(res)  # the report exists for people to read...
    assert "staging_probe" not in _materialized(res)  # ...but nothing downstream ran
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    for gate in NAMED_GATES[control]:
        assert gate in message
    assert "threshold" in message


def _item(env: Env, rid: str, gate: str, item: str) -> float:
    return _report(env, rid)["gates"][gate]["items"][item]


def test_copying_training_rows_is_caught_where_the_honest_generator_is_not(env, control_runs):
    _, rid = control_runs["copy_training_rows"]
    bad, good = _report(env, rid), _report(env, env.refresh_id)
    for view in ("customers", "transactions+accounts"):
        rows = bad["views"][view]["rows"]
        # a copy matches exactly whenever its original is in the searched training reference
        coverage = rows["training_reference_rows"] / (rows["synthetic_total"] or 1)
        assert bad["views"][view]["privacy"]["exact_match"]["synthetic"] > 0.8 * min(1.0, coverage)
        assert bad["views"][view]["privacy"]["mia"]["auc"] > (0.9 if coverage >= 1 else 0.6)
        assert good["views"][view]["privacy"]["exact_match"]["synthetic"] < 0.01
    assert bad["identifier_overlap"]["groups"]["email"]["overlap"] > 1000


def test_copied_outliers_are_rare_combinations_the_holdout_does_not_explain(env, control_runs):
    _, rid = control_runs["copy_outlier_customers"]
    bad = _report(env, rid)["views"]["customers"]["rare_combinations"]
    good = _report(env, env.refresh_id)["views"]["customers"]["rare_combinations"]
    assert bad["quasi_identifiers"] == ["date_of_birth", "postal_code", "segment"]
    assert bad["synthetic_hits"] >= 5 and bad["holdout_hits"] == 0 and bad["value"] > 1.0
    assert good["value"] <= 1.0


def test_leaked_emails_are_counted_through_keyed_hashes(env, control_runs):
    _, rid = control_runs["leak_real_emails"]
    groups = _report(env, rid)["identifier_overlap"]["groups"]
    assert groups["email"]["overlap"] == 25
    assert all(g["overlap"] == 0 for k, g in groups.items() if k != "email")


def test_uniform_timestamps_lose_the_hour_of_week_profile(env, control_runs):
    _, rid = control_runs["uniform_timestamps"]
    item = "transactions.ts"
    assert _item(env, rid, "fidelity_hour_of_week", item) < 0.3
    assert _item(env, env.refresh_id, "fidelity_hour_of_week", item) > 0.6


def test_ignoring_fanout_loses_the_children_per_parent_shape(env, control_runs):
    _, rid = control_runs["ignore_fanout"]
    item = "accounts.customer_id->customers"
    assert _item(env, rid, "fidelity_fanout", item) < 0.9
    assert _item(env, env.refresh_id, "fidelity_fanout", item) >= 0.9


def test_the_report_is_linked_where_a_server_publishes_the_runs(monkeypatch):
    from synth_assets.defs.report.assets import report_url

    monkeypatch.delenv("SYNTH_REPORT_BASE_URL", raising=False)
    assert report_url("r1") is None
    monkeypatch.setenv("SYNTH_REPORT_BASE_URL", "http://127.0.0.1:3001/")
    assert report_url("r20261203T100232Z-08522d") == (
        "http://127.0.0.1:3001/r20261203T100232Z-08522d/report/index.html"
    )


def test_a_report_only_metric_says_so_beside_its_passing_check(env):
    checks = _checks(env.good)
    ev = checks["fidelity_pair_trends"]  # no default threshold: measured and reported only
    assert ev.passed and not _meta(ev, "gated")
    assert ev.severity == dg.AssetCheckSeverity.WARN  # never an error that could block
    assert checks["privacy_dcr_share"].severity == dg.AssetCheckSeverity.ERROR
    assert ev.description == (
        "reported, not gated: set gates.pair_trends_min in synth.yaml to gate it"
    )


def test_the_popularity_ideal_is_thinned_by_units_over_rows_as_the_profile_measured(demo_url):
    # transactions -> accounts -> customers (the unit); merchant_id points at a reference table.
    from synth_assets.core.evaluate.fidelity import sampled_share
    from synth_assets.core.plan import build_plan
    from synth_assets.core.roles import infer_roles
    from synth_assets.core.schema import reflect

    with pg.connect(demo_url) as conn:
        model = reflect(conn, "public")
        plans = build_plan(model, infer_roles(conn, model), "customers")
        units, rows = conn.execute(
            "SELECT count(DISTINCT a.customer_id), count(*) FROM transactions t "
            "JOIN accounts a ON a.id = t.account_id WHERE t.merchant_id IS NOT NULL"
        ).fetchone()
        share = sampled_share(conn, model, plans["transactions"], "merchant_id")
        assert share == pytest.approx(units / rows) and 0 < share < 0.2
        assert sampled_share(conn, model, plans["merchants"], "id") is None
