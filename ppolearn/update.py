"""The PPO update (steps 6-7 of the pseudocode): n_epochs of minibatch Adam on one rollout.

Each minibatch: the PPO-Clip surrogate for the actor, the (optionally clipped) MSE of V onto the returns for
the critic, an optional entropy bonus, one joint gradient step with the global norm clipped. The losses are
written out here one line and one "why" each; docs/algorithm.md derives them.

Minibatches are random transitions for a feed-forward policy. With a memory core they are whole env
sequences instead (CleanRL's ppo_atari_lstm): the envs are shuffled, each minibatch takes
``cfg.minibatch_envs`` of them with all n_steps of each in time order, and the policy re-runs its core over
them from the states stored at the rollout's start, resetting where episodes ended, so each action is scored
under the hidden state it was sampled with.
"""

from __future__ import annotations

from itertools import repeat
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch

from ppolearn.config import PPOConfig
from ppolearn.envs.obs import Obs, obs_split
from ppolearn.optim import FlatAdam, FlatParameters
from ppolearn.policy import Sequences
from ppolearn.returns import normalize_per_minibatch
from ppolearn.rollout import RolloutBatch

# (batch_obs, batch_acts, batch_masks or None, batch_memory or None) -> V(s), log pi(a|s), entropy: the
# tutorial's evaluate(); batch_memory (initial states, episode ends) only for a memory core's sequences
Evaluate = Callable[[Obs, torch.Tensor, Optional[torch.Tensor], Optional[Sequences]], Tuple[torch.Tensor, ...]]


def clipped_surrogate_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_range: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The PPO-Clip objective, negated for gradient descent, and the ratios it used.

    L = E[min(r A, clip(r, 1-eps, 1+eps) A)], r = pi(a|s) / pi_old(a|s): the min removes any incentive to
    move r outside [1-eps, 1+eps], keeping the new policy close to the old one.
    """
    ratios = torch.exp(log_probs - old_log_probs)
    surr1 = ratios * advantages
    surr2 = torch.clamp(ratios, 1 - clip_range, 1 + clip_range) * advantages
    return -torch.min(surr1, surr2).mean(), ratios


def approx_kl(log_probs: torch.Tensor, old_log_probs: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi) estimated from samples of pi_old: mean of (r - 1) - log r (unbiased, low variance)."""
    with torch.no_grad():
        log_ratio = log_probs - old_log_probs
        return ((log_ratio.exp() - 1) - log_ratio).mean()


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, rtgs: torch.Tensor, clip_range_vf: Optional[float]
) -> torch.Tensor:
    """MSE of V(s) onto the returns; optionally the pessimistic max with a clipped value update."""
    if clip_range_vf is None:
        return 0.5 * (values - rtgs).pow(2).mean()
    clipped = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    return 0.5 * torch.max((values - rtgs).pow(2), (clipped - rtgs).pow(2)).mean()


def ppo_update(
    evaluate: Evaluate,
    batch: RolloutBatch,
    cfg: PPOConfig,
    params: FlatParameters,
    optimizer: FlatAdam,
    generator: torch.Generator,
) -> Dict[str, float]:
    """n_epochs of minibatch Adam on the PPO-Clip objective (actor) and MSE (critic); the update's statistics."""
    device = batch.log_probs.device
    # Statistics accumulate as tensors, read once at the end: a .item() per minibatch would cost a sync.
    loss_sums = torch.zeros(3, device=device)  # actor loss, critic loss, entropy (sums over minibatches)
    ratio_sums = torch.zeros(2, device=device)  # approx KL, clipped samples (sums over samples)
    new_log_probs = torch.empty_like(batch.log_probs)  # each sample's log pi before its minibatch's step
    n_minibatches, n_samples, epochs_run, stop = 0, 0, 0, False
    size = cfg.batch_size if batch.hidden is None else cfg.minibatch_envs * cfg.n_steps  # rows per minibatch
    for _epoch in range(cfg.n_epochs):
        if batch.hidden is None:
            order = torch.randperm(len(batch), generator=generator, device=device)  # reshuffle each epoch
        else:
            envs, order = _sequence_order(batch, cfg.minibatch_envs, generator)
        # one gather per field per epoch; the minibatches below are then contiguous views (no per-step copy)
        shuffled = batch.select(order)
        memory_parts: Iterable[Optional[Sequences]] = repeat(None)
        if batch.hidden is not None:  # each minibatch's initial states and episode ends
            memory_parts = zip(batch.hidden[envs], shuffled.dones.split(size))
        advantages = shuffled.advantages
        if cfg.normalize_advantage:  # per minibatch: unit scale whatever the reward (all at once here)
            advantages = normalize_per_minibatch(advantages, size)
        fields = (shuffled.acts, shuffled.log_probs, shuffled.values, shuffled.rtgs, advantages)
        obs_parts = obs_split(shuffled.obs, size)
        mask_parts = [None] * len(obs_parts) if shuffled.masks is None else shuffled.masks.split(size)
        rows = 0
        for obs, masks, memory, acts, old_log_probs, old_values, rtgs, mb_advantages in zip(
            obs_parts, mask_parts, memory_parts, *(field.split(size) for field in fields)
        ):
            # under the masks (and hidden states) the actions were sampled with, so the ratio compares the
            # same distributions
            values, log_probs, entropy = evaluate(obs, acts, masks, memory)
            if cfg.target_kl is not None and approx_kl(log_probs, old_log_probs).item() > 1.5 * cfg.target_kl:
                stop = True  # the policy moved too far from pi_old: skip this step and the rest
                break
            actor_loss, _ = clipped_surrogate_loss(log_probs, old_log_probs, mb_advantages, cfg.clip_range)
            critic_loss = value_loss(values, old_values, rtgs, cfg.clip_range_vf)
            entropy_mean = entropy.mean()
            loss = actor_loss + cfg.vf_coef * critic_loss
            if cfg.ent_coef > 0:  # no entropy bonus, no graph for it (a dozen ops fewer to differentiate)
                loss = loss - cfg.ent_coef * entropy_mean
            params.zero_grad()
            loss.backward()
            params.clip_grad_norm_(cfg.max_grad_norm)  # global norm over actor and critic
            optimizer.step()
            new_log_probs[rows : rows + len(acts)] = log_probs.detach()
            loss_sums += torch.stack([actor_loss, critic_loss, entropy_mean]).detach()
            n_minibatches += 1
            rows += len(acts)
        # KL and clip fraction of the epoch's minibatches in one pass (the same numbers as per minibatch)
        log_ratio = new_log_probs[:rows] - shuffled.log_probs[:rows]
        ratio = log_ratio.exp()
        ratio_sums += torch.stack([((ratio - 1) - log_ratio).sum(), ((ratio - 1).abs() > cfg.clip_range).sum()])
        n_samples += rows
        epochs_run += 1
        if stop:
            break
    losses = (loss_sums / max(n_minibatches, 1)).tolist()
    kl, clip_fraction = (ratio_sums / max(n_samples, 1)).tolist()
    explained_var = float("nan")  # 1 - Var(R - V) / Var(R): how much of the returns the critic predicted
    if len(batch) > 1 and batch.rtgs.var() > 0:
        explained_var = (1 - (batch.rtgs - batch.values).var() / batch.rtgs.var()).item()
    return {
        "actor_loss": losses[0],
        "critic_loss": losses[1],
        "entropy": losses[2],
        "approx_kl": kl,
        "clip_fraction": clip_fraction,
        "explained_variance": explained_var,
        "learning_rate": optimizer.param_groups[0]["lr"],
        "epochs": float(epochs_run),
    }


def _sequence_order(
    batch: RolloutBatch, envs_per_minibatch: int, generator: torch.Generator
) -> Tuple[torch.Tensor, torch.Tensor]:
    """An epoch's shuffled env groups (minibatches, k) and the row order that lays them out.

    The envs are shuffled and taken ``envs_per_minibatch`` (k) at a time; a minibatch's rows are its envs'
    steps in time order, time-major (row t * k + j is step t of its j-th env), the layout the policy's
    ``evaluate`` unrolls. Rows of the batch are time-major too: step t of env i is row t * num_envs + i.
    """
    num_envs = batch.hidden.shape[0]
    n_steps = len(batch) // num_envs
    device = batch.log_probs.device
    envs = torch.randperm(num_envs, generator=generator, device=device).view(-1, envs_per_minibatch)
    steps = torch.arange(n_steps, device=device).view(1, n_steps, 1) * num_envs
    return envs, (steps + envs.unsqueeze(1)).reshape(-1)
