"""Deterministic evaluation on the official Gymnasium environment, the same for every library.

The episodes run side by side in a ``SyncVectorEnv`` of official environments (episode i reset with seed
10_000 + i, as ``ppolearn.evaluation.evaluate_policy``): the same episodes as evaluating them one by one,
in far fewer policy calls, so that evaluating often during a time-to-target run stays cheap.
"""

from __future__ import annotations

from typing import Any, Callable, List

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]  # a batch of observations -> a batch of env actions


def evaluate(policy: Policy, env_id: str, episodes: int = 20, seed: int = 10_000) -> float:
    """Mean undiscounted return of the first episode of each of ``episodes`` official environments."""
    returns = evaluate_episodes(policy, env_id, episodes, seed)
    return float(np.mean(returns))


def evaluate_episodes(policy: Policy, env_id: str, episodes: int = 20, seed: int = 10_000) -> List[float]:
    """Each episode's undiscounted return, episode i started from seed + i."""
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id) for _ in range(episodes)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    try:
        obs, _ = envs.reset(seed=[seed + i for i in range(episodes)])
        returns = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)  # still in its first episode
        while running.any():
            obs, reward, terminated, truncated, _ = envs.step(policy(obs))
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
        return [float(r) for r in returns]
    finally:
        envs.close()


def ppolearn_policy(model: Any) -> Policy:
    return lambda obs: model.predict(obs, deterministic=True)[0]


def sb3_policy(model: Any) -> Policy:
    return lambda obs: model.predict(obs, deterministic=True)[0]
