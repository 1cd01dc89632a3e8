"""Deterministic evaluation of a trained policy on the official (unbatched, unnormalised) environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from ppolearn.envs import EnvSpec, env_factory, official_id, with_success
from ppolearn.errors import EnvError

if TYPE_CHECKING:
    from ppolearn.ppo import PPO


def evaluate_policy(
    model: PPO, env: Optional[EnvSpec] = None, episodes: int = 20, deterministic: bool = True, seed: int = 10_000
) -> Dict[str, Any]:
    """Run whole episodes and report what a user asks: return, length, and success where the env says.

    Success is ``info["is_success"]`` at the last step (the model's success criterion adds it to classic
    tasks); ``mean_steps_to_success`` is the mean first step at which it held, over the successful episodes,
    and null where no episode succeeded or the environment reports no success.

    ``env`` defaults to the id the model was trained on (for a ``ppolearn/`` batched clone, the official
    Gymnasium environment it clones: that is the figure that counts); episode i is reset with ``seed + i`` so two
    evaluations of one model see the same starts. The seed default lies away from training seeds.
    """
    spec = model.env_id if env is None else env
    instance = with_success(env_factory(spec), model.config.success)()
    env_id = official_id(spec) if isinstance(spec, str) else model.env_id
    returns, lengths, successes, steps_to_success = [], [], [], []
    try:
        for i in range(episodes):
            obs, info = instance.reset(seed=seed + i)
            total, length, done, first_success = 0.0, 0, False, None
            while not done:
                action, _ = model.predict(obs, deterministic=deterministic)
                obs, reward, terminated, truncated, info = instance.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
                if first_success is None and info.get("is_success"):
                    first_success = length
            returns.append(total)
            lengths.append(length)
            if "is_success" in info:
                successes.append(float(info["is_success"]))
                if info["is_success"] and first_success is not None:
                    steps_to_success.append(first_success)
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
        "mean_steps_to_success": float(np.mean(steps_to_success)) if steps_to_success else None,
    }
