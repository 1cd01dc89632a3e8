"""The `ppolearn` command: train, tune, eval, render, plot, presets, check-env.

Every error the user can fix is printed as one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Optional

from ppolearn.errors import PPOLearnError, TrainingInterrupted

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
WRAPPER_HELP = (
    "wrappers around the environment, innermost first, e.g. minigrid.wrappers.FlatObsWrapper (replaces the "
    "config's env_wrapper; wrappers with arguments: env_wrapper in a config file)"
)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (the usage itself is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"ppolearn: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ppolearn", description="Train a policy with PPO-Clip to reach a target.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    train = sub.add_parser("train", help="train a policy (or resume a run)")
    train.add_argument(
        "--env", help="Gymnasium id, module:Env-v0, module:ClassName, or a batched clone such as ppolearn/Pendulum-v1"
    )
    train.add_argument(
        "--env-kwargs",
        nargs="+",
        default=[],
        metavar="NAME:VALUE",
        help="keyword arguments for the environment (gym.make), e.g. map_name:8x8 is_slippery:False",
    )
    train.add_argument("--env-wrapper", nargs="+", default=[], metavar="PATH", help=WRAPPER_HELP)
    train.add_argument("--config", metavar="FILE", help="YAML file of config keys (overrides the preset)")
    train.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="extend",
        nargs="+",
        default=[],
        help="override config keys: --set n_steps=512 gamma=0.98 (repeatable)",
    )
    train.add_argument("--total-timesteps", type=int, metavar="N")
    train.add_argument("--seed", type=int, metavar="N")
    train.add_argument("--num-envs", type=int, metavar="N")
    train.add_argument("--run-dir", metavar="DIR", help="a new or empty directory (default: runs/<env>_s<seed>_<N>)")
    train.add_argument(
        "--overwrite", action="store_true", help="move a run already in --run-dir aside to DIR.old-<N> first"
    )
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where the learner runs (workers: CPU)")
    train.add_argument("--backend", choices=["local", "ray"], help="where rollouts run (default: local)")
    train.add_argument("--num-workers", type=int, metavar="N", help="Ray rollout workers (backend ray)")
    train.add_argument(
        "--ray-address", metavar="ADDR", help="join this Ray cluster (host:port) instead of starting a local Ray"
    )
    train.add_argument(
        "--stop-at",
        metavar="TARGET",
        help="stop once an evaluation confirms TARGET, e.g. 'mean_return>=-200' or 'success_rate>=0.95'",
    )
    train.add_argument(
        "--eval-every", type=int, metavar="STEPS", help="steps between evaluations during training (0: none)"
    )
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    tune = sub.add_parser("tune", help="search hyperparameters that reach the target on every seed (Optuna)")
    tune.add_argument("--env", required=True, help="the environment, as for train")
    tune.add_argument(
        "--env-kwargs", nargs="+", default=[], metavar="NAME:VALUE", help="keyword arguments for the environment"
    )
    tune.add_argument("--env-wrapper", nargs="+", default=[], metavar="PATH", help=WRAPPER_HELP)
    tune.add_argument("--trials", type=int, default=20, metavar="N", help="trials to run now (default: 20)")
    tune.add_argument("--budget", type=int, metavar="STEPS", help="training steps per seed (default: the preset's)")
    tune.add_argument("--seeds", type=int, metavar="K", help="seeds each trial trains on (default: 3)")
    tune.add_argument(
        "--objective",
        choices=["success_rate", "mean_return"],
        help="figure to maximise (default: success_rate where the env reports success)",
    )
    tune.add_argument("--space", metavar="FILE", help="YAML: per key a value, a list of choices or {low, high, log}")
    tune.add_argument("--episodes", type=int, metavar="N", help="validation episodes per seed (default: 50)")
    tune.add_argument("--evals", type=int, metavar="N", help="evaluations during training per seed (default: 5)")
    tune.add_argument("--target", metavar="TARGET", help="breaks ties by time to it (default: the preset's)")
    tune.add_argument("--pruner", choices=["median", "halving", "none"], help="default: median")
    tune.add_argument("--seed", type=int, metavar="N", help="the sampler's seed (default: 0)")
    tune.add_argument("--jobs", type=int, default=1, metavar="J", help="trials in parallel (default: 1)")
    tune.add_argument("--backend", choices=["local", "ray"], default="local", help="processes here, or Ray tasks")
    tune.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (backend ray)")
    tune.add_argument("--study-dir", metavar="DIR", help="default: studies/<env>")
    tune.add_argument("--storage", metavar="URL", help="Optuna RDB URL (default: sqlite:///DIR/study.db)")
    tune.add_argument("--resume", action="store_true", help="add trials to the study in --study-dir")
    tune.add_argument("--quiet", action="store_true", help="no line per trial")

    ev = sub.add_parser("eval", help="evaluate a trained run on the official environment")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--env", help="evaluate on another id with the same spaces")
    ev.add_argument("--episodes", type=int, default=100, metavar="N", help="default: 100")
    ev.add_argument(
        "--seed", type=int, default=10_000, metavar="N", help="episode i starts from seed N+i (default: 10000)"
    )
    ev.add_argument("--best", action="store_true", help="evaluate best_model.pt instead of model.pt")
    ev.add_argument("--stochastic", action="store_true", help="sample actions instead of the mean/argmax")
    ev.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    render = sub.add_parser("render", help="write a GIF of the trained policy")
    render.add_argument("run_dir", metavar="RUN_DIR")
    render.add_argument("--out", metavar="FILE.gif", help="default: RUN_DIR/policy.gif")
    render.add_argument("--episodes", type=int, default=1, metavar="N")
    render.add_argument("--env", help="render on another id with the same spaces")

    plot = sub.add_parser("plot", help="draw the learning curve from metrics.csv")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--out", metavar="FILE.png", help="default: RUN_DIR/learning_curve.png")

    check = sub.add_parser("check-env", help="check that an environment will train and report success")
    check.add_argument("env", metavar="ENV", help="Gymnasium id, module:Env-v0 or module:ClassName")
    check.add_argument("--success", metavar="NAME", help="success criterion to apply (default: the preset's)")
    check.add_argument(
        "--env-kwargs", nargs="+", default=[], metavar="NAME:VALUE", help="keyword arguments for the environment"
    )
    check.add_argument("--env-wrapper", nargs="+", default=[], metavar="PATH", help=WRAPPER_HELP)

    presets = sub.add_parser("presets", help="list the environments with tuned presets")
    presets.add_argument("--show", metavar="ENV", help="print one preset's settings")
    presets.add_argument("--fields", action="store_true", help="list every config key with its default")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # a further Ctrl-C while reporting the first one
        return EXIT_INTERRUPTED


def entry() -> None:
    """The `ppolearn` command: :func:`main`, then an exit that skips the interpreter's tear-down.

    Why: unloading torch, matplotlib and Gymnasium module by module took about 0.45 s of every command here
    (``python -c "import ppolearn.cli"``: 2.5 s as a whole process, 2.1 s ending with ``os._exit``). By then
    every file is written and closed, the environments and workers are closed, and the standard streams and
    logging are flushed below. Where a Ray instance is still up, the normal exit runs: Ray's own exit
    handler shuts it down.
    """
    code = main()
    ray = sys.modules.get("ray")
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except TrainingInterrupted as exc:
        _ignore_further_signals()
        print(f"ppolearn: {exc}", file=sys.stderr)
        run_dir = shlex.quote(str(getattr(args, "run_dir_used", "RUN_DIR")))
        print(f"ppolearn: resume with: ppolearn train --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except PPOLearnError as exc:
        print(f"ppolearn: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _ignore_further_signals()
        print("ppolearn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, not the user's input: one line, the traceback on request
        if os.environ.get("PPOLEARN_DEBUG"):
            raise
        print(
            f"ppolearn: internal error: {type(exc).__name__}: {exc} (set PPOLEARN_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def _ignore_further_signals() -> None:
    """The process is exiting after an interrupt: more Ctrl-C must not print tracebacks from shutdown."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def cmd_train(args: argparse.Namespace) -> int:
    from ppolearn import run
    from ppolearn.rundir import make_default_run_dir, remove_if_unused

    flags: Dict[str, Any] = {
        "total_timesteps": args.total_timesteps,
        "seed": args.seed,
        "num_envs": args.num_envs,
        "device": args.device,
        "backend": args.backend,
        "num_workers": args.num_workers,
        "eval_every": args.eval_every,
    }
    if args.stop_at is not None:
        flags.update(target=args.stop_at, stop_at_target=True)
    if args.resume:
        if args.overwrite:
            raise PPOLearnError("--overwrite starts a new run; it cannot be given with --resume")
        if (
            args.env
            or args.env_kwargs
            or args.env_wrapper
            or args.config
            or args.overrides
            or args.num_envs
            or args.seed is not None
            or args.backend
            or args.stop_at
            or args.eval_every is not None
        ):
            raise PPOLearnError(
                "--resume continues a run with its own config; only --total-timesteps, --device, "
                "--num-workers, --ray-address and --quiet may be given with it"
            )
        args.run_dir_used = Path(args.resume)
        result = run.resume(
            args.run_dir_used,
            args.total_timesteps,
            args.device or "auto",
            args.quiet,
            args.ray_address,
            args.num_workers,
        )
    else:
        if not args.env:
            raise PPOLearnError("train needs --env ENV (or --resume RUN_DIR)")
        from ppolearn.config import parse_env_kwargs, parse_overrides

        overrides = parse_overrides(args.overrides)
        overrides.update({k: v for k, v in flags.items() if v is not None})
        config = run.resolve_config(args.env, args.config, overrides)
        if args.env_kwargs:  # added to (and overriding) any env_kwargs of the preset, file or --set
            config = config.replace(env_kwargs={**config.env_kwargs, **parse_env_kwargs(args.env_kwargs)})
        if args.env_wrapper:
            config = config.replace(env_wrapper=args.env_wrapper)
        given = Path(args.run_dir) if args.run_dir else None
        existed = given is not None and given.exists()
        args.run_dir_used = given or make_default_run_dir(args.env, config.seed)
        try:
            result = run.train(
                args.env, config, args.run_dir_used, args.quiet, ray_address=args.ray_address, overwrite=args.overwrite
            )
        except BaseException:
            if not existed:  # a run that failed before writing anything leaves no directory behind
                remove_if_unused(args.run_dir_used)
            raise
    print(f"run dir: {args.run_dir_used}")
    print(_summary(result))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from ppolearn.tune import default_study_dir, tune

    try:
        summary = _tune(args, tune)
    except KeyboardInterrupt:
        _ignore_further_signals()
        study_dir = shlex.quote(str(args.study_dir or default_study_dir(args.env)))
        print("ppolearn: interrupted; the finished trials are kept", file=sys.stderr)
        resume = f"ppolearn tune --env {shlex.quote(args.env)} --study-dir {study_dir} --resume"
        print(f"ppolearn: continue with: {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.quiet:
        print(f"best settings: {summary['best_config']}")
    rate = f" ({summary['trials_per_hour']:.0f} trials/hour)" if summary["trials_per_hour"] else ""
    print(f"{args.trials} trials in {summary['seconds']:.1f} s{rate}")
    return 0


def _tune(args: argparse.Namespace, tune: Any) -> Dict[str, Any]:
    from ppolearn.config import parse_env_kwargs

    return tune(
        args.env,
        env_kwargs=parse_env_kwargs(args.env_kwargs) or None,
        env_wrapper=args.env_wrapper or None,
        trials=args.trials,
        budget=args.budget,
        seeds=args.seeds,
        objective=args.objective,
        space=args.space,
        jobs=args.jobs,
        backend=args.backend,
        ray_address=args.ray_address,
        study_dir=args.study_dir,
        resume=args.resume,
        episodes=args.episodes,
        evals=args.evals,
        target=args.target,
        pruner=args.pruner,
        seed=args.seed,
        storage=args.storage,
        quiet=args.quiet,
    )


def _load(run_dir: str, env: Optional[str] = None, best: bool = False) -> Any:
    from ppolearn.ppo import PPO
    from ppolearn.run import model_path

    model = PPO.load(model_path(run_dir, best), device="cpu")
    if env:  # check the other id's spaces against the model's before running it
        from ppolearn.envs import ActionSpec, ObsSpec, configured_factory, space_mismatch

        cfg = model.config
        probe = configured_factory(env, None, cfg.env_kwargs, cfg.env_wrapper)()
        try:
            obs = ObsSpec.from_space(probe.observation_space, cfg.image_obs, cfg.channels_last)
            act = ActionSpec.from_space(probe.action_space)
        finally:
            probe.close()
        reason = space_mismatch(model.obs_spec, model.action_spec, obs, act, env)
        if reason is not None:
            raise PPOLearnError(
                f"'{env}' has other observation or action spaces than '{model.env_id}': the model {reason}"
            )
    return model


def cmd_eval(args: argparse.Namespace) -> int:
    from ppolearn.evaluation import evaluate_policy

    if args.episodes <= 0:
        raise PPOLearnError(f"--episodes={args.episodes} is not allowed: must be a positive integer")
    model = _load(args.run_dir, args.env, args.best)
    result = evaluate_policy(model, args.env, args.episodes, deterministic=not args.stochastic, seed=args.seed)
    print(json.dumps(result) if args.json else _summary(result))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from ppolearn.render import render_gif

    if args.episodes <= 0:
        raise PPOLearnError(f"--episodes={args.episodes} is not allowed: must be a positive integer")
    model = _load(args.run_dir, args.env)
    out = Path(args.out) if args.out else Path(args.run_dir) / "policy.gif"
    print(render_gif(model, out, env=args.env, episodes=args.episodes))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ppolearn.plots import plot_learning_curve

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise PPOLearnError(f"run directory '{run_dir}' does not exist")
    out = Path(args.out) if args.out else run_dir / "learning_curve.png"
    print(plot_learning_curve(run_dir / "metrics.csv", out))
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from ppolearn.config import PPOConfig, list_presets, preset_path

    if args.fields:
        for key, value in PPOConfig().to_dict().items():
            print(f"{key}: {value}")
    elif args.show:
        if not preset_path(args.show).exists():
            raise PPOLearnError(f"no preset for '{args.show}'; presets exist for: {', '.join(list_presets())}")
        print(preset_path(args.show).read_text().rstrip())
    else:
        for env_id in list_presets():
            print(env_id)
    return 0


def cmd_check_env(args: argparse.Namespace) -> int:
    from ppolearn.config import build_config, load_preset, parse_env_kwargs
    from ppolearn.envs import preset_key
    from ppolearn.envs.check import PROBLEM, check_environment, describe_spaces

    given = {"success": args.success} if args.success else {}
    if args.env_wrapper:
        given["env_wrapper"] = args.env_wrapper
    config = build_config(load_preset(preset_key(args.env)), given)
    env_kwargs = {**config.env_kwargs, **parse_env_kwargs(args.env_kwargs)}
    findings = check_environment(args.env, config.success, env_kwargs, config.env_wrapper)
    print(describe_spaces(args.env, env_kwargs, config.image_obs, config.channels_last, config.env_wrapper))
    for finding in findings:
        print(finding)
    problems = sum(f.severity == PROBLEM for f in findings)
    notes = len(findings) - problems
    print(f"{args.env}: {problems} problem(s), {notes} note(s)" if findings else f"{args.env}: no problems found")
    return 1 if problems else 0


def _summary(result: Dict[str, Any]) -> str:
    low, high = result["return_ci95"]
    text = (
        f"{result['env']}: mean return {result['mean_return']:.2f} (95% CI {low:.2f} to {high:.2f}; "
        f"std {result['std_return']:.2f}) over {result['episodes']} episodes, seeds {result['seeds'][0]}-"
        f"{result['seeds'][1]} (mean length {result['mean_length']:.1f})"
    )
    if result.get("success_rate") is not None:
        low, high = result["success_ci95"]
        text += f", success rate {result['success_rate']:.0%} (95% CI {low:.0%}-{high:.0%})"
    if result.get("mean_steps_to_success") is not None:
        text += f", first success after {result['mean_steps_to_success']:.1f} steps on average"
    if result.get("looping_episodes"):
        text += (
            f"\n{result['looping_episodes']} episode(s) ran out of time seeing the same few observations over and "
            "over (how a deterministic policy without memory loops; --stochastic or memory: lstm can break it)"
        )
    if result.get("target"):
        reached = result.get("target_reached")
        when = f"first confirmed at step {reached['step']} ({reached['time_s']:.1f} s of training)" if reached else ""
        text += f"\ntarget {result['target']}: {'reached' if result['reached'] else 'NOT reached'} by this evaluation"
        text += f"; {when}" if when else "; never confirmed during training"
    return text


COMMANDS = {
    "train": cmd_train,
    "tune": cmd_tune,
    "eval": cmd_eval,
    "render": cmd_render,
    "plot": cmd_plot,
    "presets": cmd_presets,
    "check-env": cmd_check_env,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
