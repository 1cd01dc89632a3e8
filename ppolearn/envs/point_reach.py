"""PointReach: a goal-conditioned point mass that must come to rest on a random target.

The point lives in the box [-1, 1]^N (walls stop it), is pushed by a continuous acceleration in [-1, 1]^N
and slowed by friction. Each episode draws a new start and target. Observations follow the
Gymnasium-Robotics convention: a Dict of ``observation`` (position and velocity), ``achieved_goal`` (the
position) and ``desired_goal`` (the target). ``is_success`` asks for the target *state*: within
``target_radius`` of the target AND slower than ``stop_speed``, so flying through it does not count.
Episodes do not end on success (as in Fetch): the policy has to stay there until the time limit.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np

DT = 0.1  # seconds per step
FRICTION = 1.0  # velocity decays by FRICTION * DT per step: terminal speed is accel / FRICTION
MAX_SPEED = 2.0  # speeds are clipped here so the observation space has finite bounds
TARGET_RANGE = 0.8  # targets and starts are drawn inside [-0.8, 0.8]^N, away from the walls


class PointReachEnv(gym.Env):
    """Reach and stop at a random target with a point mass (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        dim: int = 2,
        sparse: bool = False,
        target_radius: float = 0.05,
        stop_speed: float = 0.1,
        render_mode: Optional[str] = None,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim={dim} must be >= 1")
        if target_radius <= 0 or stop_speed <= 0:
            raise ValueError("target_radius and stop_speed must be positive")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported: use 'rgb_array' or None")
        self.dim, self.sparse = dim, sparse
        self.target_radius, self.stop_speed = target_radius, stop_speed
        self.render_mode = render_mode
        pos = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(
                    np.concatenate([-np.ones(dim), -MAX_SPEED * np.ones(dim)]).astype(np.float32),
                    np.concatenate([np.ones(dim), MAX_SPEED * np.ones(dim)]).astype(np.float32),
                ),
                "achieved_goal": pos,
                "desired_goal": pos,
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.pos = np.zeros(dim)
        self.vel = np.zeros(dim)
        self.goal = np.zeros(dim)

    def _obs(self) -> Dict[str, np.ndarray]:
        return {
            "observation": np.concatenate([self.pos, self.vel]).astype(np.float32),
            "achieved_goal": self.pos.astype(np.float32),
            "desired_goal": self.goal.astype(np.float32),
        }

    def _is_success(self) -> bool:
        near = np.linalg.norm(self.pos - self.goal) < self.target_radius
        return bool(near and np.linalg.norm(self.vel) < self.stop_speed)

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Dense: minus the distance; sparse: -1 until within the radius, then 0 (Gymnasium-Robotics API)."""
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        if self.sparse:
            return -(distance >= self.target_radius).astype(np.float32)
        return -distance.astype(np.float32)

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
    ) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-TARGET_RANGE, TARGET_RANGE, self.dim)
        self.vel = np.zeros(self.dim)
        self.goal = self.np_random.uniform(-TARGET_RANGE, TARGET_RANGE, self.dim)
        return self._obs(), {"is_success": self._is_success()}

    def step(self, action: np.ndarray) -> Tuple[Dict[str, np.ndarray], float, bool, bool, Dict[str, Any]]:
        accel = np.clip(np.asarray(action, dtype=np.float64).reshape(self.dim), -1.0, 1.0)
        self.vel = np.clip(self.vel + DT * (accel - FRICTION * self.vel), -MAX_SPEED, MAX_SPEED)
        pos = self.pos + DT * self.vel
        hit = np.abs(pos) > 1.0
        self.pos = np.clip(pos, -1.0, 1.0)
        self.vel[hit] = 0.0  # an inelastic wall: the blocked component of the velocity is lost
        obs = self._obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None))
        return obs, reward, False, False, {"is_success": self._is_success()}

    def render(self) -> Optional[np.ndarray]:
        """A top view of the first two axes: target ring in green, point in blue (N=1 draws a line)."""
        if self.render_mode != "rgb_array":
            return None
        size = 200
        ys, xs = np.mgrid[0:size, 0:size]

        def to_px(p: np.ndarray) -> Tuple[float, float]:
            x = p[0]
            y = p[1] if self.dim > 1 else 0.0
            return (x + 1) / 2 * (size - 1), (1 - (y + 1) / 2) * (size - 1)

        frame = np.full((size, size, 3), 245, np.uint8)
        gx, gy = to_px(self.goal)
        ring = np.hypot(xs - gx, ys - gy)
        scale = (size - 1) / 2
        frame[ring < max(self.target_radius * scale, 3)] = (60, 180, 75)
        px, py = to_px(self.pos)
        frame[np.hypot(xs - px, ys - py) < 5] = (30, 90, 200)
        frame[[0, -1], :] = frame[:, [0, -1]] = 40  # the walls
        return frame
