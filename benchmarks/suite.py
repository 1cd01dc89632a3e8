"""The target-reaching suite: train every preset on 5 seeds, judge each on 100 unseen episodes, table it.

Each run is the whole ``ppolearn train`` job (preset, training, evaluation during training, then the final
deterministic evaluation of ``eval_episodes`` (100) episodes on the official environment, seeds 10000-10099,
disjoint from the training seeds), so the figures are what a user gets. A task counts as reached only when
*every* seed's own 100-episode figure is at the preset's target. Across seeds the table gives the
interquartile mean with a stratified-bootstrap 95% interval (Agarwal et al. 2021; ``ppolearn/stats.py``)
and every seed's figure. The table goes into ``BENCHMARKS.md`` between the ``<!-- suite:start -->`` /
``<!-- suite:end -->`` markers under "## Target-reaching suite" (other sections of the file are left
alone); a GIF of each task's first seed goes to ``docs/gifs/``.

    python benchmarks/suite.py                      # every task, seeds 0-4 (about an hour on 2 cores)
    python benchmarks/suite.py --tasks Pendulum-v1 --seeds 0
    python benchmarks/suite.py --reuse              # table every task, training only the runs not yet done
    python benchmarks/suite.py --table-only         # table the finished runs, train nothing
    python benchmarks/suite.py --smoke --out /tmp/B.md --gif-dir /tmp/gifs   # seconds: checks the plumbing
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(ROOT))

from benchmarks.markdown import write_section  # noqa: E402
from ppolearn.config import load_preset  # noqa: E402
from ppolearn.envs import official_id  # noqa: E402
from ppolearn.envs.success import Target  # noqa: E402
from ppolearn.stats import aggregate_seeds  # noqa: E402

START, END = "<!-- suite:start -->", "<!-- suite:end -->"
HEADING = "## Target-reaching suite"


@dataclass(frozen=True)
class Task:
    env_id: str
    target: str  # what reaching it looks like, in words; the threshold is the preset's `target`
    zoo: Optional[str] = None  # rl-baselines3-zoo benchmark.md, PPO: mean_reward +- std (n_timesteps)
    needs: Optional[str] = None  # the module an optional extra provides

    @property
    def threshold(self) -> Target:
        return Target.parse(load_preset(self.env_id)["target"])


TASKS = [
    Task("Pendulum-v1", "upright and still", "-172.2 ± 104.2 (100k)"),
    Task("ppolearn/Pendulum-v1", "upright and still"),
    Task("MountainCarContinuous-v0", "the flag", "88.3 ± 2.6 (20k)"),
    Task("MountainCar-v0", "the flag", "-110.4 ± 19.5 (1M)"),
    Task("Acrobot-v1", "the height", "-73.5 ± 18.2 (1M)"),
    Task("ppolearn/Acrobot-v1", "the height"),
    Task("CartPole-v1", "balanced", "500.0 ± 0.0 (100k)"),
    Task("ppolearn/CartPole-v1", "balanced"),
    Task("Reacher-v5", "fingertip on target", None, "mujoco"),
    Task("FetchReachDense-v4", "gripper at goal", None, "gymnasium_robotics"),
    Task("ppolearn/PointReach-v0", "at target and stopped"),
    Task("ppolearn/PointReachBatched-v0", "at target and stopped"),
]
SMOKE_TASKS = ["CartPole-v1", "ppolearn/PointReach-v0"]
SEEDS = [0, 1, 2, 3, 4]
SB3_REFERENCE = ROOT / "benchmarks" / "sb3_reference.json"


def _run_dir(task: Task, seed: int, runs_dir: Path) -> Path:
    return runs_dir / f"{task.env_id.replace('/', '__')}_s{seed}"


def _saved(task: Task, seed: int, runs_dir: Path) -> Optional[Dict[str, Any]]:
    """The result an earlier invocation saved for this task and seed, if any."""
    saved = _run_dir(task, seed, runs_dir) / "suite_result.json"
    return json.loads(saved.read_text()) if saved.is_file() else None


def run_one(task: Task, seed: int, runs_dir: Path, overrides: Dict[str, Any], reuse: bool) -> Dict[str, Any]:
    """Train and evaluate one seed with the task's preset; the eval.json figures plus wall-clock.

    With ``reuse``, a finished run of an earlier invocation (its suite_result.json) is read back instead, so
    tasks can be run one at a time and tabled together.
    """
    from ppolearn import run

    run_dir = _run_dir(task, seed, runs_dir)
    saved = _saved(task, seed, runs_dir) if reuse else None
    if saved is not None:
        return saved
    config = run.resolve_config(task.env_id, None, {"seed": seed, **overrides})
    started = time.perf_counter()
    result = run.train(task.env_id, config, run_dir, quiet=True, overwrite=True)  # an earlier try: moved aside
    result.update(seed=seed, wall_s=time.perf_counter() - started, run_dir=str(run_dir))
    (run_dir / "suite_result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def render(task: Task, run_dir: Path, gif_dir: Path, mean_length: float) -> Path:
    """A small GIF of deterministic episodes: up to 3 short ones, about 150 frames at most, 160 px."""
    from ppolearn.ppo import PPO
    from ppolearn.render import render_gif

    model = PPO.load(run_dir / "model.pt", device="cpu")
    episodes = max(1, min(3, int(300 // mean_length)))  # several targets where episodes are short
    skip = max(2, math.ceil(episodes * mean_length / 150))  # long episodes are thinned to stay small
    out = gif_dir / (task.env_id.replace("/", "__") + ".gif")
    return render_gif(model, out, episodes=episodes, max_side=160, frame_skip=skip)


def _figure(value: Optional[float], metric: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.0f}%" if metric == "success_rate" else f"{value:.1f}"


def _iqm_cell(values: List[float], metric: str) -> str:
    """IQM [95% CI] over seeds, as the metric is written."""
    agg = aggregate_seeds(values)
    low, high = agg["iqm_ci_low"], agg["iqm_ci_high"]
    return f"{_figure(agg['iqm'], metric)} [{_figure(low, metric)}, {_figure(high, metric)}]"


def table(rows: List[Dict[str, Any]]) -> str:
    """Markdown table, one row per task: IQM over seeds with its 95% interval, and every seed's figure."""
    lines = [
        "| task | target | threshold | seeds at threshold | return IQM [95% CI] | success IQM [95% CI] "
        "| per seed (return / success) | median s to target | timesteps (median) | training s per seed (median) "
        "| SB3 zoo, same episodes: return IQM [95% CI] | zoo PPO (published) |",
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    reference = _sb3_reference()
    for row in rows:
        task: Task = row["task"]
        results = row["results"]
        if not results:
            lines.append(
                f"| {task.env_id} | {task.target} | {task.threshold} | not run: {row['skipped']} "
                f"| – | – | – | – | – | – | – | {task.zoo or '–'} |"
            )
            continue
        threshold = task.threshold
        passing = [r for r in results if threshold.reached(r)]
        returns = [r["mean_return"] for r in results]
        successes = [r["success_rate"] for r in results if r["success_rate"] is not None]
        per_seed = ", ".join(
            f"{r['seed']}: {r['mean_return']:.1f}"
            + (f" / {100 * r['success_rate']:.0f}%" if r["success_rate"] is not None else "")
            for r in results
        )
        reached_s = [r["target_reached"]["time_s"] for r in results if r.get("target_reached")]
        to_target = f"{statistics.median(reached_s):.1f} ({len(reached_s)}/{len(results)})" if reached_s else "–"
        verdict = "**all**" if len(passing) == len(results) else "not all"
        lines.append(
            f"| {task.env_id} | {task.target} | {threshold} | {len(passing)}/{len(results)} ({verdict}) "
            f"| {_iqm_cell(returns, 'mean_return')} "
            f"| {_iqm_cell(successes, 'success_rate') if successes else '–'} "
            f"| {per_seed} | {to_target} "
            f"| {statistics.median(r['num_timesteps'] for r in results):,.0f} "
            f"| {statistics.median(r['train_time_s'] for r in results):.1f} "
            f"| {reference.get(official_id(task.env_id), '–')} "
            f"| {task.zoo or '–'} |"
        )
    return "\n".join(lines)


def _sb3_reference() -> Dict[str, str]:
    """SB3-zoo's per-seed figures on the same 100 test episodes (benchmarks/sb3_reference.py), as table cells."""
    if not SB3_REFERENCE.is_file():
        return {}
    data = json.loads(SB3_REFERENCE.read_text())
    cells = {}
    for env_id, entry in data.items():
        returns = [r["mean_return"] for r in entry["results"]]
        steps = entry["results"][0]["timesteps"]
        cells[env_id] = f"{_iqm_cell(returns, 'mean_return')} ({len(returns)} seeds, {steps:,} steps)"
    return cells


def section_body(rows: List[Dict[str, Any]], smoke: bool, gifs: List[Path]) -> str:
    notes = [
        "Written by `python benchmarks/suite.py` (seeds 0-4). Each seed is a whole `ppolearn train` run with the "
        "task's preset, judged by its own final evaluation: the deterministic policy on 100 episodes of the "
        "official environment (seeds 10000-10099, never used in training; a batched `ppolearn/` clone is judged "
        'on the Gymnasium task it clones), success from `info["is_success"]` or the preset\'s success criterion. '
        "A task is at threshold only when **all** seeds' 100-episode figures are. IQM: interquartile mean over "
        "seeds, with a stratified-bootstrap 95% interval (`ppolearn/stats.py`). Median s to target: training "
        "seconds until an evaluation during training (validation seeds, confirmed on 100 episodes) first reached "
        "the target, over the seeds that got there. SB3 zoo, same episodes: Stable-Baselines3 2.9.2 with "
        "rl-baselines3-zoo's settings, seeds 0-4, on the same 100 test episodes "
        "(`python -m benchmarks.sb3_reference`; its steps in brackets). zoo PPO (published): "
        "rl-baselines3-zoo's benchmark.md figure (one run, its own timesteps and episodes).",
    ]
    if smoke:
        notes.append("**Smoke run** (tiny timesteps, one seed, 2 episodes): checks the runner, not the thresholds.")
    body = "\n\n".join(notes) + "\n\n" + table(rows)
    if gifs:
        body += "\n\n" + " ".join(f"![{p.stem}]({p.as_posix()})" for p in gifs)
    return body


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", metavar="ENV", help="default: every task (smoke: two)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2 3 4 (smoke: 0)")
    parser.add_argument("--smoke", action="store_true", help="tiny timesteps and few episodes: seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--gif-dir", type=Path, default=ROOT / "docs" / "gifs")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "suite")
    parser.add_argument("--no-gif", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="read back runs already finished in --runs-dir")
    parser.add_argument("--table-only", action="store_true", help="train nothing: table the finished runs only")
    args = parser.parse_args(argv)

    known = {t.env_id: t for t in TASKS}
    names = args.tasks or (SMOKE_TASKS if args.smoke else list(known))
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; the suite has {list(known)}")
    seeds = args.seeds if args.seeds is not None else ([0] if args.smoke else SEEDS)
    # smoke: one short rollout-sized run and two evaluation episodes per task
    overrides = {"total_timesteps": 2048, "eval_episodes": 2, "eval_during_episodes": 2, "checkpoint_every": 0}
    overrides = overrides if args.smoke else {}

    rows, gifs = [], []
    for name in names:
        task = known[name]
        if task.needs and importlib.util.find_spec(task.needs) is None:
            extra = "mujoco" if task.needs == "mujoco" else "robotics"
            rows.append({"task": task, "results": [], "skipped": f"`pip install 'ppolearn[{extra}]'`"})
            print(f"{name}: skipped, needs ppolearn[{extra}]", flush=True)
            continue
        results = []
        for seed in seeds:
            if args.table_only:
                result = _saved(task, seed, args.runs_dir)
                if result is None:
                    continue
            else:
                result = run_one(task, seed, args.runs_dir, overrides, args.reuse)
            results.append(result)
            brief = {k: v for k, v in result.items() if k != "run_dir" and not k.startswith("episode_")}
            print(json.dumps(brief), flush=True)
        rows.append({"task": task, "results": results, "skipped": "no finished run"})
        if results and not args.no_gif and task.needs and not os.environ.get("MUJOCO_GL"):
            # headless MuJoCo rendering needs an OpenGL backend chosen up front; without one it can abort the process
            print(f"{name}: no GIF: set MUJOCO_GL=egl or osmesa to render MuJoCo headless", flush=True)
        elif results and not args.no_gif:
            try:
                gif = render(task, Path(results[0]["run_dir"]), args.gif_dir, results[0]["mean_length"])
            except Exception as exc:  # a GIF is optional: MuJoCo needs an OpenGL context (MUJOCO_GL=egl/osmesa)
                print(f"{name}: no GIF: {type(exc).__name__}: {exc}", flush=True)
            else:
                gifs.append(_relative(gif, args.out.parent))
    write_section(args.out, START, END, HEADING, section_body(rows, args.smoke, gifs))
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    (args.runs_dir / "suite.json").write_text(
        json.dumps([{"task": r["task"].env_id, "results": r["results"]} for r in rows], indent=2) + "\n"
    )
    print(table(rows))
    return 0


def _relative(path: Path, base: Path) -> Path:
    try:
        return path.resolve().relative_to(base.resolve())
    except ValueError:
        return path


if __name__ == "__main__":
    sys.exit(main())
