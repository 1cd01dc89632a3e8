"""Batched tensor environments: thousands of copies of one environment stepped as a single torch tensor.

Why: a Gymnasium vector env steps each copy in Python and converts numpy to torch every step, which costs
more than the policy's forward pass. A batched environment keeps the whole state as one (num_envs,
state_dim) tensor on the policy's device, so a step is a handful of tensor operations whatever num_envs.

:class:`BatchedEnv` implements the :class:`~ppolearn.envs.vector.VecEnv` protocol natively; subclasses
give only the physics (``sample_states``, ``dynamics``, ``observe``) and, for goal tasks, ``success``. The
base does what Gymnasium's wrappers and ``SAME_STEP`` autoreset would: action clipping, the time limit,
per-env episode return, length and success, and resetting the environments that ended, all without a
Python loop over environments.
"""

from __future__ import annotations

from typing import Optional, Tuple

import gymnasium as gym
import torch

from ppolearn.envs.spaces import ActionSpec, ObsSpec
from ppolearn.envs.vector import StepResult


class BatchedEnv:
    """Base of the batched clones; ``env_id`` is ``batched_id``, by default ``ppolearn/<official_id>``."""

    official_id: str = ""  # the Gymnasium id this environment clones (evaluation runs there)
    batched_id: str = ""  # set where ppolearn/<official_id> would not do (the official id is ppolearn's own)
    max_episode_steps: int = 0  # Gymnasium's TimeLimit for the official id
    masked = False  # no batched clone has invalid actions to mask
    observation_space: gym.Space  # one environment's spaces, as the official env declares them (Box or Dict)
    action_space: gym.Space

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.env_id = self.batched_id or f"ppolearn/{self.official_id}"
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype  # of the physical state; float64 reproduces Gymnasium's numpy arithmetic closest
        self.obs_spec = ObsSpec.from_space(self.observation_space)
        self.action_spec = ActionSpec.from_space(self.action_space)
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()  # unseeded until reset(seed), like a fresh Gymnasium env
        if not self.action_spec.is_discrete:
            self._low = torch.tensor(self.action_spec.low, dtype=dtype, device=self.device)
            self._high = torch.tensor(self.action_spec.high, dtype=dtype, device=self.device)
        # NaN where no episode ended or the task has no success notion, as GymVecEnv reports them
        self._no_success = torch.full((num_envs,), float("nan"), device=self.device)
        self.state = self.sample_states(num_envs)
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)  # steps into the episode
        self._returns = torch.zeros(num_envs, dtype=torch.float64, device=self.device)

    # --- the physics each clone provides ------------------------------------------------------------------

    def sample_states(self, n: int) -> torch.Tensor:
        """n initial states drawn as the official reset() draws them."""
        raise NotImplementedError

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Next state, reward and terminated for every environment (action already clipped / shifted)."""
        raise NotImplementedError

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        """The observation of each state, in the state's dtype."""
        raise NotImplementedError

    def success(self, state: torch.Tensor) -> Optional[torch.Tensor]:
        """Each state's info["is_success"] as a bool tensor, or None for tasks without one."""
        return None

    # --- the VecEnv protocol ---------------------------------------------------------------------------

    def uniform(self, n: int, low: torch.Tensor | float, high: torch.Tensor | float, dim: int) -> torch.Tensor:
        """U(low, high) of shape (n, dim) from this environment's generator (numpy's low + (high-low)*U)."""
        u = torch.rand(n, dim, generator=self.generator, device=self.device, dtype=self.dtype)
        return low + (high - low) * u

    def reset(self, seed: Optional[int] = None) -> torch.Tensor:
        if seed is not None:
            self.generator.manual_seed(seed)
        self.state = self.sample_states(self.num_envs)
        self.elapsed.zero_()
        self._returns.zero_()
        return self.observe(self.state).float()

    def step(self, actions: torch.Tensor) -> StepResult:
        state, reward, terminated = self.dynamics(self.state, self._to_env(actions))
        self.elapsed += 1
        truncated = self.elapsed >= self.max_episode_steps  # Gymnasium's TimeLimit (set even if terminated)
        done = terminated | truncated
        final_obs = self.observe(state).float()
        success = self.success(state)
        if success is None:
            episode_success = self._no_success
        else:  # the ended episodes' last is_success, NaN elsewhere
            episode_success = torch.where(done, success.float(), self._no_success)
        self._returns += reward
        episode_return = self._returns.float()
        episode_length = self.elapsed.clone()
        # SAME_STEP autoreset for the whole batch: fresh starts for all, kept where done (no host sync on .any())
        self.state = torch.where(done.unsqueeze(-1), self.sample_states(self.num_envs), state)
        obs = torch.where(done.unsqueeze(-1), self.observe(self.state).float(), final_obs)
        self.elapsed.masked_fill_(done, 0)
        self._returns.masked_fill_(done, 0.0)
        return StepResult(
            obs=obs,
            reward=reward.float(),
            terminated=terminated,
            truncated=truncated,
            final_obs=final_obs,
            episode_return=episode_return,
            episode_length=episode_length,
            episode_success=episode_success,
        )

    def _to_env(self, actions: torch.Tensor) -> torch.Tensor:
        """What ActionSpec.to_env does for Gymnasium envs: clip Box actions, shift Discrete by start."""
        if self.action_spec.is_discrete:
            return actions.long() + self.action_spec.start
        return torch.clamp(actions.to(self.dtype), self._low, self._high)

    def action_masks(self) -> Optional[torch.Tensor]:
        """None: every action is always valid."""
        return None

    def close(self) -> None:
        """Nothing to release: the state is a tensor."""
