"""The one interface the rollout loop steps: a batch of environments that speaks torch tensors.

``rollout()`` never asks what kind of environment it has. :class:`GymVecEnv` adapts any Gymnasium
environment through ``gymnasium.vector`` (sync or async); batched tensor environments implement the same
:class:`VecEnv` protocol natively, so the same loop serves both, on CPU or GPU, in one process or in a
remote worker.

Episode ends follow Gymnasium 1.x ``SAME_STEP`` autoreset: ``obs`` after a step that ended an episode is
already the first observation of the next one, and the ended episode's last observation is handed back in
``final_obs`` so the learner can bootstrap truncated episodes from it.

Invalid-action masks (Discrete and MultiDiscrete actions) follow sb3-contrib's MaskablePPO: the environment
has an ``action_masks()`` method, or puts ``info["action_mask"]`` in reset() and step(); ``action_masks()``
here returns those of the current observations, one bool row per environment.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Protocol, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector.utils import concatenate, create_empty_array

from ppolearn.envs.extras import env_failure
from ppolearn.envs.make import EnvSpec, env_id_of
from ppolearn.envs.obs import Obs, array_tensor, obs_assign, obs_map, obs_tensor
from ppolearn.envs.spaces import VECTOR_KEY, ActionSpec, ObsSpec
from ppolearn.envs.success import SuccessInfo
from ppolearn.envs.wrappers import WrapperEntry, configured_factory
from ppolearn.errors import EnvError


class StepResult(NamedTuple):
    """One step of every environment in the batch, as tensors of leading size num_envs."""

    obs: Obs  # (N, obs_dim) float32 (or a dict with images): next observation, reset where an episode ended
    reward: torch.Tensor  # (N,) float32
    terminated: torch.Tensor  # (N,) bool: the MDP ended (no bootstrapping)
    truncated: torch.Tensor  # (N,) bool: cut by a time limit (bootstrap from final_obs)
    final_obs: Obs  # (N, obs_dim): last observation of the ended episode where done, else obs
    episode_return: torch.Tensor  # (N,) float32: undiscounted return of the ended episode (where done)
    episode_length: torch.Tensor  # (N,) int64: its length (where done)
    episode_success: torch.Tensor  # (N,) float32: 1/0 from info["is_success"], NaN where none given


class VecEnv(Protocol):
    """A batch of environments stepped together (see module docstring for the episode-end contract)."""

    num_envs: int
    obs_spec: ObsSpec
    action_spec: ActionSpec
    env_id: str
    device: torch.device
    masked: bool  # whether action_masks() gives masks (else it returns None)

    def reset(self, seed: Optional[int] = None) -> Obs: ...

    def step(self, actions: torch.Tensor) -> StepResult: ...

    def action_masks(self) -> Optional[torch.Tensor]: ...

    def close(self) -> None: ...

    # Optional, for exact resume: environments whose state is tensors (batched envs) also implement
    #   state_dict() -> Dict[str, torch.Tensor]  and  load_state_dict(state) -> None


class OnDevice:
    """A ready VecEnv whose tensors live on another device than the learner's (a CPU env, a CUDA learner).

    Observations and step results move to the learner's ``device``, actions back to the env's; everything
    else (``num_envs``, the specs, an exact-resume ``state_dict``) is the wrapped env's own.
    """

    def __init__(self, env: VecEnv, device: torch.device) -> None:
        self.env, self.device = env, device

    def reset(self, seed: Optional[int] = None) -> Obs:
        return obs_map(lambda part: part.to(self.device), self.env.reset(seed=seed))

    def step(self, actions: torch.Tensor) -> StepResult:
        step = self.env.step(actions.to(self.env.device))
        return StepResult(*(obs_map(lambda part: part.to(self.device), field) for field in step))

    def action_masks(self) -> Optional[torch.Tensor]:
        masks = self.env.action_masks() if getattr(self.env, "masked", False) else None
        return None if masks is None else masks.to(self.device)

    def close(self) -> None:
        self.env.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


def same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """Whether two device names mean one device ("cuda" is the current one, which is cuda:0 here)."""
    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def _instance_factories(env: gym.Env, num_envs: int) -> List[Callable[[], gym.Env]]:
    """The user's instance first, deep copies for the others (a factory avoids the copies)."""
    copies = [env]
    for _ in range(num_envs - 1):
        try:
            copies.append(copy.deepcopy(env))
        except Exception as exc:
            raise EnvError(
                f"cannot copy the environment instance for num_envs={num_envs} ({exc}); pass a factory "
                "such as `lambda: MyEnv()` or set num_envs=1"
            ) from None
    return [lambda e=e: e for e in copies]


class GymVecEnv:
    """Any Gymnasium environment, vectorised with ``gymnasium.vector`` and converted to tensors."""

    def __init__(
        self,
        env: EnvSpec,
        num_envs: int,
        vectorization: str = "sync",
        device: torch.device | str = "cpu",
        env_kwargs: Optional[dict] = None,
        env_wrapper: Sequence[WrapperEntry] = (),
        sanitize_nonfinite: bool = False,
        success: Optional[str] = None,
        image_obs: bool = True,
        channels_last: Optional[bool] = None,
        action_masking: str = "auto",
    ) -> None:
        """``image_obs`` and ``channels_last`` say which Boxes are images (ObsSpec.from_space);
        ``action_masking`` is "auto" (masks where the environment gives them), "true" (it must) or "false";
        ``env_wrapper`` wraps each environment built from an id or factory (ppolearn/envs/wrappers.py)."""
        self.env_id = env_id_of(env)
        self.num_envs = num_envs
        self.device = torch.device(device)
        if isinstance(env, gym.Env):
            if success is not None:
                env = SuccessInfo(env, success)
            fns: Sequence[Callable[[], gym.Env]] = _instance_factories(env, num_envs)
        else:
            fns = [configured_factory(env, success, env_kwargs, env_wrapper)] * num_envs
        mode = gym.vector.AutoresetMode.SAME_STEP
        self._sync = vectorization != "async"  # sync: step() steps the sub-environments itself (_step_each)
        if self._sync:
            self.envs: gym.vector.VectorEnv = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
        else:
            self.envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
        self.single_observation_space = self.envs.single_observation_space
        self.single_action_space = self.envs.single_action_space
        self.obs_spec = ObsSpec.from_space(self.single_observation_space, image_obs, channels_last)
        self.action_spec = ActionSpec.from_space(self.single_action_space)
        self._mask_source = self._find_masks(action_masking)  # "method", "info" or None
        self.masked = self._mask_source is not None
        self._masks: Optional[torch.Tensor] = None
        self._returns = np.zeros(num_envs, dtype=np.float64)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._steps = 0
        self.sanitize_nonfinite = sanitize_nonfinite
        self._no_success = torch.full((num_envs,), float("nan"), device=self.device)  # reused while no info

    def _find_masks(self, setting: str) -> Optional[str]:
        """Where this environment's action masks come from: its ``action_masks()`` method, else
        ``info["action_mask"]`` (looked for in one reset under "auto"), or None where it is not masked."""
        if setting == "false":
            return None
        if self.action_spec.mask_dim == 0:
            if setting == "true":
                raise EnvError(f"action_masking=true, but {self.action_spec.describe()} cannot be masked")
            return None
        if all(self.envs.call("has_wrapper_attr", "action_masks")):
            return "method"
        if setting == "true":
            return "info"
        try:
            _, info = self.envs.reset()
        except Exception as exc:
            raise EnvError(f"environment '{self.env_id}' raised in reset(): {type(exc).__name__}: {exc}") from exc
        return "info" if "action_mask" in info else None

    def _read_masks(self, info: dict) -> torch.Tensor:
        """The masks of the observations just returned, (N, mask_dim) bool; all True where an environment
        gave none in its info."""
        width = self.action_spec.mask_dim
        if self._mask_source == "method":
            masks = np.stack([np.asarray(m, dtype=bool).reshape(width) for m in self.envs.call("action_masks")])
        elif "action_mask" not in info:
            raise EnvError(
                f"environment '{self.env_id}' gave no info['action_mask'] and has no action_masks() method, but "
                "action masking is on; set action_masking=false or return the mask"
            )
        else:
            given = info.get("_action_mask", np.ones(self.num_envs, dtype=bool))
            masks = np.ones((self.num_envs, width), dtype=bool)
            for i in np.flatnonzero(given):
                masks[i] = np.asarray(info["action_mask"][i], dtype=bool).reshape(width)
        if not masks.any(axis=1).all():
            raise EnvError(f"environment '{self.env_id}' masked every action of an observation")
        return torch.from_numpy(masks).to(self.device)

    def action_masks(self) -> Optional[torch.Tensor]:
        """The valid-action masks of the current observations (after the last reset or step); None unmasked."""
        return self._masks

    def _tensor(self, array: np.ndarray, dtype: np.dtype = np.float32) -> torch.Tensor:
        # from_numpy shares memory (no copy on CPU); every array handed over here is freshly made per step
        return array_tensor(array, dtype, self.device)

    def reset(self, seed: Optional[int] = None) -> torch.Tensor:
        try:
            obs, info = self.envs.reset(seed=seed)
        except EnvError:
            raise
        except Exception as exc:
            raise env_failure(self.env_id, exc, "reset()") from exc
        if seed is not None:
            self.envs.action_space.seed(seed)
        self._returns[:] = 0
        self._lengths[:] = 0
        self._masks = self._read_masks(info) if self.masked else None
        return obs_tensor(self._encode(obs, batched=True), self.device)

    def step(self, actions: torch.Tensor) -> StepResult:
        if not actions.is_cpu or actions.requires_grad:
            actions = actions.detach().cpu()
        env_actions = self.action_spec.to_env(actions.numpy(), batched=True)
        try:
            if self._sync:
                obs, reward, terminated, truncated, finals, infos = self._step_each(env_actions)
            else:
                obs, reward, terminated, truncated, infos = self.envs.step(env_actions)
                ended = np.flatnonzero(np.logical_or(terminated, truncated))
                finals = {i: (infos["final_obs"][i], None) for i in ended}  # the info is read merged, below
        except EnvError:
            raise
        except Exception as exc:
            raise env_failure(self.env_id, exc, f"step() at step {self._steps}") from exc
        self._steps += 1
        encoded = self._encode(obs, batched=True)
        if self.masked:
            self._masks = self._read_masks(infos)
        reward = self._finite(np.asarray(reward, dtype=np.float64), "reward")
        done = np.logical_or(terminated, truncated)

        self._returns += reward
        self._lengths += 1
        ep_return = self._returns.astype(np.float32)
        ep_length = self._lengths.copy()
        obs = obs_tensor(encoded, self.device)
        final_obs, success = obs, self._no_success  # no episode ended: nothing to copy (the common case)
        if done.any():
            final_encoded = obs_map(np.copy, encoded)
            for i, (last_obs, _) in finals.items():  # the ended episodes' last observations, one by one
                obs_assign(final_encoded, i, self._encode(last_obs))
            final_obs = obs_tensor(final_encoded, self.device)
            success = self._final_success(finals, infos)
            self._returns[done] = 0
            self._lengths[done] = 0
        return StepResult(
            obs=obs,
            reward=self._tensor(reward),
            terminated=self._tensor(terminated, np.bool_),
            truncated=self._tensor(truncated, np.bool_),
            final_obs=final_obs,
            episode_return=self._tensor(ep_return),
            episode_length=self._tensor(ep_length, np.int64),
            episode_success=success,
        )

    def _step_each(self, actions: np.ndarray) -> tuple:
        """SyncVectorEnv.step with SAME_STEP autoreset, written for what this class reads.

        Why: Gymnasium's step merges every key of every environment's info into arrays and deep-copies the
        observations, which on a 4-env Pendulum took about a tenth of a rollout; the environments, their
        order, actions, resets and observations are Gymnasium's own, so the results are the same. Returns
        the batched observations, rewards, terminations and truncations, the ended episodes' last observation
        and info by index, and the infos in Gymnasium's merged form for the one key read here, the action mask.
        """
        n = self.num_envs
        reward = np.zeros(n, dtype=np.float64)
        terminated = np.zeros(n, dtype=np.bool_)
        truncated = np.zeros(n, dtype=np.bool_)
        rows: List[Any] = []
        infos: List[dict] = []
        finals: Dict[int, tuple] = {}
        for i, env in enumerate(self.envs.envs):
            obs, reward[i], terminated[i], truncated[i], info = env.step(actions[i])
            if terminated[i] or truncated[i]:
                finals[i] = (obs, info)
                obs, info = env.reset()
            rows.append(obs)
            infos.append(info)
        space = self.single_observation_space
        if isinstance(space, gym.spaces.Box):  # what concatenate() does for a Box, without its dispatch
            batch = np.stack(rows, out=np.empty((n, *space.shape), dtype=space.dtype))
        else:
            batch = concatenate(space, rows, create_empty_array(space, n))
        merged: Dict[str, Any] = {}
        if self._mask_source == "info" and any("action_mask" in info for info in infos):
            merged["action_mask"] = [info.get("action_mask") for info in infos]
            merged["_action_mask"] = np.array(["action_mask" in info for info in infos])
        return batch, reward, terminated, truncated, finals, merged

    def _final_success(self, finals: Dict[int, tuple], infos: dict) -> torch.Tensor:
        """1/0 per environment from the ended episodes' ``info["is_success"]``; NaN where none was given."""
        if self._sync:
            given = {i: info["is_success"] for i, (_, info) in finals.items() if "is_success" in info}
            if not given:
                return self._no_success
            success = np.full(self.num_envs, np.nan, dtype=np.float32)
            for i, value in given.items():
                success[i] = value
            return self._tensor(success)
        final_info = infos.get("final_info", {})
        if "is_success" not in final_info:
            return self._no_success
        mask = final_info.get("_is_success", np.ones(self.num_envs, dtype=bool))
        return self._tensor(np.where(mask, np.asarray(final_info["is_success"], np.float32), np.nan))

    def _encode(self, obs: object, batched: bool = False) -> object:
        """ObsSpec.encode, its vector checked for NaN and inf (uint8 images cannot hold them)."""
        encoded = self.obs_spec.encode(obs, batched=batched)
        if isinstance(encoded, dict):
            if VECTOR_KEY in encoded:
                encoded[VECTOR_KEY] = self._finite(encoded[VECTOR_KEY], "observation")
            return encoded
        return self._finite(encoded, "observation")

    def _finite(self, array: np.ndarray, what: str) -> np.ndarray:
        """The array if finite; else sanitised (when asked) or a clear error naming the step."""
        if np.isfinite(array).all():
            return array
        if not self.sanitize_nonfinite:
            raise EnvError(
                f"environment '{self.env_id}' returned a non-finite {what} (NaN or inf) at step {self._steps}; "
                "set sanitize_nonfinite=true to replace such values instead"
            )
        return np.nan_to_num(array, nan=0.0, posinf=1e6, neginf=-1e6)

    def close(self) -> None:
        self.envs.close()
