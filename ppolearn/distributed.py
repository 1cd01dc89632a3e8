"""Rollouts on Ray: worker actors each own a slice of the environments and a CPU copy of the policy.

Every iteration the learner puts its weights and normaliser statistics into the object store once
(``ray.put``); each worker loads them, runs the ordinary :func:`~ppolearn.rollout.rollout` over its slice and
returns its filled buffer, the episodes that ended and the statistics of the raw observations and discounted
returns it saw. The learner writes the slices side by side (environment axis) into its own
:class:`~ppolearn.rollout.RolloutBuffer`, merges the statistics exactly (Chan et al.'s parallel combination)
and runs the same GAE and update as the local backend.

Workers normalise with the learner's statistics as of the start of the iteration, so a worker's data does
not depend on what the other workers see: only the slicing of the environments depends on the worker count.
A worker that dies is replaced, its slice is collected again from freshly reset environments, and the loss
is logged and counted; no slice is ever dropped.

With a memory core, a worker's policy copy keeps its envs' hidden state from one iteration to the next (the
broadcast replaces the weights, never the state), as its envs keep their episodes; it sends back the state
each env started the iteration from, which the learner stores beside the slice for the update.

Workers write no files: the learner alone writes the run directory, which it holds (ppolearn/rundir.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ppolearn.config import PPOConfig, build_config
from ppolearn.envs import ActionSpec, EnvSpec, GymVecEnv, ObsSpec, is_vec_env
from ppolearn.envs.obs import Obs, obs_assign, obs_cat, obs_map
from ppolearn.errors import ConfigError, PPOLearnError
from ppolearn.normalize import ObsNormalizer, RewardScaler, RunningMeanStd
from ppolearn.policy import Policy, build_policy
from ppolearn.rollout import EpisodeStats, RolloutBuffer, rollout

log = logging.getLogger(__name__)

MAX_RESTARTS_PER_SLICE = 3  # a slice whose worker dies this often in one iteration points at a real fault
BUFFER_FIELDS = ("obs", "acts", "log_probs", "values", "rewards", "dones", "masks")  # masks: None unmasked


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise PPOLearnError(
            "backend 'ray' needs the Ray package: pip install ppolearn[ray] (or pip install 'ray>=2.9')"
        ) from None
    return ray


def env_slices(num_envs: int, num_workers: int) -> List[Tuple[int, int]]:
    """(first env index, env count) per worker: as even as possible, earlier workers taking the remainder."""
    base, extra = divmod(num_envs, num_workers)
    slices, first = [], 0
    for i in range(num_workers):
        count = base + (1 if i < extra else 0)
        slices.append((first, count))
        first += count
    return slices


def worker_seed(seed: int, index: int) -> int:
    """A sampling seed per worker that differs between workers and between runs' seeds."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class FrozenStats(RunningMeanStd):
    """Statistics that stay as loaded while ``update()`` keeps the new samples, summarised in ``seen``.

    A worker normalises with the learner's statistics and reports what it saw, so the learner can merge
    every worker's samples exactly; the unchanged normalisers call ``update()`` as usual. The samples are
    kept as they come and summarised once per rollout: statistics of each step's few rows would cost more
    tensor ops than the worker's step itself.
    """

    def __init__(self, shape: tuple = ()) -> None:
        super().__init__(shape)
        self._batches: List[torch.Tensor] = []  # each step's samples

    def update(self, batch: torch.Tensor) -> None:
        self._batches.append(batch.clone())  # a copy: an environment may write its next step into the same memory

    @property
    def seen(self) -> RunningMeanStd:
        """Mean, variance and count of the samples since ``start_iteration`` (no prior count: merging adds
        exactly these samples)."""
        stats = RunningMeanStd(self.mean.shape, epsilon=0.0)
        if self._batches:
            stats.update(torch.cat([b.reshape(-1, *self.mean.shape) for b in self._batches]))
        return stats

    def start_iteration(self, state: Dict[str, torch.Tensor]) -> None:
        """Take the learner's statistics and forget the samples kept in the previous iteration."""
        self.load_state_dict(state)
        self._batches = []


class RolloutWorker:
    """One Ray actor's state: its environments, a CPU policy copy, frozen-statistics normalisers, an RNG."""

    def __init__(self, env: EnvSpec, config: Dict[str, Any], index: int, first_env: int, num_envs: int) -> None:
        cfg = build_config(config)
        torch.set_num_threads(max(cfg.torch_threads, 1))  # one process per core: extra threads only contend
        self.cfg, self.first_env = cfg, first_env
        self.env = GymVecEnv(env, num_envs, cfg.vec_env, "cpu", **cfg.env_options())
        obs_spec, action_spec = self.env.obs_spec, self.env.action_spec
        self.policy: Policy = build_policy(obs_spec, action_spec, cfg)
        self.obs_norm = ObsNormalizer(obs_spec.dim, cfg.clip_obs, cfg.normalize_obs)
        self.obs_norm.rms = FrozenStats((obs_spec.dim,))
        self.reward_scaler = RewardScaler(num_envs, cfg.gamma, cfg.clip_reward, cfg.normalize_reward)
        self.reward_scaler.rms = FrozenStats(())
        self.generator = torch.Generator()
        self.generator.manual_seed(worker_seed(cfg.seed, index))
        hidden_size = self.policy.memory.state_size if self.policy.is_recurrent else 0
        self.buffer = RolloutBuffer(
            cfg.n_steps, num_envs, obs_spec, action_spec, torch.device("cpu"), self.env.masked, hidden_size
        )
        self.next_obs: Optional[Obs] = None

    def specs(self) -> Tuple[Dict[str, Any], Dict[str, Any], bool]:
        """The spaces, and whether the environments give action masks."""
        return self.env.obs_spec.to_dict(), self.env.action_spec.to_dict(), self.env.masked

    def pid(self) -> int:
        return os.getpid()

    def collect(self, broadcast: Dict[str, Any], seed: int, reset: bool) -> Dict[str, Any]:
        """One rollout of the slice with the broadcast weights; ``reset`` restarts the episodes from ``seed``."""
        self.policy.load_state_dict(broadcast["policy"])
        self.obs_norm.rms.start_iteration(broadcast["obs_rms"])
        self.reward_scaler.rms.start_iteration(broadcast["ret_rms"])
        if reset or self.next_obs is None:  # a new worker's envs start fresh, seeded like the local backend's
            self.next_obs = self.env.reset(seed=seed + self.first_env)
            self.policy.reset()  # and a memory core starts them from zeros
        self.next_obs, episodes = rollout(
            self.policy,
            self.env,
            self.buffer,
            self.next_obs,
            self.obs_norm,
            self.reward_scaler,
            self.cfg.gamma,
            self.generator,
        )
        out: Dict[str, Any] = {name: getattr(self.buffer, name) for name in BUFFER_FIELDS}
        out.update(
            last_value=self.buffer.last_value,
            hidden=self.buffer.hidden,  # memory core: the state each env started this rollout from
            next_obs=self.next_obs,
            reward_returns=self.reward_scaler.returns,
            episodes=(episodes.returns, episodes.lengths, episodes.successes),
            obs_seen=self.obs_norm.rms.seen.state_dict(),
            ret_seen=self.reward_scaler.rms.seen.state_dict(),
        )
        return out

    def close(self) -> None:
        self.env.close()


@dataclass
class RemoteRollout:
    """What the workers sent back besides the buffer contents, in worker order."""

    episodes: EpisodeStats
    next_obs: Obs  # raw observations to continue from, all envs
    reward_returns: torch.Tensor  # running discounted returns, all envs
    obs_seen: List[Dict[str, torch.Tensor]]  # per worker: mean/var/count of the raw observations it saw
    ret_seen: List[Dict[str, torch.Tensor]]  # per worker: the same for its discounted returns


class RayRolloutGroup:
    """The learner's handle on its Ray workers: broadcast weights, gather slices, replace dead workers."""

    def __init__(self, env: EnvSpec, config: PPOConfig, address: Optional[str] = None) -> None:
        if is_vec_env(env):
            raise ConfigError(
                "backend 'ray' builds the environments inside its workers: pass an id, an entry point or a "
                "factory, not a ready VecEnv"
            )
        self.ray = import_ray()
        self._started_ray = not self.ray.is_initialized()
        if self._started_ray:
            if address:
                self.ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
            else:  # a new local Ray ("local": never a cluster `ray start` left running on this machine)
                cpus = max(os.cpu_count() or 1, config.num_workers)  # one logical CPU per worker at least
                self.ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
        self.env, self.config = env, config
        self.slices = env_slices(config.num_envs, config.num_workers)
        self._actor_class = self.ray.remote(num_cpus=1, max_restarts=0)(RolloutWorker)  # restarts are ours
        self.workers = [self._spawn(i) for i in range(config.num_workers)]
        self.restarts = 0
        self.masked = False  # whether the environments give action masks: known with specs()

    def _spawn(self, index: int) -> Any:
        first, count = self.slices[index]
        return self._actor_class.remote(self.env, self.config.to_dict(), index, first, count)

    def specs(self) -> Tuple[ObsSpec, ActionSpec]:
        obs, action, self.masked = self.ray.get(self.workers[0].specs.remote())
        return ObsSpec(**obs), ActionSpec(**action)

    def worker_pids(self) -> List[int]:
        return self.ray.get([w.pid.remote() for w in self.workers])

    def collect(
        self,
        policy: Policy,
        obs_rms: RunningMeanStd,
        ret_rms: RunningMeanStd,
        buffer: RolloutBuffer,
        seed: int,
        reset: bool,
    ) -> RemoteRollout:
        """One iteration on every worker, written into ``buffer`` (the learner's, on its device)."""
        cpu = lambda state: {k: v.detach().cpu() for k, v in state.items()}  # noqa: E731 - workers run on CPU
        broadcast = self.ray.put(
            {
                "policy": cpu(policy.state_dict()),
                "obs_rms": cpu(obs_rms.state_dict()),
                "ret_rms": cpu(ret_rms.state_dict()),
            }
        )
        pending = [w.collect.remote(broadcast, seed, reset) for w in self.workers]
        results = [self._result(i, ref, broadcast, seed) for i, ref in enumerate(pending)]
        device = buffer.log_probs.device
        for (first, count), result in zip(self.slices, results):
            for name in BUFFER_FIELDS:
                if result[name] is not None:
                    part = obs_map(lambda t: t.to(device), result[name])
                    obs_assign(getattr(buffer, name), (slice(None), slice(first, first + count)), part)
            buffer.last_value[first : first + count] = result["last_value"].to(device)
            if buffer.hidden is not None:
                buffer.hidden[first : first + count] = result["hidden"].to(device)
        returns, lengths, successes = (torch.cat([r["episodes"][k] for r in results]) for k in range(3))
        return RemoteRollout(
            episodes=EpisodeStats(returns, lengths, successes),
            next_obs=obs_map(lambda t: t.to(device), obs_cat([r["next_obs"] for r in results])),
            reward_returns=torch.cat([r["reward_returns"] for r in results]).to(device),
            obs_seen=[r["obs_seen"] for r in results],
            ret_seen=[r["ret_seen"] for r in results],
        )

    def _result(self, index: int, ref: Any, broadcast: Any, seed: int) -> Dict[str, Any]:
        """The worker's slice; if the worker died, a new worker collects the slice again."""
        deaths = 0
        while True:
            try:
                return self.ray.get(ref)
            except self.ray.exceptions.RayActorError as exc:
                deaths += 1
                reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                if deaths > MAX_RESTARTS_PER_SLICE:
                    raise PPOLearnError(
                        f"Ray rollout worker {index} died {deaths} times in one iteration; last: {reason}"
                    ) from None
                self.restarts += 1
                log.warning(
                    "ppolearn: Ray rollout worker %d died (%s); restarted it and collecting its slice of %d "
                    "envs again (worker restarts so far: %d)",
                    index,
                    reason,
                    self.slices[index][1],
                    self.restarts,
                )
                self.workers[index] = self._spawn(index)
                ref = self.workers[index].collect.remote(broadcast, seed, True)

    def close(self) -> None:
        """Stop the workers, and the local Ray instance if this group started it."""
        closing = [w.close.remote() for w in self.workers]  # lets async vector envs end their subprocesses
        self.ray.wait(closing, num_returns=len(closing), timeout=10)
        for worker in self.workers:
            self.ray.kill(worker)
        self.workers = []
        if self._started_ray:
            self.ray.shutdown()


def merge_seen(rms: RunningMeanStd, seen: List[Dict[str, torch.Tensor]]) -> None:
    """Fold each worker's statistics into the learner's, in worker order (exact for any split)."""
    for part in seen:
        if float(part["count"]) > 0:
            device = rms.mean.device
            rms.combine(part["mean"].to(device), part["var"].to(device), part["count"].to(device))
