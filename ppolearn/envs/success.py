"""Success criteria: say in ``info["is_success"]`` whether an episode reached its target state.

Goal-conditioned environments (Gymnasium-Robotics, our ``ppolearn/PointReach-v0``) report ``is_success``
themselves. Classic tasks give none, so a preset names a criterion here and :class:`SuccessInfo` adds the
key on every step. A criterion is a test of one step plus how many consecutive steps it must hold:
``is_success`` is true while it has held that long, so the value at the last step answers "was the target
state reached and kept", and the first true step answers "how fast".

A :class:`Target` is the same question asked of a whole evaluation ("mean_return>=-200",
"success_rate>=0.95"): what a run must reach to count as done (``PPOConfig.target``).

Apply one to any environment::

    env = SuccessInfo(gym.make("Pendulum-v1"), "pendulum_upright")
    env = SuccessInfo(my_env, lambda env, obs, terminated, truncated: terminated, hold_steps=1)
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Union

import gymnasium as gym

from ppolearn.errors import ConfigError

# (env, observation, terminated, truncated) -> whether the target state holds at this step
Condition = Callable[[gym.Env, Any, bool, bool], bool]


class Criterion(NamedTuple):
    condition: Condition
    hold_steps: int  # consecutive steps the condition must hold
    description: str


def _pendulum_upright(env: gym.Env, obs: Any, terminated: bool, truncated: bool) -> bool:
    cos_theta, sin_theta, theta_dot = obs.tolist()  # Python floats: math on scalars is cheaper than numpy's
    return abs(math.atan2(sin_theta, cos_theta)) < 0.2 and abs(theta_dot) < 1.0


def _terminated(env: gym.Env, obs: Any, terminated: bool, truncated: bool) -> bool:
    return terminated  # these tasks end the episode exactly when the target is reached


def _survived(env: gym.Env, obs: Any, terminated: bool, truncated: bool) -> bool:
    return truncated and not terminated  # lasted until the time limit without falling


def _on_goal_tile(env: gym.Env, obs: Any, terminated: bool, truncated: bool) -> bool:
    # FrozenLake's observation is the tile index row * ncol + col; its map marks the goal 'G' (any map size)
    return terminated and env.unwrapped.desc.flat[int(obs)] == b"G"


def _on_minigrid_goal(env: gym.Env, obs: Any, terminated: bool, truncated: bool) -> bool:
    # MiniGrid gives reward > 0 at the goal and no is_success; the cell under the agent says it exactly
    grid = env.unwrapped
    cell = grid.grid.get(*grid.agent_pos)
    return terminated and cell is not None and cell.type == "goal"


CRITERIA: Dict[str, Criterion] = {
    "pendulum_upright": Criterion(
        _pendulum_upright, 20, "pole within 0.2 rad of upright and |angular velocity| < 1 rad/s for 20 steps in a row"
    ),
    "mountain_car_flag": Criterion(_terminated, 1, "the car reached the flag (the episode terminated)"),
    "acrobot_height": Criterion(_terminated, 1, "the free end swung above the height line (the episode terminated)"),
    "cartpole_balanced": Criterion(_survived, 1, "the pole stayed up until the time limit (truncated, not terminated)"),
    "frozenlake_goal": Criterion(_on_goal_tile, 1, "the agent stepped onto the goal tile G (not into a hole)"),
    "minigrid_goal": Criterion(_on_minigrid_goal, 1, "the agent reached the green goal square (MiniGrid)"),
}


def criterion_names() -> List[str]:
    return sorted(CRITERIA)


class SuccessInfo(gym.Wrapper):
    """Sets ``info["is_success"]`` on every step from a named criterion or a condition callable."""

    def __init__(self, env: gym.Env, criterion: Union[str, Condition], hold_steps: int = 1) -> None:
        super().__init__(env)
        if isinstance(criterion, str):
            if criterion not in CRITERIA:
                raise ConfigError(f"unknown success criterion '{criterion}': choose one of {criterion_names()}")
            self.condition, self.hold_steps = CRITERIA[criterion].condition, CRITERIA[criterion].hold_steps
        else:
            self.condition, self.hold_steps = criterion, hold_steps
        self._held = 0

    def reset(self, **kwargs: Any):
        self._held = 0
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "is_success": False}

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._held = self._held + 1 if self.condition(self.env, obs, terminated, truncated) else 0
        return obs, reward, terminated, truncated, {**info, "is_success": self._held >= self.hold_steps}


def with_success(factory: Callable[..., gym.Env], criterion: Optional[str]) -> Callable[..., gym.Env]:
    """The factory itself when no criterion is named, else one whose environments carry it."""
    if criterion is None:
        return factory

    def make(**kwargs: Any) -> gym.Env:
        return SuccessInfo(factory(**kwargs), criterion)

    return make


# --- targets: "mean_return>=-200", "success_rate>=0.95" --------------------------------------------------

TARGET_PATTERN = re.compile(r"^\s*(mean_return|success_rate)\s*(>=|>)\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")


class Target(NamedTuple):
    """A threshold on an evaluation figure: what "reached the target" means for a run."""

    metric: str  # "mean_return" or "success_rate"
    op: str  # ">=" or ">"
    value: float

    @classmethod
    def parse(cls, text: str) -> Target:
        found = TARGET_PATTERN.match(text)
        if found is None:
            raise ConfigError(
                f"target {text!r} is not understood: write METRIC>=VALUE with METRIC mean_return or success_rate, "
                "e.g. 'mean_return>=-200' or 'success_rate>=0.95'"
            )
        return cls(found.group(1), found.group(2), float(found.group(3)))

    def reached(self, result: Dict[str, Any]) -> bool:
        value = result.get(self.metric)
        if value is None:
            return False
        return value >= self.value if self.op == ">=" else value > self.value

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"
