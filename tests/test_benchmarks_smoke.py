"""The benchmark suite's smoke mode (tiny budgets, seconds) runs end to end, so the benchmarks never rot.

Stable-Baselines3 is benchmark-only: without it the SB3 runs are skipped and ppolearn's still run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_writes_every_table(tmp_path):
    out, results, plot = tmp_path / "BENCHMARKS.md", tmp_path / "results.json", tmp_path / "scaling.png"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["--smoke", "--out", str(out), "--results", str(results), "--plot", str(plot)]
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", *args], cwd=ROOT, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    text = out.read_text()
    for heading in ("### 1. Same work", "### 2. Time to target", "#### Pendulum-v1", "### 3. Scaling"):
        assert heading in text
    data = json.loads(results.read_text())
    assert any(r["lib"] == "ppolearn" and r["env"] == "ppolearn/Pendulum-v1" for r in data["target"])
    assert all(r["peak_rss_mib"] > 0 for r in data["throughput"] + data["target"] + data["scaling"])
    assert plot.stat().st_size > 0


def _run(module, *args):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_batched_path_benchmark_splits_an_iteration(tmp_path):
    results, md = tmp_path / "batched.json", tmp_path / "B.md"
    _run("benchmarks.batched", "--num-envs", "16", "--iterations", "1", "--out", str(results), "--markdown", str(md))
    row = json.loads(results.read_text())["rows"][0]
    assert row["num_envs"] == 16 and 0 < row["train_steps_per_s"] < row["env_steps_per_s"]
    assert set(row["seconds_per_iteration"]) == {"environment", "inference", "rollout_rest", "update"}
    assert "<!-- batched-cpu:start -->" in md.read_text() and "| 16 |" in md.read_text()


def test_cleanrl_style_benchmark_trains_both_and_judges_them(tmp_path):
    results = tmp_path / "cleanrl.json"
    out = _run("benchmarks.cleanrl_style", "--steps", "2048", "--repeats", "1", "--results", str(results))
    rows = json.loads(results.read_text())
    assert [len(rows[k]) for k in ("cleanrl-style", "ppolearn")] == [1, 1]
    assert all(r["train_s"] > 0 and -2000 < r["mean_return"] <= 0 for k in rows for r in rows[k])
    assert "CleanRL-style / ppolearn" in out


def test_minigrid_validation_script_refuses_bad_settings_before_starting(tmp_path):
    """benchmarks/minigrid_validation.sh: a bad JOBS, EVAL_SEED or seed list is one line and exit 2, with no
    run started (xargs -P 0 would start every run at once; a non-numeric seed would fail each run late)."""
    script = str(ROOT / "benchmarks" / "minigrid_validation.sh")
    for setting in (
        {"JOBS": "0"},
        {"EVAL_SEED": "x"},
        {"STOP_SEEDS": "20 a"},
        {"PRESET_SEEDS": "-1"},
        {"KC_SEEDS": "b"},
    ):
        env = {**os.environ, "OUT": str(tmp_path / "out"), **setting}
        done = subprocess.run(["bash", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        name = next(iter(setting))
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, (setting, done.stderr)
        assert name.split("_")[0] in done.stderr
        assert not (tmp_path / "out").exists()  # nothing was started or written
