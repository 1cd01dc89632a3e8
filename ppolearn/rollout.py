"""Collecting trajectories: the rollout buffer and ``rollout()`` (step 3 of the PPO-Clip pseudocode).

The buffer is preallocated once, time-major (n_steps, num_envs, ...), and filled in place; ``batch()``
hands the update the tutorial's ``batch_obs``, ``batch_acts``, ``batch_log_probs`` and ``batch_rtgs``
(plus values and GAE advantages) as flat tensors. ``rollout()`` takes any :class:`VecEnv`, so the same
code runs Gymnasium vector envs, batched tensor envs, and remote workers' slices.

Observations are stored as the space needs them: the normalised vector as float32 (4 bytes per entry),
images as the uint8 the environment gave (1 byte per pixel and channel; scaled to [0, 1] only inside the
network). A 7x7x3 MiniGrid view with its one-hot direction takes 147 + 4 * 4 = 163 bytes per transition
instead of 604 as float32; an 84x84x4 Atari stack 28,224 instead of 112,896. Where the environment gives
invalid-action masks they are stored too (one bool per choice), so the update scores each action under
the mask it was sampled with.

With a memory core (ppolearn/memory.py) the buffer also keeps the hidden state each env started the rollout
from (S floats per env, once per rollout), and the batch carries the episode ends: the update re-runs the
core over each env's rollout from that state, resetting where an episode ended, and so sees the states the
rollout saw. A feed-forward policy stores neither and its steps do no extra work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Union

import torch

from ppolearn.envs.obs import Obs, obs_assign, obs_map
from ppolearn.envs.spaces import VECTOR_KEY, ActionSpec, ObsSpec
from ppolearn.envs.vector import VecEnv
from ppolearn.normalize import ObsNormalizer, RewardScaler
from ppolearn.policy import Policy
from ppolearn.returns import compute_gae


@dataclass
class RolloutBatch:
    """One rollout, flattened over (time, env): what update() iterates over in minibatches."""

    obs: Obs  # the tutorial's batch_obs (normalised as the policy saw them; images as uint8)
    acts: torch.Tensor  # batch_acts (unclipped Gaussian samples, or integer choices: an index or one per entry)
    log_probs: torch.Tensor  # batch_log_probs under the policy that collected them
    values: torch.Tensor  # V(s) at collection time (for value clipping and explained variance)
    advantages: torch.Tensor  # GAE(lambda) advantages
    rtgs: torch.Tensor  # batch_rtgs: the returns the critic regresses onto (advantages + values)
    masks: Optional[torch.Tensor] = None  # the invalid-action masks the actions were sampled under, if any
    dones: Optional[torch.Tensor] = None  # memory core only: the episode ended at this step
    hidden: Optional[torch.Tensor] = None  # memory core only: (num_envs, S) state at the rollout's start

    def __len__(self) -> int:
        return self.log_probs.shape[0]

    def select(self, index: Union[torch.Tensor, slice]) -> RolloutBatch:
        """The rows at ``index`` of every per-transition field; a slice returns views, so it copies nothing.
        ``hidden`` is per env, not per transition: it is kept whole."""
        pick = lambda x: None if x is None else obs_map(lambda t: t[index], x)  # noqa: E731
        rows = (pick(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "hidden")
        return RolloutBatch(*rows, hidden=self.hidden)


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

    def __init__(
        self,
        n_steps: int,
        num_envs: int,
        obs_spec: ObsSpec,
        action: ActionSpec,
        device: torch.device,
        masked: bool = False,
        hidden_size: int = 0,
    ) -> None:
        """``masked``: keep the environment's invalid-action masks (ActionSpec.mask_dim bools per step);
        ``hidden_size``: the memory core's state size S, 0 for a feed-forward policy."""
        shape = (n_steps, num_envs)
        self.n_steps = n_steps
        self.obs = self._obs_storage(shape, obs_spec, device)
        # Box samples as floats; every other kind as int64 choices, one per entry (a single Discrete: one)
        dtype = torch.int64 if action.integer else torch.float32
        self.acts = torch.zeros(*shape, *action.buffer_shape, dtype=dtype, device=device)
        self.log_probs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, dtype=torch.bool, device=device)
        self.last_value = torch.zeros(num_envs, device=device)
        self.masks = torch.ones(*shape, action.mask_dim, dtype=torch.bool, device=device) if masked else None
        # the memory core's state at the start of the rollout, per env (None: feed-forward)
        self.hidden = torch.zeros(num_envs, hidden_size, device=device) if hidden_size else None

    @staticmethod
    def _obs_storage(shape: tuple, spec: ObsSpec, device: torch.device) -> Obs:
        """float32 (T, N, dim) for the vector; uint8 (T, N, C, H, W) per image (ObsSpec.bytes_per_transition)."""
        if not spec.images:
            return torch.zeros(*shape, spec.dim, device=device)
        storage = {key: torch.zeros(*shape, *chw, dtype=torch.uint8, device=device) for key, chw in spec.images.items()}
        if spec.dim:
            storage[VECTOR_KEY] = torch.zeros(*shape, spec.dim, device=device)
        return storage

    def batch(self, gamma: float, gae_lambda: float) -> RolloutBatch:
        """Advantages (step 5 of the pseudocode) and returns, flattened for minibatching."""
        advantages, rtgs = compute_gae(self.rewards, self.values, self.dones, self.last_value, gamma, gae_lambda)
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731 - (T, N, ...) -> (T*N, ...)
        return RolloutBatch(
            obs=obs_map(flat, self.obs),
            acts=flat(self.acts),
            log_probs=flat(self.log_probs),
            values=flat(self.values),
            advantages=flat(advantages),
            rtgs=flat(rtgs),
            masks=None if self.masks is None else flat(self.masks),
            dones=None if self.hidden is None else flat(self.dones),
            hidden=self.hidden,
        )


@torch.no_grad()
def rollout(
    policy: Policy,
    env: VecEnv,
    buffer: RolloutBuffer,
    next_obs: Obs,
    obs_norm: ObsNormalizer,
    reward_scaler: RewardScaler,
    gamma: float,
    generator: Optional[torch.Generator] = None,
) -> tuple[Obs, EpisodeStats]:
    """Run the current policy for buffer.n_steps in every environment, filling the buffer.

    ``next_obs`` is the raw observation to continue from; the raw observation after the last step is
    returned with the episodes that ended. Following the tutorial's flow: get_action -> step -> store.
    A memory core's state carries on from the previous rollout; the state each env starts from is stored
    for the update.
    """
    if buffer.hidden is not None:
        start = policy.get_hidden_state()
        buffer.hidden = torch.zeros_like(buffer.hidden) if start is None else start
    ended: List[tuple] = []
    for t in range(buffer.n_steps):
        obs = obs_norm(next_obs, update=True)
        mask = None
        if buffer.masks is not None:  # sample only valid actions, and keep the mask for the update
            mask = env.action_masks()
            buffer.masks[t] = mask
        # the tutorial's get_action(), and V(s) from the same pass through the encoder
        action, log_prob, value = policy.act(obs, generator, mask)
        obs_assign(buffer.obs, t, obs)
        buffer.acts[t] = action
        buffer.log_probs[t] = log_prob
        buffer.values[t] = value

        step = env.step(action)  # Box actions are clipped to the bounds inside; the buffer keeps the sample
        done = step.terminated | step.truncated
        reward = reward_scaler(step.reward, done)
        if done.any():  # most steps end no episode: one check for both cases below
            # A time limit is not a real end: add the value the episode would still have earned (bootstrap),
            # read under the state the episode had (reset(done) below has not yet forgotten it).
            timeout = step.truncated & ~step.terminated
            if timeout.any():
                final_value = policy.value(obs_norm(step.final_obs))
                reward = reward + gamma * torch.where(timeout, final_value, torch.zeros_like(final_value))
            ended.append((step.episode_return[done], step.episode_length[done], step.episode_success[done]))
        buffer.rewards[t] = reward
        buffer.dones[t] = done
        policy.reset(done)  # a memory core forgets the episodes that ended: the next one starts from zeros
        next_obs = step.obs

    buffer.last_value = policy.value(obs_norm(next_obs))
    if not ended:
        return next_obs, EpisodeStats.empty()
    returns, lengths, successes = (torch.cat(parts).cpu() for parts in zip(*ended))
    return next_obs, EpisodeStats(returns, lengths, successes)
