"""Collecting trajectories: the rollout buffer and ``rollout()`` (step 3 of the PPO-Clip pseudocode).

The buffer is preallocated once, time-major (n_steps, num_envs, ...), and filled in place; ``batch()``
hands the update the tutorial's ``batch_obs``, ``batch_acts``, ``batch_log_probs`` and ``batch_rtgs``
(plus values and GAE advantages) as flat tensors. ``rollout()`` takes any :class:`VecEnv`, so the same
code runs Gymnasium vector envs, batched tensor envs, and remote workers' slices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional

import torch

from ppolearn.envs.spaces import ActionSpec
from ppolearn.envs.vector import VecEnv
from ppolearn.networks import Actor, Critic
from ppolearn.normalize import ObsNormalizer, RewardScaler
from ppolearn.returns import compute_gae


@dataclass
class RolloutBatch:
    """One rollout, flattened over (time, env): what update() iterates over in minibatches."""

    obs: torch.Tensor  # the tutorial's batch_obs (normalised as the policy saw them)
    acts: torch.Tensor  # batch_acts (unclipped Gaussian samples, or integer choices: an index or one per entry)
    log_probs: torch.Tensor  # batch_log_probs under the policy that collected them
    values: torch.Tensor  # V(s) at collection time (for value clipping and explained variance)
    advantages: torch.Tensor  # GAE(lambda) advantages
    rtgs: torch.Tensor  # batch_rtgs: the returns the critic regresses onto (advantages + values)

    def __len__(self) -> int:
        return self.obs.shape[0]

    def select(self, index: torch.Tensor | slice) -> RolloutBatch:
        """The rows at ``index`` of every field; a slice returns views, so it copies nothing."""
        return RolloutBatch(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


@dataclass
class EpisodeStats:
    """Episodes that ended during a rollout: undiscounted return, length, success (NaN if unknown)."""

    returns: torch.Tensor
    lengths: torch.Tensor
    successes: torch.Tensor

    @classmethod
    def empty(cls) -> EpisodeStats:
        return cls(torch.zeros(0), torch.zeros(0, dtype=torch.int64), torch.zeros(0))


class RolloutBuffer:
    """Preallocated storage for one rollout of n_steps from num_envs environments."""

    def __init__(self, n_steps: int, num_envs: int, obs_dim: int, action: ActionSpec, device: torch.device) -> None:
        shape = (n_steps, num_envs)
        self.n_steps = n_steps
        self.obs = torch.zeros(*shape, obs_dim, device=device)
        # Box samples as floats; every other kind as int64 choices, one per entry (a single Discrete: one)
        dtype = torch.int64 if action.integer else torch.float32
        self.acts = torch.zeros(*shape, *action.buffer_shape, dtype=dtype, device=device)
        self.log_probs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, dtype=torch.bool, device=device)
        self.last_value = torch.zeros(num_envs, device=device)

    def batch(self, gamma: float, gae_lambda: float) -> RolloutBatch:
        """Advantages (step 5 of the pseudocode) and returns, flattened for minibatching."""
        advantages, rtgs = compute_gae(self.rewards, self.values, self.dones, self.last_value, gamma, gae_lambda)
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731 - (T, N, ...) -> (T*N, ...)
        return RolloutBatch(
            obs=flat(self.obs),
            acts=flat(self.acts),
            log_probs=flat(self.log_probs),
            values=flat(self.values),
            advantages=flat(advantages),
            rtgs=flat(rtgs),
        )


@torch.no_grad()
def rollout(
    actor: Actor,
    critic: Critic,
    env: VecEnv,
    buffer: RolloutBuffer,
    next_obs: torch.Tensor,
    obs_norm: ObsNormalizer,
    reward_scaler: RewardScaler,
    gamma: float,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, EpisodeStats]:
    """Run the current policy for buffer.n_steps in every environment, filling the buffer.

    ``next_obs`` is the raw observation to continue from; the raw observation after the last step is
    returned with the episodes that ended. Following the tutorial's flow: get_action -> step -> store.
    """
    ended: List[tuple] = []
    for t in range(buffer.n_steps):
        obs = obs_norm(next_obs, update=True)
        action, log_prob = actor.sample(obs, generator)  # the tutorial's get_action()
        buffer.obs[t] = obs
        buffer.acts[t] = action
        buffer.log_probs[t] = log_prob
        buffer.values[t] = critic(obs)

        step = env.step(action)  # Box actions are clipped to the bounds inside; the buffer keeps the sample
        done = step.terminated | step.truncated
        reward = reward_scaler(step.reward, done)
        if done.any():  # most steps end no episode: one check for both cases below
            # A time limit is not a real end: add the value the episode would still have earned (bootstrap).
            timeout = step.truncated & ~step.terminated
            if timeout.any():
                final_value = critic(obs_norm(step.final_obs))
                reward = reward + gamma * torch.where(timeout, final_value, torch.zeros_like(final_value))
            ended.append((step.episode_return[done], step.episode_length[done], step.episode_success[done]))
        buffer.rewards[t] = reward
        buffer.dones[t] = done
        next_obs = step.obs

    buffer.last_value = critic(obs_norm(next_obs))
    if not ended:
        return next_obs, EpisodeStats.empty()
    returns, lengths, successes = (torch.cat(parts).cpu() for parts in zip(*ended))
    return next_obs, EpisodeStats(returns, lengths, successes)
