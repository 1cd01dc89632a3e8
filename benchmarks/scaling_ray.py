"""Throughput against Ray worker count, local backend beside it, for two kinds of slow environment step.

``--sleep-ms X``: Pendulum-v1 whose step *waits* X ms (``time.sleep``): a stand-in for what Ray is for, a
step that waits on something else (a slow simulator process, a remote service, a real device), so that
workers overlap their waits even on a machine with few cores. Measured: whole training iterations
(rollout, then a 1-epoch update on the learner), steps/s and the scaling efficiency
``rate(W) / (W * rate(1))`` at the same number of environments; table and plot (docs/ray_scaling.png)
between ``<!-- ray-sleep:start/end -->``. Several ``--num-envs`` show what the environments per worker do:
each worker step pays a fixed CPU cost (policy forward, normalisers, buffer writes) whatever its env count.

``--step-cost-ms X``: the step *burns* X ms of CPU (a busy loop, as physics does), so workers compete for
the cores: it shows what Ray cannot buy on a machine with few cores. Rollout throughput only, between
``<!-- ray:start/end -->``.

    python benchmarks/scaling_ray.py --sleep-ms 2 --num-envs 16 64 --workers 1 2 4 8 16
    python benchmarks/scaling_ray.py --step-cost-ms 0.5 --num-envs 8 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List

import gymnasium as gym

HERE = Path(__file__).resolve().parent
BENCHMARKS_MD = HERE.parent / "BENCHMARKS.md"
sys.path.insert(0, str(HERE.parent))  # run as a script: the benchmarks package and this checkout's ppolearn

from benchmarks.markdown import write_section as write_section_md  # noqa: E402


class SlowStep(gym.Wrapper):
    """Adds ``cost_s`` to every step: waiting (``sleep``) or burning CPU (busy loop), see the module doc."""

    def __init__(self, env: gym.Env, cost_s: float, sleep: bool) -> None:
        super().__init__(env)
        self.cost_s, self.sleep = cost_s, sleep

    def step(self, action):
        if self.sleep:
            time.sleep(self.cost_s)
        else:
            until = time.perf_counter() + self.cost_s
            while time.perf_counter() < until:
                pass
        return self.env.step(action)


def slow_pendulum(cost_ms: float = 0.5, sleep: bool = False) -> gym.Env:
    """The benchmark's environment (importable by Ray workers: this folder is on their PYTHONPATH)."""
    return SlowStep(gym.make("Pendulum-v1"), cost_ms / 1000, sleep)


def measure(settings: Dict, iterations: int, cost_ms: float, sleep: bool, train: bool) -> float:
    """Steps per second over ``iterations`` rollouts (or whole training iterations), after one warm-up."""
    from ppolearn import PPO

    model = PPO(functools.partial(slow_pendulum, cost_ms, sleep), verbose=0, **settings)
    try:
        if train:
            model.learn(model.config.rollout_size)  # warm-up: worker start, first reset, allocations
            start = time.perf_counter()
            model.learn(iterations * model.config.rollout_size, reset_num_timesteps=False)
        else:
            model.rollout()
            start = time.perf_counter()
            for _ in range(iterations):
                model.rollout()
        return iterations * model.config.rollout_size / (time.perf_counter() - start)
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    cost = parser.add_mutually_exclusive_group(required=True)
    cost.add_argument("--sleep-ms", type=float, help="each step waits this long (whole training iterations timed)")
    cost.add_argument("--step-cost-ms", type=float, help="each step burns this much CPU (rollouts timed)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[16], help="one table block per count")
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the rows, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    counts = {"--num-envs": args.num_envs, "--workers": args.workers, "--iterations": [args.iterations]}
    for flag, values in counts.items():
        if min(values) < 1:
            parser.error(f"{flag} takes positive integers, got {min(values)}")
    sleep = args.sleep_ms is not None
    cost_ms = args.sleep_ms if sleep else args.step_cost_ms

    import ray

    # Workers import this checkout of ppolearn; the environment travels with the factory.
    path = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = path  # async vector envs' subprocesses of the local backend, too
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0]  # other jobs on the machine take cores from the workers: say so in the table
    ray.init(address="local", num_cpus=max(cpus, *args.workers), include_dashboard=False, log_to_driver=False)
    rows: List[Dict] = []
    for num_envs in args.num_envs:
        base = {"num_envs": num_envs, "n_steps": args.n_steps, "batch_size": 64, "n_epochs": 1, "seed": 0}
        base.update(target_kl=None, scale_actions="false", eval_every=0)  # the settings every table was measured with
        for vec_env in ("sync", "async"):
            sps = measure(dict(base, vec_env=vec_env), args.iterations, cost_ms, sleep, train=sleep)
            rows.append({"num_envs": num_envs, "backend": f"local, {vec_env} vector env", "workers": None, "sps": sps})
            print(rows[-1], flush=True)
        for workers in (w for w in args.workers if w <= num_envs):  # a worker needs an environment
            settings = dict(base, backend="ray", num_workers=workers)
            sps = measure(settings, args.iterations, cost_ms, sleep, train=sleep)
            rows.append({"num_envs": num_envs, "backend": "ray", "workers": workers, "sps": sps})
            print(rows[-1], flush=True)
    ray.shutdown()
    if not args.no_write:
        machine = f"{cpus} CPU cores ({platform.processor() or platform.machine()}), Python {platform.python_version()}"
        write_section(rows, args, machine, load, sleep)


def write_section(rows: List[Dict], args: argparse.Namespace, machine: str, load: float, sleep: bool) -> None:
    envs = " ".join(map(str, args.num_envs))
    command = (
        f"python benchmarks/scaling_ray.py --{'sleep-ms' if sleep else 'step-cost-ms'} "
        f"{args.sleep_ms if sleep else args.step_cost_ms} --num-envs {envs} "
        f"--workers {' '.join(map(str, args.workers))} --iterations {args.iterations}"
    )
    counts = f"{' and '.join(map(str, args.num_envs))} environments"
    if sleep:
        title = "### Ray where it pays: a step that waits"
        what = (
            f"Pendulum-v1 whose every step sleeps {args.sleep_ms} ms (a stand-in for a slow simulator or a remote "
            f"service), {counts}, {args.n_steps} steps each per rollout, then a 1-epoch update: "
            f"training steps/s over {args.iterations} whole iterations after a warm-up one. Efficiency: "
            "steps/s with W workers / (W x steps/s with 1 worker), at the same number of environments."
        )
        unit = "training steps/s"
    else:
        title = "### Ray where it cannot pay: a step that computes"
        what = (
            f"Pendulum-v1 with {args.step_cost_ms} ms of busy CPU added to each step, {counts}, "
            f"{args.n_steps} steps each per rollout; rollout throughput (update excluded), mean of {args.iterations} "
            "rollouts after a warm-up. The workers share the machine's cores, so beyond the core count they "
            "only take turns."
        )
        unit = "env steps/s"
    lines = [what + f" Machine: {machine}; 1-minute load average {load:.1f} when the run started.", ""]
    lines += [f"| environments | backend | Ray workers | envs per worker | {unit} | efficiency |"]
    lines += ["|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        one = next((o["sps"] for o in rows if o["workers"] == 1 and o["num_envs"] == r["num_envs"]), None)
        eff = f"{100 * r['sps'] / (r['workers'] * one):.0f}%" if r["workers"] and one else "-"
        per_worker = f"{r['num_envs'] / r['workers']:g}" if r["workers"] else "-"
        lines.append(
            f"| {r['num_envs']} | {r['backend']} | {r['workers'] or '-'} | {per_worker} | {r['sps']:,.0f} | {eff} |"
        )
    lines += ["", f"Run: `{command}`"]
    marker = "ray-sleep" if sleep else "ray"
    if sleep:
        plot = HERE.parent / "docs" / "ray_scaling.png"
        _plot([r for r in rows if r["workers"]], plot, args.sleep_ms)
        lines += ["", "![training steps/s against Ray workers](docs/ray_scaling.png)"]
    write_section_md(BENCHMARKS_MD, f"<!-- {marker}:start -->", f"<!-- {marker}:end -->", title, "\n".join(lines))
    print(f"wrote {BENCHMARKS_MD}")


def _plot(rows: List[Dict], path: Path, sleep_ms: float) -> None:
    """Steps/s against workers, one line per number of environments, each with its linear reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for num_envs in sorted({r["num_envs"] for r in rows}):
        part = [r for r in rows if r["num_envs"] == num_envs]
        workers = [r["workers"] for r in part]
        (line,) = ax.plot(workers, [r["sps"] for r in part], "o-", label=f"{num_envs} envs, Ray backend")
        linear = [part[0]["sps"] * w / part[0]["workers"] for w in workers]
        ax.plot(workers, linear, "--", color=line.get_color(), alpha=0.5, label=f"{num_envs} envs, linear")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(f"Ray workers (each step waits {sleep_ms} ms)")
    ax.set_ylabel("training steps per second")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
