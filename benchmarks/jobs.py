"""One measured run per process: ``python -m benchmarks.jobs '<job as JSON>'`` prints one JSON line.

Each run lives in its own process so that its peak RSS is its own and imports and construction are not
timed. Kinds:
    throughput   train for a fixed number of steps; training steps/s (wall clock and CPU time)
    target       train a whole budget, evaluating on the official env every `eval_every` steps; the training
                 seconds (evaluation excluded) until the evaluation first reaches the threshold
    scaling      batched ppolearn training steps/s and environment-only steps/s for several num_envs
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from benchmarks.evaluate import evaluate, ppolearn_policy, sb3_policy

Job = Dict[str, Any]


def main() -> None:
    job: Job = json.loads(sys.argv[1])
    torch.set_num_threads(job.get("threads", 1))
    result = {"throughput": throughput, "target": time_to_target, "scaling": scaling}[job["kind"]](job)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps(result))


# --- building models --------------------------------------------------------------------------------------


def _ppolearn(job: Job, on_iteration: Optional[Callable[[Any], None]] = None) -> Any:
    """A ppolearn PPO whose optional hook runs between iterations, outside the timed part of each."""
    from ppolearn import PPO

    class Timed(PPO):
        def _train_one_iteration(self, target: int) -> Dict[str, float]:
            metrics = super()._train_one_iteration(target)  # adds its own duration to elapsed_s
            if on_iteration is not None:
                on_iteration(self)
            return metrics

    return Timed(job["env"], seed=job["seed"], verbose=0, device=job.get("device", "cpu"), **job.get("params", {}))


def _sb3(job: Job) -> Tuple[Any, Any]:
    """An SB3 PPO with the given (zoo) hyperparameters, and its VecNormalize (or None)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    params = dict(job.get("params", {}))
    n_envs = params.pop("n_envs")
    normalize = params.pop("normalize", False)
    for key in ("learning_rate", "clip_range"):  # the zoo's "lin_<x>": linear decay from x to 0
        if isinstance(params.get(key), str) and params[key].startswith("lin_"):
            start = float(params[key][4:])
            params[key] = lambda progress, start=start: progress * start
    env = make_vec_env(job["env"], n_envs=n_envs, seed=job["seed"])
    if normalize:
        env = VecNormalize(env, gamma=params.get("gamma", 0.99))
    model = PPO("MlpPolicy", env, seed=job["seed"], device="cpu", verbose=0, **params)
    return model, env if normalize else None


# --- the kinds of runs --------------------------------------------------------------------------------------


def throughput(job: Job) -> Dict[str, Any]:
    steps = job["steps"]
    if job["lib"] == "sb3":
        model, _ = _sb3(job)
        learn = lambda: model.learn(steps)  # noqa: E731
    else:
        model = _ppolearn(job)
        learn = lambda: model.learn(steps)  # noqa: E731
    wall, cpu = time.perf_counter(), time.process_time()
    learn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"steps": steps, "seconds": wall, "steps_per_s": steps / wall, "cpu_steps_per_s": steps / cpu}


def time_to_target(job: Job) -> Dict[str, Any]:
    official, threshold, eval_every = job["eval_env"], job["threshold"], job["eval_every"]
    curve: List[Tuple[int, float, float]] = []  # (steps, training seconds, evaluation)
    state = {"next_eval": eval_every, "eval_s": 0.0}

    def maybe_eval(steps: int, train_s: float, policy: Callable, force: bool = False) -> None:
        if steps >= state["next_eval"] or force:
            curve.append((steps, train_s, evaluate(policy, official, job.get("eval_episodes", 20))))
            state["next_eval"] = (steps // eval_every + 1) * eval_every

    if job["lib"] == "sb3":
        from stable_baselines3.common.callbacks import BaseCallback

        model, vecnorm = _sb3(job)

        def policy(obs: Any) -> Any:
            return sb3_policy(model)(vecnorm.normalize_obs(obs) if vecnorm is not None else obs)

        class EvalBetweenRollouts(BaseCallback):  # after each update: SB3 calls this before the next rollout
            def _on_rollout_start(self) -> None:
                start = time.perf_counter()
                maybe_eval(self.num_timesteps, time.perf_counter() - clock["start"] - state["eval_s"], policy)
                state["eval_s"] += time.perf_counter() - start

            def _on_step(self) -> bool:
                return True

        clock = {"start": time.perf_counter()}
        model.learn(job["budget"], callback=EvalBetweenRollouts())
        total = time.perf_counter() - clock["start"] - state["eval_s"]
        maybe_eval(model.num_timesteps, total, policy, force=True)
    else:
        model = _ppolearn(job, lambda m: maybe_eval(m.num_timesteps, m.elapsed_s, ppolearn_policy(m)))
        model.learn(job["budget"])
        total = model.elapsed_s
        if not curve or curve[-1][0] != model.num_timesteps:
            maybe_eval(model.num_timesteps, total, ppolearn_policy(model), force=True)
    hit = next(((s, t) for s, t, r in curve if r >= threshold), None)
    return {
        "steps_to_target": hit[0] if hit else None,
        "seconds_to_target": hit[1] if hit else None,
        "budget_steps": curve[-1][0],
        "budget_seconds": total,
        "final_return": curve[-1][2],
        "curve": curve,
    }


def scaling(job: Job) -> Dict[str, Any]:
    """For each num_envs: the env alone with random actions, then ppolearn training, both in steps/s."""
    from ppolearn.envs import make_vec_env

    rows = []
    for n in job["num_envs"]:
        env = make_vec_env(job["env"], n, device=job.get("device", "cpu"))
        env.reset(seed=0)
        steps = min(max(job["env_steps"] // n, 20), 5_000)  # at most 5,000 batch steps: small n is slow
        actions = torch.rand(steps, n, 1) * 4 - 2
        start = time.perf_counter()
        for t in range(steps):
            env.step(actions[t])
        env_rate = steps * n / (time.perf_counter() - start)
        params = {**job["params"], "num_envs": n}
        params["batch_size"] = max(params["n_steps"] * n // job["minibatches"], 1)
        model = _ppolearn({**job, "params": params})
        rollout = params["n_steps"] * n
        model.learn(rollout)  # warm-up iteration (allocations), not timed
        iterations = min(max(job["train_steps"] // rollout, 2), 30)  # enough for a stable rate, bounded time
        start = time.perf_counter()
        model.learn(iterations * rollout, reset_num_timesteps=False)
        rows.append(
            {
                "num_envs": n,
                "env_steps_per_s": env_rate,
                "train_steps_per_s": iterations * rollout / (time.perf_counter() - start),
            }
        )
    return {"rows": rows}


if __name__ == "__main__":
    main()
