"""A robustness set: small target-reaching tasks that no ppolearn preset is tuned on.

Pure numpy ``gymnasium.Env`` classes, each deterministic given ``reset(seed=...)``, each with its own
time limit (``truncated`` at ``horizon`` steps) and ``info["is_success"]`` on every step meaning "the target
state is reached (and held) now". They vary what an untuned PPO meets in the wild: horizons from 50 to 1000,
action bounds from [-0.1, 0.1] to [-50, 50] and [0, 10], dense and sparse-ish rewards, raw (unscaled)
observations, Box, Dict and Discrete spaces. Not registered with Gymnasium and not in ppolearn/presets:
``make(name)`` builds one, ``ENVS`` lists them.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class _Task(gym.Env):
    """Shared time limit and step bookkeeping; subclasses define ``_reset``, ``_step`` and ``_obs``."""

    metadata: Dict[str, Any] = {"render_modes": []}
    horizon = 100

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> Tuple[Any, dict]:
        super().reset(seed=seed)
        self._t = 0
        self._reset()
        return self._obs(), {"is_success": self._success()}

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, dict]:
        self._t += 1
        reward, terminated = self._step(action)
        truncated = self._t >= self.horizon and not terminated
        return self._obs(), float(reward), terminated, truncated, {"is_success": self._success()}

    def _box_action(self, action: Any) -> np.ndarray:
        space = self.action_space
        return np.clip(np.asarray(action, dtype=np.float64).reshape(space.shape), space.low, space.high)

    def _reset(self) -> None:
        raise NotImplementedError

    def _step(self, action: Any) -> Tuple[float, bool]:
        raise NotImplementedError

    def _obs(self) -> Any:
        raise NotImplementedError

    def _success(self) -> bool:
        raise NotImplementedError


class ArmReach(_Task):
    """Planar 2-link arm (links 0.6 and 0.4): bring the fingertip within 0.05 of a random target.

    Torques in [-1, 1] drive damped joints; reward -distance - 0.01 |torque|^2 (dense), horizon 100.
    """

    horizon = 100
    L1, L2, DT = 0.6, 0.4, 0.05

    def __init__(self) -> None:
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(-2.0, 2.0, (12,), np.float32)

    def _tip(self) -> np.ndarray:
        q1, q2 = self.q
        return np.array(
            [self.L1 * math.cos(q1) + self.L2 * math.cos(q1 + q2), self.L1 * math.sin(q1) + self.L2 * math.sin(q1 + q2)]
        )

    def _reset(self) -> None:
        rng = self.np_random
        self.q = rng.uniform(-math.pi, math.pi, 2)
        self.dq = np.zeros(2)
        radius, angle = rng.uniform(0.3, 0.95), rng.uniform(-math.pi, math.pi)
        self.target = radius * np.array([math.cos(angle), math.sin(angle)])

    def _step(self, action: Any) -> Tuple[float, bool]:
        torque = self._box_action(action)
        self.dq = np.clip(self.dq + self.DT * (10.0 * torque - 2.0 * self.dq), -5.0, 5.0)
        self.q = np.array([_wrap(a) for a in self.q + self.DT * self.dq])
        return -float(np.linalg.norm(self._tip() - self.target)) - 0.01 * float(torque @ torque), False

    def _obs(self) -> np.ndarray:
        tip = self._tip()
        parts = [np.cos(self.q), np.sin(self.q), self.dq / 5.0, tip, self.target, self.target - tip]
        return np.concatenate(parts).astype(np.float32)

    def _success(self) -> bool:
        return bool(np.linalg.norm(self._tip() - self.target) < 0.05)


class DeadTimeProcess(_Task):
    """First-order-plus-dead-time process: hold the output at a random setpoint in [0.2, 0.8].

    Valve opening u in [0, 10] (gain 0.1, so the steady output is u / 10), time constant 20 steps, dead time
    5 steps (the observation carries the 5 actions still in the pipe). Reward -|error| (dense); success:
    |error| < 0.03 over the last 10 steps. Horizon 200.
    """

    horizon = 200
    DELAY, ALPHA, GAIN = 5, 1.0 / 20.0, 0.1

    def __init__(self) -> None:
        self.action_space = spaces.Box(0.0, 10.0, (1,), np.float32)
        self.observation_space = spaces.Box(-2.0, 2.0, (3 + self.DELAY,), np.float32)

    def _reset(self) -> None:
        rng = self.np_random
        self.y = rng.uniform(0.0, 1.0)
        self.setpoint = rng.uniform(0.2, 0.8)
        self.pipe = [self.y / self.GAIN] * self.DELAY  # the valve has been steady at the current output
        self.hold = 0

    def _step(self, action: Any) -> Tuple[float, bool]:
        u = float(self._box_action(action)[0])
        self.pipe.append(u)
        arriving = self.pipe.pop(0)
        self.y += self.ALPHA * (self.GAIN * arriving - self.y)
        error = abs(self.setpoint - self.y)
        self.hold = self.hold + 1 if error < 0.03 else 0
        return -error, False

    def _obs(self) -> np.ndarray:
        pipe = np.asarray(self.pipe) * self.GAIN
        return np.concatenate([[self.y, self.setpoint, self.setpoint - self.y], pipe]).astype(np.float32)

    def _success(self) -> bool:
        return self.hold >= 10


class Docking(_Task):
    """Unicycle vessel: reach the dock at the origin, facing +x, nearly stopped.

    Actions [acceleration, turn rate] in [-1, 1]; observation in the body frame. Reward -distance -
    0.1 |heading error| - 0.5 |speed| near the dock (dense). Success: within 0.15, |speed| < 0.1 and
    |heading error| < 0.25 rad. Horizon 200.
    """

    horizon = 200
    DT = 0.1

    def __init__(self) -> None:
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(-6.0, 6.0, (6,), np.float32)

    def _reset(self) -> None:
        rng = self.np_random
        distance, bearing = rng.uniform(1.5, 3.0), rng.uniform(-math.pi, math.pi)
        self.pos = distance * np.array([math.cos(bearing), math.sin(bearing)])
        self.heading = rng.uniform(-math.pi, math.pi)
        self.speed = 0.0

    def _step(self, action: Any) -> Tuple[float, bool]:
        accel, turn = self._box_action(action)
        self.speed = float(np.clip(self.speed + self.DT * 2.0 * accel, -1.0, 1.0))
        self.heading = _wrap(self.heading + self.DT * 2.0 * turn)
        direction = np.array([math.cos(self.heading), math.sin(self.heading)])
        self.pos = np.clip(self.pos + self.DT * self.speed * direction, -4.0, 4.0)
        distance = float(np.linalg.norm(self.pos))
        near = 0.5 * abs(self.speed) if distance < 0.3 else 0.0
        return -distance - 0.1 * abs(self.heading) - near, False

    def _obs(self) -> np.ndarray:
        c, s = math.cos(self.heading), math.sin(self.heading)
        dx, dy = -self.pos  # the dock relative to the vessel, rotated into its frame
        body = [c * dx + s * dy, -s * dx + c * dy]
        return np.array([*body, c, s, self.speed, float(np.linalg.norm(self.pos))], dtype=np.float32)

    def _success(self) -> bool:
        return bool(np.linalg.norm(self.pos) < 0.15 and abs(self.speed) < 0.1 and abs(self.heading) < 0.25)


MAZE = [
    "S..#...",
    ".#.#.#.",
    ".#...#.",
    ".####..",
    "...#.#.",
    "##.#.#.",
    "......G",
]


class GridMaze(_Task):
    """A 7x7 maze, Discrete(4) moves (up, right, down, left; walls block). Reach the goal corner.

    Starts on a random free cell. Observation: the one-hot cell and the normalised (row, col). Reward +1 at
    the goal (the episode ends there), -0.01 a step otherwise (sparse-ish). Horizon 100.
    """

    horizon = 100
    MOVES = [(-1, 0), (0, 1), (1, 0), (0, -1)]

    def __init__(self) -> None:
        self.size = len(MAZE)
        self.free = [(r, c) for r in range(self.size) for c in range(self.size) if MAZE[r][c] != "#"]
        self.goal = next((r, c) for r, c in self.free if MAZE[r][c] == "G")
        self.action_space = spaces.Discrete(4)
        self.observation_space = spaces.Box(0.0, 1.0, (self.size * self.size + 2,), np.float32)

    def _reset(self) -> None:
        starts = [cell for cell in self.free if cell != self.goal]
        self.cell = starts[int(self.np_random.integers(len(starts)))]

    def _step(self, action: Any) -> Tuple[float, bool]:
        dr, dc = self.MOVES[int(action)]
        r, c = self.cell[0] + dr, self.cell[1] + dc
        if 0 <= r < self.size and 0 <= c < self.size and MAZE[r][c] != "#":
            self.cell = (r, c)
        if self.cell == self.goal:
            return 1.0, True
        return -0.01, False

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.size * self.size + 2, dtype=np.float32)
        obs[self.cell[0] * self.size + self.cell[1]] = 1.0
        obs[-2:] = np.array(self.cell, dtype=np.float32) / (self.size - 1)
        return obs

    def _success(self) -> bool:
        return self.cell == self.goal


class TinyDoubleIntegrator(_Task):
    """1-D double integrator with a tiny action scale: acceleration in [-0.1, 0.1].

    Start at x in [-1, 1] at rest; bring it to 0 and stop (|x| < 0.05, |v| < 0.05). Reward -|x| - |v|
    (dense). Horizon 200 (a bang-bang move over 1 takes about 63 steps).
    """

    horizon = 200
    DT = 0.1

    def __init__(self) -> None:
        self.action_space = spaces.Box(-0.1, 0.1, (1,), np.float32)
        self.observation_space = spaces.Box(-5.0, 5.0, (2,), np.float32)

    def _reset(self) -> None:
        self.x, self.v = float(self.np_random.uniform(-1.0, 1.0)), 0.0

    def _step(self, action: Any) -> Tuple[float, bool]:
        a = float(self._box_action(action)[0])
        self.v = float(np.clip(self.v + self.DT * a, -1.0, 1.0))
        self.x = float(np.clip(self.x + self.DT * self.v, -5.0, 5.0))
        return -abs(self.x) - abs(self.v), False

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.v], dtype=np.float32)

    def _success(self) -> bool:
        return abs(self.x) < 0.05 and abs(self.v) < 0.05


class SparseGoal(_Task):
    """2-D point with velocity commands in [-50, 50] (x 0.005 per step): reach a random goal in [-1, 1]^2.

    Dict observation (observation / achieved_goal / desired_goal, as Gymnasium-Robotics). Reward +1 within
    0.1 of the goal, else nothing, minus a small 0.05 * distance term (sparse-ish). Success: within 0.1.
    Horizon 100.
    """

    horizon = 100
    SCALE, RADIUS = 0.005, 0.1

    def __init__(self) -> None:
        self.action_space = spaces.Box(-50.0, 50.0, (2,), np.float32)
        box = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})

    def _reset(self) -> None:
        self.pos = self.np_random.uniform(-1.0, 1.0, 2)
        self.goal = self.np_random.uniform(-1.0, 1.0, 2)

    def _step(self, action: Any) -> Tuple[float, bool]:
        self.pos = np.clip(self.pos + self.SCALE * self._box_action(action), -1.0, 1.0)
        distance = float(np.linalg.norm(self.pos - self.goal))
        return (1.0 if distance < self.RADIUS else 0.0) - 0.05 * distance, False

    def _obs(self) -> Dict[str, np.ndarray]:
        pos = self.pos.astype(np.float32)
        return {"observation": pos.copy(), "achieved_goal": pos.copy(), "desired_goal": self.goal.astype(np.float32)}

    def _success(self) -> bool:
        return bool(np.linalg.norm(self.pos - self.goal) < self.RADIUS)


class Heater(_Task):
    """Room heater, long horizon (1000 steps): hold the temperature within 1 degC of a setpoint.

    Heater power in [0, 1]; the room loses heat to a random ambient (10-25 degC) with a time constant of about
    100 steps (loss rate varying +-20% by episode). Setpoint 30-60 degC. Observations in raw degrees Celsius
    (temperature, setpoint, ambient, error). Reward -|error| / 10 (dense).
    """

    horizon = 1000

    def __init__(self) -> None:
        self.action_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.observation_space = spaces.Box(-100.0, 200.0, (4,), np.float32)

    def _reset(self) -> None:
        rng = self.np_random
        self.ambient = rng.uniform(10.0, 25.0)
        self.setpoint = rng.uniform(30.0, 60.0)
        self.loss = 0.01 * rng.uniform(0.8, 1.2)
        self.temp = self.ambient

    def _step(self, action: Any) -> Tuple[float, bool]:
        power = float(self._box_action(action)[0])
        self.temp += 0.6 * power - self.loss * (self.temp - self.ambient)
        return -abs(self.setpoint - self.temp) / 10.0, False

    def _obs(self) -> np.ndarray:
        return np.array([self.temp, self.setpoint, self.ambient, self.setpoint - self.temp], dtype=np.float32)

    def _success(self) -> bool:
        return abs(self.setpoint - self.temp) < 1.0


class Turntable(_Task):
    """Short horizon (50 steps): turn a damped turntable to a random angle and stop there.

    Torque in [-2, 2]. Observation: cos and sin of the angle error, angular velocity. Reward -|error| -
    0.05 omega^2 (dense). Success: |error| < 0.1 rad and |omega| < 0.3.
    """

    horizon = 50
    DT = 0.1

    def __init__(self) -> None:
        self.action_space = spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.observation_space = spaces.Box(-20.0, 20.0, (3,), np.float32)

    def _reset(self) -> None:
        self.angle = float(self.np_random.uniform(-math.pi, math.pi))
        self.target = float(self.np_random.uniform(-math.pi, math.pi))
        self.omega = 0.0

    def _error(self) -> float:
        return _wrap(self.target - self.angle)

    def _step(self, action: Any) -> Tuple[float, bool]:
        torque = float(self._box_action(action)[0])
        self.omega = float(np.clip(self.omega + self.DT * (5.0 * torque - 0.5 * self.omega), -10.0, 10.0))
        self.angle = _wrap(self.angle + self.DT * self.omega)
        return -abs(self._error()) - 0.05 * self.omega**2, False

    def _obs(self) -> np.ndarray:
        error = self._error()
        return np.array([math.cos(error), math.sin(error), self.omega], dtype=np.float32)

    def _success(self) -> bool:
        return abs(self._error()) < 0.1 and abs(self.omega) < 0.3


ENVS: Dict[str, Callable[[], gym.Env]] = {
    "ArmReach": ArmReach,
    "DeadTimeProcess": DeadTimeProcess,
    "Docking": Docking,
    "GridMaze": GridMaze,
    "TinyDoubleIntegrator": TinyDoubleIntegrator,
    "SparseGoal": SparseGoal,
    "Heater": Heater,
    "Turntable": Turntable,
}


def make(name: str) -> gym.Env:
    """A fresh environment of the set by name."""
    return ENVS[name]()
