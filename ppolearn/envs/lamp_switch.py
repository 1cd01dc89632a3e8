"""LampSwitch: set a row of lamps to a random target pattern with a MultiBinary action (one bit per lamp).

``n`` lamps start in a random on/off pattern and a different target pattern is drawn. Each step the action
``MultiBinary(n)`` flips every lamp whose bit is 1. Observations: ``MultiBinary(2n)``, the lamps then the
target. Reward: 1/n per lamp brought to its target state (minus 1/n per lamp taken away from it), +1 when
every lamp matches, which ends the episode with ``info["is_success"]`` true. The best policy flips exactly
the mismatched lamps and finishes in one step; a time limit of 10 steps truncates.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np


class LampSwitchEnv(gym.Env):
    """Match a target lamp pattern by toggling bits (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, n: int = 8) -> None:
        if n < 1:
            raise ValueError(f"n={n} must be >= 1")
        self.n = n
        self.observation_space = gym.spaces.MultiBinary(2 * n)
        self.action_space = gym.spaces.MultiBinary(n)
        self.lamps = np.zeros(n, np.int8)
        self.target = np.ones(n, np.int8)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.lamps, self.target]).astype(np.int8)

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
        super().reset(seed=seed)
        self.lamps = self.np_random.integers(0, 2, self.n, dtype=np.int8)
        self.target = self.lamps.copy()
        while np.array_equal(self.target, self.lamps):
            self.target = self.np_random.integers(0, 2, self.n, dtype=np.int8)
        return self._obs(), {"is_success": False}

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        before = int((self.lamps == self.target).sum())
        self.lamps = self.lamps ^ (np.asarray(action) > 0).astype(np.int8)
        after = int((self.lamps == self.target).sum())
        done = after == self.n
        reward = (after - before) / self.n + (1.0 if done else 0.0)
        return self._obs(), reward, done, False, {"is_success": done}
