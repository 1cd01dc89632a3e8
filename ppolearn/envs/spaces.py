"""What the networks see of an environment's spaces: one flat float32 observation vector, and the action
space (Box, Discrete, MultiDiscrete or MultiBinary) as plain data.

Every observation space is encoded into one vector, so the MLPs, the normalisers, the rollout buffer and the
Ray workers work the same whatever the space:

    Box             flattened, whatever its shape (images too, for now)
    Discrete        one-hot
    MultiDiscrete   one one-hot per entry, concatenated
    MultiBinary     its 0/1 entries as floats
    Dict / Tuple    their entries' encodings concatenated, nested to any depth; a Dict's keys in a fixed
                    order (goal keys first, then sorted), so a saved model reads them the same way later
    Text            dropped with a warning (e.g. MiniGrid's mission string): the networks take no text

Observation normalisation then runs over the whole vector, one-hot parts included: their running mean and
std are those of a 0/1 variable, so normalising them only shifts and rescales an input, which is harmless.

The encoding is a tree of plain data (``ObsSpec.layout``) stored in model files, so a model can be loaded
and used without its environment.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import gymnasium as gym
import numpy as np

from ppolearn.errors import EnvError

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")

Node = Dict[str, Any]  # one node of an observation layout: {"type": "box" | "discrete" | ..., ...}


def dict_key_order(keys: Sequence[str]) -> List[str]:
    """Goal-conditioned keys first in their conventional order, any others after them alphabetically."""
    first = [k for k in GOAL_KEYS if k in keys]
    return first + sorted(k for k in keys if k not in GOAL_KEYS)


def _layout(space: gym.Space, where: str) -> Node:
    """The encoding tree of one space; ``where`` names the entry for messages ("observation['mission']")."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "box", "shape": list(space.shape)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {
            "type": "multi_discrete",
            "shape": list(space.shape),
            "nvec": [int(n) for n in space.nvec.reshape(-1)],
            "start": [int(s) for s in space.start.reshape(-1)],
        }
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "multi_binary", "shape": list(space.shape)}
    if isinstance(space, gym.spaces.Dict):
        keys = dict_key_order(list(space.spaces))
        items = [_layout(space.spaces[k], f"{where}[{k!r}]") for k in keys]
        return {"type": "dict", "keys": keys, "items": items}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "tuple", "items": [_layout(s, f"{where}[{i}]") for i, s in enumerate(space.spaces)]}
    if isinstance(space, gym.spaces.Text):
        warnings.warn(
            f"{where} is a Text space; ppolearn drops it (the policy does not see it)", UserWarning, stacklevel=4
        )
        return {"type": "text"}
    raise EnvError(
        f"{where} space {type(space).__name__} is not supported: ppolearn takes Box, Discrete, MultiDiscrete, "
        "MultiBinary and Dict / Tuple of them; wrap the environment to return one of those"
    )


def _width(node: Node) -> int:
    kind = node["type"]
    if kind in ("box", "multi_binary"):
        return int(np.prod(node["shape"]))
    if kind == "discrete":
        return node["n"]
    if kind == "multi_discrete":
        return int(sum(node["nvec"]))
    if kind == "text":
        return 0
    return sum(_width(item) for item in node["items"])


class _OneHot:
    """Integer entries (Discrete: one, MultiDiscrete: several) -> their one-hots side by side, float32."""

    def __init__(self, sizes: List[int], starts: List[int]) -> None:
        self.sizes, self.starts = np.array(sizes), np.array(starts)
        self.columns = self.starts - np.concatenate([[0], np.cumsum(sizes)[:-1]])  # entry value -> its column
        self.eye = np.eye(int(sum(sizes)), dtype=np.float32)

    def __call__(self, obs: Any) -> np.ndarray:
        index = np.asarray(obs, dtype=np.int64).reshape(-1, len(self.sizes))
        shifted = index - self.starts
        if shifted.min() < 0 or (shifted >= self.sizes).any():
            raise EnvError(f"observation {index.tolist()} is outside its space (sizes {self.sizes.tolist()})")
        rows = self.eye[index - self.columns]  # (n, entries, width): one one-hot row per entry
        return rows.sum(axis=1) if len(self.sizes) > 1 else rows[:, 0]


def _encoders(node: Node, path: tuple = ()) -> List[tuple]:
    """The leaves of a layout as (path into the observation, encoder to (rows, width) float32, the rank of
    one unbatched entry), in order: built once, so flattening a step's observations is one loop over them."""
    kind = node["type"]
    if kind in ("box", "multi_binary"):
        width = _width(node)
        return [(path, lambda obs: np.asarray(obs, dtype=np.float32).reshape(-1, width), len(node["shape"]))]
    if kind == "discrete":
        return [(path, _OneHot([node["n"]], [node["start"]]), 0)]
    if kind == "multi_discrete":
        return [(path, _OneHot(node["nvec"], node["start"]), len(node["shape"]))]
    if kind == "text":
        return []
    steps = node["keys"] if kind == "dict" else range(len(node["items"]))
    return [leaf for step, item in zip(steps, node["items"]) for leaf in _encoders(item, (*path, step))]


def _entry(obs: Any, path: tuple) -> Any:
    """The part of a (nested Dict / Tuple) observation at ``path``."""
    for step in path:
        obs = obs[step]
    return obs


def _describe(node: Node) -> str:
    kind = node["type"]
    if kind == "box":
        return f"Box{tuple(node['shape'])}"
    if kind == "discrete":
        return f"Discrete({node['n']})"
    if kind == "multi_discrete":
        return f"MultiDiscrete({node['nvec']})"
    if kind == "multi_binary":
        return f"MultiBinary{tuple(node['shape'])}"
    if kind == "text":
        return "Text (dropped)"
    if kind == "dict":
        return "Dict(" + ", ".join(f"{k}: {_describe(i)}" for k, i in zip(node["keys"], node["items"])) + ")"
    return "Tuple(" + ", ".join(_describe(i) for i in node["items"]) + ")"


class ObsSpec:
    """How to turn one observation (or a batch) of a space into a flat float32 vector of size ``dim``."""

    def __init__(
        self,
        dim: int,
        layout: Optional[Node] = None,
        keys: Optional[List[str]] = None,
        shapes: Optional[List[List[int]]] = None,
    ) -> None:
        """``layout`` is the encoding tree; ``keys`` and ``shapes`` instead read model files written before
        it existed (a Box with ``shapes=[shape]``, or a Dict of Box with a shape per key)."""
        if layout is None:
            if keys is None:
                layout = {"type": "box", "shape": list(shapes[0]) if shapes else [int(dim)]}
            else:
                items = [{"type": "box", "shape": list(s)} for s in shapes]
                layout = {"type": "dict", "keys": list(keys), "items": items}
        self.dim = int(dim)
        self.layout = layout
        self._box = layout["type"] == "box"  # the common case flattens as one reshape
        self._encoders = _encoders(layout)

    @classmethod
    def from_space(cls, space: gym.Space) -> ObsSpec:
        layout = _layout(space, "observation")
        dim = _width(layout)
        if dim == 0:
            raise EnvError("the observation space holds nothing ppolearn can encode (only Text)")
        return cls(dim=dim, layout=layout)

    @property
    def keys(self) -> Optional[List[str]]:
        """The top-level Dict keys in flattening order; None for other spaces."""
        return self.layout["keys"] if self.layout["type"] == "dict" else None

    def flatten(self, obs: Any, batched: bool = False) -> np.ndarray:
        """A float32 array (dim,) or, with ``batched``, (n, dim)."""
        if self._box:
            arr = np.asarray(obs, dtype=np.float32)
            return arr.reshape(-1, self.dim) if batched else arr.reshape(self.dim)
        parts = []
        try:
            for path, encode, _ in self._encoders:
                parts.append(encode(_entry(obs, path)))
        except (KeyError, IndexError, TypeError) as exc:
            raise self._mismatch(exc) from None
        flat = np.concatenate(parts, axis=-1)
        return flat if batched else flat.reshape(self.dim)

    def is_batched(self, obs: Any) -> bool:
        """Whether ``obs`` is a batch of observations rather than one."""
        path, _, rank = self._encoders[0]
        try:
            return np.ndim(_entry(obs, path)) > rank
        except (KeyError, IndexError, TypeError) as exc:
            raise self._mismatch(exc) from None

    def _mismatch(self, exc: Exception) -> EnvError:
        return EnvError(f"observation does not fit {self.describe()} ({type(exc).__name__}: {exc})")

    def describe(self) -> str:
        """The space in a few words, for messages: ``Dict(observation: Box(3,), mission: Text (dropped))``."""
        return _describe(self.layout)

    def to_dict(self) -> Dict[str, Any]:
        return {"dim": self.dim, "layout": self.layout}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObsSpec) and (self.dim, self.layout) == (other.dim, other.layout)

    def __repr__(self) -> str:
        return f"ObsSpec(dim={self.dim}, {self.describe()})"


@dataclass(frozen=True)
class ActionSpec:
    """A Box, Discrete, MultiDiscrete or MultiBinary action space, as plain data."""

    kind: str  # "box", "discrete", "multi_discrete" or "multi_binary"
    dim: int  # action vector size (box), choices (discrete), sub-actions (multi_discrete), bits (multi_binary)
    low: Optional[List[float]] = None
    high: Optional[List[float]] = None
    shape: Optional[List[int]] = None  # the environment's action shape (box and the multi kinds)
    start: Union[int, List[int]] = 0  # Discrete(n, start), or MultiDiscrete's start per flattened entry
    nvec: Optional[List[int]] = None  # MultiDiscrete: choices per flattened entry
    dtype: str = "int64"  # what the multi kinds hand the environment (MultiBinary's is int8)

    def __post_init__(self) -> None:
        if self.kind == "box":  # bounds as arrays once, not per step in to_env (not fields: saved specs stay plain)
            object.__setattr__(self, "_low", np.asarray(self.low, np.float32))
            object.__setattr__(self, "_high", np.asarray(self.high, np.float32))
        if self.kind == "multi_discrete":
            object.__setattr__(self, "_start", np.asarray(self.start, np.int64))

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
        if isinstance(space, gym.spaces.MultiDiscrete):
            return cls(
                kind="multi_discrete",
                dim=int(space.nvec.size),
                shape=list(space.shape),
                start=[int(s) for s in space.start.reshape(-1)],
                nvec=[int(n) for n in space.nvec.reshape(-1)],
                dtype=np.dtype(space.dtype).name,
            )
        if isinstance(space, gym.spaces.MultiBinary):
            shape = list(space.shape)
            return cls(kind="multi_binary", dim=int(np.prod(shape)), shape=shape, dtype=np.dtype(space.dtype).name)
        raise EnvError(
            f"action space {type(space).__name__} is not supported: ppolearn takes Box (continuous), Discrete, "
            "MultiDiscrete or MultiBinary actions"
        )

    @property
    def is_discrete(self) -> bool:
        """A single Discrete choice."""
        return self.kind == "discrete"

    @property
    def buffer_shape(self) -> tuple:
        """One action as the rollout buffer stores it: an index (discrete) or a vector of ``dim``."""
        return () if self.is_discrete else (self.dim,)

    @property
    def integer(self) -> bool:
        """Whether actions are integers (every kind but box), stored as int64."""
        return self.kind != "box"

    def describe(self) -> str:
        if self.kind == "multi_discrete":
            return f"MultiDiscrete({self.nvec})"
        return f"{self.kind} actions of size {self.dim}"

    def to_env(self, actions: np.ndarray, batched: bool = False) -> np.ndarray:
        """Policy outputs to what the environment takes: clipped to the bounds, shifted by start, or cast to
        the space's dtype and shape."""
        if self.is_discrete:
            return actions.astype(np.int64) + self.start
        if self.kind == "box":
            actions = np.minimum(np.maximum(actions, self._low), self._high)  # np.clip's dispatch costs more here
        elif self.kind == "multi_discrete":
            actions = (actions.astype(np.int64) + self._start).astype(self.dtype)
        else:
            actions = actions.astype(self.dtype)
        return actions.reshape((-1, *self.shape) if batched else tuple(self.shape))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "low": self.low,
            "high": self.high,
            "shape": self.shape,
            "start": self.start,
            "nvec": self.nvec,
            "dtype": self.dtype,
        }


def space_mismatch(
    trained: ObsSpec, trained_action: ActionSpec, env: ObsSpec, env_action: ActionSpec, env_id: str
) -> Optional[str]:
    """Why a model trained on the first spaces cannot run on environment ``env_id``'s, or None if it can."""
    if env != trained:
        return (
            f"was trained on observations of size {trained.dim} ({trained.describe()}); environment '{env_id}' "
            f"gives {env.dim} ({env.describe()})"
        )
    if (trained_action.kind, trained_action.dim, trained_action.nvec) != (
        env_action.kind,
        env_action.dim,
        env_action.nvec,
    ):
        return f"was trained on {trained_action.describe()}; environment '{env_id}' takes {env_action.describe()}"
    return None
