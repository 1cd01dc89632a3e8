"""Evaluation of a trained policy on the official (unbatched, unnormalised) environment, with its spread.

A figure is a claim about the policy, not about the episodes drawn, so an evaluation reports the 95%
interval of its mean return (Student t) and of its success rate (Wilson), and the per-episode figures.

Seeds: episode ``i`` of an evaluation starts from ``reset(seed=seed + i)``, so two evaluations with one seed
see the same starts. Three blocks of seeds never meet:

* training: a run with ``seed=s`` resets its ``num_envs`` environments from seeds ``s .. s + num_envs - 1``
  (``s + k`` after a resume at update ``k``), so its seeds lie in ``[s, s + updates + num_envs)``;
* evaluation during training (best model, ``stop_at_target``): ``VALIDATION_SEED + i``;
* the final evaluation, ``ppolearn eval`` and the benchmarks: ``TEST_SEED + i``.

``evaluate_policy`` refuses a seed block that overlaps the model's training seeds. The best model and the
stop are chosen on the validation block, so the test block stays an independent measurement of them.

Loops: a deterministic policy that meets the same observation again takes the same action again, so in a
grid world it can stand still (an action that changes nothing) or go round a few cells until the time limit.
An episode that ran out of time without success while its last ``LOOP_WINDOW`` steps saw at most
``LOOP_STATES`` different observations is counted in ``looping_episodes``: the failure is then the
deterministic policy's loop (which sampling, ``--stochastic``, or a memory core breaks), not a slow policy.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from ppolearn.envs import EnvSpec, configured_factory, official_id
from ppolearn.envs.extras import env_failure
from ppolearn.errors import ConfigError, EnvError
from ppolearn.stats import mean_interval, wilson_interval

if TYPE_CHECKING:
    from ppolearn.config import PPOConfig
    from ppolearn.ppo import PPO

TEST_SEED = 10_000
VALIDATION_SEED = 1_000_000
MAX_PARALLEL = 64  # environments stepped side by side: one policy call serves them all
LOOP_WINDOW = 20  # the last steps of a timed-out episode looked at for a loop
LOOP_STATES = 4  # at most this many different observations in them: the policy goes round


def training_seeds(config: PPOConfig, num_timesteps: int) -> range:
    """The environment seeds a run with this config has used by step ``num_timesteps`` (an upper bound)."""
    updates = num_timesteps // config.rollout_size
    return range(config.seed, config.seed + updates + config.num_envs)


def check_disjoint(config: PPOConfig, num_timesteps: int, seed: int, episodes: int) -> None:
    """Refuse evaluation seeds that a training episode of this run started from (and negative ones, which
    Gymnasium's reset refuses)."""
    if seed < 0:
        raise ConfigError(f"evaluation seed {seed} is not allowed: must be an integer >= 0 (default {TEST_SEED})")
    train = training_seeds(config, num_timesteps)
    if seed < train.stop and train.start < seed + episodes:
        raise ConfigError(
            f"evaluation seeds {seed}..{seed + episodes - 1} overlap the training seeds {train.start}.."
            f"{train.stop - 1} of this model; evaluate on unseen starts (default seed {TEST_SEED})"
        )


def evaluate_policy(
    model: PPO,
    env: Optional[EnvSpec] = None,
    episodes: int = 100,
    deterministic: bool = True,
    seed: int = TEST_SEED,
    parallel: int = MAX_PARALLEL,
) -> Dict[str, Any]:
    """Run ``episodes`` whole episodes and report return, length and success with their 95% intervals.

    Up to ``parallel`` environments run side by side (one batched policy call per step for all of them);
    each episode's seed fixes its start, so the figures equal those of running the episodes one by one.
    A recurrent policy's hidden state is carried per environment and zeroed where its next episode starts.

    Success is ``info["is_success"]`` at the last step (the model's success criterion adds it to classic
    tasks); ``mean_steps_to_success`` is the mean first step at which it held, over the successful episodes,
    null where none succeeded or the environment reports no success. ``env`` defaults to the id the model
    was trained on (for a ``ppolearn/`` batched clone, the official environment it clones).
    """
    if episodes <= 0:
        raise ConfigError(f"episodes={episodes} is not allowed: must be a positive integer")
    check_disjoint(model.config, model.num_timesteps, seed, episodes)
    spec = model.env_id if env is None else env
    # the criterion, the environment's keyword arguments and its wrappers travel with the model
    cfg = model.config
    factory = configured_factory(spec, cfg.success, cfg.env_kwargs, cfg.env_wrapper)
    env_id = official_id(spec) if isinstance(spec, str) else model.env_id
    episodes_run = _run_episodes(model, factory, env_id, episodes, deterministic, seed, max(1, parallel))
    return summarize(episodes_run, env_id, seed, deterministic)


class Episode(NamedTuple):
    ret: float
    length: int
    success: Optional[bool]  # None where the environment reports no is_success
    first_success: Optional[int]  # the first step at which is_success held
    looping: bool = False  # ran out of time, unsuccessful, going round at most LOOP_STATES observations


def _run_episodes(
    model: PPO, factory: Any, env_id: str, episodes: int, deterministic: bool, seed: int, parallel: int
) -> List[Episode]:
    instances = []
    results: List[Optional[Episode]] = [None] * episodes
    try:
        for _ in range(min(parallel, episodes)):
            instances.append(factory())
        slots: Dict[int, Dict[str, Any]] = {}  # slot -> the episode it runs and its running figures
        obs: Dict[int, Any] = {}
        masks: Dict[int, Optional[np.ndarray]] = {}  # each slot's valid actions now (None: unmasked)
        masked = model.action_spec.mask_dim > 0 and model.config.action_masking != "false"
        memory: Optional[Tuple[np.ndarray, ...]] = None  # recurrent policies: every slot's hidden state
        starts = np.ones(len(instances), dtype=bool)  # the slot's next step is its episode's first
        next_episode = 0
        for slot, instance in enumerate(instances):
            obs[slot], info = instance.reset(seed=seed + next_episode)
            masks[slot] = _action_mask(instance, info, masked)
            slots[slot] = _new_slot(next_episode)
            next_episode += 1
        while slots:
            active = list(slots)
            given = _stack_masks([masks[s] for s in active], model.action_spec.mask_dim) if masked else None
            state = None if memory is None else tuple(part[:, active] for part in memory)
            actions, state = model.predict(
                _stack([obs[s] for s in active]), state, starts[active], deterministic=deterministic, action_masks=given
            )
            if state is not None:
                if memory is None:
                    memory = tuple(np.zeros((1, len(instances), p.shape[-1]), p.dtype) for p in state)
                for whole, part in zip(memory, state):
                    whole[:, active] = part
            starts[active] = False
            for slot, action in zip(active, actions):
                state = slots[slot]
                state["recent"].append(_digest(obs[slot]))
                obs[slot], reward, terminated, truncated, info = instances[slot].step(action)
                masks[slot] = _action_mask(instances[slot], info, masked)
                state["ret"] += float(reward)
                state["length"] += 1
                if state["first"] is None and info.get("is_success"):
                    state["first"] = state["length"]
                if not (terminated or truncated):
                    continue
                success = bool(info["is_success"]) if "is_success" in info else None
                recent = state["recent"]
                looping = bool(truncated and not terminated and not success) and (
                    len(recent) == LOOP_WINDOW and len(set(recent)) <= LOOP_STATES
                )
                results[state["episode"]] = Episode(state["ret"], state["length"], success, state["first"], looping)
                if next_episode < episodes:
                    obs[slot], info = instances[slot].reset(seed=seed + next_episode)
                    masks[slot] = _action_mask(instances[slot], info, masked)
                    starts[slot] = True
                    slots[slot] = _new_slot(next_episode)
                    next_episode += 1
                else:
                    del slots[slot]
    except (EnvError, ConfigError):
        raise
    except Exception as exc:
        raise env_failure(env_id, exc, "evaluation") from exc
    finally:
        for instance in instances:
            instance.close()
    return [r for r in results if r is not None]


def _new_slot(episode: int) -> Dict[str, Any]:
    """A slot's running figures for the episode it starts; ``recent``: digests of its last observations."""
    return {"episode": episode, "ret": 0.0, "length": 0, "first": None, "recent": deque(maxlen=LOOP_WINDOW)}


def _digest(obs: Any) -> Any:
    """A small hashable stand-in for an observation (one environment's, so one layout): equal observations
    give equal digests."""
    if isinstance(obs, dict):
        return tuple(_digest(value) for value in obs.values())
    if isinstance(obs, tuple):
        return tuple(_digest(value) for value in obs)
    return hash(np.asarray(obs).tobytes())


def _action_mask(env: Any, info: Dict[str, Any], masked: bool) -> Optional[np.ndarray]:
    """The valid actions of ``env``'s current observation, as training reads them (sb3-contrib's
    ``action_masks()`` method, else ``info["action_mask"]``); None where unmasked or none is given."""
    if not masked:
        return None
    if env.has_wrapper_attr("action_masks"):
        return np.asarray(env.get_wrapper_attr("action_masks")(), dtype=bool)
    mask = info.get("action_mask")
    return None if mask is None else np.asarray(mask, dtype=bool)


def _stack_masks(masks: List[Optional[np.ndarray]], width: int) -> np.ndarray:
    """One mask row per observation; all actions valid where an environment gave none."""
    return np.stack([np.ones(width, dtype=bool) if m is None else m.reshape(width) for m in masks])


def _stack(observations: List[Any]) -> Any:
    """A batch from single observations; Dict and Tuple observations are stacked entry by entry, nested."""
    first = observations[0]
    if isinstance(first, dict):
        return {k: _stack([o[k] for o in observations]) for k in first}
    if isinstance(first, tuple):
        return tuple(_stack([o[i] for o in observations]) for i in range(len(first)))
    return np.stack([np.asarray(o) for o in observations])


def summarize(episodes: List[Episode], env_id: str, seed: int, deterministic: bool = True) -> Dict[str, Any]:
    """The evaluation's JSON: means, 95% intervals and the per-episode figures."""
    returns = [e.ret for e in episodes]
    lengths = [e.length for e in episodes]
    low, high = mean_interval(returns)
    known = [e for e in episodes if e.success is not None]
    result: Dict[str, Any] = {
        "env": env_id,
        "episodes": len(episodes),
        "seeds": [seed, seed + len(episodes) - 1],
        "deterministic": deterministic,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "return_ci95": [low, high],
        "median_return": float(np.median(returns)),
        "min_return": float(np.min(returns)),
        "mean_length": float(np.mean(lengths)),
        "success_rate": None,
        "success_ci95": None,
        "mean_steps_to_success": None,
    }
    if known:
        wins = sum(bool(e.success) for e in known)
        result["success_rate"] = wins / len(known)
        result["success_ci95"] = list(wilson_interval(wins, len(known)))
        firsts = [e.first_success for e in known if e.success and e.first_success is not None]
        result["mean_steps_to_success"] = float(np.mean(firsts)) if firsts else None
    result["looping_episodes"] = sum(e.looping for e in episodes)
    result["episode_returns"] = [round(r, 4) for r in returns]
    result["episode_lengths"] = lengths
    result["episode_successes"] = [e.success for e in episodes] if known else None
    return result
