"""Rerun every benchmark and rewrite BENCHMARKS.md and docs/scaling.png: ``python -m benchmarks.run``.

Each measured run is its own process (benchmarks/jobs.py), run one at a time. Raw results go to a JSON
file first, so ``--report-only`` can redraw the tables without training again. ``--smoke`` runs tiny
budgets in seconds (CI uses it so the benchmark code never rots; its figures mean nothing). The
Stable-Baselines3 runs are skipped when it is not installed (pip install -r benchmarks/requirements.txt).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from benchmarks import report

ROOT = Path(__file__).resolve().parent.parent

# Identical hyperparameters for the same-work comparison: rl-baselines3-zoo's Pendulum-v1 PPO without gSDE
# (ppolearn has a plain Gaussian policy only); both use a 64x64 tanh MLP, orthogonal init, eps 1e-5.
PENDULUM_ZOO = {"n_steps": 1024, "batch_size": 64, "n_epochs": 10, "gamma": 0.9, "gae_lambda": 0.95}
PENDULUM_ZOO.update({"learning_rate": 1e-3, "clip_range": 0.2, "ent_coef": 0.0})
# SB3 steps a Gaussian in the environment's units: so does ppolearn here (scale_actions off), as every run was
PPOLEARN_SAME = {**PENDULUM_ZOO, "target_kl": None, "num_envs": 4, "normalize_obs": False, "normalize_reward": False}
PPOLEARN_SAME["scale_actions"] = "false"

# Time to target: SB3 with the zoo's own settings (gSDE for Pendulum, as the zoo), ppolearn with its presets.
TASKS: List[Dict[str, Any]] = [
    {
        "env": "Pendulum-v1",
        "threshold": -200,
        "sb3": {**PENDULUM_ZOO, "n_envs": 4, "use_sde": True, "sde_sample_freq": 4},
        "budget": 100_000,
    },
    {
        "env": "CartPole-v1",
        "threshold": 500,
        "sb3": {"n_envs": 8, "n_steps": 32, "batch_size": 256, "n_epochs": 20, "gamma": 0.98, "gae_lambda": 0.8}
        | {"learning_rate": "lin_0.001", "clip_range": "lin_0.2", "ent_coef": 0.0},
        "budget": 100_000,
    },
    {
        "env": "Acrobot-v1",
        "threshold": -100,
        "sb3": {"n_envs": 16, "n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0}
        | {"normalize": True},
        "budget": 200_000,  # the zoo trains 1M; SB3 reaches -100 near 41k, so 200k keeps the run affordable
    },
]


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """One measured run in a fresh process (its own RSS, imports untimed)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.jobs", json.dumps(job)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark job {job} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {job['kind']} {job.get('lib', '')} {job['env']} seed {job.get('seed', '-')}: done", flush=True)
    return {**job, **result}


def plan(smoke: bool, seeds: int, with_sb3: bool) -> Dict[str, List[Dict[str, Any]]]:
    """Every job of a full (or smoke) run, grouped by table."""
    libs = ["sb3", "ppolearn"] if with_sb3 else ["ppolearn"]
    steps = 2048 if smoke else 40_960
    same = {"sb3": {**PENDULUM_ZOO, "n_envs": 4}, "ppolearn": PPOLEARN_SAME}
    small = {"n_steps": 256, "batch_size": 256, "n_epochs": 1} if smoke else {}
    throughput = [
        {
            "kind": "throughput",
            "lib": lib,
            "env": "Pendulum-v1",
            "seed": rep,
            "steps": steps,
            "params": {**same[lib], **small},
        }
        # five pairs: on the shared 2-core machine one library's runs spread by 10-15%, as much as the margin judged
        for rep in range(1 if smoke else 5)
        for lib in libs  # alternated, so that load changes on a shared machine hit both alike
    ]
    target = []
    for task in TASKS[:1] if smoke else TASKS:
        variants = [("ppolearn", task["env"], {}), ("ppolearn", f"ppolearn/{task['env']}", {})]
        if with_sb3:
            variants.insert(0, ("sb3", task["env"], task["sb3"]))
        for seed in range(1 if smoke else seeds):
            for lib, env_id, params in variants:
                budget = 4096 if smoke else (task["budget"] if lib == "sb3" or "/" not in env_id else None)
                job = {"kind": "target", "lib": lib, "env": env_id, "eval_env": task["env"], "seed": seed}
                job.update({"threshold": task["threshold"], "eval_every": 4096, "params": params})
                job.update({"budget": budget, "eval_episodes": 2 if smoke else 100})
                if lib == "sb3" and smoke:
                    job["params"] = {**params, "n_steps": 256}
                target.append(job)
    sizes = [1, 64] if smoke else [1, 4, 16, 64, 256, 1024, 4096]
    scaling = [
        {
            "kind": "scaling",
            "env": "ppolearn/Pendulum-v1",
            "seed": 0,
            "num_envs": sizes,
            "env_steps": 20_000 if smoke else 4_000_000,
            "train_steps": 2_000 if smoke else 200_000,
            "minibatches": 4,
            "params": {"n_steps": 8 if smoke else 32, "n_epochs": 1 if smoke else 5},
        }
    ]
    return {"throughput": throughput, "target": target, "scaling": scaling}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, seconds: checks the code path only")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per time-to-target row (median reported)")
    parser.add_argument("--only", choices=["throughput", "target", "scaling"], help="rerun one table only")
    parser.add_argument("--out", help="default: BENCHMARKS.md (smoke: runs/bench-smoke/BENCHMARKS.md)")
    parser.add_argument("--results", help="default: benchmarks/results.json (smoke: runs/bench-smoke/)")
    parser.add_argument("--plot", help="default: docs/scaling.png (smoke: runs/bench-smoke/)")
    parser.add_argument("--report-only", action="store_true", help="redraw from --results, run nothing")
    args = parser.parse_args(argv)
    smoke_dir = ROOT / "runs" / "bench-smoke"  # a smoke run never overwrites the real figures
    args.out = args.out or str(smoke_dir / "BENCHMARKS.md" if args.smoke else ROOT / "BENCHMARKS.md")
    results = smoke_dir / "results.json" if args.smoke else ROOT / "benchmarks" / "results.json"
    args.results = args.results or str(results)
    args.plot = args.plot or str(smoke_dir / "scaling.png" if args.smoke else ROOT / "docs" / "scaling.png")
    results_path = Path(args.results)
    results: Dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    if not args.report_only:
        with_sb3 = importlib.util.find_spec("stable_baselines3") is not None
        if not with_sb3:
            print(
                "stable-baselines3 is not installed: its runs are skipped (pip install -r benchmarks/requirements.txt)"
            )
        jobs = plan(args.smoke, args.seeds, with_sb3)
        results["machine"] = _machine()
        for table, table_jobs in jobs.items():
            if args.only and table != args.only:
                continue
            print(f"{table}: {len(table_jobs)} runs", flush=True)
            results[table] = [run_job(j) for j in table_jobs]
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1))  # keep what is done if a later table fails
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    report.write(Path(args.out), report.render(results, TASKS, Path(args.plot), smoke=args.smoke))
    print(f"wrote {args.out} and {args.plot}")
    return 0


def _machine() -> Dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sb3": _version("stable_baselines3"),
        "gymnasium": _version("gymnasium"),
    }


def _version(module: str) -> str:
    if importlib.util.find_spec(module) is None:
        return "not installed"
    return str(getattr(importlib.import_module(module), "__version__", "?"))


if __name__ == "__main__":
    sys.exit(main())
