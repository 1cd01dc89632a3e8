"""Potential-based goal shaping: the reward is r + gamma * Phi(s') - Phi(s), only where asked, only on goals."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import ppolearn.ppo as ppo_module
from ppolearn import PPO, PPOConfig
from ppolearn.cli import main
from ppolearn.envs import make_env
from ppolearn.envs.goal_shaping import GoalShapedEnv, PotentialShaping, training_env
from ppolearn.errors import ConfigError, EnvError

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from envs import GoalDictEnv  # noqa: E402

TINY = [
    "--total-timesteps",
    "64",
    "--set",
    "n_steps=16",
    "--set",
    "num_envs=2",
    "--set",
    "batch_size=32",
    "--set",
    "eval_every=0",
]


def _phi(obs, scale):
    return -abs(float(obs["achieved_goal"][0]) - float(obs["desired_goal"][0])) / scale


@pytest.mark.parametrize("actions", [[2] * 20, [1] * 20, [0, 0, 2, 1, 2] * 4])
def test_reward_is_r_plus_gamma_phi_next_minus_phi(actions):
    gamma, scale = 0.9, 0.5
    raw, shaped = GoalDictEnv(), PotentialShaping(GoalDictEnv(), gamma, scale)
    obs, _ = raw.reset(seed=3)
    shaped_obs, _ = shaped.reset(seed=3)
    ends = []
    for action in actions:
        before = _phi(obs, scale)
        obs, r, terminated, truncated, _ = raw.step(action)
        shaped_obs, f, s_term, s_trunc, info = shaped.step(action)
        assert (s_term, s_trunc) == (terminated, truncated) and info["unshaped_reward"] == r
        after = 0.0 if terminated else _phi(obs, scale)  # absorbing state: Phi = 0; a time limit: the real Phi
        assert f == pytest.approx(r + gamma * after - before)
        if terminated or truncated:
            ends.append("terminated" if terminated else "truncated")
            break
    assert ends  # every action sequence above ends its episode (goal reached or the 20-step limit)


def test_the_shaping_terms_telescope_over_an_episode():
    gamma, scale = 1.0, 0.25
    env = PotentialShaping(GoalDictEnv(), gamma, scale)
    obs, _ = env.reset(seed=0)
    start, total_shaping = _phi(obs, scale), 0.0
    for _ in range(20):
        obs, f, terminated, truncated, info = env.step(1)  # stand still: the time limit truncates
        total_shaping += f - info["unshaped_reward"]
        if terminated or truncated:
            break
    assert truncated and total_shaping == pytest.approx(_phi(obs, scale) - start)


def test_scale_defaults_to_the_envs_distance_threshold():
    base = GoalDictEnv()
    base.distance_threshold = 0.05
    assert PotentialShaping(base, 0.99).scale == 0.05
    assert PotentialShaping(GoalDictEnv(), 0.99).scale == 1.0
    assert PotentialShaping(GoalDictEnv(), 0.99, scale=0.2).scale == 0.2


def test_off_by_default_and_the_spec_is_the_task_itself():
    assert PPOConfig().goal_shaping is None and PPOConfig().goal_shaping_scale is None
    assert training_env("FetchReach-v4", None, 0.95) == "FetchReach-v4"
    spec = training_env("envs:GoalDictEnv", "potential", 0.95)
    assert isinstance(spec, GoalShapedEnv) and spec.env_id == spec.__name__ == "envs:GoalDictEnv"


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match=r"goal_shaping='pot' is not allowed: must be null or one of \['potential'\]"):
        PPOConfig().replace(goal_shaping="pot")


def test_refused_on_an_env_without_goals():
    with pytest.raises(EnvError, match=r"goal_shaping needs a goal-conditioned environment .*'CartPole-v1'"):
        GoalShapedEnv("CartPole-v1", 0.99)()


def test_cli_refuses_it_on_an_env_without_goals_in_one_line(tmp_path, capsys):
    args = ["train", "--env", "CartPole-v1", "--run-dir", str(tmp_path / "r"), "--quiet", *TINY]
    assert main([*args, "--set", "goal_shaping=potential"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("ppolearn: error: goal_shaping needs a goal-conditioned environment")
    assert "\n" not in err and "set goal_shaping=null" in err


def test_cli_trains_shaped_and_evaluates_the_raw_task(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "--env", "envs:GoalDictEnv", "--run-dir", str(run_dir), "--quiet", *TINY]
    assert main([*args, "--set", "goal_shaping=potential", "--set", "goal_shaping_scale=0.25"]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env"] == "envs:GoalDictEnv" and config["goal_shaping"] == "potential"
    # the final evaluation is the raw task's: its returns are sums of the raw rewards (-|pos - goal| <= 0)
    result = json.loads((run_dir / "eval.json").read_text())
    assert all(r <= 0 for r in result["episode_returns"])
    model = PPO.load(run_dir / "model.pt", env="envs:GoalDictEnv")  # the saved config shapes it again
    assert isinstance(model.env.envs.envs[0], PotentialShaping) and model.env_id == "envs:GoalDictEnv"
    assert not isinstance(make_env(model.env_id), PotentialShaping)
    model.close()


def test_resume_keeps_shaping(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    args = ["train", "--env", "envs:GoalDictEnv", "--run-dir", str(run_dir), "--quiet", *TINY]
    assert main([*args, "--set", "goal_shaping=potential"]) == 0
    built = []
    monkeypatch.setattr(ppo_module, "training_env", lambda *a: built.append(training_env(*a)) or built[-1])
    assert main(["train", "--resume", str(run_dir), "--total-timesteps", "128", "--quiet"]) == 0
    assert len(built) == 1 and isinstance(built[0], GoalShapedEnv) and built[0].env_id == "envs:GoalDictEnv"
    assert np.isfinite(json.loads((run_dir / "eval.json").read_text())["mean_return"])


def test_the_python_api_shapes_the_training_envs_and_evaluates_the_raw_task():
    model = PPO("envs:GoalDictEnv", verbose=0, goal_shaping="potential", n_steps=16, batch_size=32, n_epochs=1)
    assert all(isinstance(e, PotentialShaping) for e in model.env.envs.envs)
    assert model.env_id == "envs:GoalDictEnv" and model.evaluator.env == "envs:GoalDictEnv"
    model.close()
