"""ppolearn/PointReach-v0: Gymnasium's checker, the target-state success rule, options, rendering."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import ppolearn.envs  # noqa: F401  (registers ppolearn/PointReach-v0)
from ppolearn import PPO
from ppolearn.envs.point_reach import PointReachEnv


@pytest.mark.parametrize("kwargs", [{}, {"dim": 3, "sparse": True}, {"dim": 1, "target_radius": 0.2}])
def test_passes_gymnasiums_env_checker(kwargs):
    check_env(PointReachEnv(**kwargs, render_mode="rgb_array"), skip_render_check=False)


def test_registered_with_a_time_limit():
    env = gym.make("ppolearn/PointReach-v0")
    assert env.spec.max_episode_steps == 100
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}


def _place(env, pos, vel, goal):
    env.reset(seed=0)
    env.pos, env.vel, env.goal = np.array(pos, float), np.array(vel, float), np.array(goal, float)


def test_success_needs_the_target_state_not_a_fly_through():
    env = PointReachEnv()
    _place(env, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0])
    assert env.step(np.zeros(2))[4]["is_success"]  # at rest on the target
    _place(env, [-0.1, 0.0], [1.0, 0.0], [0.0, 0.0])
    *_, info = env.step(np.zeros(2))
    assert np.linalg.norm(env.pos - env.goal) < env.target_radius and not info["is_success"]  # too fast


def test_dense_and_sparse_rewards_and_walls():
    dense, sparse = PointReachEnv(), PointReachEnv(sparse=True)
    _place(dense, [0.5, 0.0], [0.0, 0.0], [0.0, 0.0])
    _place(sparse, [0.5, 0.0], [0.0, 0.0], [0.0, 0.0])
    assert dense.step(np.zeros(2))[1] == pytest.approx(-0.5) and sparse.step(np.zeros(2))[1] == -1.0
    _place(dense, [0.99, 0.0], [2.0, 0.0], [0.0, 0.0])
    dense.step(np.ones(2))
    assert dense.pos[0] == 1.0 and dense.vel[0] == 0.0  # the wall stopped it


def test_renders_frames_and_a_model_predicts_single_dict_observations():
    env = gym.make("ppolearn/PointReach-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert env.render().shape == (200, 200, 3)
    model = PPO("ppolearn/PointReach-v0", verbose=0, n_steps=32, num_envs=2, batch_size=32, n_epochs=1)
    action, _ = model.predict(obs)
    assert action.shape == (2,)
