"""Registers the robustness set with Gymnasium as ``Robust-<Name>-v0``, for tools that take only registered ids.

rl-baselines3-zoo's ``train.py`` builds its environments from an id; ``--gym-packages benchmarks.zoo_envs``
imports this module, which registers every task of ``benchmarks/robustness_envs.py`` (ppolearn itself takes
the classes directly and needs no registration).
"""

from __future__ import annotations

import gymnasium as gym

from benchmarks.robustness_envs import ENVS


def zoo_id(name: str) -> str:
    return f"Robust-{name}-v0"


for _name in ENVS:
    if zoo_id(_name) not in gym.registry:
        gym.register(id=zoo_id(_name), entry_point=f"benchmarks.robustness_envs:{_name}")
