"""`ppolearn tune`: search PPO's hyperparameters for settings that reach the task on every seed, with Optuna.

A study lives in its directory (default ``studies/<env>``)::

    study.db           Optuna's storage (SQLite): every trial, its parameters, figures and state
    best.yaml          the best trial's settings: ``ppolearn train --env ENV --config best.yaml`` takes it as it is
    trials.csv         every trial: number, state, objective, the figure, time to target, parameters, failure
    trials.md          the top trials as a table (also printed)
    history.png        the objective of each trial and the best so far
    importance.png     which parameters mattered (fANOVA with scikit-learn, else PED-ANOVA; 3 finished trials)
    best_curve.png     the best trial's evaluations during training, one line per seed

The objective of a trial: each of ``seeds`` seeds (0, 1000, 2000, ...: their training starts do not overlap)
trains ``budget`` steps with the trial's settings; the
deterministic policy then plays ``episodes`` episodes on the validation seed block (never the test block,
which stays an independent measurement); the figure (success rate or mean return) is averaged over the
seeds, so a setting wins by working on every seed, not on one lucky one.

Ties (e.g. every seed balancing CartPole to 500) are broken by the time to target: the objective is the
figure minus ``TIE_BREAK * f``, with ``f`` the mean fraction of the budget the seeds took to a confirmed target
(1 for a seed that never reached it, or where there is no target). ``TIE_BREAK`` is 1e-4: below the smallest
difference two figures can show (a success rate over 5 seeds x 100 episodes moves in steps of 2e-3), so it
orders only trials whose figures are equal. The raw figure and time to target are kept as user attributes.

Pruning: each seed is evaluated ``evals`` times while it trains (``eval_during_episodes`` validation episodes);
after each evaluation the trial reports the mean over its seeds so far (finished seeds at their final figure,
the training one at its latest) at report step ``seed * (evals + 1) + k``, ``k = floor(evals * step / budget)``
(a grid that is the same for every trial, whatever its rollout size), and a median (or successive-halving)
pruner stops trials that fall behind the others at the same report step.

Parallel trials: ``jobs`` processes (or Ray tasks with ``backend="ray"``) each run ``study.optimize`` on the
shared storage; the study directory is held (locked) by the process that runs ``tune``. Trials train without
a run directory: they write nothing but their rows in the storage.
"""

from __future__ import annotations

import csv
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import yaml

from ppolearn.config import PPOConfig, build_config, load_yaml
from ppolearn.envs.success import Target
from ppolearn.errors import ConfigError, PPOLearnError
from ppolearn.evaluation import VALIDATION_SEED, evaluate_policy
from ppolearn.ppo import PPO
from ppolearn.run import resolve_config
from ppolearn.rundir import claim
from ppolearn.tune_space import fit_to_budget, load_space, sample, space_specs, to_config_values

STUDY_DB = "study.db"
STUDY_NAME = "ppolearn"
TIE_BREAK = 1e-4
# Trial seeds 0, 1000, 2000, ...: a run with seed s resets its environments from seeds s, s+1, ..., so seeds
# 0, 1, 2 would train on nearly the same starts, and settings would be chosen for those starts.
SEED_STRIDE = 1000
OBJECTIVES = ("success_rate", "mean_return")
PRUNERS = ("median", "halving", "none")
TOP = 10  # rows of the printed table


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise PPOLearnError("tune needs Optuna: pip install ppolearn[tune] (or pip install 'optuna>=3.6,<5')") from None
    return optuna


def default_study_dir(env_id: str, root: Union[str, Path] = "studies") -> Path:
    return Path(root) / env_id.replace("/", "_").replace(":", "_")


# --- the settings a study keeps (resume reads them back) ----------------------------------------------


def _settings(
    env: str,
    budget: Optional[int],
    seeds: Optional[int],
    objective: Optional[str],
    space: Optional[Union[str, Path, Mapping[str, Any]]],
    episodes: Optional[int],
    evals: Optional[int],
    target: Optional[str],
    pruner: Optional[str],
    seed: Optional[int],
    env_kwargs: Optional[Dict[str, Any]] = None,
    env_wrapper: Optional[List[Any]] = None,
) -> Dict[str, Any]:
    """Check a new study's settings and fill the defaults; everything a worker needs, as JSON."""
    # the environment's constructor arguments and wrappers: the preset's, or those given (for every trial)
    given = {k: v for k, v in (("env_kwargs", env_kwargs), ("env_wrapper", env_wrapper)) if v is not None}
    base = resolve_config(env, None, given)
    budget = base.total_timesteps if budget is None else budget
    seeds = 3 if seeds is None else seeds
    episodes = 50 if episodes is None else episodes
    evals = 5 if evals is None else evals
    for name, value in (("--budget", budget), ("--seeds", seeds), ("--episodes", episodes), ("--evals", evals)):
        if value <= 0:
            raise ConfigError(f"{name}={value} is not allowed: must be a positive integer")
    objective = objective or ("success_rate" if base.success else "mean_return")
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective={objective!r} is not allowed: must be one of {', '.join(OBJECTIVES)}")
    pruner = pruner or "median"
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner={pruner!r} is not allowed: must be one of {', '.join(PRUNERS)}")
    target = target if target is not None else base.target
    if target:
        target = str(Target.parse(target))
    if isinstance(space, (str, Path)):
        try:
            space = load_yaml(space)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("config file", "space file", 1)) from None
    parsed = fit_to_budget(load_space(space), budget, base.num_envs)
    return {
        "env": env,
        "budget": int(budget),
        "seeds": int(seeds),
        "objective": objective,
        "episodes": int(episodes),
        "evals": int(evals),
        "target": target or None,
        "pruner": pruner,
        "seed": int(seed or 0),
        "space": space_specs(parsed),
        "env_kwargs": base.env_kwargs,
        "env_wrapper": base.env_wrapper,
        "base": _base(base),
    }


# what trial_config sets for every trial whatever the preset says: not part of the base a study keeps (the
# environment's arguments and wrappers are kept as settings of their own)
_PER_TRIAL = (
    "total_timesteps", "seed", "eval_every", "eval_during_episodes", "eval_episodes", "target",
    "stop_at_target", "backend", "device", "env_kwargs", "env_wrapper",
)  # fmt: skip


def _base(config: PPOConfig) -> Dict[str, Any]:
    """The settings every trial starts from (the preset over the defaults), as JSON, to compare on resume."""
    return {k: v for k, v in config.to_dict().items() if k not in _PER_TRIAL}


def _check_resume(stored: Dict[str, Any], given: Dict[str, Any]) -> None:
    for key, value in given.items():
        if value is not None and stored.get(key) != value:
            raise ConfigError(
                f"the study was started with {key}={stored.get(key)!r}; --resume continues it as it is "
                f"(leave out --{key.replace('_', '-')}, or start another study with --study-dir)"
            )
    # Why: trials build their config from the preset and the defaults of the ppolearn that runs them; if
    # those changed since the study began, new trials would not be comparable with the old ones.
    if "base" in stored:  # studies started before the base was kept cannot be checked
        then = {k: v for k, v in stored["base"].items() if k not in _PER_TRIAL}  # as _base keeps them now
        now = _base(resolve_config(stored["env"], None, {}))
        changed = [f"{k} {then.get(k, '(unset)')!r} -> {now.get(k, '(unset)')!r}" for k in sorted({*then, *now})
                   if then.get(k, "(unset)") != now.get(k, "(unset)")]  # fmt: skip
        if changed:
            raise ConfigError(
                f"the study's trials started from settings this ppolearn's preset and defaults no longer give "
                f"({', '.join(changed)}); new trials would not be comparable: start another study with --study-dir"
            )


# --- one trial ----------------------------------------------------------------------------------------


def trial_config(settings: Mapping[str, Any], values: Mapping[str, Any], seed: int) -> PPOConfig:
    """The config one seed of a trial trains with."""
    environment = {k: settings[k] for k in ("env_kwargs", "env_wrapper") if k in settings}
    base = resolve_config(settings["env"], None, environment)
    tuned = to_config_values(values, base)
    budget = settings["budget"]
    return build_config(
        base.to_dict(),
        tuned,
        {
            "total_timesteps": budget,
            "seed": seed,
            "eval_every": max(1, budget // settings["evals"]),
            "eval_during_episodes": max(1, min(20, settings["episodes"])),
            "eval_episodes": settings["episodes"],
            "target": settings["target"],
            "stop_at_target": False,
            "backend": "local",
            "device": "cpu",
        },
    )


def _figure(result: Mapping[str, Any], objective: str, env: str) -> float:
    value = result.get(objective)
    if value is None:
        raise PPOLearnError(
            f"environment '{env}' reports no success (info['is_success']): tune it with --objective mean_return"
        )
    return float(value)


def run_trial(trial: Any, settings: Mapping[str, Any]) -> float:
    """Train every seed with the trial's settings; the objective (see the module docstring)."""
    optuna = import_optuna()
    from ppolearn.tune_space import Param

    space = {k: Param(**_param_fields(k, v)) for k, v in settings["space"].items()}
    values = sample(trial, space)
    objective, seeds, env = settings["objective"], settings["seeds"], settings["env"]
    finals: List[float] = []
    fractions: List[float] = []
    reached_steps: List[Optional[int]] = []
    curves: List[List[List[float]]] = []
    started = time.perf_counter()
    for index in range(seeds):
        config = trial_config(settings, values, seed=index * SEED_STRIDE)
        if index == 0:
            trial.set_user_attr("config", tuned_keys(config, values))
        model = PPO(env, config, verbose=0, eval_env=env)  # goal shaping, if any, trains; evaluations stay raw
        steps_per_seed = -(-config.total_timesteps // config.rollout_size) * config.rollout_size
        curve: List[List[float]] = []
        curves.append(curve)
        evaluate = model.evaluator.evaluate
        last_bin = [-1]

        def evaluate_and_report(m: PPO, index: int = index, curve: List[List[float]] = curve) -> Dict[str, float]:
            metrics = evaluate(m)
            key = "eval_success_rate" if objective == "success_rate" else "eval_return"
            if key not in metrics:
                raise PPOLearnError(
                    f"environment '{env}' reports no success (info['is_success']): tune it with --objective mean_return"
                )
            curve.append([m.num_timesteps, metrics[key]])
            # trials compare at the same report step: the evaluation's place on a grid of `evals` per seed
            # (evaluations fall on whole rollouts, whose size differs between trials)
            grid = settings["evals"] * m.num_timesteps // steps_per_seed
            if grid > last_bin[0]:
                last_bin[0] = grid
                trial.report(float(sum(finals) + metrics[key]) / (index + 1), index * (settings["evals"] + 1) + grid)
                if trial.should_prune():
                    trial.set_user_attr("curves", curves)
                    trial.set_user_attr("pruned_at", f"step {m.num_timesteps} of seed {index * SEED_STRIDE}")
                    raise optuna.TrialPruned(f"pruned at step {m.num_timesteps} of seed {index}")
            return metrics

        model.evaluator.evaluate = evaluate_and_report  # type: ignore[method-assign]
        try:
            model.learn(config.total_timesteps, reset_num_timesteps=False)  # a fresh model: keeps the hook
            result = evaluate_policy(model, episodes=config.eval_episodes, seed=VALIDATION_SEED)
        finally:
            model.close()
        finals.append(_figure(result, objective, env))
        reached = model.evaluator.reached
        reached_steps.append(int(reached["step"]) if reached else None)
        fractions.append(min(1.0, reached["step"] / steps_per_seed) if reached else 1.0)
    figure = sum(finals) / seeds
    trial.set_user_attr("figure", figure)
    trial.set_user_attr("per_seed", finals)
    trial.set_user_attr("steps_to_target", reached_steps)
    trial.set_user_attr("train_s", round(time.perf_counter() - started, 2))
    trial.set_user_attr("curves", curves)
    return figure - TIE_BREAK * (sum(fractions) / seeds)


def tuned_keys(config: PPOConfig, values: Mapping[str, Any]) -> Dict[str, Any]:
    """The PPOConfig keys a trial chose (what best.yaml writes): the searched keys and what depends on them."""
    keys = [k for k in values if k not in ("n_minibatches", "net_width", "net_depth")]
    keys += ["num_envs", "batch_size"]
    if "net_width" in values or "net_depth" in values:
        keys.append("net_arch")
    data = config.to_dict()
    return {k: data[k] for k in dict.fromkeys(keys)}


def _param_fields(name: str, spec: Any) -> Dict[str, Any]:
    from ppolearn.tune_space import _is_integer

    if isinstance(spec, dict):
        return {
            "name": name,
            "kind": "range",
            "low": spec["low"],
            "high": spec["high"],
            "log": spec["log"],
            "integer": _is_integer(name),
        }
    if isinstance(spec, list):
        return {"name": name, "kind": "choices", "choices": spec}
    return {"name": name, "kind": "fixed", "value": spec}


# --- workers ------------------------------------------------------------------------------------------


def _storage(url: str) -> Any:
    optuna = import_optuna()
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _sampler(settings: Mapping[str, Any], offset: int) -> Any:
    optuna = import_optuna()
    # each worker and each resumed session draws from its own seed: the same seed would repeat the same
    # random start-up trials in every worker
    with warnings.catch_warnings():  # multivariate TPE (parameters drawn jointly) is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=settings["seed"] + offset, n_startup_trials=5, multivariate=True)


def _pruner(settings: Mapping[str, Any]) -> Any:
    optuna = import_optuna()
    if settings["pruner"] == "median":
        warmup = settings["evals"] // 2  # never in the first half of the first seed's training
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=warmup)
    if settings["pruner"] == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def run_worker(storage_url: str, n_trials: int, offset: int, quiet: bool = False) -> int:
    """One worker: run ``n_trials`` trials of the study in ``storage_url``; the number it ran."""
    optuna = import_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the study's own one-line reports below
    storage = _storage(storage_url)
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    settings = study.user_attrs["settings"]
    study.sampler = _sampler(settings, offset)
    study.pruner = _pruner(settings)

    def objective(trial: Any) -> float:
        try:
            return run_trial(trial, settings)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:  # Optuna records the trial failed; say why
            trial.set_user_attr("fail_reason", "interrupted")
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, PPOLearnError) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            raise

    def report(_study: Any, trial: Any) -> None:
        if not quiet:
            print(trial_line(trial, settings), flush=True)

    study.optimize(objective, n_trials=n_trials, catch=(Exception,), callbacks=[report], gc_after_trial=True)
    return n_trials


def trial_line(trial: Any, settings: Mapping[str, Any]) -> str:
    state = trial.state.name
    if state == "COMPLETE":
        text = f"{settings['objective']} {trial.user_attrs.get('figure', trial.value):.4g}"
        steps = [s for s in trial.user_attrs.get("steps_to_target", []) if s is not None]
        if settings.get("target"):
            text += f", target on {len(steps)}/{settings['seeds']} seeds"
        return f"trial {trial.number}: {text} ({trial.user_attrs.get('train_s', 0):.0f} s)"
    if state == "PRUNED":
        return f"trial {trial.number}: pruned at {trial.user_attrs.get('pruned_at', 'an evaluation')}"
    return f"trial {trial.number}: failed: {trial.user_attrs.get('fail_reason', 'unknown reason')}"


def _run_local(storage_url: str, shares: List[int], offset: int, quiet: bool) -> None:
    if len(shares) == 1:
        run_worker(storage_url, shares[0], offset, quiet)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked torch or SQLite connection is not safe to use
    with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_worker, storage_url, n, offset + i, quiet) for i, n in enumerate(shares)]
        for future in futures:
            future.result()


def _run_ray(storage_url: str, shares: List[int], offset: int, quiet: bool, address: Optional[str]) -> None:
    from ppolearn.distributed import import_ray

    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        import logging

        if address:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        else:
            cpus = max(os.cpu_count() or 1, len(shares))
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_worker)
        ray.get([task.remote(storage_url, n, offset + i, quiet) for i, n in enumerate(shares)])
    finally:
        if started:
            ray.shutdown()


# --- the study ------------------------------------------------------------------------------------------


def tune(
    env: str,
    trials: int = 20,
    budget: Optional[int] = None,
    seeds: Optional[int] = None,
    objective: Optional[str] = None,
    space: Optional[Union[str, Path, Mapping[str, Any]]] = None,
    jobs: int = 1,
    backend: str = "local",
    ray_address: Optional[str] = None,
    study_dir: Union[str, Path, None] = None,
    resume: bool = False,
    episodes: Optional[int] = None,
    evals: Optional[int] = None,
    target: Optional[str] = None,
    pruner: Optional[str] = None,
    seed: Optional[int] = None,
    storage: Optional[str] = None,
    quiet: bool = False,
    env_kwargs: Optional[Dict[str, Any]] = None,
    env_wrapper: Optional[List[Any]] = None,
) -> Dict[str, Any]:
    """Run ``trials`` more trials of a study on ``env``; write best.yaml, the tables and plots; a summary.

    ``env_kwargs`` and ``env_wrapper`` (config fields) build every trial's environment; None keeps the preset's.

    ``resume`` continues the study in ``study_dir`` with the settings it was started with. ``storage`` is an
    Optuna RDB URL (default: SQLite in the study directory; a server database for Ray across machines).
    With ``jobs > 1`` the workers are spawned processes: a script calling tune() keeps its top-level code
    under ``if __name__ == "__main__":``, as for any ``multiprocessing`` program.
    """
    optuna = import_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if trials <= 0:
        raise ConfigError(f"--trials={trials} is not allowed: must be a positive integer")
    if jobs <= 0:
        raise ConfigError(f"--jobs={jobs} is not allowed: must be a positive integer")
    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend={backend!r} is not allowed: must be 'local' or 'ray'")
    study_dir = Path(study_dir) if study_dir is not None else default_study_dir(env)
    db = study_dir / STUDY_DB
    url = storage or f"sqlite:///{db.resolve()}"
    if resume and storage is None and not db.exists():
        raise PPOLearnError(f"no study to resume in '{study_dir}' (no {STUDY_DB})")
    if not resume and db.exists():
        raise PPOLearnError(
            f"'{study_dir}' already holds a study: continue it with --resume, or choose another --study-dir"
        )
    if not resume:  # check everything before creating anything
        settings = _settings(
            env, budget, seeds, objective, space, episodes, evals, target, pruner, seed, env_kwargs, env_wrapper
        )
    with claim(study_dir, fresh=False):  # one tune process per study directory
        rdb = _storage(url)
        if resume:
            study = optuna.load_study(study_name=STUDY_NAME, storage=rdb)
            settings = study.user_attrs["settings"]
            if space is not None:
                raise ConfigError("--resume continues the study with its own search space: leave out --space")
            given = {"env": env, "budget": budget, "seeds": seeds, "objective": objective, "episodes": episodes}
            given.update(evals=evals, target=target, pruner=pruner, seed=seed)
            if env_kwargs is not None or env_wrapper is not None:  # as build_config would normalise them
                environment = build_config({"env_kwargs": env_kwargs, "env_wrapper": env_wrapper})
                given.update(env_kwargs=environment.env_kwargs if env_kwargs is not None else None)
                given.update(env_wrapper=environment.env_wrapper if env_wrapper is not None else None)
            _check_resume(settings, given)
            _fail_stale(study, rdb)
        else:
            study = optuna.create_study(study_name=STUDY_NAME, storage=rdb, direction="maximize")
            study.set_user_attr("settings", settings)
        offset = len(study.trials) * 1000  # another session: other sampler seeds than the earlier ones
        if not quiet:
            print(f"study: {study_dir} ({len(study.trials)} trials so far); {_describe(settings)}", flush=True)
        workers = max(1, min(jobs, trials))
        shares = [trials // workers + (i < trials % workers) for i in range(workers)]
        started = time.perf_counter()
        if backend == "ray":
            _run_ray(url, shares, offset, quiet, ray_address)
        else:
            _run_local(url, shares, offset, quiet)
        seconds = time.perf_counter() - started
        study = optuna.load_study(study_name=STUDY_NAME, storage=_storage(url))
        summary = write_outputs(study, study_dir, settings, quiet)
    summary["seconds"] = round(seconds, 2)
    summary["trials_per_hour"] = round(trials / seconds * 3600, 1) if seconds > 0 else None
    return summary


def _describe(settings: Mapping[str, Any]) -> str:
    text = (
        f"{settings['env']}, {settings['objective']} over {settings['seeds']} seeds x {settings['episodes']} "
        f"validation episodes after {settings['budget']} steps"
    )
    return text + (f", ties broken by time to {settings['target']}" if settings.get("target") else "")


def _fail_stale(study: Any, storage: Any) -> None:
    """Trials left running by an interrupted session (its lock is gone, so no process runs them): failed."""
    optuna = import_optuna()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", "interrupted")
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


# --- outputs --------------------------------------------------------------------------------------------


def write_outputs(study: Any, study_dir: Path, settings: Mapping[str, Any], quiet: bool = False) -> Dict[str, Any]:
    """best.yaml, trials.csv, trials.md and the plots; the summary tune() returns."""
    optuna = import_optuna()
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    counts = {s.name.lower(): 0 for s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)}
    counts["failed"] = 0
    for trial in study.trials:
        name = {"COMPLETE": "complete", "PRUNED": "pruned"}.get(trial.state.name, "failed")
        if trial.state.name != "RUNNING":
            counts[name] += 1
    _write_csv(study, study_dir / "trials.csv")
    ranked = sorted(done, key=lambda t: t.value, reverse=True)
    table = _markdown(ranked[:TOP], settings)
    (study_dir / "trials.md").write_text(table + "\n")
    plots = [
        _plot_history(study, study_dir / "history.png", settings),
        _plot_importance(study, study_dir / "importance.png"),
    ]
    summary: Dict[str, Any] = {"study_dir": str(study_dir), "trials": len(study.trials), **counts}
    if not ranked:
        failed = [t for t in study.trials if t.state.name == "FAIL"]
        reason = failed[0].user_attrs.get("fail_reason", "unknown") if failed else "every trial was pruned"
        raise PPOLearnError(f"no trial of the study in '{study_dir}' completed; first failure: {reason}")
    best = ranked[0]
    plots.append(_plot_best_curve(best, study_dir / "best_curve.png", settings))
    best_yaml = study_dir / "best.yaml"
    _write_best(best, best_yaml, settings)
    summary.update(
        best_trial=best.number,
        best_value=best.value,
        best_figure=best.user_attrs.get("figure"),
        best_config=str(best_yaml),
        plots=[str(p) for p in plots if p is not None],
    )
    if not quiet:
        print(table)
        print(
            f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed; best: trial "
            f"{best.number}, {settings['objective']} {best.user_attrs.get('figure'):.4g}"
        )
        print(f"best settings: {best_yaml}; train with: ppolearn train --env {settings['env']} --config {best_yaml}")
    return summary


def _write_best(best: Any, path: Path, settings: Mapping[str, Any]) -> None:
    values = dict(best.user_attrs["config"])
    values["total_timesteps"] = settings["budget"]
    if settings.get("target"):
        values["target"] = settings["target"]
    for key in ("env_kwargs", "env_wrapper"):  # the environment every trial had (train --config rebuilds it)
        if settings.get(key):
            values[key] = settings[key]
    header = (
        f"# ppolearn tune: trial {best.number} of the study on {settings['env']}: {settings['objective']} "
        f"{best.user_attrs.get('figure'):.4g}\n# (mean over {settings['seeds']} seeds x {settings['episodes']} "
        f"validation episodes after {settings['budget']} steps)\n"
    )
    path.write_text(header + yaml.safe_dump(values, sort_keys=False))


def _rows(study: Any) -> List[Dict[str, Any]]:
    params = sorted({k for t in study.trials for k in t.params})
    rows = []
    for t in study.trials:
        steps = [s for s in t.user_attrs.get("steps_to_target", []) if s is not None]
        row: Dict[str, Any] = {
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
            "figure": t.user_attrs.get("figure"),
            "seeds_at_target": len(steps) if "steps_to_target" in t.user_attrs else None,
            "mean_steps_to_target": sum(steps) / len(steps) if steps else None,
            "train_s": t.user_attrs.get("train_s"),
            "last_step": t.last_step,
        }
        row.update({k: t.params.get(k) for k in params})
        row["fail_reason"] = t.user_attrs.get("fail_reason")
        rows.append(row)
    return rows


def _write_csv(study: Any, path: Path) -> None:
    rows = _rows(study)
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _markdown(ranked: List[Any], settings: Mapping[str, Any]) -> str:
    params = sorted({k for t in ranked for k in t.params})
    head = ["trial", settings["objective"], "seeds at target", "steps to target", "train s", *params]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in ranked:
        steps = [s for s in t.user_attrs.get("steps_to_target", []) if s is not None]
        cells = [
            str(t.number),
            _fmt(t.user_attrs.get("figure")),
            f"{len(steps)}/{settings['seeds']}" if settings.get("target") else "",
            str(round(sum(steps) / len(steps))) if steps else "",
            _fmt(t.user_attrs.get("train_s")),
            *[_fmt(t.params.get(k)) for k in params],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_history(study: Any, out: Path, settings: Mapping[str, Any]) -> Optional[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    best = -math.inf
    xs, ys, bx, by = [], [], [], []
    for t in study.trials:
        if t.state.name == "COMPLETE":
            xs.append(t.number)
            ys.append(t.user_attrs.get("figure", t.value))
            best = max(best, ys[-1])
            bx.append(t.number)
            by.append(best)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    ax.scatter(xs, ys, color="tab:blue", label="complete", zorder=3)
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [t.intermediate_values[t.last_step] for t in pruned],
            color="tab:gray",
            marker="x",
            label="pruned (last report)",
        )
    for t in failed:
        ax.axvline(t.number, color="tab:red", alpha=0.3, lw=1)
    ax.step(bx, by, where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{settings['objective']} (mean over {settings['seeds']} seeds)")
    title = f"{settings['env']}: optimisation history"
    ax.set_title(title + (f" ({len(failed)} failed: red lines)" if failed else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, out)


def _plot_importance(study: Any, out: Path) -> Optional[Path]:
    """Parameter importances; none (and no stale file) with too few finished trials to tell."""
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if out.exists():
        out.unlink()
    if len(done) < 3:
        return None
    importances, method = _importances(study)
    if not importances:
        return None
    plt = _pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel(f"importance ({method})")
    ax.set_title(f"parameter importances over {len(done)} complete trials")
    return _save(fig, out)


def _importances(study: Any) -> Tuple[Dict[str, float], str]:
    """fANOVA (needs scikit-learn), else PED-ANOVA (Optuna's own); empty where neither can tell."""
    optuna = import_optuna()
    try:
        return optuna.importance.get_param_importances(study), "fANOVA, share of the objective's variance"
    except ImportError:
        pass
    except Exception:  # too little variation to fit
        return {}, ""
    evaluator = getattr(optuna.importance, "PedAnovaImportanceEvaluator", None)
    if evaluator is None:
        return {}, ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental; warns where few trials are in the top quantile
            found = optuna.importance.get_param_importances(study, evaluator=evaluator())
    except Exception:
        return {}, ""
    return found, "PED-ANOVA: how the top trials' settings differ from all"


def _plot_best_curve(best: Any, out: Path, settings: Mapping[str, Any]) -> Optional[Path]:
    curves = best.user_attrs.get("curves") or []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, curve in enumerate(curves):
        if curve:
            ax.plot([p[0] for p in curve], [p[1] for p in curve], marker="o", label=f"seed {i * SEED_STRIDE}")
    if settings.get("target"):
        tgt = Target.parse(settings["target"])
        if tgt.metric == settings["objective"]:
            ax.axhline(tgt.value, color="tab:green", ls="--", label=f"target {tgt}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"validation {settings['objective']}")
    ax.set_title(f"best trial {best.number}: evaluations during training")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, out)


def _save(fig: Any, out: Path) -> Path:
    """Lay the figure out, write it as PNG and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def load_study_summary(study_dir: Union[str, Path]) -> Dict[str, Any]:
    """Counts of a study on disk (for tests and scripts)."""
    optuna = import_optuna()
    url = f"sqlite:///{(Path(study_dir) / STUDY_DB).resolve()}"
    study = optuna.load_study(study_name=STUDY_NAME, storage=_storage(url))
    states = [t.state.name for t in study.trials]
    return {"trials": len(states), "states": states, "settings": study.user_attrs["settings"]}
