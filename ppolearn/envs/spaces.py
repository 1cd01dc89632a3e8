"""What the networks see of an environment's spaces: a flat float32 observation vector plus any images, and
the action space (Box, Discrete, MultiDiscrete or MultiBinary) as plain data.

Every non-image observation entry is encoded into one vector, so the MLPs, the normalisers, the rollout
buffer and the Ray workers work the same whatever the space:

    Box             flattened, whatever its shape
    image           a uint8 Box of 3 dims with 1-4 channels first or last (HxWxC or CxHxW): kept apart as
                    uint8, moved to CxHxW; a CNN encodes it (ppolearn/encoders.py), scaled to [0, 1] there
    Discrete        one-hot
    MultiDiscrete   one one-hot per entry, concatenated
    MultiBinary     its 0/1 entries as floats
    Dict / Tuple    their entries' encodings concatenated, nested to any depth; a Dict's keys in a fixed
                    order (goal keys first, then sorted), so a saved model reads them the same way later
    Text            dropped with a warning (e.g. MiniGrid's mission string): the networks take no text

Without images an encoded batch is that one (n, dim) array; with images it is a dict: ``"vector"`` (absent
when nothing but images is left) and one ``image[...]`` key per image (the entry's path), uint8 (n, C, H, W).

Observation normalisation then runs over the whole vector (never the images), one-hot parts included: their
running mean and std are those of a 0/1 variable, so normalising them only shifts and rescales an input,
which is harmless.

The encoding is a tree of plain data (``ObsSpec.layout``) stored in model files, so a model can be loaded
and used without its environment.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np

from ppolearn.errors import EnvError

ArrayLike = Union[Sequence[float], np.ndarray]  # bounds as ActionSpec keeps them, or a space's arrays

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
VECTOR_KEY = "vector"  # the flat float part of an encoded observation that has images
NATURE_CNN_MIN_SIDE = 36  # the NatureCNN's 8x8/4, 4x4/2, 3x3/1 convolutions need frames of at least 36 px
SMALL_CNN_MIN_SIDE = 4  # three 2x2 convolutions need at least 4 px; smaller uint8 grids stay vectors

Node = Dict[str, Any]  # one node of an observation layout: {"type": "box" | "discrete" | ..., ...}


def dict_key_order(keys: Sequence[str]) -> List[str]:
    """Goal-conditioned keys first in their conventional order, any others after them alphabetically."""
    first = [k for k in GOAL_KEYS if k in keys]
    return first + sorted(k for k in keys if k not in GOAL_KEYS)


def image_layout(space: gym.spaces.Box, image_obs: bool, channels_last: Optional[bool]) -> Optional[Node]:
    """The layout of an image entry, or None where the Box is not one: uint8, 3 dims, 1-4 channels at an end
    (``channels_last`` forces which end; None reads it from the shape, the last end first as Gymnasium's
    render frames and MiniGrid have it). ``image_obs=False`` treats every Box as a vector. Grids under 4 px
    on a side stay vectors (too small for three 2x2 convolutions).

    A 4-dim uint8 Box is a stack of such frames, oldest first (``gymnasium.wrappers.FrameStackObservation``
    around an image environment): its frames' channels go side by side, so the CNN sees k frames of C
    channels as one image of k * C channels."""
    shape = list(space.shape)
    if not image_obs or space.dtype != np.uint8 or len(shape) not in (3, 4):
        return None
    frame = shape[-3:]
    if channels_last is None:
        if 1 <= frame[-1] <= 4:
            channels_last = True
        elif 1 <= frame[0] <= 4:
            channels_last = False
        else:
            return None
    height, width = frame[:2] if channels_last else frame[1:]
    if min(height, width) < SMALL_CNN_MIN_SIDE:
        return None
    cnn = "nature" if min(height, width) >= NATURE_CNN_MIN_SIDE else "small"
    return {"type": "image", "shape": shape, "channels_last": bool(channels_last), "cnn": cnn}


def image_chw(node: Node) -> List[int]:
    """An image entry's (channels, height, width), as the buffer stores it and the CNN reads it (a stack of
    k frames: k times the channels)."""
    *stack, a, b, c = node["shape"]
    frames = int(np.prod(stack))  # 1 for a single frame
    return [frames * c, a, b] if node["channels_last"] else [frames * a, b, c]


def _layout(space: gym.Space, where: str, image_obs: bool = True, channels_last: Optional[bool] = None) -> Node:
    """The encoding tree of one space; ``where`` names the entry for messages ("observation['mission']")."""
    if isinstance(space, gym.spaces.Box):
        image = image_layout(space, image_obs, channels_last)
        return image if image is not None else {"type": "box", "shape": list(space.shape)}
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
        items = [_layout(space.spaces[k], f"{where}[{k!r}]", image_obs, channels_last) for k in keys]
        return {"type": "dict", "keys": keys, "items": items}
    if isinstance(space, gym.spaces.Tuple):
        items = [_layout(s, f"{where}[{i}]", image_obs, channels_last) for i, s in enumerate(space.spaces)]
        return {"type": "tuple", "items": items}
    if _is_text(space):
        warnings.warn(
            f"{where} is a text space ({type(space).__name__}); ppolearn drops it (the policy does not see it)",
            UserWarning,
            stacklevel=4,
        )
        return {"type": "text"}
    raise EnvError(
        f"{where} space {type(space).__name__} is not supported: ppolearn takes Box, Discrete, MultiDiscrete, "
        "MultiBinary and Dict / Tuple of them; wrap the environment to return one of those"
    )


def _is_text(space: gym.Space) -> bool:
    """A space of strings: Text, or one of its kind such as MiniGrid's MissionSpace (samples are str)."""
    if isinstance(space, gym.spaces.Text):
        return True
    try:
        return isinstance(space.sample(), str)
    except Exception:  # a space that cannot sample is not one ppolearn can use either way
        return False


def _width(node: Node) -> int:
    kind = node["type"]
    if kind in ("box", "multi_binary"):
        return int(np.prod(node["shape"]))
    if kind == "discrete":
        return node["n"]
    if kind == "multi_discrete":
        return int(sum(node["nvec"]))
    if kind in ("text", "image"):
        return 0  # not part of the vector
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


class _Image:
    """An image entry -> uint8 (rows, C, H, W): kept as bytes (a quarter of float32's memory in the buffer).
    A stack of frames -> (rows, k * C, H, W), frame by frame."""

    def __init__(self, node: Node) -> None:
        self.shape, self.channels_last = tuple(node["shape"]), node["channels_last"]
        self.chw = tuple(image_chw(node))

    def __call__(self, obs: Any) -> np.ndarray:
        frames = np.asarray(obs, dtype=np.uint8).reshape(-1, *self.shape)
        if self.channels_last:
            frames = np.moveaxis(frames, -1, -3)  # (rows, [k,] H, W, C) -> (rows, [k,] C, H, W)
        return frames.reshape(-1, *self.chw) if len(self.shape) == 4 else frames


def image_key(path: tuple) -> str:
    """The encoded observation's key of the image at ``path``: ``image`` (the whole observation),
    ``image['image']`` (a Dict entry), ``image[0]`` (a Tuple entry)."""
    return "image" + "".join(f"[{step!r}]" for step in path)


def _encoders(node: Node, path: tuple = ()) -> List[tuple]:
    """The leaves of a layout as (path into the observation, encoder to (rows, ...) arrays, the rank of one
    unbatched entry, its image key or None for the vector), in order: built once, so encoding a step's
    observations is one loop over them."""
    kind = node["type"]
    if kind == "image":
        return [(path, _Image(node), len(node["shape"]), image_key(path))]
    if kind in ("box", "multi_binary"):
        width = _width(node)
        return [(path, lambda obs: np.asarray(obs, dtype=np.float32).reshape(-1, width), len(node["shape"]), None)]
    if kind == "discrete":
        return [(path, _OneHot([node["n"]], [node["start"]]), 0, None)]
    if kind == "multi_discrete":
        return [(path, _OneHot(node["nvec"], node["start"]), len(node["shape"]), None)]
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
    if kind == "image":
        cnn = "NatureCNN" if node["cnn"] == "nature" else "small CNN"
        *stack, a, b, c = node["shape"]
        frames = f"{stack[0]} frames of " if stack else ""
        return f"image {frames}{a}x{b}x{c} uint8 -> {cnn}"
    if kind == "dict":
        return "Dict(" + ", ".join(f"{k}: {_describe(i)}" for k, i in zip(node["keys"], node["items"])) + ")"
    return "Tuple(" + ", ".join(_describe(i) for i in node["items"]) + ")"


class ObsSpec:
    """How to turn one observation (or a batch) of a space into what the networks take: a flat float32
    vector of size ``dim`` and, where the space has images, uint8 (C, H, W) frames (``images``)."""

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
        # image key -> (C, H, W) and the layout node, in layout order; empty for vector-only spaces
        self.images: Dict[str, List[int]] = {}
        self.image_nodes: Dict[str, Node] = {}
        for path, _, _, key in self._encoders:
            if key is not None:
                self.image_nodes[key] = _entry(layout, _layout_path(layout, path))
                self.images[key] = image_chw(self.image_nodes[key])

    @classmethod
    def from_space(cls, space: gym.Space, image_obs: bool = True, channels_last: Optional[bool] = None) -> ObsSpec:
        """The spec of ``space``; ``image_obs`` and ``channels_last`` as in :func:`image_layout`."""
        layout = _layout(space, "observation", image_obs, channels_last)
        spec = cls(dim=_width(layout), layout=layout)
        if spec.dim == 0 and not spec.images:
            raise EnvError("the observation space holds nothing ppolearn can encode (only Text)")
        return spec

    @property
    def keys(self) -> Optional[List[str]]:
        """The top-level Dict keys in encoding order; None for other spaces."""
        return self.layout["keys"] if self.layout["type"] == "dict" else None

    def encode(self, obs: Any, batched: bool = False) -> Union[np.ndarray, Dict[str, np.ndarray]]:
        """Without images: a float32 array (dim,) or, with ``batched``, (n, dim). With images: a dict of
        such arrays, the vector under ``"vector"`` (where dim > 0) and each image as uint8 (C, H, W)."""
        try:
            if self._box:
                arr = np.asarray(obs, dtype=np.float32)
                return arr.reshape(-1, self.dim) if batched else arr.reshape(self.dim)
            parts, images = [], {}
            for path, encode, _, key in self._encoders:
                if key is None:
                    parts.append(encode(_entry(obs, path)))
                else:
                    images[key] = encode(_entry(obs, path))
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # a wrong shape, key or type of value
            raise self._mismatch(exc) from None
        flat = np.concatenate(parts, axis=-1) if parts else None
        if not images:
            return flat if batched else flat.reshape(self.dim)
        encoded = {} if flat is None else {VECTOR_KEY: flat}
        encoded.update(images)
        return encoded if batched else {k: v[0] for k, v in encoded.items()}

    def is_batched(self, obs: Any) -> bool:
        """Whether ``obs`` is a batch of observations rather than one."""
        path, _, rank, _ = self._encoders[0]
        try:
            return np.ndim(_entry(obs, path)) > rank
        except (KeyError, IndexError, TypeError) as exc:
            raise self._mismatch(exc) from None

    def _mismatch(self, exc: Exception) -> EnvError:
        return EnvError(f"observation does not fit {self.describe()} ({type(exc).__name__}: {exc})")

    def describe(self) -> str:
        """The space in a few words, for messages: ``Dict(observation: Box(3,), mission: Text (dropped))``."""
        return _describe(self.layout)

    def bytes_per_transition(self) -> int:
        """What one observation takes in the rollout buffer: 4 bytes per vector float, 1 per image byte."""
        return 4 * self.dim + sum(int(np.prod(chw)) for chw in self.images.values())

    def to_dict(self) -> Dict[str, Any]:
        return {"dim": self.dim, "layout": self.layout}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObsSpec) and (self.dim, self.layout) == (other.dim, other.layout)

    def __repr__(self) -> str:
        return f"ObsSpec(dim={self.dim}, {self.describe()})"


def _layout_path(layout: Node, path: tuple) -> tuple:
    """The path of an observation entry, as a path into the layout tree (``items`` and their indices)."""
    steps: List[Any] = []
    node = layout
    for step in path:
        index = node["keys"].index(step) if node["type"] == "dict" else step
        steps += ["items", index]
        node = node["items"][index]
    return tuple(steps)


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
    def mask_dim(self) -> int:
        """Width of an invalid-action mask (sb3-contrib's convention: one flag per choice, a MultiDiscrete's
        entries side by side); 0 for the kinds that cannot be masked (Box, MultiBinary)."""
        if self.kind == "discrete":
            return self.dim
        if self.kind == "multi_discrete":
            return int(sum(self.nvec))
        return 0

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


# A half-range this large says nothing about the useful actions: such a dimension (float32's max standing for
# "unbounded", say) is treated as unbounded, not mapped (a std of 1e38 would overflow)
MAX_HALF_RANGE = 1e6


def bounded_dimensions(low: ArrayLike, high: ArrayLike) -> np.ndarray:
    """Per Box dimension, whether its bounds give a useful range: finite, ordered, a half-range under 1e6."""
    low_a, high_a = np.asarray(low, np.float64), np.asarray(high, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: such a dimension is unbounded anyway
        half = (high_a - low_a) / 2
        return np.isfinite(low_a) & np.isfinite(high_a) & (high_a > low_a) & (half < MAX_HALF_RANGE)


def action_scaling(low: ArrayLike, high: ArrayLike, mode: str) -> Tuple[np.ndarray, np.ndarray]:
    """Per Box dimension, the center and half-range the Gaussian head maps [-1, 1] onto (config
    ``scale_actions``); (0, 1), the environment's own units, where a dimension is left as it is.

    Why: a Gaussian head starts at mean 0 with std 1 in whatever units the environment uses. Where the
    bounds are [0, 10] it starts at a closed valve; in [-50, 50] its noise covers 1% of the range; in
    [-0.1, 0.1] nearly every sample is clipped. Mapped onto the bounds it starts mid-range with noise of
    about half the range (``log_std_init`` then counts in half-ranges), what SB3's documentation asks users
    to arrange by rescaling their actions. But where the bounds are already near that fit, the mapping only
    changes the noise: on a [-2, 2] turntable the doubled noise kept the policy from learning a precise stop
    in 49k steps (BENCHMARKS.md, candidate defaults, round 3). So:

    - "true": every dimension with a useful range (``bounded_dimensions``);
    - "auto" (the default): only the dimensions the standard normal does not fit, those whose center is
      off 0 by more than half the half-range (0 near or outside a bound) or whose half-range is over 4
      or under 1/4 (std 1 covering under a quarter of the range, or four times more than all of it);
    - "false": none.

    A saved model keeps its mode, not the numbers: it is rebuilt with this rule, so changing the rule changes
    what "auto" models do; a new rule takes a new mode name.
    """
    bounded = bounded_dimensions(low, high)
    low_a = np.where(bounded, np.asarray(low, np.float64), -1.0)
    high_a = np.where(bounded, np.asarray(high, np.float64), 1.0)
    center, half = (high_a + low_a) / 2, (high_a - low_a) / 2
    if mode == "auto":
        bounded &= (np.abs(center) > half / 2) | (half > 4) | (half < 0.25)
    elif mode != "true":
        bounded[:] = False
    return np.where(bounded, center, 0.0), np.where(bounded, half, 1.0)


def mapped_dimensions(center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Which dimensions ``action_scaling``'s (center, half) map: those not left at (0, 1), the
    environment's units (bool per dimension)."""
    return (np.asarray(center) != 0) | (np.asarray(half) != 1)
