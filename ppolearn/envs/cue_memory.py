"""CueMemory: a T-maze whose goal side is shown only in the first observation — solvable only with memory.

The agent starts at the foot of a corridor of ``length`` cells; at its end (the junction) it must turn left
or right. The first observation carries a cue, -1 (the goal is on the left) or +1 (on the right), drawn
anew each episode; every later observation has 0 there. Observations: ``[cue, position / length,
at_junction]``. Actions: 0 forward, 1 turn left, 2 turn right (turning in the corridor does nothing;
forward at the junction stays there). Turning at the junction ends the episode: reward +1 and
``info["is_success"]`` true on the cued side, reward -1 on the other. A time limit of ``4 * length``
steps truncates an agent that never turns.

Why a feed-forward policy cannot beat chance (50%) here, with its deterministic actions: after the first
step the observation no longer depends on the cue except through the position, and from the first
observation without the cue both episodes see the same observations, take the same actions and end on
the same side — or wait at the foot forever. A policy with memory carries the cue to the junction.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np

FORWARD, LEFT, RIGHT = 0, 1, 2


class CueMemoryEnv(gym.Env):
    """The T-maze with a cue in the first observation only (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 4) -> None:
        if length < 1:
            raise ValueError(f"length={length} must be >= 1")
        self.length = length
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.position, self.cue = 0, 1

    def _obs(self, cue: float) -> np.ndarray:
        at_junction = float(self.position == self.length)
        return np.array([cue, self.position / self.length, at_junction], np.float32)

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
        super().reset(seed=seed)
        self.position = 0
        self.cue = 1 if self.np_random.random() < 0.5 else -1
        return self._obs(float(self.cue)), {"is_success": False}

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        action = int(action)
        if self.position < self.length:
            if action == FORWARD:
                self.position += 1
            return self._obs(0.0), 0.0, False, False, {"is_success": False}
        if action == FORWARD:
            return self._obs(0.0), 0.0, False, False, {"is_success": False}
        correct = (action == RIGHT) == (self.cue > 0)
        return self._obs(0.0), 1.0 if correct else -1.0, True, False, {"is_success": correct}
