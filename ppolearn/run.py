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
    .lock                flock'ed by the process training into the directory, which wrote its PID there

A run is never lost (ppolearn/rundir.py): train() refuses a directory that holds an earlier run, unless
``overwrite`` moves that run aside to DIR.old-<N>; train() and resume() hold the directory's lock from
creating it to writing eval.json, so a second train or resume of it is refused with the holder's PID, while
eval, plot and render read it freely. The kernel drops the lock of a process that dies, so a killed run
resumes at once. Default directories are runs/<env>_s<seed>_<N>, created atomically (rundir.make_default_run_dir).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

import yaml

from ppolearn.checkpoint import list_checkpoints, safe_load
from ppolearn.config import PPOConfig, build_config, load_preset, load_yaml
from ppolearn.envs import preset_key
from ppolearn.envs.success import Target
from ppolearn.errors import PPOLearnError
from ppolearn.evaluation import evaluate_policy
from ppolearn.plots import CurvePlotter
from ppolearn.ppo import PPO
from ppolearn.rundir import claim
from ppolearn.validation import BEST_MODEL_FILE

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.yaml"


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
    env_id: str,
    config: PPOConfig,
    run_dir: Path,
    quiet: bool = False,
    ray_address: Optional[str] = None,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Train a new run to config.total_timesteps, then write model, learning curve and eval.json.

    A ``run_dir`` holding an earlier run is refused, or with ``overwrite`` that run is moved aside first.
    """
    with claim(run_dir, fresh=True, overwrite=overwrite) as held:
        model = PPO(
            env_id,
            config,
            run_dir=held,
            verbose=0 if quiet else 1,
            ray_address=ray_address,
            eval_env=env_id,
        )
        write_config(held.path, env_id, model.config)
        return _train_and_finish(model, held.path, reset=True)


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
    PPO.latest_checkpoint(run_dir)  # nothing to resume: say so before creating or locking anything
    overrides: Dict[str, Any] = {"total_timesteps": total_timesteps} if total_timesteps is not None else {}
    if num_workers is not None:
        overrides["num_workers"] = num_workers
    with claim(run_dir, fresh=False) as held:
        checkpoint = PPO.latest_checkpoint(run_dir)  # the newest, now that no other process writes here
        saved = safe_load(checkpoint)
        env_id = str(saved["env_id"])
        model = PPO.load(
            checkpoint,
            env=env_id,
            eval_env=env_id,
            device=device,
            run_dir=held,
            verbose=0 if quiet else 1,
            ray_address=ray_address,
            **overrides,
        )
        write_config(held.path, env_id, model.config)
        return _train_and_finish(model, held.path, reset=False)


def _train_and_finish(model: PPO, run_dir: Path, reset: bool) -> Dict[str, Any]:
    plotter = CurvePlotter()  # imports matplotlib beside the training, draws beside the final evaluation
    try:
        try:
            remaining = model.config.total_timesteps - model.num_timesteps
            if remaining > 0:
                model.learn(remaining, reset_num_timesteps=reset, stop_on_signal=True)
            model.save(run_dir / MODEL_FILE)
        finally:
            model.close()
        plotted = plotter.draw(run_dir / "metrics.csv", run_dir / "learning_curve.png", title=model.env_id)
        result = evaluate_policy(model, model.env_id, episodes=model.config.eval_episodes)  # while it draws
        plotted()
    finally:
        plotter.close()
    target = Target.parse(model.config.target) if model.config.target else None
    result["target"] = str(target) if target else None
    result["reached"] = target.reached(result) if target else None  # by this final evaluation
    result["num_timesteps"] = model.num_timesteps
    result["train_time_s"] = round(model.elapsed_s, 2)
    result.update(model.evaluator.summary())
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
