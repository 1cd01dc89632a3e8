"""GridReach: walk onto a random target cell with a MultiDiscrete action (one move per axis).

A ``size`` x ``size`` grid; each episode draws a start and a different target. The action is
``MultiDiscrete([3, 3])``: per axis, 0 steps back, 1 stays, 2 steps forward (so diagonal moves exist and the
shortest path is the Chebyshev distance). Observations: ``[x, y, target_x, target_y] / (size - 1)``.
Reward: 0.1 per cell of Chebyshev distance gained (lost: the same, negative) and +1 on arriving, which
ends the episode with ``info["is_success"]`` true. A time limit of ``3 * size`` steps truncates.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np


class GridReachEnv(gym.Env):
    """Reach a target cell; one MultiDiscrete entry per axis (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, size: int = 7) -> None:
        if size < 2:
            raise ValueError(f"size={size} must be >= 2")
        self.size = size
        self.observation_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.MultiDiscrete([3, 3])
        self.pos = np.zeros(2, np.int64)
        self.target = np.ones(2, np.int64)

    def _obs(self) -> np.ndarray:
        return (np.concatenate([self.pos, self.target]) / (self.size - 1)).astype(np.float32)

    def _distance(self) -> int:
        return int(np.abs(self.pos - self.target).max())

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
        super().reset(seed=seed)
        cells = self.np_random.choice(self.size * self.size, size=2, replace=False)
        self.pos = np.array(divmod(int(cells[0]), self.size), np.int64)
        self.target = np.array(divmod(int(cells[1]), self.size), np.int64)
        return self._obs(), {"is_success": False}

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        before = self._distance()
        self.pos = np.clip(self.pos + np.asarray(action, np.int64) - 1, 0, self.size - 1)
        after = self._distance()
        arrived = after == 0
        reward = 0.1 * (before - after) + (1.0 if arrived else 0.0)
        return self._obs(), reward, arrived, False, {"is_success": arrived}
