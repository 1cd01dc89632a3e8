"""The batched clones against Gymnasium's own environments: same states + same actions -> same outputs.

Each step, every clone environment is put in exactly the state its Gymnasium twin is in (so float rounding
cannot accumulate into chaotic divergence), both take the same action, and observation, reward,
terminated and truncated must agree. Some twins start close to the time limit so truncation at 200 / 500 /
999 steps is checked too. Tolerance: atol 1e-5 with a float64 clone (Gymnasium computes in float64 and
returns float32 observations), atol 1e-4 (relative 1e-5 on rewards) with the default float32 clone.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ppolearn.envs import batched_ids, make_env, make_vec_env, official_id
from ppolearn.envs.registry import batched_class

N_ENVS = 6
STEPS = 600  # crosses CartPole's and Acrobot's 500-step limit; the near-limit twins cover 200 and 999


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit:
    while not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env


def _state(env: gym.Env) -> np.ndarray:
    return np.asarray(env.unwrapped.state, dtype=np.float64)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
@pytest.mark.parametrize("env_id", batched_ids())
def test_clone_matches_gymnasium_step_by_step(env_id, dtype, atol):
    clone = batched_class(env_id)(N_ENVS, dtype=dtype)
    clone.reset(seed=0)
    twins = [make_env(official_id(env_id)) for _ in range(N_ENVS)]
    limit = clone.max_episode_steps
    for i, twin in enumerate(twins):
        twin.reset(seed=i)
        if i % 2:  # start half of them near the time limit so truncation is compared as well
            _time_limit(twin)._elapsed_steps = limit - 20 - i
            clone.elapsed[i] = limit - 20 - i
    rng = np.random.default_rng(0)
    returns, lengths = np.zeros(N_ENVS), np.array([int(clone.elapsed[i]) for i in range(N_ENVS)])
    saw_truncation = False
    for _ in range(STEPS):
        clone.state = torch.as_tensor(np.stack([_state(t) for t in twins]), dtype=dtype)
        if clone.action_spec.is_discrete:
            actions = rng.integers(0, clone.action_spec.dim, N_ENVS)
            env_actions = actions
        else:  # beyond the bounds on purpose: both sides must clip the same way (as GymVecEnv does)
            actions = rng.uniform(-1.5, 1.5, (N_ENVS, 1)).astype(np.float32) * np.float32(clone.action_spec.high[0])
            env_actions = clone.action_spec.to_env(actions, batched=True)
        step = clone.step(torch.as_tensor(actions))
        for i, twin in enumerate(twins):
            obs, reward, terminated, truncated, _ = twin.step(env_actions[i])
            returns[i] += reward
            lengths[i] += 1
            assert bool(step.terminated[i]) == terminated, f"{env_id} env {i}: terminated differs"
            assert bool(step.truncated[i]) == truncated, f"{env_id} env {i}: truncated differs"
            np.testing.assert_allclose(step.reward[i].item(), reward, atol=atol, rtol=1e-5)
            np.testing.assert_allclose(step.final_obs[i].numpy(), obs, atol=atol, rtol=1e-5)
            if terminated or truncated:
                saw_truncation |= truncated
                assert step.episode_length[i].item() == lengths[i]
                np.testing.assert_allclose(step.episode_return[i].item(), returns[i], rtol=1e-4, atol=1e-3)
                twin.reset(seed=int(rng.integers(1 << 30)))
                returns[i], lengths[i] = 0.0, 0
            else:
                np.testing.assert_allclose(step.obs[i].numpy(), obs, atol=atol, rtol=1e-5)
    assert saw_truncation, f"{env_id}: the time limit was never reached"


@pytest.mark.parametrize("env_id", batched_ids())
def test_reset_draws_from_the_official_start_distribution(env_id):
    clone = make_vec_env(env_id, 4096)
    obs = clone.reset(seed=1).numpy()
    space = make_env(official_id(env_id)).observation_space
    assert obs.shape == (4096, space.shape[0]) and obs.dtype == np.float32
    assert all(space.contains(o) for o in obs[:64])
    again = make_vec_env(env_id, 4096).reset(seed=1).numpy()
    assert np.array_equal(obs, again)  # seeded resets are reproducible


def test_autoreset_hands_back_final_obs_and_fresh_starts():
    env = make_vec_env("ppolearn/Pendulum-v1", 8)
    env.reset(seed=0)
    for _ in range(199):
        step = env.step(torch.zeros(8, 1))
    assert not step.truncated.any()
    step = env.step(torch.zeros(8, 1))
    assert step.truncated.all() and (step.episode_length == 200).all()
    assert not torch.equal(step.obs, step.final_obs)  # obs is already the next episode's first observation
    assert (env.elapsed == 0).all()
