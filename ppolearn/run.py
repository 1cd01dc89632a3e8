"""A run directory and the whole `ppolearn train` job: configure, train, save, plot, evaluate.

Layout of a run directory:
    config.yaml          the resolved configuration (with the env id)
    model.pt             the final model (PPO.load)
    best_model.pt        the best model of the evaluations during training (success rate, then return)
    checkpoints/         step_<N>.pt, the last keep_checkpoints of them (resume from the newest)
    metrics.csv          one row per update
    tb/                  TensorBoard events
    learning_curve.png   drawn from metrics.csv
    eval.json            the final model on eval_episodes unseen starts of the official environment, with
                         95% intervals, per-episode figures and when the target was first confirmed
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

import yaml

from ppolearn.checkpoint import list_checkpoints, safe_load
from ppolearn.config import PPOConfig, build_config, load_preset, load_yaml
from ppolearn.envs import preset_key
from ppolearn.envs.success import Target
from ppolearn.errors import PPOLearnError
from ppolearn.evaluation import evaluate_policy
from ppolearn.plots import plot_learning_curve
from ppolearn.ppo import PPO
from ppolearn.validation import BEST_MODEL_FILE

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.yaml"


def default_run_dir(env_id: str, seed: int) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in env_id)
    return Path("runs") / f"{safe}_s{seed}_{time.strftime('%Y%m%d-%H%M%S')}"


def resolve_config(env_id: str, config_file: Optional[str], overrides: Dict[str, Any]) -> PPOConfig:
    """Preset for the id, then the YAML file, then --set and flag overrides."""
    file_values = load_yaml(config_file) if config_file else {}
    file_values.pop("env", None)  # a run's own config.yaml names its env; the CLI's --env decides
    return build_config(load_preset(preset_key(env_id)), file_values, overrides)


def model_path(run_dir: Union[str, Path], best: bool = False) -> Path:
    """The final model (or with ``best``, the best of the evaluations), else the newest checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PPOLearnError(f"run directory '{run_dir}' does not exist")
    if best:
        if not (run_dir / BEST_MODEL_FILE).is_file():
            raise PPOLearnError(f"'{run_dir}' has no {BEST_MODEL_FILE}: it is written by evaluations during training")
        return run_dir / BEST_MODEL_FILE
    if (run_dir / MODEL_FILE).is_file():
        return run_dir / MODEL_FILE
    found = list_checkpoints(run_dir / "checkpoints")
    if found:
        return found[-1]
    raise PPOLearnError(f"'{run_dir}' holds neither {MODEL_FILE} nor a checkpoint")


def write_config(run_dir: Path, env_id: str, config: PPOConfig) -> None:
    text = yaml.safe_dump({"env": env_id, **config.to_dict()}, sort_keys=False)
    (run_dir / CONFIG_FILE).write_text(text)


def train(
    env_id: str, config: PPOConfig, run_dir: Path, quiet: bool = False, ray_address: Optional[str] = None
) -> Dict[str, Any]:
    """Train a new run to config.total_timesteps, then write model, learning curve and eval.json."""
    model = PPO(env_id, config, run_dir=run_dir, verbose=0 if quiet else 1, ray_address=ray_address)
    write_config(run_dir, env_id, model.config)
    return _train_and_finish(model, run_dir, reset=True)


def resume(
    run_dir: Path,
    total_timesteps: Optional[int] = None,
    device: str = "auto",
    quiet: bool = False,
    ray_address: Optional[str] = None,
    num_workers: Optional[int] = None,
) -> Dict[str, Any]:
    """Continue a run from its newest checkpoint (weights, optimiser, normalisers, RNG, counters).

    A Ray run may resume with another worker count or on another cluster: workers hold no state of their own.
    """
    checkpoint = PPO.latest_checkpoint(run_dir)
    overrides: Dict[str, Any] = {"total_timesteps": total_timesteps} if total_timesteps is not None else {}
    if num_workers is not None:
        overrides["num_workers"] = num_workers
    env_id = str(safe_load(checkpoint)["env_id"])
    model = PPO.load(
        checkpoint,
        env=env_id,
        device=device,
        run_dir=run_dir,
        verbose=0 if quiet else 1,
        ray_address=ray_address,
        **overrides,
    )
    write_config(run_dir, env_id, model.config)
    return _train_and_finish(model, run_dir, reset=False)


def _train_and_finish(model: PPO, run_dir: Path, reset: bool) -> Dict[str, Any]:
    try:
        remaining = model.config.total_timesteps - model.num_timesteps
        if remaining > 0:
            model.learn(remaining, reset_num_timesteps=reset, stop_on_signal=True)
        model.save(run_dir / MODEL_FILE)
    finally:
        model.close()
    plot_learning_curve(run_dir / "metrics.csv", run_dir / "learning_curve.png", title=model.env_id)
    result = evaluate_policy(model, model.env_id, episodes=model.config.eval_episodes)
    target = Target.parse(model.config.target) if model.config.target else None
    result["target"] = str(target) if target else None
    result["reached"] = target.reached(result) if target else None  # by this final evaluation
    result["num_timesteps"] = model.num_timesteps
    result["train_time_s"] = round(model.elapsed_s, 2)
    result.update(model.evaluator.summary())
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
