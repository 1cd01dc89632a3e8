"""PPO-Clip, following the tutorial's flow: __init__ sets hyperparameters and builds the actor and critic,
then learn() loops rollout() -> returns and advantages -> update().

The PPO-Clip pseudocode, step by step (docs/algorithm.md explains each):
    1. initial policy and value parameters      PPO.__init__ (build_policy: encoder, actor head, critic)
    3. collect trajectories with pi_k           PPO.rollout() -> rollout.rollout()
    4. rewards-to-go R_t                        RolloutBuffer.batch() -> returns.compute_gae (compute_rtgs at lambda=1)
    5. advantages from the current V_k          the same call (GAE(lambda))
    6. maximise the PPO-Clip objective (Adam)   PPO.update() -> update.ppo_update -> clipped_surrogate_loss
    7. fit V by MSE regression                  PPO.update() -> update.ppo_update -> value_loss
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import gymnasium as gym
import numpy as np
import torch

from ppolearn.checkpoint import atomic_save, checkpoint_path, list_checkpoints, prune_checkpoints
from ppolearn.config import PPOConfig, build_config, load_preset
from ppolearn.distributed import RayRolloutGroup, merge_seen
from ppolearn.envs import (
    ActionSpec,
    EnvSpec,
    ObsSpec,
    VecEnv,
    env_id_of,
    is_batched_id,
    is_vec_env,
    make_vec_env,
    preset_key,
)
from ppolearn.envs.goal_shaping import training_env
from ppolearn.envs.obs import Obs, obs_len, obs_map
from ppolearn.errors import (
    CheckpointError,
    ConfigError,
    EnvError,
    PPOLearnError,
    TrainingDiverged,
    TrainingInterrupted,
)
from ppolearn.logger import RunLogger
from ppolearn.networks import Actor, Critic
from ppolearn.normalize import ObsNormalizer, RewardScaler
from ppolearn.optim import FlatParameters, adam
from ppolearn.policy import Sequences, build_policy
from ppolearn.rollout import EpisodeStats, RolloutBatch, RolloutBuffer, rollout
from ppolearn.rundir import RunDir, hold, released_on_error
from ppolearn.saving import check_same_spaces, model_state, read_model, restore_state
from ppolearn.signals import StopOnSignal
from ppolearn.update import ppo_update
from ppolearn.validation import EvalDuringTraining, eval_interval


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available on this machine; use cpu or auto")
    return torch.device(name)


class PPO:
    """Proximal Policy Optimization with the clipped objective.

    ``env`` is a Gymnasium id (``"Pendulum-v1"``, ``"my_pkg:Reach-v0"``), an entry point
    (``"my_pkg.envs:ReachEnv"``), an ``Env`` instance, a factory callable, or a batched :class:`VecEnv`.
    ``eval_env`` is what evaluations during training run on (ppolearn/validation.py); by default the same
    id or factory (for a batched clone, the official environment), none for an instance.
    Hyperparameters come from the preset for the id (if any), then ``config``, then keyword overrides
    (``PPO("Pendulum-v1", seed=0, learning_rate=1e-3)``). A ``run_dir`` (metrics, checkpoints) is held by
    the model until close(); one holding an earlier run is refused unless ``overwrite=True`` moves that run
    aside (ppolearn/rundir.py).
    """

    def __init__(
        self,
        env: Union[EnvSpec, VecEnv],
        config: Union[PPOConfig, Dict[str, Any], None] = None,
        *,
        run_dir: Union[str, Path, RunDir, None] = None,
        overwrite: bool = False,
        verbose: int = 1,
        ray_address: Optional[str] = None,
        eval_env: Optional[EnvSpec] = None,
        **overrides: Any,
    ) -> None:
        env_id = _env_name(env)
        hyperparameters = self._init_hyperparameters(env_id, config, overrides)
        # held until close(): a new run refuses a directory holding an earlier one (overwrite: moved aside)
        self.run_dir, self._run_dir_lock = hold(run_dir, fresh=True, overwrite=overwrite)
        with released_on_error(self._run_dir_lock):
            obs_spec, action_spec = self._attach(env_id, hyperparameters, env, ray_address)  # type: ignore[misc]
            self._build(obs_spec, action_spec)  # actor, critic, optimiser, normalisers
        self.verbose = verbose
        self.evaluator = EvalDuringTraining(eval_env or _eval_env_of(env), self.run_dir)

    @staticmethod
    def _init_hyperparameters(
        env_id: str, config: Union[PPOConfig, Dict[str, Any], None], overrides: Dict[str, Any]
    ) -> PPOConfig:
        """Preset for the environment id, then the given config, then keyword overrides (validated)."""
        if isinstance(config, PPOConfig):
            return build_config(config.to_dict(), overrides)
        return build_config(load_preset(preset_key(env_id)), config, overrides)

    def _attach(
        self, env_id: str, config: PPOConfig, env: Union[EnvSpec, VecEnv, None], ray_address: Optional[str]
    ) -> Optional[Tuple[ObsSpec, ActionSpec]]:
        """Device, threads and the environments (a local VecEnv or Ray workers); their spaces, if any."""
        self.env_id, self.config = env_id, config
        self.device = resolve_device(config.device)
        if config.torch_threads > 0:
            torch.set_num_threads(config.torch_threads)
        self.env: Optional[VecEnv] = None
        self.workers: Optional[RayRolloutGroup] = None
        if env is None:
            return None
        if config.goal_shaping is not None and not is_vec_env(env):  # the training reward only: see __init__
            env = training_env(env, config.goal_shaping, config.gamma, config.goal_shaping_scale)
        if config.backend == "ray":
            self.workers = RayRolloutGroup(env, config, ray_address)
            return self.workers.specs()
        self.env = make_vec_env(env, config.num_envs, config.vec_env, self.device, **config.env_options())
        if self.env.num_envs != config.num_envs:  # a ready VecEnv decides its own size
            self.config = config.replace(num_envs=self.env.num_envs)
        return self.env.obs_spec, self.env.action_spec

    def _build(self, obs_spec: ObsSpec, action_spec: ActionSpec) -> None:
        """Create the policy (encoder, actor head, critic), optimiser, normalisers and the random generator
        (step 1)."""
        cfg = self.config
        self.obs_spec, self.action_spec = obs_spec, action_spec
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
            torch.manual_seed(cfg.seed)
            self.policy = build_policy(obs_spec, action_spec, cfg).to(self.device)
        # One Adam over both networks: Adam is per-parameter, so this is the tutorial's actor_optim and
        # critic_optim at one learning rate; only the global grad-norm clip couples them. Every parameter
        # lives in one flat vector so that clip and Adam step are a few ops (ppolearn/optim.py).
        self.params = FlatParameters([self.policy])
        self.optimizer = adam(self.params, cfg.learning_rate)
        self.obs_norm = ObsNormalizer(obs_spec.dim, cfg.clip_obs, cfg.normalize_obs, self.device)
        self.reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma, cfg.clip_reward, cfg.normalize_reward, self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        self.buffer: Optional[RolloutBuffer] = None
        self.num_timesteps = 0
        self.num_updates = 0
        self.elapsed_s = 0.0  # training seconds over the whole run, resumes included
        self._next_obs: Optional[Obs] = None
        self._recent: EpisodeStats = EpisodeStats.empty()

    @property
    def actor(self) -> Actor:
        """The policy's action head (with its MLP)."""
        return self.policy.actor

    @property
    def critic(self) -> Critic:
        """The policy's value head (with its MLP)."""
        return self.policy.critic

    # --- the tutorial's building blocks ----------------------------------------------------------------

    def get_action(self, obs: Obs, mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sample an action for a batch of (normalised) observations, with its log-probability; ``mask``
        (bool, True = allowed) restricts Discrete and MultiDiscrete choices. A memory core moves the
        rollout's hidden state one step (policy.reset() starts it afresh)."""
        with torch.no_grad():
            return self.policy.sample(obs, self.generator, mask)

    def evaluate(
        self,
        batch_obs: Obs,
        batch_acts: torch.Tensor,
        batch_masks: Optional[torch.Tensor] = None,
        batch_memory: Optional[Sequences] = None,
    ) -> Tuple[torch.Tensor, ...]:
        """V(s), log pi(a|s) and entropy under the current networks (the tutorial's evaluate()), under the
        masks the actions were sampled with; with a memory core, ``batch_memory`` (the initial hidden states
        and episode ends of the env sequences in ``batch_obs``) lets it re-run the states the rollout saw."""
        return self.policy.evaluate(batch_obs, batch_acts, batch_masks, batch_memory)

    def rollout(self) -> EpisodeStats:
        """Collect n_steps from every environment with the current policy into the buffer."""
        if self.env is None and self.workers is None:
            raise EnvError("this model has no environment to train on; pass env= to PPO.load()")
        if self.buffer is None:
            masked = self.workers.masked if self.workers is not None else getattr(self.env, "masked", False)
            hidden_size = self.policy.memory.state_size if self.policy.is_recurrent else 0
            self.buffer = RolloutBuffer(
                self.config.n_steps,
                self.config.num_envs,
                self.obs_spec,
                self.action_spec,
                self.device,
                masked,
                hidden_size,
            )
        if self.workers is not None:
            return self._rollout_on_workers()
        if self._next_obs is None:
            self._next_obs = self.env.reset(seed=self.config.seed + self.num_updates)
            self.policy.reset()  # fresh episodes: a memory core starts them from zeros
        self._next_obs, episodes = rollout(
            self.policy,
            self.env,
            self.buffer,
            self._next_obs,
            self.obs_norm,
            self.reward_scaler,
            self.config.gamma,
            self.generator,
        )
        return episodes

    def _rollout_on_workers(self) -> EpisodeStats:
        """The Ray backend's rollout: the same buffer, filled by the workers, and their statistics merged."""
        result = self.workers.collect(
            self.policy,
            self.obs_norm.rms,
            self.reward_scaler.rms,
            self.buffer,
            seed=self.config.seed + self.num_updates,
            reset=self._next_obs is None,  # as the local backend: learn() from zero restarts the episodes
        )
        merge_seen(self.obs_norm.rms, result.obs_seen)
        merge_seen(self.reward_scaler.rms, result.ret_seen)
        self._next_obs = result.next_obs
        self.reward_scaler.returns = result.reward_returns.to(torch.float64)
        return result.episodes

    def update(self, batch: RolloutBatch) -> Dict[str, float]:
        """n_epochs of minibatch Adam on the PPO-Clip objective (actor) and MSE (critic): ppolearn/update.py."""
        return ppo_update(self.evaluate, batch, self.config, self.params, self.optimizer, self.generator)

    # --- the training loop ------------------------------------------------------------------------------

    def learn(
        self,
        total_timesteps: Optional[int] = None,
        reset_num_timesteps: bool = True,
        progress_bar: Optional[bool] = None,
        stop_on_signal: bool = False,
    ) -> PPO:
        """Train for ``total_timesteps`` environment steps (default: config.total_timesteps).

        As in Stable-Baselines3, ``reset_num_timesteps=False`` continues the step count (and the
        environments) of a previous call or a resumed checkpoint instead of starting from zero.
        With ``stop_on_signal`` (what `ppolearn train` uses; needs a run_dir), SIGINT/SIGTERM finish the
        iteration, save a checkpoint and raise TrainingInterrupted; a second signal ends the process.
        """
        cfg = self.config
        steps = cfg.total_timesteps if total_timesteps is None else int(total_timesteps)
        if steps <= 0:
            raise ConfigError(f"total_timesteps={steps} is not allowed: must be a positive integer")
        if reset_num_timesteps:
            self.num_timesteps, self.num_updates, self.elapsed_s, self._next_obs = 0, 0, 0.0, None
            self.evaluator = EvalDuringTraining(self.evaluator.env, self.run_dir)
        rollouts = -(-steps // cfg.rollout_size)  # whole rollouts: at least `steps` steps
        target = self.num_timesteps + rollouts * cfg.rollout_size
        self.evaluator.start(self, self._eval_interval(target), target)
        show = self.verbose > 0 if progress_bar is None else progress_bar
        logger = RunLogger(self.run_dir, target, self.num_timesteps, show)
        try:
            with StopOnSignal(enabled=stop_on_signal and self.run_dir is not None) as stop:
                while self.num_timesteps < target and not self.evaluator.should_stop:
                    metrics = self._train_one_iteration(target)
                    if self.evaluator.due(self.num_timesteps, target):  # the policy itself, on unseen starts
                        metrics.update(self.evaluator.evaluate(self))
                    logger.log(metrics)
                    if stop.requested:
                        path = self.save_checkpoint()
                        raise TrainingInterrupted(
                            f"stopped by {stop.requested} at step {self.num_timesteps}; checkpoint saved to {path}",
                            self.num_timesteps,
                        )
                    if (
                        self.run_dir is not None
                        and cfg.checkpoint_every
                        and self.num_updates % cfg.checkpoint_every == 0
                    ):
                        self.save_checkpoint()
        except EnvError as exc:
            if self.run_dir is not None:  # the weights are those of the last full update: keep them
                path = self.save_checkpoint()
                raise EnvError(f"{exc} (checkpoint at step {self.num_timesteps} saved: {path})") from exc
            raise
        except FloatingPointError as exc:  # the weights may be NaN now: never save them over a good file
            found = list_checkpoints(self.run_dir / "checkpoints") if self.run_dir is not None else []
            kept = f"; last good checkpoint kept: {found[-1]}" if found else ""
            raise TrainingDiverged(f"{exc}{kept}") from None
        finally:
            logger.close()
        if self.run_dir is not None:
            self.save_checkpoint()
        return self

    def _eval_interval(self, target: int) -> int:
        """Steps between evaluations during this learn() call; 0 where there are none."""
        cfg = self.config
        every = eval_interval(cfg.eval_every, self.run_dir is not None, target, cfg.rollout_size)
        if every and self.evaluator.env is None:
            if cfg.eval_every:  # asked for explicitly: say why it cannot happen
                raise ConfigError(
                    "evaluation during training needs an environment to evaluate on: pass eval_env= (an id or a "
                    "factory); an Env instance cannot be copied"
                )
            return 0
        return every

    def _train_one_iteration(self, target: int) -> Dict[str, float]:
        """One PPO iteration (steps 3-7); the metrics of it to log."""
        cfg = self.config
        start = time.perf_counter()
        if cfg.anneal_lr:  # linear decay to 0 at the end of this learn() call's target
            self.optimizer.param_groups[0]["lr"] = cfg.learning_rate * (1 - self.num_timesteps / target)
        episodes = self.rollout()  # step 3: trajectories D_k from pi_k
        batch = self.buffer.batch(cfg.gamma, cfg.gae_lambda)  # steps 4-5: returns and advantages
        stats = self.update(batch)  # steps 6-7
        if not all(np.isfinite(stats[k]) for k in ("actor_loss", "critic_loss")):
            raise FloatingPointError(f"non-finite loss at update {self.num_updates + 1}; stopping")
        self.num_timesteps += cfg.rollout_size
        self.num_updates += 1
        seconds = time.perf_counter() - start
        self.elapsed_s += seconds
        self._recent = _keep_recent(self._recent, episodes, 100)
        return {
            "step": self.num_timesteps,
            "time_s": self.elapsed_s,
            **self.recent_episode_metrics(),
            "episodes": len(episodes.returns),
            **stats,
            "worker_restarts": self.workers.restarts if self.workers is not None else 0,
            "sps": cfg.rollout_size / seconds,
        }

    def recent_episode_metrics(self) -> Dict[str, float]:
        """Mean return, length and success over the last 100 finished training episodes."""
        r = self._recent
        if len(r.returns) == 0:
            return {"mean_return": float("nan"), "mean_length": float("nan"), "success_rate": float("nan")}
        known = r.successes[~torch.isnan(r.successes)]
        return {
            "mean_return": r.returns.mean().item(),
            "mean_length": r.lengths.float().mean().item(),
            "success_rate": known.mean().item() if len(known) else float("nan"),
        }

    # --- using a trained policy -------------------------------------------------------------------------

    def predict(
        self,
        observation: Any,
        state: Optional[Tuple[np.ndarray, ...]] = None,
        episode_start: Any = None,
        deterministic: bool = True,
        action_masks: Any = None,
    ) -> Tuple[np.ndarray, Optional[Tuple[np.ndarray, ...]]]:
        """The action for one observation (or a batch), as the environment takes it; SB3's signature, with
        sb3-contrib MaskablePPO's ``action_masks`` (True = allowed, one row per observation or one row).

        With a memory core, as sb3-contrib's RecurrentPPO: ``state`` is the hidden state of the batch (None
        at the start: zeros), ``episode_start`` (a bool per observation) zeroes it where an episode begins,
        and the state after this step is returned to pass in with the next observation: a tuple of arrays
        (1, batch, memory_size), ``(h, c)`` for an LSTM, ``(h,)`` for a GRU. A feed-forward policy ignores
        both and returns None."""
        batched = self.obs_spec.is_batched(observation)
        # encode one observation as one (a dict's parts differ in size), then view it as a batch of one
        encoded = self.obs_spec.encode(observation, batched=batched)
        if not batched:
            encoded = obs_map(lambda part: part[None], encoded)
        obs = self.obs_norm(obs_map(lambda part: torch.as_tensor(part, device=self.device), encoded))
        mask = None
        if action_masks is not None and self.action_spec.mask_dim:
            mask = torch.as_tensor(np.asarray(action_masks, dtype=bool), device=self.device)
            mask = mask.reshape(-1, self.action_spec.mask_dim)
        next_state = None
        with torch.no_grad():
            if self.policy.is_recurrent:
                core = self.policy.memory
                hidden = core.state_from_arrays(state, episode_start, obs_len(obs), self.device)
                action, hidden = self.policy.predict(obs, hidden, deterministic, self.generator, mask)
                next_state = core.state_to_arrays(hidden)
            elif deterministic:
                action = self.policy.mode(obs, mask)
            else:
                action = self.policy.sample(obs, self.generator, mask)[0]
        env_action = self.action_spec.to_env(action.cpu().numpy(), batched=True)
        return (env_action if batched else env_action[0]), next_state

    # --- saving and loading -----------------------------------------------------------------------------

    def save(self, path: Union[str, Path]) -> Path:
        """Write the policy, critic, normaliser statistics and config to one safe-to-load file."""
        return atomic_save(model_state(self, with_training_state=False), path)

    def save_checkpoint(self) -> Path:
        """Write a resumable checkpoint (adds optimiser, RNG and counters) into run_dir/checkpoints."""
        if self.run_dir is None:
            raise PPOLearnError("save_checkpoint needs a run_dir")
        directory = self.run_dir / "checkpoints"
        path = atomic_save(model_state(self, with_training_state=True), checkpoint_path(directory, self.num_timesteps))
        prune_checkpoints(directory, self.config.keep_checkpoints)
        return path

    @classmethod
    def load(
        cls,
        path: Union[str, Path],
        env: Union[EnvSpec, VecEnv, None] = None,
        device: str = "auto",
        run_dir: Union[str, Path, RunDir, None] = None,
        verbose: int = 1,
        ray_address: Optional[str] = None,
        eval_env: Optional[EnvSpec] = None,
        **overrides: Any,
    ) -> PPO:
        """A model from ``save()`` or a checkpoint; without ``env`` it can predict but not train.

        With ``run_dir`` (the resume path) the directory is held until close(), whatever it holds.
        """
        data, config, obs_spec, action_spec = read_model(path, device, overrides)
        model = cls.__new__(cls)
        model.run_dir, model._run_dir_lock = hold(run_dir, fresh=False)
        with released_on_error(model._run_dir_lock):
            # Ray workers get their weights each iteration
            env_specs = model._attach(data["env_id"], config, env, ray_address)
            if env_specs is not None:
                check_same_spaces(path, obs_spec, action_spec, *env_specs, _env_name(env))
            model._build(obs_spec, action_spec)
            model.evaluator = EvalDuringTraining(eval_env or _eval_env_of(env), model.run_dir)
            restore_state(model, data, path)
        model.verbose = verbose
        return model

    @classmethod
    def latest_checkpoint(cls, run_dir: Union[str, Path]) -> Path:
        found = list_checkpoints(Path(run_dir) / "checkpoints")
        if not found:
            raise CheckpointError(f"no checkpoint in '{run_dir}/checkpoints' to resume from")
        return found[-1]

    def close(self) -> None:
        """Close the environments (or Ray workers) and release the run directory this model holds."""
        if self.env is not None:
            self.env.close()
        if self.workers is not None:
            self.workers.close()
            self.workers = None
        if self._run_dir_lock is not None:
            self._run_dir_lock.release()


def _eval_env_of(env: Union[EnvSpec, VecEnv, None]) -> Optional[EnvSpec]:
    """What evaluations during training run on by default: a fresh copy of the training env where one can be
    made (an id, a factory, a batched clone's id; evaluation maps clones to their official env)."""
    if env is None or isinstance(env, gym.Env):
        return None
    if is_vec_env(env):
        env_id = getattr(env, "env_id", None)
        return env_id if is_batched_id(env_id) else None
    return env


def _env_name(env: Union[EnvSpec, VecEnv]) -> str:
    return getattr(env, "env_id", None) or env_id_of(env)  # type: ignore[arg-type]


def _keep_recent(old: EpisodeStats, new: EpisodeStats, n: int) -> EpisodeStats:
    return EpisodeStats(
        torch.cat([old.returns, new.returns])[-n:],
        torch.cat([old.lengths, new.lengths])[-n:],
        torch.cat([old.successes, new.successes])[-n:],
    )
