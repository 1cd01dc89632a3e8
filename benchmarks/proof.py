"""Every space: the proof table. Each row is a task that shows one kind of space (or memory, or a sparse goal),
trained with one exact ``ppolearn train`` command on several seeds and judged by ``ppolearn eval RUN``
(100 deterministic episodes on the test seeds 10000-10099, never used in training).

Across seeds: interquartile mean with a stratified-bootstrap 95% interval (``ppolearn.stats.aggregate_seeds``)
and every seed's figure. Runs go one after the other (one training process at a time). The table goes into
BENCHMARKS.md between the ``<!-- proof:start -->`` / ``<!-- proof:end -->`` markers.

    python benchmarks/proof.py                          # every row, 5 seeds each
    python benchmarks/proof.py --rows gridreach --seeds 0 1
    python benchmarks/proof.py --table-only             # table the finished runs, train nothing
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(ROOT))

from benchmarks.markdown import write_section  # noqa: E402
from ppolearn.stats import aggregate_seeds  # noqa: E402

START, END = "<!-- proof:start -->", "<!-- proof:end -->"
HEADING = "## Every space: proof table"


@dataclass(frozen=True)
class Row:
    key: str  # run directories: runs/proof/<key>_s<seed>
    task: str
    shows: str
    target: str  # in words; "success_rate>=X" or "mean_return>=X" is what counts
    metric: str  # "success_rate" or "mean_return"
    threshold: float
    args: Tuple[str, ...]  # `ppolearn train` arguments before --seed / --run-dir
    needs: Optional[str] = None  # a module an optional extra provides


ROWS = [
    Row(
        "fetchreach_shaped",
        "FetchReach-v4 (sparse), `goal_shaping: potential`",
        "sparse goal reaching with potential-based shaping (Dict observations, Box actions)",
        ">= 95% success",
        "success_rate",
        0.95,
        ("--env", "FetchReach-v4"),
        "gymnasium_robotics",
    ),
    Row(
        "fetchreach_off",
        "FetchReach-v4 (sparse), no shaping",
        "the same preset and budget on the sparse reward alone",
        "(comparison)",
        "success_rate",
        0.95,
        ("--env", "FetchReach-v4", "--set", "goal_shaping=null"),
        "gymnasium_robotics",
    ),
    Row(
        "cuememory_ff",
        "ppolearn/CueMemory-v0, feed-forward policy",
        "a task that needs memory: a feed-forward MLP cannot beat chance (50%)",
        "feed-forward fails (the recurrent row below is the target's)",
        "success_rate",
        0.95,
        ("--env", "ppolearn/CueMemory-v0"),
    ),
    Row(
        "cuememory_lstm",
        "ppolearn/CueMemory-v0, `memory: lstm`",
        "recurrence: the cue is carried in the LSTM's state to the junction",
        ">= 95% success",
        "success_rate",
        0.95,
        ("--env", "ppolearn/CueMemory-v0", "--set", "memory=lstm"),
    ),
    Row(
        "doorkey",
        "MiniGrid-DoorKey-5x5-v0 (at most 100k steps)",
        "image + direction Dict through the small CNN; rl-baselines3-zoo's SB3 PPO: 0.964 mean reward at 100k",
        "mean return >= 0.964 (the zoo's figure)",
        "mean_return",
        0.964,
        ("--env", "MiniGrid-DoorKey-5x5-v0"),
        "minigrid",
    ),
    Row(
        "keycorridor",
        "MiniGrid-KeyCorridorS3R1-v0 (at most 500k steps)",
        "image + direction Dict, a key, a door and a ball; rl-baselines3-zoo's SB3 PPO: 0.949 at 500k",
        "mean return >= 0.949 (the zoo's figure, at 500k)",
        "mean_return",
        0.949,
        ("--env", "MiniGrid-KeyCorridorS3R1-v0"),
        "minigrid",
    ),
    Row(
        "fourrooms",
        "MiniGrid-FourRooms-v0 (5M steps)",
        "image + direction Dict, four rooms, goal and start at random; rl-baselines3-zoo's SB3 PPO: 0.573 at 5M",
        "mean return >= 0.573 (the zoo's figure, at 5M)",
        "mean_return",
        0.573,
        ("--env", "MiniGrid-FourRooms-v0", "--config", "benchmarks/configs/MiniGrid-FourRooms-v0.yaml"),
        "minigrid",
    ),
    Row(
        "gridreach",
        "ppolearn/GridReach-v0",
        "MultiDiscrete actions (one categorical per axis)",
        ">= 95% success",
        "success_rate",
        0.95,
        ("--env", "ppolearn/GridReach-v0"),
    ),
    Row(
        "lampswitch",
        "ppolearn/LampSwitch-v0",
        "MultiBinary actions (one Bernoulli per lamp) and MultiBinary observations",
        ">= 95% success",
        "success_rate",
        0.95,
        ("--env", "ppolearn/LampSwitch-v0"),
    ),
    Row(
        "frozenlake8x8",
        "FrozenLake-v1 8x8, not slippery",
        "Discrete observations (one-hot), Discrete actions",
        "100% success",
        "success_rate",
        1.0,
        ("--env", "FrozenLake-v1", "--config", "benchmarks/configs/FrozenLake-v1_8x8.yaml"),
    ),
    Row(
        "frozenlake8x8_slippery",
        "FrozenLake-v1 8x8, slippery",
        "Discrete observations, a stochastic sparse task",
        ">= 70% success",
        "success_rate",
        0.70,
        ("--env", "FrozenLake-v1", "--config", "benchmarks/configs/FrozenLake-v1_8x8_slippery.yaml"),
    ),
    Row(
        "lunarlander",
        "LunarLander-v3",
        "landing on the pad, Discrete actions (Box2D)",
        "mean return >= 200",
        "mean_return",
        200.0,
        ("--env", "LunarLander-v3"),
        "Box2D",
    ),
    Row(
        "lunarlander_continuous",
        "LunarLanderContinuous-v3",
        "landing on the pad, Box actions (Box2D)",
        "mean return >= 200",
        "mean_return",
        200.0,
        ("--env", "LunarLanderContinuous-v3"),
        "Box2D",
    ),
    Row(
        "lunarlander_continuous_stop",
        "LunarLanderContinuous-v3, stopped at the target",
        "the same preset, stopping once 100 validation episodes confirm 200 (as the discrete preset does)",
        "mean return >= 200",
        "mean_return",
        200.0,
        ("--env", "LunarLanderContinuous-v3", "--set", "stop_at_target=true"),
        "Box2D",
    ),
]
SEEDS = [0, 1, 2, 3, 4]


def _run_dir(runs_dir: Path, row: Row, seed: int) -> Path:
    return runs_dir / f"{row.key}_s{seed}"


def command(row: Row, seed: Any = "SEED", run_dir: Any = "RUN") -> str:
    """The exact command line of one seed's training run."""
    return shlex.join(["ppolearn", "train", *row.args, "--seed", str(seed), "--run-dir", str(run_dir), "--quiet"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ppolearn", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def run_seed(row: Row, seed: int, runs_dir: Path) -> Optional[Dict[str, Any]]:
    """Train one seed (unless done) and evaluate it on 100 test episodes; the eval JSON, or None on failure."""
    run_dir = _run_dir(runs_dir, row, seed)
    if not (run_dir / "eval.json").exists():
        done = _cli("train", *row.args, "--seed", str(seed), "--run-dir", str(run_dir), "--quiet", "--overwrite")
        if done.returncode != 0:
            print(f"{row.key} seed {seed}: training failed: {done.stderr.strip()}", file=sys.stderr)
            return None
    return evaluate(run_dir)


def evaluate(run_dir: Path) -> Optional[Dict[str, Any]]:
    """`ppolearn eval RUN --json` (100 episodes, test seeds) plus the run's training budget and seconds."""
    done = _cli("eval", str(run_dir), "--episodes", "100", "--json")
    if done.returncode != 0:
        print(f"{run_dir}: evaluation failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    result = json.loads(done.stdout)
    trained = json.loads((run_dir / "eval.json").read_text())
    result["num_timesteps"] = trained["num_timesteps"]
    result["train_time_s"] = trained["train_time_s"]
    result["budget"] = yaml.safe_load((run_dir / "config.yaml").read_text())["total_timesteps"]
    return result


def _figure(row: Row, results: Dict[int, Dict[str, Any]]) -> str:
    if not results:
        return "–"
    per_seed = [r[row.metric] for r in results.values()]
    agg = aggregate_seeds(per_seed)
    if row.metric == "success_rate":
        return f"{agg['iqm']:.0%} [{agg['iqm_ci_low']:.0%}, {agg['iqm_ci_high']:.0%}]"
    return f"{_ret(agg['iqm'])} [{_ret(agg['iqm_ci_low'])}, {_ret(agg['iqm_ci_high'])}]"


def _ret(value: float) -> str:
    """A return with the digits its scale needs: 226.3, but 0.951 (a MiniGrid reward compared with 0.949)."""
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def _per_seed(results: Dict[int, Dict[str, Any]]) -> str:
    def one(seed: int, r: Dict[str, Any]) -> str:
        if r["success_rate"] is None:  # the task reports no success: its return alone
            return f"{seed}: {_ret(r['mean_return'])}"
        return f"{seed}: {r['success_rate']:.0%} / {r['mean_return']:.2f}"

    return ", ".join(one(s, r) for s, r in sorted(results.items()))


def table(rows: List[Row], runs_dir: Path) -> str:
    lines = [
        "Written by `python benchmarks/proof.py`. Each seed: the command shown (SEED 0-4), then "
        "`ppolearn eval RUN --episodes 100 --json`: the deterministic policy on 100 episodes of the raw task "
        "(test seeds 10000-10099, never used in training). IQM over seeds with its stratified-bootstrap 95% "
        "interval (`ppolearn.stats.aggregate_seeds`) of the target's figure (success rate, or mean return where "
        "the target is one); per seed: success / mean return. Reached: every seed's "
        "own 100-episode figure at the target. Budget: the preset's `total_timesteps`; where the preset has "
        "`stop_at_target`, training ended once 100 validation episodes confirmed the target (steps used: "
        "median over seeds).",
        "",
        "| task | what it shows | target | seeds reached | IQM [95% CI] | per seed (success / return) "
        "| budget: steps (used, median) | training s per seed (median) | command |",
        "| --- | --- | --- | --- | ---: | --- | --- | ---: | --- |",
    ]
    for row in rows:
        results = {s: r for s in SEEDS if (r := _load(row, s, runs_dir)) is not None}
        if not results:
            continue
        reached = sum(r[row.metric] is not None and r[row.metric] >= row.threshold for r in results.values())
        steps = sorted(r["num_timesteps"] for r in results.values())
        budget = max(r.get("budget", r["num_timesteps"]) for r in results.values())
        seconds = sorted(r["train_time_s"] for r in results.values())
        lines.append(
            f"| {row.task} | {row.shows} | {row.target} | {reached}/{len(results)} | {_figure(row, results)} "
            f"| {_per_seed(results)} | {budget:,} ({steps[len(steps) // 2]:,}) | {seconds[len(seconds) // 2]:.0f} "
            f"| `{command(row)}` |"
        )
    return "\n".join(lines)


def _load(row: Row, seed: int, runs_dir: Path) -> Optional[Dict[str, Any]]:
    path = _run_dir(runs_dir, row, seed) / "proof_eval.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=[r.key for r in ROWS], help="row keys")
    parser.add_argument("--seeds", nargs="*", type=int, default=SEEDS)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "proof")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--table-only", action="store_true", help="table the finished runs, train nothing")
    args = parser.parse_args(argv)
    chosen = [r for r in ROWS if r.key in args.rows]
    if not args.table_only:
        for row in chosen:
            if row.needs and importlib.util.find_spec(row.needs) is None:
                print(f"{row.key}: skipped, '{row.needs}' is not installed (see pyproject.toml's extras)")
                continue
            for seed in args.seeds:
                result = run_seed(row, seed, args.runs_dir)
                if result is not None:
                    (_run_dir(args.runs_dir, row, seed) / "proof_eval.json").write_text(json.dumps(result) + "\n")
                    print(
                        f"{row.key} seed {seed}: success {result['success_rate']}, return {result['mean_return']:.2f}"
                    )
                    sys.stdout.flush()
    write_section(args.out, START, END, HEADING, table(ROWS, args.runs_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
