"""Candidate defaults on the robustness set: which change to PPOConfig's defaults holds up on unseen tasks.

Each candidate is a few PPOConfig values laid over ``BASE`` (the defaults the sweep was judged against).
Every candidate trains on every task of ``benchmarks/robustness_envs.py`` at the robustness budget with 5
seeds, and each policy plays 100 deterministic episodes (by default the test episodes of
``benchmarks/robustness.py``, seeds 10,000-10,099; ``--eval-seed 1000000`` takes the validation block). The
table gives, per task and candidate, the IQM of the per-seed success rates and mean returns with their
stratified-bootstrap 95% intervals, and whether the candidate beats ``base`` (intervals apart), loses, or ties.

A default changes only on this evidence, and only for a candidate that loses on no task. The first round ran
on the test seeds and its best candidate failed its rerun; the second chose on training seeds 5-9 and
validation episodes, so that ``benchmarks/robustness.py`` (seeds 0-4, test episodes) judges the choice on
runs it was not chosen on. The set stays out of the presets, and the defaults are judged on other unseen
tasks as well.

    python benchmarks/defaults_sweep.py --candidates base anneal_lr --jobs 2         # runs (resumable)
    python benchmarks/defaults_sweep.py --table-only                                # the table, to stdout
    python benchmarks/defaults_sweep.py --table-only --markdown BENCHMARKS.md       # and into its section
    python benchmarks/defaults_sweep.py --seeds 5 6 7 8 9 --eval-seed 1000000 \
        --results benchmarks/defaults_sweep_validation.json --candidates base epochs_20_kl_0.02 ...  # round 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.markdown import write_section  # noqa: E402
from benchmarks.robustness import BUDGETS, EVAL_SEED, run_episodes, verdict  # noqa: E402
from benchmarks.robustness_envs import ENVS  # noqa: E402

# The defaults the first two rounds of the sweep were judged against (PPOConfig's until the second round chose
# n_epochs 20 with target_kl 0.02, and before the third chose scale_actions): every candidate is laid over
# them, so the sweep reruns as it ran.
BASE = {"n_epochs": 10, "target_kl": None, "scale_actions": "false"}
# Each laid over BASE: a change practitioners make without looking at the task.
CANDIDATES: Dict[str, Dict[str, Any]] = {
    "base": {},
    "anneal_lr": {"anneal_lr": True},  # CleanRL's default: large early steps, fine ones at the end
    "n_steps_128": {"n_steps": 128},  # twice the updates at the same budget
    "n_epochs_20": {"n_epochs": 20},  # more passes over each rollout
    "batch_256": {"batch_size": 256},  # fewer, less noisy gradient steps
    "lr_1e-3": {"learning_rate": 1e-3},
    "gae_0.9": {"gae_lambda": 0.9},  # less variance in the advantage
    "log_std_-0.5": {"log_std_init": -0.5},  # less exploration noise from the start: precision tasks
    "wide_128": {"net_arch": [128, 128]},
    "no_reward_norm": {"normalize_reward": False},
    "batch_32": {"batch_size": 32},  # twice the gradient steps per rollout, each noisier
    "epochs_20_gae_0.9": {"n_epochs": 20, "gae_lambda": 0.9},
    "epochs_20_wide_128": {"n_epochs": 20, "net_arch": [128, 128]},
    # more passes, each epoch stopped once the policy has moved too far (SB3's target_kl): the extra epochs
    # where they are safe (ArmReach gained from 20) without the collapse they caused on GridMaze
    "epochs_20_kl_0.02": {"n_epochs": 20, "target_kl": 0.02},
    "epochs_20_kl_0.03": {"n_epochs": 20, "target_kl": 0.03},
    "epochs_20_kl_0.02_gae_0.9": {"n_epochs": 20, "target_kl": 0.02, "gae_lambda": 0.9},
    "lr_1e-3_kl_0.02": {"learning_rate": 1e-3, "target_kl": 0.02},
    "epochs_20_kl_0.02_wide_128": {"n_epochs": 20, "target_kl": 0.02, "net_arch": [128, 128]},
    # round 3, against epochs_20_kl_0.02: the Gaussian in [-1, 1] mapped onto the action bounds (SB3's advice
    # to users, "normalise the action space", done for them); Box tasks with bounds other than [-1, 1] only
    "epochs_20_kl_0.02_scaled": {"n_epochs": 20, "target_kl": 0.02, "scale_actions": "true"},
    # the same with less initial noise (std 0.61 of the half-range): the full half-range was too noisy for the
    # precise stop Turntable asks for at 49k steps (0 of 5 validation seeds)
    "epochs_20_kl_0.02_scaled_log_std_-0.5": {
        "n_epochs": 20,
        "target_kl": 0.02,
        "scale_actions": "true",
        "log_std_init": -0.5,
    },
    # "auto": only where mean 0 and std 1 do not fit the bounds (off-centre, or a half-range over 4 or under
    # 1/4), a rule drawn from the two candidates above; on this set it maps DeadTimeProcess, SparseGoal,
    # Heater and TinyDoubleIntegrator and leaves the others unscaled (ppolearn.envs.spaces.action_scaling)
    "epochs_20_kl_0.02_scaled_auto": {"n_epochs": 20, "target_kl": 0.02, "scale_actions": "auto"},
}
DEFAULT_RESULTS = ROOT / "benchmarks" / "defaults_sweep_results.json"
HEADING = "## Candidate defaults on the robustness set"


def one_run(job: Tuple[str, str, int, int, int, int]) -> Dict[str, Any]:
    """Train a candidate on a task and seed; play the 100 (``episodes``) episodes from ``eval_seed`` on."""
    import torch

    from ppolearn import PPO

    candidate, name, seed, episodes, budget, eval_seed = job
    torch.set_num_threads(1)
    values = {**BASE, **CANDIDATES[candidate]}
    model = PPO(ENVS[name], seed=seed, total_timesteps=budget, device="cpu", verbose=0, **values)
    start = time.perf_counter()
    model.learn()
    train_s = time.perf_counter() - start
    returns, success = run_episodes(
        lambda obs: model.predict(obs, deterministic=True)[0], ENVS[name], episodes, eval_seed
    )
    model.close()
    return {
        "candidate": candidate,
        "env": name,
        "seed": seed,
        "budget": budget,
        "train_s": train_s,
        "eval_seed": eval_seed,
        "success_rate": float(np.mean(success)),
        "mean_return": float(np.mean(returns)),
    }


def table(runs: List[Dict[str, Any]], candidates: List[str], reference: str = "base") -> str:
    """Per task and candidate: IQM of success and return, and the verdict against ``reference``."""
    from ppolearn.stats import aggregate_seeds

    def rows(candidate: str, name: str) -> List[Dict[str, Any]]:
        """A candidate's runs on a task in seed order: the bootstrap's resampling follows the order, so runs
        finished in another order would give the same figures another interval."""
        return sorted((r for r in runs if r["candidate"] == candidate and r["env"] == name), key=lambda r: r["seed"])

    def agg(candidate: str, name: str, metric: str) -> Optional[Dict[str, Any]]:
        xs = [r[metric] for r in rows(candidate, name)]
        return aggregate_seeds(xs) if xs else None

    lines = [
        f"| task | candidate | success IQM [95%] | vs {reference} | return IQM [95%] | vs {reference} "
        "| per seed success |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    tally = {c: {"win": 0, "loss": 0} for c in candidates}
    for name in ENVS:
        for candidate in candidates:
            rs = rows(candidate, name)
            if not rs:
                continue
            cells = [name, candidate]
            base_seeds = {r["seed"] for r in rows(reference, name)}
            whole_row = {r["seed"] for r in rs} >= base_seeds  # a row cut short by a time limit decides nothing
            for metric in ("success_rate", "mean_return"):
                a, b = agg(candidate, name, metric), agg(reference, name, metric)
                cells.append(f"{a['iqm']:.2f} [{a['iqm_ci_low']:.2f}, {a['iqm_ci_high']:.2f}]")
                word = verdict(a, b) if b and candidate != reference and whole_row else "-"
                word = {"ppolearn": "win", "SB3": "loss"}.get(word, word)
                if word in ("win", "loss"):
                    tally[candidate][word] += 1
                cells.append(word)
            cells.append(" ".join(f"{r['success_rate']:.2f}" for r in rs))
            lines.append("| " + " | ".join(cells) + " |")

    def whole(candidate: str) -> str:
        """Tasks with every seed run (a candidate cut off by a time limit has fewer)."""
        seeds = {r["seed"] for r in runs}
        have = [
            name
            for name in ENVS
            if {r["seed"] for r in runs if r["candidate"] == candidate and r["env"] == name} == seeds
        ]
        return f"{len(have)} of {len(ENVS)}"

    lines += ["", "| candidate | wins | losses | tasks with every seed |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {c} | {t['win']} | {t['loss']} | {whole(c)} |" for c, t in tally.items() if c != reference]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument(
        "--eval-seed",
        type=int,
        default=EVAL_SEED,
        help=f"first episode seed (default {EVAL_SEED}, the test block; choose candidates on the validation block, "
        "1000000, with training seeds other than the table's)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side")
    parser.add_argument("--results", type=Path, default=None, help=f"raw results JSON (default {DEFAULT_RESULTS})")
    parser.add_argument("--reference", default="base", help="the candidate the others are judged against")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the table into this file's section")
    parser.add_argument(
        "--marker", default="defaults-sweep", help="the section's <!-- MARKER:start/end --> (one per sweep round)"
    )
    parser.add_argument("--machine", default="", help="a line on where the runs were made, for --markdown")
    parser.add_argument("--smoke", action="store_true", help="2,048 steps, 3 episodes: that it runs, no figures")
    args = parser.parse_args(argv)
    if args.reference not in args.candidates:  # before any training: the table could not be drawn after it
        print(f"defaults_sweep.py: --reference {args.reference} is not among --candidates")
        return 2
    if args.smoke:
        args.episodes = 3
        args.results = args.results or Path(tempfile.mkdtemp(prefix="sweep-smoke-")) / "results.json"
    args.results = args.results or DEFAULT_RESULTS
    runs = json.loads(args.results.read_text()) if args.results.exists() else []
    if not args.table_only:
        if any(r.get("eval_seed", EVAL_SEED) != args.eval_seed for r in runs):  # one block of episodes per file
            print(f"defaults_sweep.py: {args.results} holds runs on other episodes than --eval-seed {args.eval_seed}")
            return 2
        done = {(r["candidate"], r["env"], r["seed"]) for r in runs}
        jobs = [
            (c, name, seed, args.episodes, 2048 if args.smoke else BUDGETS[name], args.eval_seed)
            for c in args.candidates
            for name in args.envs
            for seed in args.seeds
            if (c, name, seed) not in done
        ]
        # candidate by candidate (one cut short leaves the others whole), the longest runs of each first
        jobs.sort(key=lambda j: (args.candidates.index(j[0]), -j[4]))
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=4) as pool:
            for record in pool.imap_unordered(one_run, jobs):
                runs.append(record)
                args.results.write_text(json.dumps(runs, indent=1))
                print(
                    f"{record['candidate']:14s} {record['env']:20s} seed {record['seed']}: success "
                    f"{record['success_rate']:.2f} return {record['mean_return']:.2f} ({record['train_s']:.0f} s)",
                    flush=True,
                )
    body = table(runs, args.candidates, args.reference)
    print(body)
    if args.markdown:
        command = f"python benchmarks/defaults_sweep.py --table-only --candidates {' '.join(args.candidates)}"
        if args.reference != "base":
            command += f" --reference {args.reference}"
        if args.results != DEFAULT_RESULTS:
            shown = args.results.resolve()
            command += f" --results {shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown}"
        if args.marker != "defaults-sweep":
            command += f" --markdown BENCHMARKS.md --marker {args.marker}"
        eval_seed = runs[0].get("eval_seed", EVAL_SEED) if runs else args.eval_seed  # as the runs were made
        block = "test" if eval_seed == EVAL_SEED else "validation"
        seeds = sorted({r["seed"] for r in runs})
        intro = (
            f"Written by `{command}`. Each candidate is `base` (PPOConfig's defaults of then: n_epochs 10, no KL "
            "stop, actions in the environment's units) with the values named in `CANDIDATES`; training seeds "
            f"{', '.join(map(str, seeds))} per task, "
            f"100 deterministic {block} episodes per seed (seeds {eval_seed:,}-{eval_seed + 99:,}); "
            "IQM over the seeds [stratified-bootstrap 95% interval]; "
            f'"win" / "loss": the intervals of candidate and {args.reference} do not overlap. A candidate missing on a '
            f"task was cut off by the time limit of its run. {args.machine}"
        )
        start, end = f"<!-- {args.marker}:start -->", f"<!-- {args.marker}:end -->"
        write_section(args.markdown, start, end, HEADING, intro + "\n\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
