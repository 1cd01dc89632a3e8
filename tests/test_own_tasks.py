"""ppolearn's proof tasks: a memory T-maze, a MultiDiscrete grid reach, a MultiBinary lamp switch."""

import gymnasium as gym
import numpy as np
import pytest

from ppolearn.envs import ActionSpec, make_env
from ppolearn.envs.cue_memory import FORWARD, LEFT, RIGHT


def _episode(env, policy, seed):
    obs, info = env.reset(seed=seed)
    observations, total = [obs], 0.0
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs, env))
        observations.append(obs)
        total += reward
        if terminated or truncated:
            return observations, total, info["is_success"], terminated


@pytest.mark.parametrize("env_id", ["ppolearn/CueMemory-v0", "ppolearn/GridReach-v0", "ppolearn/LampSwitch-v0"])
def test_registered_with_a_time_limit(env_id):
    env = make_env(env_id)
    assert env.spec.max_episode_steps is not None
    env.reset(seed=0)
    env.close()


def test_cue_memory_with_memory_always_succeeds():
    env = make_env("ppolearn/CueMemory-v0")
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        side = RIGHT if obs[0] > 0 else LEFT  # remembered from the first observation
        for _ in range(env.unwrapped.length):
            obs, *_ = env.step(FORWARD)
        assert obs[2] == 1.0 and obs[0] == 0.0  # at the junction, cue hidden
        _, reward, terminated, _, info = env.step(side)
        assert terminated and reward == 1.0 and info["is_success"]


def test_cue_memory_hides_the_cue_after_the_first_observation():
    env = make_env("ppolearn/CueMemory-v0")
    cues = set()
    walks = []
    for seed in range(10):
        observations, _, _, _ = _episode(env, lambda obs, env: FORWARD if obs[2] < 1 else LEFT, seed)
        cues.add(float(observations[0][0]))
        walks.append(np.stack(observations[1:]))
    assert cues == {-1.0, 1.0}  # both sides are drawn
    assert all(np.array_equal(w, walks[0]) for w in walks)  # the same walk looks the same whatever the cue


def test_cue_memory_feed_forward_deterministic_policy_is_at_chance():
    """The best memoryless deterministic policy: turn right at the junction; right on half the episodes."""
    env = make_env("ppolearn/CueMemory-v0")
    wins = [_episode(env, lambda obs, env: FORWARD if obs[2] < 1 else RIGHT, s)[2] for s in range(200)]
    assert 0.4 < np.mean(wins) < 0.6


def test_cue_memory_wrong_turn_fails_and_waiting_truncates():
    env = make_env("ppolearn/CueMemory-v0")
    obs, _ = env.reset(seed=1)
    wrong = LEFT if obs[0] > 0 else RIGHT
    for _ in range(env.unwrapped.length):
        env.step(FORWARD)
    _, reward, terminated, _, info = env.step(wrong)
    assert terminated and reward == -1.0 and not info["is_success"]
    _, _, success, terminated = _episode(env, lambda obs, env: LEFT, 2)  # turning in the corridor does nothing
    assert not success and not terminated


def test_grid_reach_greedy_policy_arrives_in_the_chebyshev_distance():
    env = make_env("ppolearn/GridReach-v0")
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
    for seed in range(20):
        env.reset(seed=seed)
        distance = int(np.abs(env.unwrapped.pos - env.unwrapped.target).max())

        def greedy(obs, env):
            return np.sign(env.unwrapped.target - env.unwrapped.pos) + 1

        observations, total, success, terminated = _episode(env, greedy, seed)
        assert success and terminated and len(observations) - 1 == distance
        assert total == pytest.approx(0.1 * distance + 1.0)


def test_lamp_switch_flipping_the_mismatched_lamps_succeeds_in_one_step():
    env = make_env("ppolearn/LampSwitch-v0")
    assert isinstance(env.action_space, gym.spaces.MultiBinary)
    n = env.unwrapped.n
    for seed in range(20):
        observations, total, success, terminated = _episode(env, lambda obs, env: obs[:n] ^ obs[n:], seed)
        assert success and terminated and len(observations) == 2
        assert np.array_equal(env.unwrapped.lamps, env.unwrapped.target)


def test_lamp_switch_start_differs_from_target_and_ppolearn_takes_its_spaces():
    env = make_env("ppolearn/LampSwitch-v0")
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        assert not np.array_equal(obs[: env.unwrapped.n], obs[env.unwrapped.n :])
    spec = ActionSpec.from_space(env.action_space)
    assert spec.dim == env.unwrapped.n
