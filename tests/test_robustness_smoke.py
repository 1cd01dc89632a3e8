"""The robustness set: every task passes Gymnasium's env checker, and the runner's smoke mode runs end to end.

Stable-Baselines3 is benchmark-only: its half of the smoke run is skipped where it is not installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmarks package, whatever the working directory

from benchmarks.robustness_envs import ENVS, make  # noqa: E402


@pytest.mark.parametrize("name", list(ENVS))
def test_env_passes_gymnasium_checker(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the asymmetric / large action bounds are on purpose
        check_env(make(name), skip_render_check=True)


@pytest.mark.parametrize("name", list(ENVS))
def test_env_is_deterministic_and_reports_success(name):
    def trajectory(seed):
        env = make(name)
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        out = [obs]
        for _ in range(env.horizon):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert isinstance(info["is_success"], bool)
            out.append((obs, reward))
            if terminated or truncated:
                return out, env.horizon
        raise AssertionError("no time limit")

    a, b = trajectory(3), trajectory(3)
    assert repr(a) == repr(b)
    assert repr(trajectory(4)) != repr(a)


def _smoke(tmp_path, libs, envs=None):
    results, out = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["--smoke", "--libs", *libs, "--results", str(results), "--out", str(out)]
    if envs:
        args += ["--envs", *envs]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "robustness.py"), *args], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    runs = json.loads(results.read_text())["runs"]
    text = out.read_text()
    assert "<!-- robustness:start -->" in text and "<!-- robustness:end -->" in text
    assert "## Defaults on unseen tasks (robustness set)" in text
    return runs, text


def test_smoke_ppolearn(tmp_path):
    runs, text = _smoke(tmp_path, ["ppolearn"])
    assert sorted(r["env"] for r in runs) == sorted(ENVS)
    for r in runs:
        assert r["lib"] == "ppolearn" and r["episodes"] == 3 and r["eval_seed"] == 10_000
        assert 0.0 <= r["success_rate"] <= 1.0 and np.isfinite(r["mean_return"]) and r["train_s"] > 0
    for name in ENVS:
        assert f"| {name} |" in text
    again, _ = _smoke(tmp_path, ["ppolearn"])  # resumable: nothing is trained twice
    assert again == runs


@pytest.mark.skipif(importlib.util.find_spec("stable_baselines3") is None, reason="stable_baselines3 not installed")
def test_smoke_sb3_one_task(tmp_path):
    runs, text = _smoke(tmp_path, ["sb3", "sb3-1env"], envs=["SparseGoal"])  # Dict observations: MultiInputPolicy
    got = sorted((r["env"], r["lib"], r["policy"], r["n_envs"]) for r in runs)
    assert got == [("SparseGoal", "sb3", "MultiInputPolicy", 8), ("SparseGoal", "sb3-1env", "MultiInputPolicy", 1)]
    assert "| SparseGoal | SB3 8 envs |" in text and "| SparseGoal | SB3 1 env |" in text


def test_defaults_sweep_smoke(tmp_path):
    results = tmp_path / "sweep.json"
    args = ["--smoke", "--candidates", "base", "n_epochs_20", "--envs", "Turntable", "--seeds", "0", "1"]
    args += ["--jobs", "1", "--results", str(results), "--eval-seed", "1000000"]  # the validation block
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "defaults_sweep.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = json.loads(results.read_text())
    assert sorted((r["candidate"], r["seed"]) for r in runs) == [
        ("base", 0),
        ("base", 1),
        ("n_epochs_20", 0),
        ("n_epochs_20", 1),
    ]
    assert all(r["budget"] == 2048 and 0.0 <= r["success_rate"] <= 1.0 for r in runs)
    assert all(r["eval_seed"] == 1_000_000 for r in runs)
    assert "| Turntable | n_epochs_20 |" in done.stdout and "| n_epochs_20 | " in done.stdout


def test_defaults_sweep_base_is_the_defaults_it_was_judged_against():
    """Candidates are laid over the sweep's own base, not over today's PPOConfig, so a rerun trains as it ran."""
    from benchmarks.defaults_sweep import BASE, CANDIDATES
    from ppolearn.config import PPOConfig

    assert BASE == {"n_epochs": 10, "target_kl": None, "scale_actions": "false"}
    assert (PPOConfig().n_epochs, PPOConfig().target_kl) == (20, 0.02)  # the round-2 choice
    assert PPOConfig().scale_actions == "auto"  # the round-3 choice
    assert {**BASE, **CANDIDATES["n_epochs_20"]}["target_kl"] is None  # round 1's candidate, as it ran
    assert {**BASE, **CANDIDATES["epochs_20_kl_0.02"]}["scale_actions"] == "false"  # round 3's reference, as it ran


def test_zoo_ids_make_the_robustness_tasks():
    import gymnasium as gym

    from benchmarks.zoo_envs import zoo_id

    for name in ENVS:
        env = gym.make(zoo_id(name))
        assert type(env.unwrapped) is ENVS[name]
        env.close()


def test_defaults_sweep_judges_only_rows_with_every_seed():
    """A candidate cut off after one seed of a task gets no win or loss there, however far apart the figures."""
    from benchmarks.defaults_sweep import table

    runs = [
        {"candidate": "base", "env": "Turntable", "seed": s, "success_rate": 0.0, "mean_return": -9.0 - s / 10}
        for s in range(5)
    ]
    runs += [{"candidate": "n_epochs_20", "env": "Turntable", "seed": 0, "success_rate": 1.0, "mean_return": -1.0}]
    runs += [
        {"candidate": "anneal_lr", "env": "Turntable", "seed": s, "success_rate": 1.0, "mean_return": -1.0}
        for s in range(5)
    ]
    text = table(runs, ["base", "n_epochs_20", "anneal_lr"])
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| Turntable |")}
    assert "| - |" in rows["n_epochs_20"] and "win" not in rows["n_epochs_20"]
    assert rows["anneal_lr"].count("| win |") == 2
    assert "| n_epochs_20 | 0 | 0 | 0 of 8 |" in text


def test_defaults_sweep_refuses_a_results_file_of_other_episodes(tmp_path):
    results = tmp_path / "sweep.json"
    results.write_text(json.dumps([{"candidate": "base", "env": "Turntable", "seed": 0, "eval_seed": 10_000}]))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["--candidates", "base", "--envs", "Turntable", "--seeds", "0", "--results", str(results)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "defaults_sweep.py"), *args, "--eval-seed", "1000000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "other episodes than --eval-seed 1000000" in done.stdout


def test_loose_bounds_check_smoke():
    """benchmarks/loose_bounds.py trains the widened turntable both ways; `auto` maps its [-10, 10] torque."""
    from benchmarks.loose_bounds import LooseTurntable
    from ppolearn.envs.spaces import action_scaling

    space = LooseTurntable().action_space
    assert [x.tolist() for x in action_scaling(space.low, space.high, "auto")] == [[0.0], [10.0]]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "loose_bounds.py"), "--smoke", "--jobs", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| auto | " in done.stdout and "| false | " in done.stdout
