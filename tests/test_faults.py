"""Faults a long run meets: signals, a crashing or NaN-producing environment, a diverging loss, a bad run
directory, memory growth. Each ends in one clear line, a kept checkpoint, and a way to resume."""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import pytest
import torch

from ppolearn import PPO
from ppolearn.checkpoint import list_checkpoints, safe_load
from ppolearn.cli import main
from ppolearn.errors import EnvError, PPOLearnError, TrainingDiverged

TINY = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 2, "net_arch": [16]}
TINY_SET = ["--set", "n_steps=256", "--set", "batch_size=128", "--set", "n_epochs=2", "--set", "checkpoint_every=1"]
TESTS_DIR = str(Path(__file__).parent)


def _start_training(run_dir: Path, extra: Sequence[str] = ()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ppolearn", "train", "--env", "CartPole-v1", "--total-timesteps", "100000000"]
    cmd += [*TINY_SET, *extra, "--num-envs", "2", "--run-dir", str(run_dir), "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(run_dir: Path, rows: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    csv = run_dir / "metrics.csv"
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.communicate()}")
        if csv.exists() and len(csv.read_text().splitlines()) > rows:
            return
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("training made no progress")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_checkpoint_prints_resume_and_resume_continues(tmp_path, sig):
    run_dir = tmp_path / "run"
    proc = _start_training(run_dir)
    _wait_for_rows(run_dir, 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"stopped by {sig.name} at step" in err and f"ppolearn train --resume {run_dir}" in err
    assert "Traceback" not in err
    newest = list_checkpoints(run_dir / "checkpoints")[-1]
    step = int(safe_load(newest)["num_timesteps"])
    last_row_step = int((run_dir / "metrics.csv").read_text().splitlines()[-1].split(",")[0])
    assert step == last_row_step  # the checkpoint holds every update that was logged

    target = step + 2 * 512
    assert main(["train", "--resume", str(run_dir), "--total-timesteps", str(target), "--quiet"]) == 0
    assert int(safe_load(run_dir / "model.pt")["num_timesteps"]) == target
    steps = [int(r.split(",")[0]) for r in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(512, target + 1, 512))  # no gap, no duplicate rows after the resume


def test_second_ctrl_c_exits_at_once_and_keeps_a_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start_training(run_dir)
    _wait_for_rows(run_dir, 2, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    kept = list_checkpoints(run_dir / "checkpoints")
    assert kept and all(safe_load(path)["kind"] == "checkpoint" for path in kept)  # every checkpoint is whole
    # a save cut short leaves only its temporary file, which the next save of the resumed run removes
    target = int(safe_load(kept[-1])["num_timesteps"]) + 512
    assert main(["train", "--resume", str(run_dir), "--total-timesteps", str(target), "--quiet"]) == 0
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_exception_in_user_env_keeps_checkpoint_and_names_env_and_step(tmp_path):
    sys.path.insert(0, TESTS_DIR)
    model = PPO("envs:ExplodingEnv", run_dir=tmp_path, verbose=0, checkpoint_every=1, **TINY)
    with pytest.raises(EnvError) as err:
        model.learn(10_000)
    message = str(err.value)
    assert "environment 'envs:ExplodingEnv' raised in step() at step" in message
    assert "RuntimeError: simulator exploded" in message and "checkpoint at step 64 saved" in message
    assert safe_load(list_checkpoints(tmp_path / "checkpoints")[-1])["num_timesteps"] == 64


def test_nan_reward_is_reported_at_the_step():
    sys.path.insert(0, TESTS_DIR)
    with pytest.raises(EnvError, match="returned a non-finite reward \\(NaN or inf\\) at step 1"):
        PPO("envs:NaNEnv", verbose=0, **TINY).learn(64)


def test_nan_can_be_sanitised_on_request():
    sys.path.insert(0, TESTS_DIR)
    model = PPO("envs:NaNEnv", verbose=0, sanitize_nonfinite=True, **TINY)
    model.learn(64)
    assert model.num_timesteps == 64 and math.isfinite(model.recent_episode_metrics()["mean_return"])


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    model = PPO("Pendulum-v1", run_dir=tmp_path, verbose=0, checkpoint_every=1, **TINY)
    model.learn(128)
    good = list_checkpoints(tmp_path / "checkpoints")[-1]
    with torch.no_grad():
        model.critic.net[-1].bias.fill_(float("nan"))  # a diverged value function
    with pytest.raises(TrainingDiverged, match=f"non-finite loss .* last good checkpoint kept: {good}"):
        model.learn(128, reset_num_timesteps=False)
    kept = safe_load(list_checkpoints(tmp_path / "checkpoints")[-1])
    assert kept["num_timesteps"] == 128
    assert all(torch.isfinite(t).all() for t in kept["policy"].values())


def test_unwritable_run_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(PPOLearnError, match="run directory .* is not writable"):
        PPO("CartPole-v1", run_dir=blocker / "run", verbose=0, **TINY)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_run_dir_fails_before_training(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(PPOLearnError, match="is not writable"):
        PPO("CartPole-v1", run_dir=ro / "run", verbose=0, **TINY)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_stays_flat_over_many_updates(tmp_path):
    model = PPO("CartPole-v1", run_dir=tmp_path, verbose=0, checkpoint_every=5, **TINY)
    model.learn(64 * 10)  # warm up: allocator pools, TensorBoard writer, first checkpoints
    before = _rss_mb()
    model.learn(64 * 60, reset_num_timesteps=False)
    growth = _rss_mb() - before
    assert model.num_updates == 70
    assert growth < 15, f"RSS grew {growth:.1f} MB over 60 updates"
