"""Bad input: one clear message, a non-zero exit, nothing written."""

import pytest

from synth_assets.cli import main


def _nothing_written(wd):
    return not any((wd / d).exists() for d in ("runs", "dagster_home", "pg"))


def test_unreachable_source_is_one_clear_error(workdir, capsys):
    code = main(
        ["refresh", "--source", "postgresql://nobody@127.0.0.1:1/prod", "--workdir", str(workdir)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot connect to postgresql://nobody@127.0.0.1:1/prod" in err
    assert _nothing_written(workdir)


def test_unknown_table_in_config_is_named(workdir, demo_url, capsys, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("source:\n  tables: [customers, no_such_table]\n")
    code = main(["refresh", "--source", demo_url, "--config", str(cfg), "--workdir", str(workdir)])
    assert code == 2
    assert "no_such_table" in capsys.readouterr().err
    assert _nothing_written(workdir)


def test_unknown_table_in_overrides_is_named(workdir, demo_url, capsys, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("columns:\n  clients.email: email\n")
    assert (
        main(["refresh", "--source", demo_url, "--config", str(cfg), "--workdir", str(workdir)])
        == 2
    )
    assert "clients" in capsys.readouterr().err
    assert _nothing_written(workdir)


@pytest.mark.parametrize(
    "content,needle",
    [
        ("privacy:\n  epsilon: 0\n", "privacy.epsilon must be > 0"),
        ("privacy: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_config_is_refused(workdir, demo_url, capsys, tmp_path, content, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    assert (
        main(["refresh", "--source", demo_url, "--config", str(cfg), "--workdir", str(workdir)])
        == 2
    )
    assert needle in capsys.readouterr().err
    assert _nothing_written(workdir)


def test_init_then_refresh_needs_no_other_setup(tmp_path, demo_url, capsys):
    from synth_assets_tests.conftest import SESSION

    cfg = tmp_path / "synth.yaml"
    import yaml

    from synth_assets_tests.conftest import DEMO_BOUNDS, LOOSE_GATES

    cfg.write_text(
        yaml.safe_dump(
            {
                "target": {"url": SESSION["target"]},
                "privacy": {"annual_epsilon_cap": 1000},
                "gates": LOOSE_GATES,
                "bounds": DEMO_BOUNDS,
            }
        )
    )
    assert main(["init", "--workdir", str(tmp_path)]) == 0
    assert (
        main(
            [
                "refresh",
                "--source",
                demo_url,
                "--workdir",
                str(tmp_path),
                "--shards",
                "2",
                "--config",
                str(cfg),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "summary: " in out and "check shards_valid: passed" in out
    # the budget in plain sight: epsilon, delta, the unit, the annual cap and what remains
    assert "(delta 1e-06, privacy unit: one customers row" in out
    assert "annual budget of " in out and " of 1000 spent in the last 365 days" in out
    assert "remaining" in out and "report: " in out
    assert "  stages: reflect " in out and ", load " in out
    # it reports as it goes: every step as it starts and ends, and the assets' own progress
    for step in ("source_schema", "metrics_pack", "synthetic_shards", "staging_schema"):
        assert f"  {step} …" in out and f"  {step} done in " in out, step
    assert "    shard 00000: " in out and "    COPY " in out
    assert out.index("  metrics_pack done in ") < out.index("[2/2] ")


def test_a_failed_gate_exits_3_and_bad_input_2(workdir, demo_url, capsys, monkeypatch):
    """Schedulers and operators tell "fix your input" (2) from "the data did not pass" (3)."""
    from synth_assets import orchestrate
    from synth_assets.core.errors import GateFailed

    def blocked(*args, **kwargs):
        raise GateFailed("refresh r1 stopped: privacy_dcr_share 0.55 > 0.52")

    monkeypatch.setattr(orchestrate, "refresh", blocked)
    assert main(["refresh", "--source", demo_url, "--workdir", str(workdir)]) == 3
    assert "gate failed: refresh r1 stopped" in capsys.readouterr().err


def test_refresh_takes_the_source_from_the_config(workdir, capsys, tmp_path):
    cfg = tmp_path / "own.yaml"
    cfg.write_text("source:\n  url: postgresql://nobody@127.0.0.1:1/prod\n")
    assert main(["refresh", "--config", str(cfg), "--workdir", str(workdir)]) == 2
    assert "cannot connect to postgresql://nobody@127.0.0.1:1/prod" in capsys.readouterr().err
    assert _nothing_written(workdir)


def test_an_embedded_source_that_does_not_exist_creates_nothing(tmp_path, capsys):
    from synth_assets.core.secrets import init_local_secrets

    wd = tmp_path / "fresh"
    init_local_secrets(wd / "secrets")
    assert main(["refresh", "--source", "embedded:///no_such_db", "--workdir", str(wd)]) == 2
    err = capsys.readouterr().err
    assert "embedded database 'no_such_db' does not exist" in err and "synth-assets demo" in err
    assert not (wd / "pg").exists() and _nothing_written(wd)


def test_cli_and_ui_find_the_same_config(tmp_path, monkeypatch):
    from synth_assets.cli import build_parser
    from synth_assets.core.config import default_config_path

    monkeypatch.delenv("SYNTH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_config_path() is None
    (tmp_path / "synth.yaml").write_text("privacy:\n  epsilon: 0.5\n")
    assert default_config_path() == "synth.yaml"
    assert build_parser().parse_args(["refresh"]).config == "synth.yaml"
    monkeypatch.setenv("SYNTH_CONFIG", "/etc/synth/prod.yaml")
    assert build_parser().parse_args(["refresh"]).config == "/etc/synth/prod.yaml"


def test_budget_prints_spent_remaining_and_the_ledger(tmp_path, capsys):
    from synth_assets.core import budget
    from synth_assets_tests.conftest import SESSION

    source = "postgresql://reader@db.example/budget_cli"
    budget.reserve(SESSION["target"], "r20260101T000000Z-b0d9e1", source, "public", 1.0, 1e-6, 4.0)
    budget.settle(SESSION["target"], "r20260101T000000Z-b0d9e1", 0.98)
    budget.reserve(SESSION["target"], "r20260102T000000Z-b0d9e2", source, "public", 1.0, 1e-6, 4.0)
    budget.release(SESSION["target"], "r20260102T000000Z-b0d9e2", "source_schema: lost the source")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("privacy:\n  annual_epsilon_cap: 4\n")
    args = ["budget", "--config", str(cfg), "--workdir", str(tmp_path), "--source", source]
    assert main([*args, "--audit-url", SESSION["target"]]) == 0
    out = capsys.readouterr().out
    assert "epsilon 0.98 of 4 spent in the last 365 days, 3.02 remaining" in out
    assert "r20260101T000000Z-b0d9e1  epsilon=0.98" in out and "spent" in out
    assert "r20260102T000000Z-b0d9e2  epsilon=0" in out and "released" in out
    assert "lost the source" in out


def test_a_failed_gate_is_one_clean_summary_naming_the_key_and_the_report(
    tmp_path, demo_url, capsys
):
    """No stack trace: every failed gate with its value, threshold and `gates:` key; the report."""
    import yaml

    from synth_assets.core.secrets import init_local_secrets
    from synth_assets_tests.conftest import make_config

    wd = tmp_path / "wd"
    init_local_secrets(wd / "secrets")
    # Gates no calibration can lower (column shapes can: a strict 1.0 passed 1 refresh in 5).
    cfg = make_config(demo_url, gates={"pair_trends_min": 1.0, "null_rate_diff_max": 0.0})
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(cfg.to_json()))
    assert main(["refresh", "--config", str(path), "--workdir", str(wd)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "dagster" not in err.lower()
    assert "failed gate(s):" in err
    assert "fidelity_pair_trends:" in err and "[gates.pair_trends_min]" in err
    assert "report: " in err and err.strip().splitlines()[-1].startswith("summary: ")


def test_recovery_after_a_failed_gate_regenerates_at_zero_budget(tmp_path, demo_url, capsys):
    """Strict gate -> blocked (exit 3) -> relax it -> regenerate from the same metrics pack:
    the report, the checks and the load agree, and the ledger holds the one spend only."""
    import yaml

    from synth_assets.core import budget
    from synth_assets.core.secrets import init_local_secrets
    from synth_assets.core.store import read_json
    from synth_assets_tests.conftest import SESSION, make_config

    wd = tmp_path / "wd"
    init_local_secrets(wd / "secrets")
    strict = make_config(demo_url, gates={"pair_trends_min": 1.0})  # never calibrated down
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(strict.to_json()))
    assert main(["refresh", "--config", str(path), "--workdir", str(wd)]) == 3
    err = capsys.readouterr().err
    blocked = err.split("refresh ", 1)[1].split(" ", 1)[0]
    key, _ = budget.source_key(strict.source.url, strict.source.db_schema)
    spent = {
        e["refresh_id"]: e["epsilon"] for e in budget.standing(SESSION["target"], key, 1e9).entries
    }
    assert spent[blocked] > 0

    relaxed = make_config(demo_url)  # the operator relaxes the gate
    path.write_text(yaml.safe_dump(relaxed.to_json()))
    args = ["regenerate", "--refresh-id", blocked, "--config", str(path), "--workdir", str(wd)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"regenerated from the metrics pack of {blocked}: no budget spent" in out
    rid = out.split("refresh ", 1)[1].split(":", 1)[0]
    after = {
        e["refresh_id"]: e["epsilon"] for e in budget.standing(SESSION["target"], key, 1e9).entries
    }
    assert after == spent  # no new spend, the blocked refresh's unchanged
    rdir = wd / "runs" / rid
    summary, report = (
        read_json(rdir / "summary.json"),
        read_json(rdir / "report" / "privacy_report.json"),
    )
    assert summary["passed"] and report["passed"] and report["refresh_id"] == rid
    assert read_json(rdir / "spec.json")["pack_refresh_id"] == blocked
    assert read_json(rdir / "load.json")["refresh_id"] == rid
    assert all(c["passed"] for c in summary["checks"].values())
    # the same named Dagster jobs the UI's "regenerate_from_spec" runs, recorded in the instance
    import dagster as dg

    from synth_assets.defs.constants import REFRESH_TAG
    from synth_assets.orchestrate import instance_for

    runs = instance_for(wd).get_runs(filters=dg.RunsFilter(tags={REFRESH_TAG: rid}))
    assert sorted(r.job_name for r in runs) == [
        "generate_and_load",
        "publish_refresh",
        "regenerate_from_spec",
    ]
    assert all(r.is_success for r in runs)
