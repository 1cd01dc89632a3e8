"""Defaults on unseen tasks: ppolearn's defaults against Stable-Baselines3's on the robustness set.

Every task of ``benchmarks/robustness_envs.py`` is one no preset is tuned on. For each task and training
seed, one run per library at the same step budget, each in its own subprocess (two run side by side):

* ppolearn: ``PPO(factory, seed=s, total_timesteps=N)``, nothing else (no preset matches the names, so
  these are PPOConfig's defaults: 8 envs, normalised observations and rewards, scale_actions auto);
* SB3, two variants: ``PPO("MlpPolicy" | "MultiInputPolicy", VecNormalize(make_vec_env(factory,
  n_envs=n, seed=s)), seed=s)`` with SB3's default hyperparameters and VecNormalize's defaults (norm_obs
  and norm_reward); "sb3" with n=8 (ppolearn's env count), "sb3-1env" with n=1 (SB3's own default).

Each trained policy is evaluated on 100 deterministic episodes, seeds 10_000..10_099 (training used seeds
below 1_000), on the raw environment (SB3: the VecNormalize observation statistics, training=False).
An episode succeeds when ``info["is_success"]`` holds at its last step. Per task the per-seed success rates
and mean returns are aggregated as the interquartile mean with a stratified-bootstrap 95% interval
(``ppolearn.stats.aggregate_seeds``). Raw results go to a JSON file (resumable: finished
(task, lib, seed) runs are kept), the table into BENCHMARKS.md between the robustness markers.

    python benchmarks/robustness.py                          # the full set, seeds 0-4 (about 1.5 h, 2 cores)
    python benchmarks/robustness.py --envs Heater --libs ppolearn sb3-1env --seeds 0
    python benchmarks/robustness.py --table-only             # table the finished runs, train nothing
    python benchmarks/robustness.py --smoke                  # seconds: tiny budgets, 1 seed, 3 episodes
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.markdown import write_section  # noqa: E402
from benchmarks.robustness_envs import ENVS  # noqa: E402

START, END = "<!-- robustness:start -->", "<!-- robustness:end -->"
HEADING = "## Defaults on unseen tasks (robustness set)"
LIBS = ("ppolearn", "sb3", "sb3-1env")
# Environments per SB3 run: "sb3" with 8, as many as ppolearn's default; "sb3-1env" with 1, SB3's own default
# (`PPO("MlpPolicy", env)` on one environment, make_vec_env's n_envs=1): as many updates as ppolearn.
SB3_ENVS = {"sb3": 8, "sb3-1env": 1}
EVAL_SEED = 10_000
# Training steps per task, whole SB3 rollouts (8 x 2048 = 16,384 steps) so every library takes exactly these
# steps: 6 rollouts of 8 envs (98,304) or 3 (49,152) for the short, easy tasks; 48 or 24 rollouts of 1 env.
BUDGETS: Dict[str, int] = {
    "ArmReach": 98_304,
    "DeadTimeProcess": 98_304,
    "Docking": 98_304,
    "GridMaze": 49_152,
    "TinyDoubleIntegrator": 98_304,
    "SparseGoal": 98_304,
    "Heater": 98_304,
    "Turntable": 49_152,
}
SMOKE_STEPS = 2_048
DEFAULT_RESULTS = ROOT / "benchmarks" / "robustness_results.json"


def have_sb3() -> bool:
    return importlib.util.find_spec("stable_baselines3") is not None


# --- one run (in a subprocess) ----------------------------------------------------------------------------


def run_episodes(
    predict: Callable[[Any], np.ndarray], make_env: Callable[[], gym.Env], episodes: int, seed: int
) -> Tuple[List[float], List[bool]]:
    """Deterministic episodes side by side on fresh ``make_env()`` environments, episode i from
    reset(seed=seed + i); returns and successes."""
    envs = [make_env() for _ in range(episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns, success = [0.0] * episodes, [False] * episodes
    active = list(range(episodes))
    while active:
        first = obs[active[0]]
        if isinstance(first, dict):
            batch: Any = {k: np.stack([obs[i][k] for i in active]) for k in first}
        else:
            batch = np.stack([obs[i] for i in active])
        actions = predict(batch)
        still = []
        for i, action in zip(active, actions):
            obs[i], reward, terminated, truncated, info = envs[i].step(action)
            returns[i] += float(reward)
            if terminated or truncated:
                success[i] = bool(info["is_success"])
            else:
                still.append(i)
        active = still
    return returns, success


def train_ppolearn(name: str, seed: int, steps: int) -> Tuple[Callable[[Any], np.ndarray], Dict[str, Any]]:
    from ppolearn import PPO
    from ppolearn.config import PPOConfig

    model = PPO(ENVS[name], seed=seed, total_timesteps=steps, verbose=0)
    defaults = PPOConfig(total_timesteps=steps, seed=seed).to_dict()
    assert model.config.to_dict() == defaults, "a preset or override changed the defaults"
    start = time.perf_counter()
    model.learn()
    wall = time.perf_counter() - start
    return (lambda obs: model.predict(obs, deterministic=True)[0]), {"train_s": wall, "steps": model.num_timesteps}


def train_sb3(
    name: str, seed: int, steps: int, n_envs: int = 8, **hyperparameters: Any
) -> Tuple[Callable[[Any], np.ndarray], Dict[str, Any]]:
    """SB3 PPO under VecNormalize (its defaults, or ``hyperparameters`` over them); the deterministic policy."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    venv = VecNormalize(make_vec_env(ENVS[name], n_envs=n_envs, seed=seed), norm_obs=True, norm_reward=True)
    policy = "MultiInputPolicy" if isinstance(venv.observation_space, gym.spaces.Dict) else "MlpPolicy"
    model = PPO(policy, venv, seed=seed, verbose=0, device="cpu", **hyperparameters)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    venv.training = False

    def predict(obs: Any) -> np.ndarray:
        return model.predict(venv.normalize_obs(obs), deterministic=True)[0]

    return predict, {"train_s": wall, "steps": model.num_timesteps, "policy": policy, "n_envs": n_envs}


def worker(name: str, lib: str, seed: int, steps: int, episodes: int, out: Path) -> None:
    """Train one (task, lib, seed), evaluate it, write one JSON record to ``out``."""
    if lib == "ppolearn":
        predict, info = train_ppolearn(name, seed, steps)
    else:
        predict, info = train_sb3(name, seed, steps, n_envs=SB3_ENVS[lib])
    start = time.perf_counter()
    returns, success = run_episodes(predict, ENVS[name], episodes, EVAL_SEED)
    record = {
        "env": name,
        "lib": lib,
        "seed": seed,
        "budget": steps,
        **info,
        "eval_s": time.perf_counter() - start,
        "episodes": episodes,
        "eval_seed": EVAL_SEED,
        "success_rate": float(np.mean(success)),
        "mean_return": float(np.mean(returns)),
        "returns": returns,
        "successes": success,
    }
    out.write_text(json.dumps(record))


# --- the driver ---------------------------------------------------------------------------------------------


def key(record: Dict[str, Any]) -> Tuple[str, str, int]:
    return record["env"], record["lib"], int(record["seed"])


def load_results(path: Path) -> List[Dict[str, Any]]:
    return json.loads(path.read_text())["runs"] if path.exists() else []


def save_results(path: Path, runs: List[Dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"runs": sorted(runs, key=key)}, indent=1))
    tmp.replace(path)


def subprocess_record(args: List[str], env: Dict[str, str], label: Any) -> Optional[Dict[str, Any]]:
    """Run ``args`` plus a record path in a fresh process (its own RSS and torch state); the JSON record it
    wrote there, or None, with its stderr's tail printed under ``label``, when it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        proc = subprocess.run(args + [str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            print(f"FAILED {label}: {proc.stderr[-1500:]}", flush=True)
            return None
        return json.loads(out.read_text())


def run_all(
    jobs: List[Tuple[str, str, int]], budgets: Dict[str, int], episodes: int, results: Path, parallel: int
) -> List[Dict[str, Any]]:
    runs = load_results(results)
    done = {key(r) for r in runs}
    todo = [job for job in jobs if job not in done]
    lock = threading.Lock()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    print(f"{len(todo)} runs to do, {len(jobs) - len(todo)} already done", flush=True)

    def one(job: Tuple[str, str, int]) -> None:
        name, lib, seed = job
        args = [sys.executable, str(Path(__file__).resolve()), "--worker", name, lib, str(seed)]
        record = subprocess_record(args + [str(budgets[name]), str(episodes)], env, job)
        if record is None:
            return
        with lock:
            runs.append(record)
            save_results(results, runs)
        print(
            f"{name:22s} {lib:8s} seed {seed}: success {record['success_rate']:.2f} return "
            f"{record['mean_return']:.2f} train {record['train_s']:.0f}s",
            flush=True,
        )

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, todo))
    return runs


# --- the table ----------------------------------------------------------------------------------------------


def _interval(agg: Dict[str, Any], fmt: str) -> str:
    return f"{agg['iqm']:{fmt}} [{agg['iqm_ci_low']:{fmt}}, {agg['iqm_ci_high']:{fmt}}]"


def verdict(a: Dict[str, Any], b: Dict[str, Any]) -> str:
    """Clear win where the 95% intervals of the IQMs do not overlap, else a tie."""
    if a["iqm_ci_low"] > b["iqm_ci_high"]:
        return "ppolearn"
    if b["iqm_ci_low"] > a["iqm_ci_high"]:
        return "SB3"
    return "tie"


def _cell(agg: Optional[Dict[str, Any]], n: int, most: int) -> str:
    """The IQM and its interval; the seed count where a library has fewer finished seeds than another."""
    if agg is None:
        return "-"
    return _interval(agg, ".2f") + (f" ({n} seeds)" if n < most else "")


# How each library's runs are named in the tables.
LABELS = {"ppolearn": "ppolearn", "sb3": "SB3 8 envs", "sb3-1env": "SB3 1 env"}


def table(runs: List[Dict[str, Any]], names: List[str], command: str) -> str:
    from ppolearn.stats import aggregate_seeds

    sb3_libs = [lib for lib in LIBS if lib != "ppolearn"]
    header = ["task", "budget"]
    align = ["---", "---:"]
    for metric in ("success", "return"):
        header += [f"{metric} {LABELS[lib]}" for lib in LIBS]
        header += [f"ppolearn vs {LABELS[lib]} ({metric})" for lib in sb3_libs]
        align += ["---:"] * len(LIBS) + ["---"] * len(sb3_libs)
    header.append("train s " + " / ".join(LABELS[lib] for lib in LIBS))
    align.append("---:")
    lines = [
        f"Written by `{command}`. Tasks in `benchmarks/robustness_envs.py`, none with a preset. ppolearn: "
        "`PPO(factory, seed=s)` with only `total_timesteps` set (PPOConfig defaults: 8 envs, n_steps 256, "
        "so 2,048 steps a rollout; up to 20 epochs, stopped once the approximate KL passes 1.5 x target_kl "
        "0.02; normalised observations and rewards; the Gaussian mapped onto the action bounds where a standard "
        "normal does not fit them, scale_actions auto). SB3 (stable-baselines3 "
        f'{_sb3_version()}), all its defaults plus VecNormalize: `PPO("MlpPolicy", VecNormalize(make_vec_env('
        'factory, n_envs=n, seed=s)), seed=s)` (`"MultiInputPolicy"` for Dict observations), n_steps 2048 per '
        "env. SB3 8 envs: SB3 defaults, 8 envs (n=8, like ppolearn; 16,384 steps a rollout, 6 updates at "
        "98,304 steps). SB3 1 env: SB3 defaults, 1 env, its default (n=1; 2,048 steps a rollout, 48 updates "
        "at 98,304 steps, as many as ppolearn). Same step budget for all (whole rollouts for each). Each "
        "seed's policy: 100 deterministic episodes, seeds 10,000-10,099, on the raw environment; success = "
        '`info["is_success"]` at the episode\'s last step. Figures: IQM over the training seeds [stratified-'
        "bootstrap 95% interval] (`ppolearn.stats.aggregate_seeds`); ppolearn vs each SB3 variant: the "
        'winner where the intervals do not overlap, else tie; "(k seeds)": only k seeds finished. Train s: '
        "mean training wall-clock seconds per seed: SB3's with 2 runs side by side on 2 shared cores, ppolearn's "
        "as each run's `machine` field in the raw results says (not a speed comparison).",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    per_seed = [
        "",
        "Per seed (seeds in order): success rate / mean return.",
        "",
        "| task | lib | seeds | success rate | mean return |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in names:
        by_lib = {
            lib: sorted((r for r in runs if r["env"] == name and r["lib"] == lib), key=lambda r: r["seed"])
            for lib in LIBS
        }
        if not any(by_lib.values()):
            continue
        agg: Dict[str, Dict[str, Optional[Dict[str, Any]]]] = {}
        for lib, rs in by_lib.items():
            agg[lib] = {
                "success": aggregate_seeds([r["success_rate"] for r in rs]) if rs else None,
                "return": aggregate_seeds([r["mean_return"] for r in rs]) if rs else None,
            }
            if rs:
                per_seed.append(
                    f"| {name} | {LABELS[lib]} | {', '.join(str(r['seed']) for r in rs)} | "
                    f"{' '.join(format(r['success_rate'], '.2f') for r in rs)} | "
                    f"{' '.join(format(r['mean_return'], '.2f') for r in rs)} |"
                )
        cells = [name, f"{max(r['budget'] for rs in by_lib.values() for r in rs):,}"]
        most = max(len(rs) for rs in by_lib.values())
        for metric in ("success", "return"):
            cells += [_cell(agg[lib][metric], len(by_lib[lib]), most) for lib in LIBS]
            a = agg["ppolearn"][metric]
            for lib in sb3_libs:
                b = agg[lib][metric]
                cells.append(verdict(a, b) if a and b else "-")
        walls = [f"{np.mean([r['train_s'] for r in by_lib[lib]]):.0f}" if by_lib[lib] else "-" for lib in LIBS]
        cells.append(" / ".join(walls))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + per_seed)


def _sb3_version() -> str:
    try:
        import stable_baselines3

        return stable_baselines3.__version__
    except ImportError:
        return "not installed"


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        name, lib, seed, steps, episodes, out = argv[1:7]
        worker(name, lib, int(seed), int(steps), int(episodes), Path(out))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--libs", nargs="+", default=list(LIBS), choices=list(LIBS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=2, help="runs side by side (default 2)")
    parser.add_argument("--results", type=Path, default=None, help=f"raw results JSON (default {DEFAULT_RESULTS})")
    parser.add_argument("--out", type=Path, default=None, help="markdown file for the table (BENCHMARKS.md)")
    parser.add_argument("--table-only", action="store_true", help="table the finished runs, train nothing")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, seed 0, 3 episodes, temp files")
    args = parser.parse_args(argv)
    budgets = dict(BUDGETS)
    if args.smoke:
        budgets = {name: SMOKE_STEPS for name in ENVS}
        args.seeds, args.episodes = args.seeds[:1], 3
        tmp = Path(tempfile.mkdtemp(prefix="robustness-smoke-"))
        args.results = args.results or tmp / "results.json"
        args.out = args.out or tmp / "BENCHMARKS.md"
    results = args.results or DEFAULT_RESULTS
    out = args.out or ROOT / "BENCHMARKS.md"
    libs = [lib for lib in args.libs if lib == "ppolearn" or have_sb3()]
    if len(libs) < len(args.libs):
        print("stable_baselines3 is not installed: SB3 runs skipped", flush=True)
    jobs = [(name, lib, seed) for name in args.envs for seed in args.seeds for lib in libs]
    runs = load_results(results) if args.table_only else run_all(jobs, budgets, args.episodes, results, args.parallel)
    command = "python benchmarks/robustness.py" + (" " + " ".join(argv) if argv else "")
    write_section(out, START, END, HEADING, table(runs, list(ENVS), command))
    print(f"results: {results}\ntable: {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
