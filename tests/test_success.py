"""Success criteria, the wrapper that reports them, and success in training metrics and evaluation."""

import gymnasium as gym
import numpy as np
import pytest
from envs import FixedEpisodeEnv

from ppolearn import PPO
from ppolearn.config import build_config
from ppolearn.envs import SuccessInfo
from ppolearn.errors import ConfigError
from ppolearn.evaluation import evaluate_policy

TINY = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 1, "net_arch": [16]}


def _run(env, action, steps):
    env.reset(seed=0)
    infos = []
    for _ in range(steps):
        *_, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            break
    return infos


def test_cartpole_balanced_succeeds_only_at_the_time_limit():
    env = SuccessInfo(gym.make("CartPole-v1", max_episode_steps=5), "cartpole_balanced")
    env.reset(seed=0)
    infos = []
    for t in range(5):
        infos.append(env.step(t % 2)[4])  # alternate pushes: the pole cannot fall in 5 steps
    assert [i["is_success"] for i in infos] == [False] * 4 + [True]
    falls = _run(SuccessInfo(gym.make("CartPole-v1"), "cartpole_balanced"), 1, 500)  # always right: it falls
    assert len(falls) < 500 and not falls[-1]["is_success"]


def test_mountain_car_flag_is_the_termination():
    infos = _run(SuccessInfo(gym.make("MountainCar-v0"), "mountain_car_flag"), 1, 200)
    assert len(infos) == 200 and not any(i["is_success"] for i in infos)  # idling never reaches the flag
    env = SuccessInfo(gym.make("MountainCar-v0"), "mountain_car_flag")
    env.reset(seed=0)
    env.unwrapped.state = np.array([0.49, 0.07])  # one step before the flag, moving towards it
    assert env.step(2)[4]["is_success"]


def test_pendulum_upright_must_hold_for_twenty_steps():
    env = SuccessInfo(gym.make("Pendulum-v1"), "pendulum_upright")
    env.reset(seed=0)
    env.unwrapped.state = np.array([0.0, 0.0])  # balanced upright: with no torque it stays near the top
    flags = [env.step(np.zeros(1, np.float32))[4]["is_success"] for _ in range(20)]
    assert flags == [False] * 19 + [True]


def test_custom_condition_and_unknown_name():
    env = SuccessInfo(FixedEpisodeEnv(length=3), lambda env, obs, term, trunc: obs[1] > 0.15, hold_steps=1)
    env.reset()
    assert [env.step(np.zeros(1, np.float32))[4]["is_success"] for _ in range(3)] == [False, True, True]
    with pytest.raises(ConfigError, match="unknown success criterion"):
        SuccessInfo(FixedEpisodeEnv(), "reached_mars")


def test_config_validates_success_names():
    assert build_config({"success": "acrobot_height"}).success == "acrobot_height"
    with pytest.raises(ConfigError, match="success='nope'"):
        build_config({"success": "nope"})


def test_training_and_eval_report_the_presets_criterion():
    model = PPO("CartPole-v1", verbose=0, **TINY)  # the preset names cartpole_balanced
    assert model.config.success == "cartpole_balanced"
    model.learn(2048)
    assert model.recent_episode_metrics()["success_rate"] == 0.0  # known (not NaN): an untrained pole falls
    result = evaluate_policy(model, episodes=2)
    assert result["success_rate"] == 0.0 and result["mean_steps_to_success"] is None


def test_eval_reports_mean_steps_to_success():
    model = PPO("envs:FixedEpisodeEnv", verbose=0, **TINY)  # is_success first true at the last of 3 steps
    result = evaluate_policy(model, episodes=3)
    assert result["success_rate"] == 1.0 and result["mean_steps_to_success"] == 3.0
    no_info = evaluate_policy(PPO("Pendulum-v1", verbose=0, success=None, **TINY), episodes=1)
    assert no_info["success_rate"] is None and no_info["mean_steps_to_success"] is None
