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


def test_a_failed_gate_exits_3_and_bad_input_2(workdir, demo_url, capsys, monkeypatch):
    """Schedulers and operators tell "fix your input" (2) from "the data did not pass" (3)."""
    from synth_assets import orchestrate
    from synth_assets.core.errors import GateFailed

    def blocked(*args, **kwargs):
        raise GateFailed("refresh r1 stopped: privacy_dcr_share 0.55 > 0.52")

    monkeypatch.setattr(orchestrate, "run_refresh", blocked)
    assert main(["refresh", "--source", demo_url, "--workdir", str(workdir)]) == 3
    assert "gate failed: refresh r1 stopped" in capsys.readouterr().err
