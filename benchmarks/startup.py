"""The whole process, as a user waits for it: ``ppolearn train`` against an SB3 script doing the same work.

Both train Pendulum-v1 with rl-baselines3-zoo's PPO settings (4 envs, n_steps 1024, batch 64, 10 epochs,
no normalisation; the same-work table's settings), one torch thread, for ``--steps`` steps, and both end
with a deterministic evaluation on the same 100 test episodes (seeds 10,000-10,099) and a saved model.

    ppolearn   ``ppolearn train --env Pendulum-v1 --set ... --run-dir DIR --quiet``: its defaults on, i.e.
               10 evaluations during training (20 episodes each), metrics.csv, TensorBoard, the learning-curve
               plot, the 100-episode eval.json and model.pt
    SB3        ``python -m benchmarks.startup sb3 DIR``: ``PPO("MlpPolicy", ..., tensorboard_log=DIR)``,
               ``learn``, ``save``, then the same 100 episodes side by side (``benchmarks/evaluate.py``)

Runs alternate (SB3, ppolearn, SB3, ...) so that a change of load hits both alike; the table gives medians of
the whole-process wall clock and of the in-process training seconds, and splits ppolearn's process into its
parts. ``--table`` writes it into BENCHMARKS.md between ``<!-- startup:start -->`` and ``<!-- startup:end -->``.

    python -m benchmarks.startup [--steps 20480] [--repeats 5] [--table]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from benchmarks.markdown import write_section

ROOT = Path(__file__).resolve().parent.parent
# benchmarks.run's PENDULUM_ZOO, written out again on purpose: the SB3 side's timed process imports this
# module, and importing benchmarks.run (with its report) would add to the seconds it is judged on.
ZOO = {"n_steps": 1024, "batch_size": 64, "n_epochs": 10, "gamma": 0.9, "gae_lambda": 0.95}
ZOO.update({"learning_rate": 1e-3, "clip_range": 0.2, "ent_coef": 0.0})
PPOLEARN_SET = {
    **ZOO,
    "target_kl": "null",
    "scale_actions": "false",  # SB3's Gaussian is in the environment's units
    "num_envs": 4,
    "normalize_obs": "false",
    "normalize_reward": "false",
    "torch_threads": 1,
}


def sb3_script(run_dir: Path, steps: int) -> None:
    """What an SB3 user's training script does; prints its in-process training seconds as JSON."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from benchmarks.evaluate import evaluate_episodes, sb3_policy

    torch.set_num_threads(1)
    env = make_vec_env("Pendulum-v1", n_envs=4, seed=0)
    model = PPO("MlpPolicy", env, seed=0, device="cpu", verbose=0, tensorboard_log=str(run_dir), **ZOO)
    start = time.perf_counter()
    model.learn(steps)
    train_s = time.perf_counter() - start
    model.save(run_dir / "model.zip")
    returns = evaluate_episodes(sb3_policy(model), "Pendulum-v1", episodes=100)
    print(json.dumps({"train_s": train_s, "mean_return": sum(returns) / len(returns)}))


def _timed(cmd: List[str]) -> tuple:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, done.stdout


def measure(steps: int, repeats: int) -> Dict[str, Any]:
    """Alternating whole-process runs of both, and ppolearn's import time alone."""
    ppolearn = str(Path(sys.executable).with_name("ppolearn"))
    sets = [f"{k}={v}" for k, v in PPOLEARN_SET.items()]
    rows: Dict[str, List[Dict[str, float]]] = {"sb3": [], "ppolearn": [], "import": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            sb3_dir = Path(tmp) / f"sb3_{rep}"
            sb3_dir.mkdir()
            wall, out = _timed([sys.executable, "-m", "benchmarks.startup", "sb3", str(sb3_dir), "--steps", str(steps)])
            rows["sb3"].append({"wall_s": wall, **json.loads(out.strip().splitlines()[-1])})
            run_dir = Path(tmp) / f"ppolearn_{rep}"
            cmd = [ppolearn, "train", "--env", "Pendulum-v1", "--set", *sets, "--total-timesteps", str(steps)]
            wall, _ = _timed([*cmd, "--run-dir", str(run_dir), "--quiet"])
            result = json.loads((run_dir / "eval.json").read_text())
            rows["ppolearn"].append(
                {
                    "wall_s": wall,
                    "train_s": result["train_time_s"],
                    "eval_during_training_s": result["eval_during_training_s"],
                    "mean_return": result["mean_return"],
                }
            )
            wall, _ = _timed([sys.executable, "-c", "import ppolearn.cli, os; os._exit(0)"])  # start + import
            rows["import"].append({"wall_s": wall})
    return rows


def _median(rows: List[Dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def table(result: Dict[str, Any]) -> str:
    rows, m = result["rows"], result["machine"]
    sb3_wall, ppo_wall = _median(rows["sb3"], "wall_s"), _median(rows["ppolearn"], "wall_s")
    sb3_train, ppo_train = _median(rows["sb3"], "train_s"), _median(rows["ppolearn"], "train_s")
    imports = _median(rows["import"], "wall_s")
    evals = _median(rows["ppolearn"], "eval_during_training_s")
    rest = ppo_wall - imports - ppo_train - evals
    lines = [
        f"`python -m benchmarks.startup --steps {result['steps']} --repeats {result['repeats']} --table`: "
        f"Pendulum-v1, the zoo's settings, {result['steps']:,} steps, one torch thread; medians of "
        f"{result['repeats']} alternating runs of each. Machine: {m['cpus']} CPU cores, Python {m['python']}, "
        f"torch {m['torch']}, stable-baselines3 {m['sb3']}; 1-minute load average {m['load_avg']:.1f} at the start.",
        "",
        "| | SB3 script | `ppolearn train` | SB3 / ppolearn |",
        "|---|---:|---:|---:|",
        f"| whole process, wall clock (s) | {sb3_wall:.2f} | {ppo_wall:.2f} | **{sb3_wall / ppo_wall:.2f}x** |",
        f"| training in-process (s) | {sb3_train:.2f} | {ppo_train:.2f} | **{sb3_train / ppo_train:.2f}x** |",
        f"| final return, 100 test episodes | {_median(rows['sb3'], 'mean_return'):.0f} "
        f"| {_median(rows['ppolearn'], 'mean_return'):.0f} | |",
        "",
        f"Where `ppolearn train`'s {ppo_wall:.2f} s go (medians): starting Python and importing ppolearn "
        f"{imports:.2f} s (the `python -c 'import ppolearn.cli'` process alone; torch is most of it), training "
        f"{ppo_train:.2f} s, the 10 evaluations during training {evals:.2f} s, and {rest:.2f} s for the rest: "
        "environments and networks built, the final 100-episode evaluation, the plot, TensorBoard, "
        "model.pt, exit.",
        "",
        "Per run (s), in order: SB3 whole "
        + ", ".join(f"{r['wall_s']:.2f}" for r in rows["sb3"])
        + "; ppolearn whole "
        + ", ".join(f"{r['wall_s']:.2f}" for r in rows["ppolearn"])
        + "; SB3 training "
        + ", ".join(f"{r['train_s']:.2f}" for r in rows["sb3"])
        + "; ppolearn training "
        + ", ".join(f"{r['train_s']:.2f}" for r in rows["ppolearn"])
        + ".",
    ]
    return "\n".join(lines)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="compare", choices=["compare", "sb3"])
    parser.add_argument("run_dir", nargs="?", help="sb3 mode: where the script writes")
    parser.add_argument("--steps", type=int, default=20_480)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--table", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "startup.json"))
    args = parser.parse_args(argv)
    if args.mode == "sb3":
        sb3_script(Path(args.run_dir), args.steps)
        return 0
    import stable_baselines3
    import torch

    machine = {"cpus": os.cpu_count(), "load_avg": os.getloadavg()[0], "python": platform.python_version()}
    machine.update({"torch": torch.__version__, "sb3": stable_baselines3.__version__})
    result = {"steps": args.steps, "repeats": args.repeats, "machine": machine}
    result["rows"] = measure(args.steps, args.repeats)
    Path(args.results).write_text(json.dumps(result, indent=1))
    print(table(result))
    if args.table:
        markers = ("<!-- startup:start -->", "<!-- startup:end -->")
        write_section(ROOT / "BENCHMARKS.md", *markers, "### Start-up: the whole process", table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
