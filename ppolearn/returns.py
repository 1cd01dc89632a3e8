"""Rewards-to-go, Generalised Advantage Estimation and advantage normalisation over a whole rollout at once.

Tensors are time-major, shape (n_steps, num_envs): the loop runs backwards over time only, each step
covering every environment. ``dones[t]`` is true when the episode ended at step t (terminated or
truncated); truncated steps already carry gamma * V(final observation) in their reward, so both
functions treat every done as the end of the sum.
"""

from __future__ import annotations

from typing import Tuple

import torch


def compute_rtgs(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """The tutorial's discounted rewards-to-go: R_t = r_t + gamma * R_{t+1} within each episode, with no
    bootstrapping past the end of the rollout (so equal to GAE with lambda = 1 and last value 0, plus V)."""
    rtgs = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    not_done = 1.0 - dones.to(rewards.dtype)
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * not_done[t] * running
        rtgs[t] = running
    return rtgs


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """GAE(lambda) advantages and the returns (advantages + values) the critic regresses onto.

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
    ``last_value`` is V of the observation after the rollout's last step (bootstrap for unfinished episodes).
    """
    advantages = torch.zeros_like(rewards)
    not_done = 1.0 - dones.to(rewards.dtype)
    next_values = torch.cat([values[1:], last_value.unsqueeze(0)], dim=0)
    deltas = rewards + gamma * next_values * not_done - values
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values


def normalize_per_minibatch(advantages: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(A - mean) / (std + 1e-8) within each run of batch_size consecutive rows, i.e. per minibatch, as SB3
    and CleanRL normalise; computed for every minibatch of the epoch in a few ops instead of five per step.
    A minibatch of one row is left as it is (its standard deviation is undefined)."""
    if batch_size == 1:
        return advantages
    n_full = len(advantages) // batch_size * batch_size
    full = advantages[:n_full].view(-1, batch_size)  # one row per whole minibatch
    if n_full:
        full = (full - full.mean(1, keepdim=True)) / (full.std(1, keepdim=True) + 1e-8)
    tail = advantages[n_full:]  # a last, shorter minibatch
    if len(tail) > 1:
        tail = (tail - tail.mean()) / (tail.std() + 1e-8)
    return torch.cat([full.view(-1), tail])
