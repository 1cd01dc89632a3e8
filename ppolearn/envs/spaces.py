"""What the networks see of an environment's spaces: a flat float observation and a Box or Discrete action.

Dict observations (goal-conditioned ``observation`` / ``achieved_goal`` / ``desired_goal``) are flattened
in a fixed key order so a saved model reads them the same way later. The spec is stored in model files as
plain data, so a model can be loaded and used without its environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import gymnasium as gym
import numpy as np

from ppolearn.errors import EnvError

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")


def dict_key_order(keys: Sequence[str]) -> List[str]:
    """Goal-conditioned keys first in their conventional order, any others after them alphabetically."""
    first = [k for k in GOAL_KEYS if k in keys]
    return first + sorted(k for k in keys if k not in GOAL_KEYS)


@dataclass(frozen=True)
class ObsSpec:
    """How to turn one observation (array or dict of arrays) into a flat float32 vector."""

    dim: int
    keys: Optional[List[str]] = None  # None for Box; the flattening order for Dict
    shapes: Optional[List[List[int]]] = None  # per key (Dict) or the Box shape

    @classmethod
    def from_space(cls, space: gym.Space) -> ObsSpec:
        if isinstance(space, gym.spaces.Box):
            return cls(dim=int(np.prod(space.shape)), shapes=[list(space.shape)])
        if isinstance(space, gym.spaces.Dict):
            keys = dict_key_order(list(space.spaces))
            for k in keys:
                if not isinstance(space.spaces[k], gym.spaces.Box):
                    raise EnvError(
                        f"observation space Dict entry '{k}' is {type(space.spaces[k]).__name__}; "
                        "ppolearn supports Dict observations whose entries are all Box"
                    )
            shapes = [list(space.spaces[k].shape) for k in keys]
            return cls(dim=int(sum(np.prod(s) for s in shapes)), keys=keys, shapes=shapes)
        raise EnvError(
            f"observation space {type(space).__name__} is not supported: ppolearn takes Box or Dict (of Box) "
            "observations; wrap the environment to return one (e.g. gymnasium.wrappers.FlattenObservation)"
        )

    def flatten(self, obs: Any, batched: bool = False) -> np.ndarray:
        """A float32 array (dim,) or, with ``batched``, (n, dim)."""
        if self.keys is None:
            arr = np.asarray(obs, dtype=np.float32)
            return arr.reshape(-1, self.dim) if batched else arr.reshape(self.dim)
        if not isinstance(obs, dict):
            raise EnvError(f"expected a dict observation with keys {self.keys}, got {type(obs).__name__}")
        parts = [np.asarray(obs[k], dtype=np.float32) for k in self.keys]
        parts = [p.reshape(p.shape[0], -1) if batched else p.reshape(-1) for p in parts]
        return np.concatenate(parts, axis=-1)

    def to_dict(self) -> Dict[str, Any]:
        return {"dim": self.dim, "keys": self.keys, "shapes": self.shapes}


@dataclass(frozen=True)
class ActionSpec:
    """A Box (continuous, with bounds) or Discrete action space, as plain data."""

    kind: str  # "box" or "discrete"
    dim: int  # action vector size (box) or number of choices (discrete)
    low: Optional[List[float]] = None
    high: Optional[List[float]] = None
    shape: Optional[List[int]] = None
    start: int = 0  # Discrete(n, start)

    def __post_init__(self) -> None:
        if self.kind == "box":  # bounds as arrays once, not per step in to_env (not fields: saved specs stay plain)
            object.__setattr__(self, "_low", np.asarray(self.low, np.float32))
            object.__setattr__(self, "_high", np.asarray(self.high, np.float32))

    @classmethod
    def from_space(cls, space: gym.Space) -> ActionSpec:
        if isinstance(space, gym.spaces.Box):
            low, high = space.low.reshape(-1), space.high.reshape(-1)
            return cls(
                kind="box",
                dim=int(low.size),
                low=[float(x) for x in low],
                high=[float(x) for x in high],
                shape=list(space.shape),
            )
        if isinstance(space, gym.spaces.Discrete):
            return cls(kind="discrete", dim=int(space.n), start=int(space.start))
        raise EnvError(
            f"action space {type(space).__name__} is not supported: ppolearn takes Box (continuous) or Discrete actions"
        )

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    def to_env(self, actions: np.ndarray, batched: bool = False) -> np.ndarray:
        """Policy outputs to what the environment takes: clipped to the bounds, or shifted by start."""
        if self.is_discrete:
            return actions.astype(np.int64) + self.start
        clipped = np.minimum(np.maximum(actions, self._low), self._high)  # np.clip's dispatch costs more here
        return clipped.reshape((-1, *self.shape) if batched else tuple(self.shape))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "low": self.low,
            "high": self.high,
            "shape": self.shape,
            "start": self.start,
        }
