"""Running statistics for observation normalisation and reward scaling, saved with the model.

Why: observations of different scales (angles next to velocities) slow learning, and reward scales vary by
orders of magnitude between tasks; dividing rewards by the running std of the *discounted return* (not of
the reward) keeps value targets near unit scale, as Stable-Baselines3's VecNormalize does.
"""

from __future__ import annotations

from typing import Dict

import torch

from ppolearn.envs.obs import Obs
from ppolearn.envs.spaces import VECTOR_KEY


class RunningMeanStd:
    """Mean and variance over every sample seen so far, updated batch by batch (Chan et al.'s combination,
    exact for any split of the data, which is also how statistics from several workers are merged).

    The rollout updates two of these every environment step, so each update is written in as few tensor ops
    as it takes (one ``var_mean``, five for the combination, the count a Python float): on CPU each op on
    these tiny tensors costs microseconds of dispatch, more than the arithmetic.
    """

    def __init__(self, shape: tuple = (), device: torch.device | str = "cpu", epsilon: float = 1e-4) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = float(epsilon)

    def update(self, batch: torch.Tensor) -> None:
        batch = batch.reshape(-1, *self.mean.shape).to(torch.float64)
        var, mean = torch.var_mean(batch, dim=0, unbiased=False)
        self.combine(mean, var, batch.shape[0])

    def combine(self, mean: torch.Tensor, var: torch.Tensor, count: float | torch.Tensor) -> None:
        """Fold in the statistics of another set of samples."""
        count = float(count)
        total = self.count + count
        delta = mean - self.mean
        self.mean = torch.add(self.mean, delta, alpha=count / total)
        # M2 / total = (var_a n_a + var_b n_b + delta^2 n_a n_b / total) / total, on fresh tensors only (a
        # loaded state may share memory with a broadcast the learner still holds)
        self.var = (self.var * (self.count / total)).add_(var, alpha=count / total)
        self.var.addcmul_(delta, delta, value=self.count * count / total**2)
        self.count = total

    def state_dict(self) -> Dict[str, torch.Tensor]:
        count = torch.tensor(self.count, dtype=torch.float64, device=self.mean.device)
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": count}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        device = self.mean.device
        self.mean, self.var = (state[k].to(device, torch.float64) for k in ("mean", "var"))
        self.count = float(state["count"])


class ObsNormalizer:
    """(obs - mean) / std, clipped; statistics update only while training. Only the vector part of an
    observation with images: pixels are scaled to [0, 1] by the CNN encoder instead (their range is known,
    and per-pixel statistics would make the stored uint8 frames floats)."""

    def __init__(self, dim: int, clip: float, enabled: bool, device: torch.device | str = "cpu") -> None:
        self.enabled = enabled
        self.clip = clip
        self.rms = RunningMeanStd((dim,), device)

    def __call__(self, obs: Obs, update: bool = False) -> Obs:
        if not self.enabled:
            return obs
        if isinstance(obs, dict):
            if VECTOR_KEY not in obs:
                return obs
            return {**obs, VECTOR_KEY: self(obs[VECTOR_KEY], update)}
        if update:
            self.rms.update(obs)
        std = torch.sqrt(self.rms.var + 1e-8)
        return ((obs - self.rms.mean) / std).clamp(-self.clip, self.clip).to(obs.dtype)


class RewardScaler:
    """reward / std(discounted return), clipped; keeps one running discounted return per environment."""

    def __init__(
        self, num_envs: int, gamma: float, clip: float, enabled: bool, device: torch.device | str = "cpu"
    ) -> None:
        self.enabled = enabled
        self.gamma = gamma
        self.clip = clip
        self.rms = RunningMeanStd((), device)
        self.returns = torch.zeros(num_envs, dtype=torch.float64, device=device)

    def __call__(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return reward
        self.returns = torch.add(reward, self.returns, alpha=self.gamma)  # gamma * G + r, in float64
        self.rms.update(self.returns)
        self.returns = self.returns.masked_fill(done, 0.0)  # a new episode starts its own return
        return (reward / torch.sqrt(self.rms.var + 1e-8)).clamp(-self.clip, self.clip).to(reward.dtype)
