"""Potential-based reward shaping for sparse goal-conditioned tasks (``goal_shaping: potential``).

A sparse goal task (FetchReach-v4: reward -1 on every step until the gripper is within 5 cm of the goal)
gives PPO no gradient: every early episode has the same return. Shaping adds, on every training step,

    F(s, s') = gamma * Phi(s') - Phi(s),   Phi(s) = -||achieved_goal(s) - desired_goal(s)|| / scale

so moving towards the goal pays at once. Ng, Harada & Russell (1999) prove that a reward of this form
leaves the optimal policies unchanged: along any trajectory the shaping terms telescope to
``gamma^T Phi(s_T) - Phi(s_0)``, which no action can change apart from where the episode ends. ``scale``
(default: the environment's ``distance_threshold``, 5 cm for Fetch, else 1) puts one success radius of
progress at one unit of reward, the size of the sparse reward.

Episode ends: a *terminated* episode has reached an absorbing state, whose potential is 0 by convention
(Ng et al.; Grzes 2017) — any other value would reward or penalise ending the episode in one state rather
than another and could change the optimal policy. A *truncated* episode (a time limit; every Fetch
episode ends so) has not ended in the MDP: the learner bootstraps from its last observation, so the real
``Phi(s')`` is used, exactly as on any other step, and the telescoping sum stays that of the untruncated task.

Only the reward the learner trains on is shaped: ``info["is_success"]`` is untouched, the raw reward is in
``info["unshaped_reward"]``, and evaluation builds the environment without this wrapper, so every figure
ppolearn reports (evaluation return and success) is the task's own. The training curve's "return" is the
shaped one.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np

from ppolearn.envs.make import EnvSpec, env_factory, env_id_of
from ppolearn.errors import EnvError

GOAL_KEYS = ("achieved_goal", "desired_goal")
MODES = ("potential",)  # goal_shaping values; null (the default) shapes nothing


class PotentialShaping(gym.Wrapper):
    """Adds ``gamma * Phi(s') - Phi(s)`` to every reward, ``Phi`` = minus the goal distance over ``scale``."""

    def __init__(self, env: gym.Env, gamma: float, scale: Optional[float] = None, name: str = "") -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict) or not all(k in space.spaces for k in GOAL_KEYS):
            raise EnvError(
                f"goal_shaping needs a goal-conditioned environment (Dict observations with 'achieved_goal' and "
                f"'desired_goal'); '{name or type(env.unwrapped).__name__}' observes {type(space).__name__}"
                f"{' ' + str(sorted(space.spaces)) if isinstance(space, gym.spaces.Dict) else ''}: "
                "set goal_shaping=null"
            )
        if scale is None:
            scale = float(getattr(env.unwrapped, "distance_threshold", 1.0))
        if not scale > 0:
            raise EnvError(f"goal_shaping_scale={scale!r} must be positive")
        self.gamma, self.scale = gamma, scale
        self._potential = 0.0

    def potential(self, obs: Dict[str, Any]) -> float:
        """Phi: minus the distance between achieved and desired goal, in units of ``scale``."""
        gap = np.asarray(obs["achieved_goal"], np.float64) - np.asarray(obs["desired_goal"], np.float64)
        return -float(np.linalg.norm(gap)) / self.scale

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._potential = self.potential(obs)
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        next_potential = 0.0 if terminated else self.potential(obs)  # absorbing state: Phi = 0 (docstring)
        shaped = float(reward) + self.gamma * next_potential - self._potential
        self._potential = next_potential
        return obs, shaped, terminated, truncated, {**info, "unshaped_reward": reward}


class GoalShapedEnv:
    """An environment spec whose environments train on the shaped reward. It keeps the task's name
    (``env_id``): presets, run directories and saved models refer to the task, and evaluation rebuilds the
    raw task from that name."""

    def __init__(self, env: EnvSpec, gamma: float, scale: Optional[float] = None) -> None:
        self.env, self.gamma, self.scale = env, gamma, scale
        self.env_id = self.__name__ = env_id_of(env)

    def __call__(self, **kwargs: Any) -> gym.Env:
        return PotentialShaping(env_factory(self.env)(**kwargs), self.gamma, self.scale, self.env_id)


def training_env(env: EnvSpec, goal_shaping: Optional[str], gamma: float, scale: Optional[float] = None) -> EnvSpec:
    """What to train on: ``env`` itself, or with ``goal_shaping="potential"`` a spec of shaped copies."""
    if goal_shaping is None or isinstance(env, GoalShapedEnv):
        return env
    return GoalShapedEnv(env, gamma, scale)
