import pytest

from synth_assets.core.config import load_config, parse_config
from synth_assets.core.errors import ConfigError


def test_defaults_are_valid():
    cfg = parse_config({})
    assert cfg.privacy.epsilon == 1.0
    assert cfg.source.url.startswith("embedded:")


@pytest.mark.parametrize("eps", [0, -1])
def test_non_positive_epsilon_is_refused_with_the_fix(eps):
    with pytest.raises(ConfigError, match=r"privacy.epsilon must be > 0"):
        parse_config({"privacy": {"epsilon": eps}})


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"privacy.epsilonn: unknown key"):
        parse_config({"privacy": {"epsilonn": 1}})


def test_malformed_yaml_names_the_line(tmp_path):
    p = tmp_path / "synth.yaml"
    p.write_text("privacy:\n  epsilon: [1\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line"):
        load_config(p)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_role_override_lists_roles():
    with pytest.raises(ConfigError, match="is not a role"):
        parse_config({"columns": {"t.c": "secret"}})


def test_unsafe_target_schema_is_refused():
    with pytest.raises(ConfigError, match="not a safe identifier"):
        parse_config({"target": {"schema": "synth; drop"}})


def test_split_must_add_up_to_one():
    with pytest.raises(ConfigError, match="add up to 1"):
        parse_config(
            {
                "privacy": {
                    "split": {
                        "bounds": 0.5,
                        "one_way": 0.5,
                        "select": 0.5,
                        "pairs": 0.1,
                        "fanout": 0.1,
                        "temporal": 0.1,
                    }
                }
            }
        )


def test_tables_mentioned_collects_every_section():
    cfg = parse_config(
        {
            "columns": {"a.x": "numeric"},
            "bounds": {"b.y": [0, 1]},
            "overrides": {"rows": {"c": 5}},
            "privacy": {"unit_table": "d"},
        }
    )
    assert cfg.table_names_mentioned() == {"a", "b", "c", "d"}
