"""A small goal-reaching environment of our own, registered as ``SliderReach-v0`` when imported.

A slider moves in the plane at the velocity the policy asks for and must stop on a random target. It is
the pattern a custom reaching task follows to train with ppolearn untuned:

- finite Box spaces, actions in [-1, 1] (the Gaussian policy starts centred on 0 with std 1);
- a dense reward (minus the distance), so every step says whether the policy got closer;
- ``info["is_success"]`` on every step, so success rate and steps to success are measured;
- a time limit from ``gymnasium.register(..., max_episode_steps=...)``.

Train it with ``python -m ppolearn train --env examples.slider_reach:SliderReach-v0`` from the repository
root (``module:Env-v0`` imports this module, which registers the id).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np

SPEED = 0.1  # distance moved per step at full action
TARGET_RADIUS = 0.05


class SliderReachEnv(gym.Env):
    """Observation: position (2) and target (2) in [-1, 1]; action: velocity in [-1, 1]^2."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2)
        self.target = np.zeros(2)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.target]).astype(np.float32)

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
    ) -> Tuple[np.ndarray, Dict[str, Any]]:
        super().reset(seed=seed)  # seeds self.np_random: the same seed gives the same episode
        self.pos = self.np_random.uniform(-0.9, 0.9, 2)
        self.target = self.np_random.uniform(-0.9, 0.9, 2)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        velocity = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.pos = np.clip(self.pos + SPEED * velocity, -1.0, 1.0)
        distance = float(np.linalg.norm(self.pos - self.target))
        return self._obs(), -distance, False, False, {"is_success": distance < TARGET_RADIUS}


if "SliderReach-v0" not in gym.registry:  # a second import must not re-register
    gym.register("SliderReach-v0", entry_point=SliderReachEnv, max_episode_steps=50)
