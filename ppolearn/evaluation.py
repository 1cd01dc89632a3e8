"""Deterministic evaluation of a trained policy on the official (unbatched, unnormalised) environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from ppolearn.envs import EnvSpec, make_env, official_id
from ppolearn.errors import EnvError

if TYPE_CHECKING:
    from ppolearn.ppo import PPO


def evaluate_policy(
    model: PPO, env: Optional[EnvSpec] = None, episodes: int = 20, deterministic: bool = True, seed: int = 10_000
) -> Dict[str, Any]:
    """Run whole episodes and report what a user asks: return, length, and success where the env says.

    ``env`` defaults to the id the model was trained on (for a ``ppolearn/`` batched clone, the official
    Gymnasium environment it clones: that is the figure that counts); episode i is reset with ``seed + i`` so two
    evaluations of one model see the same starts. The seed default lies away from training seeds.
    """
    spec = model.env_id if env is None else env
    instance = make_env(spec)
    env_id = official_id(spec) if isinstance(spec, str) else model.env_id
    returns, lengths, successes = [], [], []
    try:
        for i in range(episodes):
            obs, info = instance.reset(seed=seed + i)
            total, length, done = 0.0, 0, False
            while not done:
                action, _ = model.predict(obs, deterministic=deterministic)
                obs, reward, terminated, truncated, info = instance.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(length)
            if "is_success" in info:
                successes.append(float(info["is_success"]))
    except EnvError:
        raise
    except Exception as exc:
        raise EnvError(f"environment '{env_id}' raised during evaluation: {type(exc).__name__}: {exc}") from exc
    finally:
        instance.close()
    return {
        "env": env_id,
        "episodes": episodes,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "success_rate": float(np.mean(successes)) if successes else None,
    }
