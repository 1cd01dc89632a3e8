"""Truncation bootstraps from V(final observation); termination does not (Gymnasium 1.x SAME_STEP autoreset)."""

import pytest
import torch
from envs import FixedEpisodeEnv

from ppolearn.envs import GymVecEnv
from ppolearn.networks import Critic, GaussianActor
from ppolearn.normalize import ObsNormalizer, RewardScaler
from ppolearn.policy import Policy
from ppolearn.rollout import RolloutBuffer, rollout

GAMMA = 0.9


def constant_critic(value: float) -> Critic:
    critic = Critic(2, [4])
    with torch.no_grad():
        for p in critic.parameters():
            p.zero_()
        critic.net[-1].bias.fill_(value)
    return critic


def run(truncate: bool, value: float = 5.0):
    env = GymVecEnv(lambda: FixedEpisodeEnv(length=3, truncate=truncate), num_envs=2)
    buffer = RolloutBuffer(7, 2, env.obs_spec, env.action_spec, torch.device("cpu"))
    obs = env.reset(seed=0)
    _, episodes = rollout(
        Policy(None, GaussianActor(2, 1, [4]), constant_critic(value)),
        env,
        buffer,
        obs,
        ObsNormalizer(2, 10.0, enabled=False),
        RewardScaler(2, GAMMA, 10.0, enabled=False),
        GAMMA,
    )
    env.close()
    return buffer, episodes


def test_termination_is_not_bootstrapped():
    buffer, episodes = run(truncate=False)
    assert buffer.dones[:, 0].tolist() == [False, False, True, False, False, True, False]
    assert torch.all(buffer.rewards == 1.0)
    assert episodes.returns.tolist() == [3.0] * 4 and episodes.lengths.tolist() == [3] * 4
    assert episodes.successes.tolist() == [1.0] * 4  # info["is_success"] of the final step


def test_truncation_adds_discounted_value_of_final_observation():
    buffer, _ = run(truncate=True, value=5.0)
    ended = buffer.dones[:, 0]
    assert ended.tolist() == [False, False, True, False, False, True, False]
    assert torch.allclose(buffer.rewards[ended], torch.full_like(buffer.rewards[ended], 1.0 + GAMMA * 5.0))
    assert torch.all(buffer.rewards[~ended] == 1.0)


def test_after_an_episode_end_the_next_observation_is_a_reset_one():
    buffer, _ = run(truncate=True)
    # FixedEpisodeEnv: obs[1] is t/10, 0 right after reset
    assert buffer.obs[:, 0, 1].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.0, 0.1, 0.2, 0.0])


def test_last_value_bootstraps_the_unfinished_episode():
    buffer, _ = run(truncate=False, value=5.0)
    assert torch.allclose(buffer.last_value, torch.full((2,), 5.0))
