"""Proof for `ppolearn tune`: a search that reaches the target on fresh seeds, beside rl-baselines3-zoo's.

The task is DeadTimeProcess from the robustness set (``benchmarks/robustness_envs.py``): hold a first-order
process with a 5-step dead time at a random setpoint. No preset covers it, and it was picked because
PPOConfig's defaults of then (10 epochs, no KL stop) fell short of it (31% success at 98,304 steps,
``benchmarks/robustness_defaults_v1.json``). The
target: success rate >= 0.9 on 100 deterministic test episodes (seeds 10,000-10,099), on every one of 5 fresh
training seeds, at 200,000 steps.

Steps, each resumable and each writing into ``--out`` (default ``runs/tune_proof``):

    ppolearn tune --env benchmarks.robustness_envs:DeadTimeProcess --trials 30 --budget 200000 --seeds 3 \\
        --target "success_rate>=0.9" --jobs 2 --study-dir runs/tune_proof/ppolearn      # the search, as a user runs it
    python benchmarks/tune_proof.py zoo --minutes M          # rl-zoo's --optimize, 2 processes on one study, M minutes
    python benchmarks/tune_proof.py fresh                    # defaults, ppolearn's best.yaml and the zoo's best trial
                                                             # on fresh seeds 5000-9000, 100 test episodes each
    python benchmarks/tune_proof.py rate                     # trials per hour: --jobs 1, --jobs 2, --backend ray
    python benchmarks/tune_proof.py table                    # the section of BENCHMARKS.md

The search ran under those earlier defaults: its trials had no KL stop. ``ppolearn tune`` lays trials over
the current defaults (at most 20 epochs, ``target_kl`` 0.02), so to repeat this search as it ran, give it a
``--space`` file that also fixes ``target_kl: null``; ``fresh`` trains its best.yaml without the stop.

The zoo search gets the same wall-clock as ppolearn's (read from the two studies' trial times), the same step
budget per trial, 8 environments with VecNormalize (as ppolearn's defaults), TPE with the median pruner and
5 evaluations per trial, as ``ppolearn tune`` does. The zoo scores a trial by the mean return of its last
evaluation (5 episodes, one unseeded training run); ppolearn by the success rate over 3 seeds x 50 validation
episodes. Fresh-seed runs train each setting once per seed in a subprocess, two side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.markdown import write_section  # noqa: E402
from benchmarks.robustness import run_episodes, subprocess_record, train_sb3  # noqa: E402
from benchmarks.robustness_envs import ENVS  # noqa: E402
from benchmarks.zoo_envs import zoo_id  # noqa: E402

TASK = "DeadTimeProcess"
ENV_SPEC = f"benchmarks.robustness_envs:{TASK}"
BUDGET = 200_000
TARGET = 0.9  # success rate on every fresh seed
FRESH_SEEDS = (5000, 6000, 7000, 8000, 9000)  # the search trained on 0, 1000, 2000 (ppolearn) or unseeded (zoo)
EVAL_SEED, EPISODES = 10_000, 100
SETTINGS = ("defaults-v1", "n_epochs-20", "defaults", "ppolearn-tuned", "zoo-tuned")
# Values over PPOConfig's defaults. The search ran when the defaults were n_epochs 10 with no KL stop, so its
# best.yaml is trained as it was searched, and the earlier defaults are spelt out.
# All of it ran before ``scale_actions`` became the default, so each setting keeps actions in the env's units.
VALUES: Dict[str, Dict[str, Any]] = {
    "defaults-v1": {"n_epochs": 10, "target_kl": None, "scale_actions": "false"},
    "n_epochs-20": {"n_epochs": 20, "target_kl": None, "scale_actions": "false"},
    "defaults": {"scale_actions": "false"},
    "ppolearn-tuned": {"target_kl": None, "scale_actions": "false"},
}
LABELS = {
    "defaults-v1": "ppolearn's earlier defaults (n_epochs 10, no KL stop)",
    "n_epochs-20": "earlier defaults with n_epochs 20, no KL stop",
    "defaults": "ppolearn defaults (n_epochs 20, target_kl 0.02; actions unscaled, as then)",
    "ppolearn-tuned": "ppolearn tune's best.yaml",
    "zoo-tuned": "rl-zoo --optimize's best trial (SB3)",
}
START, END = "<!-- tune-proof:start -->", "<!-- tune-proof:end -->"
HEADING = "## Tuning: `ppolearn tune` beside rl-baselines3-zoo's `--optimize`"
ZOO_CONF = {"n_envs": 8, "policy": "MlpPolicy", "normalize": True, "n_timesteps": BUDGET}


def _env() -> Dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


# --- the zoo's search -------------------------------------------------------------------------------------


def run_zoo(out: Path, minutes: float, workers: int, budget: int = BUDGET) -> None:
    """rl-zoo's --optimize: ``workers`` processes on one SQLite study, stopped (SIGINT) after ``minutes``."""
    import yaml

    study_dir = out / "zoo"
    study_dir.mkdir(parents=True, exist_ok=True)
    conf = study_dir / "conf.yml"
    conf.write_text(yaml.safe_dump({zoo_id(TASK): {**ZOO_CONF, "n_timesteps": budget}}))
    args = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", zoo_id(TASK), "-optimize"]
    args += ["--conf-file", str(conf), "--gym-packages", "benchmarks.zoo_envs", "-n", str(budget)]
    args += ["--n-trials", "100000", "--sampler", "tpe", "--pruner", "median", "--n-evaluations", "5"]
    args += ["--storage", f"sqlite:///{study_dir / 'study.db'}", "--study-name", "zoo"]
    args += ["-f", str(study_dir / "logs"), "--no-optim-plots", "--device", "cpu"]
    env = {**_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    import optuna  # the storage made once here: workers creating its tables at the same time collide

    optuna.create_study(
        storage=f"sqlite:///{study_dir / 'study.db'}", study_name="zoo", direction="maximize", load_if_exists=True
    )
    procs = []
    for i in range(workers):
        log = open(study_dir / f"worker{i}.log", "a")
        procs.append(subprocess.Popen(args + ["--seed", str(i)], cwd=ROOT, env=env, stdout=log, stderr=log))
    deadline = time.time() + minutes * 60
    while time.time() < deadline and any(p.poll() is None for p in procs):
        time.sleep(5)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
    print(json.dumps(zoo_summary(out), indent=1))


def _study_summary(storage: str, name: Optional[str]) -> Dict[str, Any]:
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.datetime_complete is not None]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    wall = (max(t.datetime_complete for t in finished) - min(starts)).total_seconds() if finished else 0.0
    states: Dict[str, int] = {}
    for t in trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return {
        "wall_s": wall,
        "states": states,
        "finished": len(finished),
        "best_number": best.number if best else None,
        "best_value": best.value if best else None,
        "best_params": best.params if best else None,
    }


def zoo_summary(out: Path) -> Dict[str, Any]:
    return _study_summary(f"sqlite:///{out / 'zoo' / 'study.db'}", "zoo")


def ppolearn_summary(out: Path) -> Dict[str, Any]:
    from ppolearn.tune import STUDY_DB, STUDY_NAME

    return _study_summary(f"sqlite:///{out / 'ppolearn' / STUDY_DB}", STUDY_NAME)


# --- fresh seeds --------------------------------------------------------------------------------------------


def train_setting(setting: str, seed: int, out: Path) -> Tuple[Callable[[Any], np.ndarray], Dict[str, Any]]:
    """Train one setting on one seed; the deterministic policy and what the run took."""
    if setting == "zoo-tuned":
        return _train_zoo_best(seed, out)
    from ppolearn import PPO
    from ppolearn.config import load_yaml

    values = dict(VALUES[setting])
    if setting == "ppolearn-tuned":
        values.update(load_yaml(str(out / "ppolearn" / "best.yaml")))
    model = PPO(ENVS[TASK], values, seed=seed, total_timesteps=BUDGET, verbose=0)
    start = time.perf_counter()
    model.learn()
    info = {"train_s": time.perf_counter() - start, "steps": model.num_timesteps, "config": values}
    return (lambda obs: model.predict(obs, deterministic=True)[0]), info


def _train_zoo_best(seed: int, out: Path) -> Tuple[Callable[[Any], np.ndarray], Dict[str, Any]]:
    """SB3 PPO with the zoo study's best trial, as the zoo builds it: 8 envs under VecNormalize."""
    from rl_zoo3.hyperparams_opt import convert_onpolicy_params

    params = zoo_summary(out)["best_params"]
    predict, info = train_sb3(TASK, seed, BUDGET, ZOO_CONF["n_envs"], **convert_onpolicy_params(params))
    return predict, {"train_s": info["train_s"], "steps": info["steps"], "config": params}


def fresh_worker(setting: str, seed: int, out: Path, record_path: Path) -> None:
    predict, info = train_setting(setting, seed, out)
    returns, success = run_episodes(predict, ENVS[TASK], EPISODES, EVAL_SEED)
    record = {"setting": setting, "seed": seed, "budget": BUDGET, **info, "episodes": EPISODES}
    record.update(success_rate=float(np.mean(success)), mean_return=float(np.mean(returns)))
    record_path.write_text(json.dumps(record))


def run_fresh(out: Path, settings: List[str], parallel: int) -> None:
    results = out / "fresh.json"
    runs = json.loads(results.read_text()) if results.exists() else []
    done = {(r["setting"], r["seed"]) for r in runs}
    todo = [(s, seed) for s in settings for seed in FRESH_SEEDS if (s, seed) not in done]
    lock = threading.Lock()  # two runs finish side by side: one writer of the results file at a time

    def one(job: Tuple[str, int]) -> None:
        setting, seed = job
        args = [sys.executable, str(Path(__file__).resolve()), "_fresh", setting, str(seed), str(out)]
        record = subprocess_record(args, _env(), job)
        if record is None:
            return
        with lock:
            runs.append(record)
            results.write_text(json.dumps(runs, indent=1))
        print(f"{setting:15s} seed {seed}: success {record['success_rate']:.2f} return {record['mean_return']:.2f}")

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, todo))


# --- trials per hour ----------------------------------------------------------------------------------------

RATE_TRIALS, RATE_BUDGET = 8, 49_152


def run_rate(out: Path, modes: List[str]) -> None:
    """The same trials (a space of fixed values: every trial is the same work) with 1 job, 2 jobs and Ray."""
    import yaml

    rate_dir = out / "rate"
    rate_dir.mkdir(parents=True, exist_ok=True)
    space = rate_dir / "fixed_space.yaml"
    # the defaults of when it was measured, spelt out: today's would give other (longer) trials
    fixed = {"learning_rate": 3e-4, "n_steps": 256, "n_epochs": 10, "target_kl": None, "gamma": 0.99}
    fixed.update(gae_lambda=0.95, n_minibatches=8, net_width=64, anneal_lr=False)
    space.write_text(yaml.safe_dump(fixed))
    results = rate_dir / "rate.json"
    rates = json.loads(results.read_text()) if results.exists() else {}
    for mode in modes:
        study = rate_dir / mode
        shutil.rmtree(study, ignore_errors=True)
        args = ["tune", "--env", ENV_SPEC, "--trials", str(RATE_TRIALS), "--budget", str(RATE_BUDGET)]
        args += ["--seeds", "1", "--space", str(space), "--pruner", "none", "--study-dir", str(study), "--quiet"]
        env = _env()
        head = None
        if mode == "jobs2":
            args += ["--jobs", "2"]
        elif mode == "ray":
            head, address, env = _ray_head(env)
            args += ["--jobs", "2", "--backend", "ray", "--ray-address", address]
        try:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ppolearn", *args], cwd=ROOT, env=env, check=True)
            wall = time.perf_counter() - start
        finally:
            if head is not None:
                head.send_signal(signal.SIGTERM)  # --block: the head takes its processes down with it
                head.wait(timeout=60)
        summary = _study_summary(f"sqlite:///{study / 'study.db'}", "ppolearn")
        rates[mode] = {"command_s": wall, "trials": summary["finished"], "trials_s": summary["wall_s"]}
        rates[mode]["trials_per_hour"] = 3600 * summary["finished"] / wall
        print(mode, json.dumps(rates[mode]), flush=True)
        results.write_text(json.dumps(rates, indent=1))


def _ray_head(env: Dict[str, str]) -> Tuple[subprocess.Popen[bytes], str, Dict[str, str]]:
    """A local cluster of its own, ``ray start --head --num-cpus 2 --block``, up once its port answers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**env, "RAY_AUTH_MODE": "token"}  # Ray >= 2.5x: the driver joins with the token `ray start` writes
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}", "--num-cpus=2"]
    cmd += ["--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats", "--block"]
    head = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return head, f"127.0.0.1:{port}", env
        except OSError:
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`ray start --head` did not come up (exit code {head.poll()})") from None
            time.sleep(0.5)


# --- the table ----------------------------------------------------------------------------------------------


def table(out: Path) -> str:
    from ppolearn.stats import aggregate_seeds

    runs = json.loads((out / "fresh.json").read_text())
    searches = {"ppolearn tune": ppolearn_summary(out), "rl-zoo --optimize": zoo_summary(out)}
    lines = [
        "Written by `python benchmarks/tune_proof.py table`; the steps and their commands are in the script's "
        f"docstring. Task: `{TASK}` (robustness set, no preset; hold a dead-time process at a random setpoint). "
        f"Budget {BUDGET:,} steps per training run. Target: success rate >= {TARGET} on 100 deterministic test "
        "episodes (seeds 10,000-10,099) on every fresh seed. Machine: 2 CPU cores, both searches with 2 "
        "trials side by side.",
        "",
        "| search | wall-clock min | trials finished (complete / pruned) | best trial | its search figure |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for name, s in searches.items():
        figure = "success rate over 3 seeds x 50 episodes" if name == "ppolearn tune" else "mean return, 5 episodes"
        lines.append(
            f"| {name} | {s['wall_s'] / 60:.1f} | {s['finished']} ({s['states'].get('complete', 0)} / "
            f"{s['states'].get('pruned', 0)}) | {s['best_number']} | {s['best_value']:.4g} ({figure}) |"
        )
    lines += [
        "",
        "Fresh seeds " + ", ".join(str(s) for s in FRESH_SEEDS) + ": IQM [stratified-bootstrap 95% interval] over "
        "the seeds (`ppolearn.stats.aggregate_seeds`), then every seed's figure.",
        "",
        "| setting | success rate | mean return | at target | per seed: success / return | train s per seed |",
        "| --- | ---: | ---: | --- | --- | ---: |",
    ]
    for setting in SETTINGS:
        rs = sorted((r for r in runs if r["setting"] == setting), key=lambda r: r["seed"])
        if not rs:
            continue
        succ = aggregate_seeds([r["success_rate"] for r in rs])
        ret = aggregate_seeds([r["mean_return"] for r in rs])
        hits = sum(r["success_rate"] >= TARGET for r in rs)
        lines.append(
            f"| {LABELS[setting]} | {succ['iqm']:.2f} [{succ['iqm_ci_low']:.2f}, {succ['iqm_ci_high']:.2f}] | "
            f"{ret['iqm']:.2f} [{ret['iqm_ci_low']:.2f}, {ret['iqm_ci_high']:.2f}] | {hits}/{len(rs)}"
            f"{' (**all**)' if hits == len(rs) else ''} | "
            + ", ".join(f"{r['seed']}: {r['success_rate']:.2f} / {r['mean_return']:.1f}" for r in rs)
            + f" | {np.mean([r['train_s'] for r in rs]):.0f} |"
        )
    rate_file = out / "rate" / "rate.json"
    if rate_file.exists():
        rates = json.loads(rate_file.read_text())
        base = rates.get("jobs1", {}).get("trials_per_hour")
        lines += [
            "",
            f"Trials per hour (`python benchmarks/tune_proof.py rate`): {RATE_TRIALS} identical trials (a space of "
            f"fixed values), {RATE_BUDGET:,} steps, 1 seed, no pruning; wall-clock of the whole `ppolearn tune` "
            "command. Ray: a cluster of its own on this machine (`ray start --head --num-cpus 2 --block`), joined "
            "with `--backend ray --ray-address 127.0.0.1:PORT`.",
            "",
            "| mode | trials | command s | trials per hour | vs --jobs 1 |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        names = {"jobs1": "--jobs 1", "jobs2": "--jobs 2", "ray": "--backend ray (2 workers)"}
        for mode, r in rates.items():
            ratio = f"{r['trials_per_hour'] / base:.2f}x" if base else "-"
            lines.append(
                f"| {names[mode]} | {r['trials']} | {r['command_s']:.0f} | {r['trials_per_hour']:.0f} | {ratio} |"
            )
    return "\n".join(lines)


def _missing_inputs(step: str, out: Path, minutes: Optional[float], settings: List[str]) -> Optional[Path]:
    """The first file a step reads that an earlier step has not written yet, if any."""
    needed = []
    if step == "zoo" and not minutes:  # its wall-clock is the ppolearn study's
        needed.append(out / "ppolearn" / "study.db")
    if step == "fresh":
        needed += [out / "ppolearn" / "best.yaml"] if "ppolearn-tuned" in settings else []
        needed += [out / "zoo" / "study.db"] if "zoo-tuned" in settings else []
    if step == "table":
        needed += [out / "fresh.json", out / "ppolearn" / "study.db", out / "zoo" / "study.db"]
    return next((path for path in needed if not path.exists()), None)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_fresh":
        setting, seed, out, record = argv[1:5]
        fresh_worker(setting, int(seed), Path(out), Path(record))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("zoo", "fresh", "rate", "table"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "tune_proof"))
    parser.add_argument("--minutes", type=float, help="zoo: wall-clock (default: ppolearn's search's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=int, default=BUDGET, help="zoo: steps per trial (a smaller one to try it)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--modes", nargs="+", default=["jobs1", "jobs2", "ray"], choices=("jobs1", "jobs2", "ray"))
    parser.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    missing = _missing_inputs(args.step, out, args.minutes, args.settings)
    if missing:
        print(f"tune_proof.py {args.step}: {missing} is missing: run the step that writes it first", file=sys.stderr)
        return 2
    if args.step == "zoo":
        minutes = args.minutes if args.minutes else ppolearn_summary(out)["wall_s"] / 60
        run_zoo(out, minutes, args.workers, args.budget)
    elif args.step == "fresh":
        run_fresh(out, args.settings, args.workers)
    elif args.step == "rate":
        run_rate(out, args.modes)
    else:
        body = table(out)
        write_section(Path(args.markdown), START, END, HEADING, body)
        print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
