"""Environments: building them from what the user hands over, and the batched interface rollouts step."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import gymnasium as gym
import torch

from ppolearn.envs.batched import BatchedEnv
from ppolearn.envs.make import EnvSpec, env_factory, env_id_of, make_env, preset_key
from ppolearn.envs.registry import batched_class, batched_ids, is_batched_id, official_id
from ppolearn.envs.spaces import ActionSpec, ObsSpec, space_mismatch
from ppolearn.envs.success import SuccessInfo, with_success
from ppolearn.envs.vector import GymVecEnv, OnDevice, StepResult, VecEnv, same_device
from ppolearn.envs.wrappers import WrapperEntry, configured_factory
from ppolearn.errors import ConfigError

__all__ = [
    "ActionSpec",
    "BatchedEnv",
    "EnvSpec",
    "GymVecEnv",
    "ObsSpec",
    "StepResult",
    "SuccessInfo",
    "VecEnv",
    "batched_ids",
    "configured_factory",
    "is_batched_id",
    "is_vec_env",
    "env_factory",
    "env_id_of",
    "make_env",
    "make_vec_env",
    "official_id",
    "preset_key",
    "space_mismatch",
    "with_success",
]


# ppolearn's own tasks: id -> (entry point, time limit)
OWN_TASKS = {
    "ppolearn/PointReach-v0": ("ppolearn.envs.point_reach:PointReachEnv", 100),  # goal-conditioned, continuous
    "ppolearn/CueMemory-v0": ("ppolearn.envs.cue_memory:CueMemoryEnv", 16),  # needs memory
    "ppolearn/GridReach-v0": ("ppolearn.envs.grid_reach:GridReachEnv", 21),  # MultiDiscrete actions
    "ppolearn/LampSwitch-v0": ("ppolearn.envs.lamp_switch:LampSwitchEnv", 10),  # MultiBinary actions
}


def _register_own_tasks() -> None:
    for task_id, (entry_point, limit) in OWN_TASKS.items():
        if task_id not in gym.registry:  # importing twice (e.g. after a reload) must not warn
            gym.register(task_id, entry_point=entry_point, max_episode_steps=limit)


_register_own_tasks()


def is_vec_env(env: object) -> bool:
    """True for an object already speaking the batched-tensor protocol."""
    return all(hasattr(env, a) for a in ("num_envs", "obs_spec", "action_spec", "step", "reset"))


def make_vec_env(
    env: Union[EnvSpec, VecEnv],
    num_envs: int,
    vectorization: str = "sync",
    device: Union[str, torch.device] = "cpu",
    env_kwargs: Optional[dict] = None,
    env_wrapper: Sequence[WrapperEntry] = (),
    sanitize_nonfinite: bool = False,
    success: Optional[str] = None,
    image_obs: bool = True,
    channels_last: Optional[bool] = None,
    action_masking: str = "auto",
) -> VecEnv:
    """A :class:`VecEnv` of ``num_envs`` copies of ``env`` (returned as is if it already is one).

    ``success`` names a criterion from :mod:`ppolearn.envs.success` that each copy reports as ``is_success``.
    A ``ppolearn/`` id builds the batched tensor environment on ``device`` (``vectorization`` does not apply).
    ``image_obs``, ``channels_last`` and ``action_masking`` are the config's fields (GymVecEnv).
    """
    if (env_kwargs or env_wrapper) and (is_vec_env(env) or is_batched_id(env) or isinstance(env, gym.Env)):
        what = "env_kwargs are passed to the constructor of" if env_kwargs else "env_wrapper wraps"
        raise ConfigError(
            f"{what} an environment ppolearn builds: give an id or a factory, "
            "not an Env instance, a VecEnv or a batched ppolearn/ clone"
        )
    if is_vec_env(env):  # a ready one stays on its device; its tensors travel to the learner's
        on = getattr(env, "device", "cpu")
        return env if same_device(on, device) else OnDevice(env, torch.device(device))  # type: ignore[arg-type]
    if is_batched_id(env):
        return batched_class(env)(num_envs, device)  # type: ignore[arg-type]
    return GymVecEnv(  # type: ignore[arg-type]
        env,
        num_envs,
        vectorization,
        device,
        env_kwargs=env_kwargs,
        env_wrapper=env_wrapper,
        sanitize_nonfinite=sanitize_nonfinite,
        success=success,
        image_obs=image_obs,
        channels_last=channels_last,
        action_masking=action_masking,
    )
