"""What a model file and a checkpoint hold, and how a loaded one is put back into a PPO.

A model file (``PPO.save``) holds what predicting needs: the config, the space descriptions (so the
networks are rebuilt without the environment), the policy's weights and the normalisers' statistics. A
checkpoint (``PPO.save_checkpoint``) adds what continuing training needs: the optimiser, the RNG, the
counters, the evaluation-during-training record, the recent episodes and, for batched tensor envs, where
each environment is mid-episode. Writing and reading the files themselves (atomic, code-free) is
ppolearn/checkpoint.py's job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

import torch

from ppolearn.checkpoint import FORMAT, FORMAT_VERSION, safe_load
from ppolearn.config import PPOConfig, build_config
from ppolearn.envs import ActionSpec, ObsSpec, space_mismatch
from ppolearn.envs.obs import obs_map
from ppolearn.errors import CheckpointError, ConfigError
from ppolearn.rollout import EpisodeStats

if TYPE_CHECKING:
    from ppolearn.ppo import PPO


def model_state(model: PPO, with_training_state: bool) -> Dict[str, Any]:
    """The dict a model file holds; with ``with_training_state``, a checkpoint's."""
    state: Dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "model",
        "env_id": model.env_id,
        "config": model.config.to_dict(),
        "obs_spec": model.obs_spec.to_dict(),
        "action_spec": model.action_spec.to_dict(),
        "policy": model.policy.state_dict(),
        "obs_rms": model.obs_norm.rms.state_dict(),
        "ret_rms": model.reward_scaler.rms.state_dict(),
        "num_timesteps": model.num_timesteps,
    }
    if with_training_state:
        recent = model._recent
        state.update(
            {
                "kind": "checkpoint",
                "optimizer": model.optimizer.state_dict(),
                "generator": model.generator.get_state(),
                "num_updates": model.num_updates,
                "elapsed_s": model.elapsed_s,
                "env": _env_state(model),
                "evaluation": model.evaluator.state_dict(),
                "recent": {"returns": recent.returns, "lengths": recent.lengths, "successes": recent.successes},
            }
        )
    return state


def _env_state(model: PPO) -> Optional[Dict[str, Any]]:
    """Where the environments are mid-episode, for envs that can say so as tensors (batched envs);
    Gymnasium envs cannot, so a resumed run starts their episodes afresh."""
    if model._next_obs is None or not hasattr(model.env, "state_dict"):
        return None
    hidden = model.policy.get_hidden_state()  # a memory core's state mid-episode (None: feed-forward)
    return {
        "state": model.env.state_dict(),
        "next_obs": obs_map(lambda part: part.cpu(), model._next_obs),
        "reward_returns": model.reward_scaler.returns.cpu(),
        "hidden": None if hidden is None else hidden.cpu(),
    }


def read_model(
    path: Union[str, Path], device: str, overrides: Mapping[str, Any]
) -> Tuple[Dict[str, Any], PPOConfig, ObsSpec, ActionSpec]:
    """A model file or checkpoint read safely: its dict, its config (with ``overrides`` and ``device``) and its
    spaces, from which PPO.load rebuilds the networks without the environment."""
    data = safe_load(path, map_location="cpu")
    if "scale_actions" in overrides:  # how the saved weights' outputs map onto actions: part of the policy
        raise ConfigError("scale_actions cannot be changed when loading a model: it is part of its policy")
    try:
        # checkpoints from before ``scale_actions`` existed trained in the environment's units
        legacy = {} if "scale_actions" in data["config"] else {"scale_actions": "false"}
        config = build_config(data["config"], legacy, {"device": device}, overrides)
        return data, config, ObsSpec(**data["obs_spec"]), ActionSpec(**data["action_spec"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"'{path}' is missing or has malformed fields ({exc})") from None


def restore_state(model: PPO, data: Dict[str, Any], path: Union[str, Path]) -> None:
    """Put a loaded file's weights, statistics and (for a checkpoint) training state into ``model``, whose
    networks were built from the same file's config and spaces."""
    try:
        if "policy" in data:
            model.policy.load_state_dict(data["policy"])
        else:  # formats 1 and 2: the actor and critic of a vector space, saved apart
            model.actor.load_state_dict(data["actor"])
            model.critic.load_state_dict(data["critic"])
        model.obs_norm.rms.load_state_dict(data["obs_rms"])
        model.reward_scaler.rms.load_state_dict(data["ret_rms"])
        model.num_timesteps = int(data["num_timesteps"])
        if data.get("kind") == "checkpoint":
            model.optimizer.load_state_dict(data["optimizer"])
            model.generator.set_state(data["generator"])
            model.num_updates = int(data["num_updates"])
            model.elapsed_s = float(data["elapsed_s"])
            env_state = data.get("env")
            if env_state is not None and model.env is not None and hasattr(model.env, "load_state_dict"):
                model.env.load_state_dict(env_state["state"])
                model._next_obs = obs_map(lambda part: part.to(model.device), env_state["next_obs"])
                model.reward_scaler.returns = env_state["reward_returns"].to(model.device, torch.float64)
                if env_state.get("hidden") is not None and model.policy.is_recurrent:
                    model.policy.set_hidden_state(env_state["hidden"].to(model.device))
            if data.get("evaluation") is not None:  # absent in checkpoints of earlier versions
                model.evaluator.load_state_dict(data["evaluation"])
            recent = data["recent"]
            model._recent = EpisodeStats(recent["returns"], recent["lengths"], recent["successes"])
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise CheckpointError(f"'{path}' does not match this model ({first})") from None


def check_same_spaces(
    path: Union[str, Path],
    obs_spec: ObsSpec,
    action_spec: ActionSpec,
    env_obs: ObsSpec,
    env_action: ActionSpec,
    env_id: str,
) -> None:
    """A clear error where the environment a model is loaded with has other spaces than it was trained on."""
    reason = space_mismatch(obs_spec, action_spec, env_obs, env_action, env_id)
    if reason is not None:
        raise CheckpointError(f"'{path}' {reason}")
