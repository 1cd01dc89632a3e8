"""GymVecEnv's own sync stepping (``_step_each``) against Gymnasium's SyncVectorEnv.step: the same
observations, rewards, episode ends, final observations, successes and action masks, field by field."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from envs import GoalDictEnv, InfoMaskedChoiceEnv, MultiDiscreteActionEnv, TupleObsEnv

from ppolearn.envs import GymVecEnv
from ppolearn.envs.vector import StepResult

CASES = [
    ("CartPole-v1", {}),  # terminations
    ("Pendulum-v1", {"success": "pendulum_upright", "env_kwargs": {"max_episode_steps": 9}}),  # truncations
    ("MountainCar-v0", {"env_kwargs": {"max_episode_steps": 7}}),
    (lambda: GoalDictEnv(), {}),  # Dict observations with is_success
    (lambda: TupleObsEnv(), {}),  # Tuple observations, one-step episodes
    (lambda: MultiDiscreteActionEnv(), {}),
    (lambda: InfoMaskedChoiceEnv(), {}),  # masks from info, also after autoreset
]


def _same(a: StepResult, b: StepResult) -> None:
    for name, x, y in zip(StepResult._fields, a, b):
        for key in x if isinstance(x, dict) else [None]:
            u, v = (x[key], y[key]) if key is not None else (x, y)
            assert u.dtype == v.dtype, name
            assert torch.equal(torch.nan_to_num(u, nan=-7.0), torch.nan_to_num(v, nan=-7.0)), name


def _random_actions(env: GymVecEnv, rng: np.random.Generator) -> torch.Tensor:
    """What a policy hands step(): floats in the bounds, or 0-based choices (valid ones where masked)."""
    space = env.single_action_space
    if isinstance(space, gym.spaces.Box):
        return torch.as_tensor(rng.uniform(space.low, space.high, (env.num_envs, *space.shape)), dtype=torch.float32)
    if env.masked:
        return torch.as_tensor([rng.choice(np.flatnonzero(row)) for row in env.action_masks().numpy()])
    nvec = np.atleast_1d(space.nvec if isinstance(space, gym.spaces.MultiDiscrete) else space.n)
    choices = np.stack([rng.integers(0, n, env.num_envs) for n in nvec], axis=1)
    return torch.as_tensor(choices if isinstance(space, gym.spaces.MultiDiscrete) else choices[:, 0])


@pytest.mark.parametrize("env,kwargs", CASES)
def test_own_sync_step_is_gymnasiums(env, kwargs):
    ours, gyms = GymVecEnv(env, 3, **kwargs), GymVecEnv(env, 3, **kwargs)
    gyms._sync = False  # step through SyncVectorEnv.step and its merged infos, as the async path reads them
    assert ours._sync
    first_ours, first_gyms = ours.reset(seed=5), gyms.reset(seed=5)
    _same(StepResult(*[first_ours] * 8), StepResult(*[first_gyms] * 8))
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(60):
        actions = _random_actions(ours, rng)
        a, b = ours.step(actions), gyms.step(actions)
        _same(a, b)
        if ours.masked:
            assert torch.equal(ours.action_masks(), gyms.action_masks())
        ended += int((a.terminated | a.truncated).sum())
    assert ended > 0  # the autoreset path ran
    ours.close(), gyms.close()
