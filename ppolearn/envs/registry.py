"""The ``ppolearn/`` ids of batched environments and the official Gymnasium id each one clones.

Kept free of heavy imports (classes are named, imported on first use) so that ``make.py`` can map a
batched id to its official id without importing torch-side modules in a cycle.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Tuple

# ppolearn id -> (module:class of the batched env, official Gymnasium id evaluation runs on)
_BATCHED: Dict[str, Tuple[str, str]] = {
    "ppolearn/Pendulum-v1": ("ppolearn.envs.classic:Pendulum", "Pendulum-v1"),
    "ppolearn/MountainCarContinuous-v0": ("ppolearn.envs.classic:MountainCarContinuous", "MountainCarContinuous-v0"),
    "ppolearn/CartPole-v1": ("ppolearn.envs.classic:CartPole", "CartPole-v1"),
    "ppolearn/Acrobot-v1": ("ppolearn.envs.classic:Acrobot", "Acrobot-v1"),
    "ppolearn/PointReachBatched-v0": ("ppolearn.envs.point_reach_batched:PointReach", "ppolearn/PointReach-v0"),
}


def batched_ids() -> List[str]:
    return sorted(_BATCHED)


def is_batched_id(env: Any) -> bool:
    """True for a string naming one of ppolearn's batched environments."""
    return isinstance(env, str) and env in _BATCHED


def official_id(env_id: str) -> str:
    """The Gymnasium id a batched id clones (policies trained on it are evaluated there); others unchanged."""
    return _BATCHED[env_id][1] if env_id in _BATCHED else env_id


def batched_class(env_id: str) -> type:
    """The class of a batched id (imported now: the registry itself stays import-light)."""
    module, _, name = _BATCHED[env_id][0].partition(":")
    return getattr(importlib.import_module(module), name)
