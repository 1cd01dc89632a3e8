from pathlib import Path

import pytest

from ppolearn.config import (
    PPOConfig,
    build_config,
    list_presets,
    load_preset,
    load_yaml,
    parse_overrides,
)
from ppolearn.errors import ConfigError


def test_defaults_are_valid():
    cfg = build_config()
    assert cfg == PPOConfig()
    assert cfg.rollout_size == cfg.n_steps * cfg.num_envs


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("clip_range", 1.5, "clip_range=1.5 is not allowed: must be in (0, 1)"),
        ("gamma", 0, "gamma=0.0 is not allowed: must be in (0, 1]"),
        ("total_timesteps", -5, "total_timesteps=-5 is not allowed: must be a positive integer"),
        ("learning_rate", "fast", "learning_rate='fast' is not allowed: expected a number"),
        ("n_steps", 2.5, "n_steps=2.5 is not allowed: expected an integer"),
        ("vec_env", "threads", "vec_env='threads' is not allowed: must be 'sync' or 'async'"),
        ("net_arch", [64, 0], "net_arch=[64, 0] is not allowed"),
        ("normalize_obs", "maybe", "normalize_obs='maybe' is not allowed: expected true or false"),
        ("learning_rate", float("nan"), "learning_rate=nan is not allowed"),
    ],
)
def test_bad_values_name_field_value_and_rule(key, value, message):
    with pytest.raises(ConfigError) as err:
        build_config({key: value})
    assert message in str(err.value)


def test_batch_must_divide_rollout():
    with pytest.raises(ConfigError, match="must divide n_steps \\* num_envs = 2048"):
        build_config({"batch_size": 100})
    with pytest.raises(ConfigError, match="larger than one rollout"):
        build_config({"n_steps": 4, "num_envs": 2, "batch_size": 64})


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown config key 'learnig_rate'; did you mean 'learning_rate'"):
        build_config({"learnig_rate": 1e-3})


def test_strings_from_yaml_and_cli_are_coerced():
    cfg = build_config({"total_timesteps": "1e5", "learning_rate": "3e-4", "target_kl": "null", "anneal_lr": "true"})
    assert cfg.total_timesteps == 100_000 and isinstance(cfg.total_timesteps, int)
    assert cfg.learning_rate == 3e-4 and cfg.target_kl is None and cfg.anneal_lr is True


def test_zoo_aliases():
    cfg = build_config({"n_envs": 4, "n_timesteps": 1000, "normalize": False, "batch_size": 32})
    assert (cfg.num_envs, cfg.total_timesteps, cfg.normalize_obs, cfg.normalize_reward) == (4, 1000, False, False)


def test_layers_later_wins():
    cfg = build_config({"gamma": 0.9, "n_epochs": 3}, {"gamma": 0.95})
    assert cfg.gamma == 0.95 and cfg.n_epochs == 3


def test_parse_overrides():
    assert parse_overrides(["gamma=0.9", "net_arch=[32, 32]", "target_kl=null"]) == {
        "gamma": 0.9,
        "net_arch": [32, 32],
        "target_kl": None,
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["gamma"])


def test_every_preset_is_valid():
    assert {"CartPole-v1", "Acrobot-v1", "Pendulum-v1"} <= set(list_presets())
    for env_id in list_presets():
        build_config(load_preset(env_id))


def test_every_benchmark_config_is_valid():
    """The configs BENCHMARKS.md's commands pass with --config (over the env's preset) build as they are."""
    configs = sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        env_id = path.stem.split("_")[0]  # FrozenLake-v1_8x8.yaml: FrozenLake-v1
        preset = load_preset(env_id) if env_id in list_presets() else {}
        assert build_config({**preset, **load_yaml(path)}).total_timesteps > 0, path


def test_yaml_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gamma: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_yaml(listy)
