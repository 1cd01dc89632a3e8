"""Rollout throughput against worker count for an environment whose step is slow: local backend beside Ray.

The environment is Pendulum-v1 with a fixed CPU cost added to every step (a busy loop, not a sleep, so it
competes for cores as a physics simulator such as MuJoCo does). For each backend the script times a few
rollouts (environment steps collected per second, the update excluded) after one warm-up rollout, then
writes a table into BENCHMARKS.md between the ``<!-- ray:start -->`` and ``<!-- ray:end -->`` markers.

    python benchmarks/scaling_ray.py [--workers 1 2 4] [--step-cost-ms 0.5] [--rollouts 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from pathlib import Path
from typing import Dict, List

import gymnasium as gym

HERE = Path(__file__).resolve().parent
BENCHMARKS_MD = HERE.parent / "BENCHMARKS.md"
START, END = "<!-- ray:start -->", "<!-- ray:end -->"


class FixedCostStep(gym.Wrapper):
    """Spends ``cost_s`` of CPU time in every step, like a simulator doing physics."""

    def __init__(self, env: gym.Env, cost_s: float) -> None:
        super().__init__(env)
        self.cost_s = cost_s

    def step(self, action):
        until = time.perf_counter() + self.cost_s
        while time.perf_counter() < until:  # busy: a sleep would free the core and flatter the scaling
            pass
        return self.env.step(action)


def slow_pendulum(cost_ms: float = 0.5) -> gym.Env:
    """The benchmark's environment (importable by Ray workers as ``scaling_ray:slow_pendulum``)."""
    return FixedCostStep(gym.make("Pendulum-v1"), cost_ms / 1000)


def measure(settings: Dict, rollouts: int) -> float:
    """Environment steps per second over ``rollouts`` rollouts, after one warm-up rollout."""
    from ppolearn import PPO

    model = PPO(slow_pendulum, verbose=0, **settings)
    try:
        model.rollout()  # warm-up: process start, first reset
        start = time.perf_counter()
        for _ in range(rollouts):
            model.rollout()
        return rollouts * model.config.rollout_size / (time.perf_counter() - start)
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--step-cost-ms", type=float, default=0.5)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--rollouts", type=int, default=3)
    args = parser.parse_args()

    import ray

    # Workers import this file's environment and this checkout of ppolearn.
    path = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = path  # async vector envs' subprocesses of the local backend, too
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0]  # other jobs on the machine take cores from the workers: say so in the table
    ray.init(address="local", num_cpus=max(cpus, *args.workers), include_dashboard=False, log_to_driver=False)
    base = {"num_envs": args.num_envs, "n_steps": args.n_steps, "batch_size": 64, "seed": 0}
    rows: List[List[str]] = []
    for vec_env in ("sync", "async"):
        sps = measure(dict(base, vec_env=vec_env), args.rollouts)
        rows.append([f"local, {vec_env} vector env", "-", f"{sps:,.0f}"])
        print(rows[-1], flush=True)
    for workers in args.workers:
        sps = measure(dict(base, backend="ray", num_workers=workers), args.rollouts)
        rows.append(["ray", str(workers), f"{sps:,.0f}"])
        print(rows[-1], flush=True)
    ray.shutdown()
    write_section(rows, args, cpus, load)


def write_section(rows: List[List[str]], args: argparse.Namespace, cpus: int, load: float) -> None:
    lines = [
        START,
        "## Distributed rollouts: local backend vs Ray (`benchmarks/scaling_ray.py`)",
        "",
        f"Pendulum-v1 with {args.step_cost_ms} ms of busy CPU added to each step, {args.num_envs} environments, "
        f"{args.n_steps} steps each per rollout; rollout throughput (update excluded), mean of {args.rollouts} "
        f"rollouts after a warm-up. Machine: {cpus} CPU cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; 1-minute load average {load:.1f} when the run started.",
        "",
        "| backend | Ray workers | env steps/s |",
        "|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in rows),
        "",
        f"Run: `python benchmarks/scaling_ray.py --workers {' '.join(map(str, args.workers))} "
        f"--step-cost-ms {args.step_cost_ms}`",
        END,
    ]
    section = "\n".join(lines)
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    BENCHMARKS_MD.write_text(text)
    print(f"wrote {BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
