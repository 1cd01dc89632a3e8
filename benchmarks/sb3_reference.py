"""Stable-Baselines3 with rl-baselines3-zoo's settings, judged exactly as the suite judges ppolearn's presets.

Each task of ``benchmarks/run.py``'s time-to-target list is trained on seeds 0-4 with the zoo's
hyperparameters (gSDE on Pendulum, as the zoo), and each final policy plays the same 100 deterministic
episodes of the official environment as ppolearn's (seeds 10000-10099). The suite table puts the IQM of
these per-seed figures beside each preset, so "as good as SB3" is a comparison on the same episodes.

    pip install -r benchmarks/requirements.txt
    python -m benchmarks.sb3_reference                  # about 15 minutes on 2 cores
    python -m benchmarks.sb3_reference --tasks Pendulum-v1 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmarks.evaluate import evaluate_episodes, sb3_policy
from benchmarks.jobs import _sb3
from benchmarks.run import TASKS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "sb3_reference.json"
TEST_SEED, EPISODES = 10_000, 100


def run_one(task: Dict[str, Any], seed: int) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(1)  # as every benchmark run here: one thread is fastest for these small networks
    job = {"lib": "sb3", "env": task["env"], "seed": seed, "params": task["sb3"]}
    model, vecnorm = _sb3(job)
    started = time.perf_counter()
    model.learn(task["budget"])
    train_s = time.perf_counter() - started
    if vecnorm is not None:
        vecnorm.training = False

    def policy(obs: Any) -> Any:
        return sb3_policy(model)(vecnorm.normalize_obs(obs) if vecnorm is not None else obs)

    returns = evaluate_episodes(policy, task["env"], EPISODES, TEST_SEED)
    return {
        "seed": seed,
        "mean_return": sum(returns) / len(returns),
        "episode_returns": returns,
        "timesteps": int(model.num_timesteps),
        "train_time_s": round(train_s, 2),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=[t["env"] for t in TASKS])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    known = {t["env"]: t for t in TASKS}
    results: Dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.tasks:
        if name not in known:
            parser.error(f"unknown task {name!r}; known: {sorted(known)}")
        done = {r["seed"]: r for r in results.get(name, {}).get("results", [])}
        for seed in args.seeds:
            if seed not in done:
                done[seed] = run_one(known[name], seed)
                print(name, seed, round(done[seed]["mean_return"], 1), done[seed]["train_time_s"], flush=True)
        results[name] = {"settings": known[name]["sb3"], "results": [done[s] for s in sorted(done)]}
        args.out.write_text(json.dumps(results, indent=1) + "\n")  # after every task: an interrupted run keeps it
    return 0


if __name__ == "__main__":
    sys.exit(main())
