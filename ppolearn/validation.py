"""Evaluation during training: the learning curve of the policy itself, the best model, and the stop at target.

What Stable-Baselines3 users assemble from EvalCallback and StopTrainingOnRewardThreshold, built into
``learn()``: every ``eval_every`` steps the current policy plays ``eval_during_episodes`` deterministic
episodes on a separate copy of the official environment (the validation seed block, the same starts each
time, so two evaluations differ by the policy alone). Its figures go into metrics.csv, TensorBoard and the
plot; the best policy so far (success rate first, then return) is kept as ``best_model.pt``.

A short evaluation that passes the ``target`` is noise until confirmed: it triggers a confirmation of
``eval_episodes`` episodes, and only that sets "target reached" — the step and training seconds recorded as
the run's time to target — and, with ``stop_at_target``, ends training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional

from ppolearn.envs import EnvSpec
from ppolearn.envs.success import Target
from ppolearn.evaluation import VALIDATION_SEED, check_disjoint, evaluate_policy

if TYPE_CHECKING:
    from ppolearn.ppo import PPO

BEST_MODEL_FILE = "best_model.pt"
EVALS_PER_RUN = 10  # evaluations during a run when eval_every is left to its default


def eval_interval(eval_every: Optional[int], has_run_dir: bool, steps: int, rollout_size: int) -> int:
    """Steps between evaluations (0: none): whole rollouts, EVALS_PER_RUN per run by default."""
    if eval_every is None:
        eval_every = -(-steps // EVALS_PER_RUN) if has_run_dir else 0
    if eval_every == 0:
        return 0
    return max(1, round(eval_every / rollout_size)) * rollout_size


class EvalDuringTraining:
    """Evaluates a model as it trains; remembers the best evaluation and when the target was reached."""

    def __init__(self, env: EnvSpec, run_dir: Optional[Path]) -> None:
        self.env = env
        self.run_dir = run_dir
        self.every = 0
        self.next_step = 0
        self.best: Optional[Dict[str, Any]] = None  # step, mean_return, success_rate of the best evaluation
        self.reached: Optional[Dict[str, Any]] = None  # step, time_s and the confirming evaluation's figures
        self.eval_s = 0.0  # seconds spent evaluating (not counted as training time)
        self.should_stop = False

    def start(self, model: PPO, every: int, final_step: int) -> None:
        """Set the interval for a learn() call; fail now, not after training, if the seeds would meet."""
        self.every = every
        self.should_stop = False  # a further learn() call trains on past a target already reached
        if every > 0:
            episodes = max(model.config.eval_episodes, model.config.eval_during_episodes)
            check_disjoint(model.config, final_step, VALIDATION_SEED, episodes)
            if self.next_step <= model.num_timesteps:  # a fresh run, or one resumed with another interval
                self.next_step = (model.num_timesteps // every + 1) * every

    def due(self, step: int, final_step: int) -> bool:
        return self.every > 0 and (step >= self.next_step or step >= final_step)

    def evaluate(self, model: PPO) -> Dict[str, float]:
        """One evaluation (and a confirmation where it passes the target); the metrics to log."""
        cfg = model.config
        started = time.perf_counter()
        result = evaluate_policy(model, self.env, cfg.eval_during_episodes, seed=VALIDATION_SEED)
        step = model.num_timesteps
        while self.next_step <= step:
            self.next_step += self.every
        metrics = {"eval_return": result["mean_return"]}
        if result["success_rate"] is not None:
            metrics["eval_success_rate"] = result["success_rate"]
        if self._better(result):
            self.best = {"step": step, "mean_return": result["mean_return"], "success_rate": result["success_rate"]}
            if self.run_dir is not None:
                model.save(self.run_dir / BEST_MODEL_FILE)
        target = Target.parse(cfg.target) if cfg.target else None
        if target is not None and self.reached is None and target.reached(result):
            confirmed = result
            if cfg.eval_episodes > cfg.eval_during_episodes:
                confirmed = evaluate_policy(model, self.env, cfg.eval_episodes, seed=VALIDATION_SEED)
            if target.reached(confirmed):
                self.reached = {
                    "step": step,
                    "time_s": round(model.elapsed_s, 3),
                    "episodes": confirmed["episodes"],
                    "mean_return": confirmed["mean_return"],
                    "success_rate": confirmed["success_rate"],
                }
                self.should_stop = cfg.stop_at_target
        self.eval_s += time.perf_counter() - started
        return metrics

    def _better(self, result: Dict[str, Any]) -> bool:
        if self.best is None:
            return True
        new = (result["success_rate"] or 0.0, result["mean_return"])
        old = (self.best["success_rate"] or 0.0, self.best["mean_return"])
        return new > old

    def summary(self) -> Dict[str, Any]:
        """What eval.json records of the evaluations during training."""
        return {
            "target_reached": self.reached,
            "best_model": self.best,
            "eval_during_training_s": round(self.eval_s, 2),
        }

    def state_dict(self) -> Dict[str, Any]:
        return {"next_step": self.next_step, "best": self.best, "reached": self.reached, "eval_s": self.eval_s}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.next_step = int(state["next_step"])
        self.best, self.reached, self.eval_s = state["best"], state["reached"], float(state["eval_s"])
