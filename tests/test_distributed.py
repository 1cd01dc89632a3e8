"""The Ray backend: exact statistics merge, reproducibility, worker restarts, a cluster joined by address.

Kept short for CI: one local Ray with 2 CPUs for the module, tiny configs. Skipped where ray is missing.
"""

from __future__ import annotations

import csv
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from ppolearn import PPO
from ppolearn.distributed import FrozenStats, env_slices, import_ray, merge_seen
from ppolearn.errors import ConfigError, PPOLearnError
from ppolearn.normalize import RunningMeanStd

TESTS_DIR = Path(__file__).parent
REPO_DIR = TESTS_DIR.parent
# Ray's worker processes must import this checkout of ppolearn and the tests' hand-made environments.
WORKER_PATH = os.pathsep.join([str(REPO_DIR), str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])
TINY = {"n_steps": 32, "num_envs": 4, "batch_size": 64, "n_epochs": 2, "net_arch": [16]}


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": WORKER_PATH}}
    )
    yield ray
    ray.shutdown()


def test_env_slices_cover_every_env_once():
    assert env_slices(4, 2) == [(0, 2), (2, 2)]
    assert env_slices(5, 3) == [(0, 2), (2, 2), (4, 1)]


def test_merged_worker_statistics_equal_one_normaliser_over_all_data():
    data = torch.randn(300, 3, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1]) + 5
    learner = RunningMeanStd((3,))
    learner.update(torch.randn(50, 3))  # statistics from earlier iterations
    reference = RunningMeanStd((3,))
    reference.load_state_dict(learner.state_dict())
    workers = [FrozenStats((3,)) for _ in range(3)]
    for worker, part in zip(workers, (data[:40], data[40:250], data[250:])):
        worker.start_iteration(learner.state_dict())
        for chunk in part.split(7):  # a worker sees its data step by step
            worker.update(chunk)
        assert torch.equal(worker.mean, learner.mean)  # ...while normalising with the learner's statistics
    merge_seen(learner, [w.seen.state_dict() for w in workers])
    reference.update(data)
    for key in ("mean", "var", "count"):
        torch.testing.assert_close(getattr(learner, key), getattr(reference, key), rtol=1e-12, atol=1e-12)


def test_missing_ray_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(PPOLearnError, match=r"pip install ppolearn\[ray\]"):
        import_ray()


def test_more_workers_than_envs_is_a_config_error():
    with pytest.raises(ConfigError, match="num_workers"):
        PPO("Pendulum-v1", backend="ray", num_workers=5, verbose=0, **TINY)


def test_ray_statistics_match_the_local_backend(local_ray):
    """Observations and rewards of FixedEpisodeEnv do not depend on the actions, so 2 workers see exactly the
    data one local process sees: the merged statistics must be those of one normaliser over all of it."""
    settings = dict(TINY, normalize_obs=True, normalize_reward=True, seed=2)
    local = PPO("envs:FixedEpisodeEnv", verbose=0, **settings)
    remote = PPO("envs:FixedEpisodeEnv", verbose=0, backend="ray", num_workers=2, **settings)
    try:
        local.learn(256)
        remote.learn(256)
        for a, b in ((local.obs_norm.rms, remote.obs_norm.rms), (local.reward_scaler.rms, remote.reward_scaler.rms)):
            for key in ("mean", "var", "count"):
                torch.testing.assert_close(getattr(a, key), getattr(b, key), rtol=1e-10, atol=1e-10)
        assert float(remote.obs_norm.rms.count) == pytest.approx(256, abs=1e-3)
        torch.testing.assert_close(local.reward_scaler.returns, remote.reward_scaler.returns)
    finally:
        local.close()
        remote.close()


def test_workers_map_actions_onto_the_bounds_as_the_learner_does(local_ray):
    """scale_actions travels in the config: a worker's Gaussian over [0, 10] starts mid-range with std 5 too."""
    settings = dict(TINY, env_kwargs={"low": 0.0, "high": 10.0}, seed=3)
    model = PPO("envs:BoundedActionEnv", verbose=0, backend="ray", num_workers=2, **settings)
    try:
        assert model.policy.actor.scaled
        model.rollout()
        acts = model.buffer.acts.flatten()
        assert 3.5 < float(acts.mean()) < 6.5 and 3.5 < float(acts.std()) < 6.5  # unmapped: about 0 and 1
    finally:
        model.close()


def test_same_seed_and_worker_count_reproduce_the_weights(local_ray):
    def train(seed):
        model = PPO("Pendulum-v1", verbose=0, backend="ray", num_workers=2, seed=seed, normalize_obs=True, **TINY)
        try:
            model.learn(256)
        finally:
            model.close()
        return torch.cat([p.detach().flatten() for p in model.actor.parameters()])

    first, again, other = train(3), train(3), train(4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_workers_build_the_env_with_its_kwargs_wrappers_and_every_space(local_ray):
    # one model at a time: each holds its 2 workers, and the module's Ray has 2 CPUs; the wrapper adds the time
    # to the observation (2 + 1 entries), which a worker that did not wrap would not match
    wrappers = [{"gymnasium.wrappers.TimeLimit": {"max_episode_steps": 50}}, "gymnasium.wrappers.TimeAwareObservation"]
    timed = {"env_kwargs": {"length": 5}, "env_wrapper": wrappers}
    model = PPO("envs:FixedEpisodeEnv", verbose=0, backend="ray", num_workers=2, **timed, **TINY)
    try:
        model.learn(256)
        assert model.recent_episode_metrics()["mean_length"] == 5 and model.obs_spec.dim == 3
    finally:
        model.close()
    model = PPO("envs:MultiDiscreteActionEnv", verbose=0, backend="ray", num_workers=2, **TINY)
    try:
        model.learn(256)
        assert model.buffer.acts.dtype == torch.int64 and model.buffer.acts.shape == (32, 4, 2)
        assert model.obs_spec.dim == 3 + 4  # the MultiDiscrete observation as two one-hots
    finally:
        model.close()


def test_workers_collect_uint8_images_and_action_masks(local_ray):
    model = PPO("envs:BrightPixelEnv", verbose=0, backend="ray", num_workers=2, **TINY)
    try:
        model.learn(256)
        frames = model.buffer.obs["image"]
        assert frames.dtype == torch.uint8 and frames.shape == (32, 4, 3, 7, 7) and frames.max() == 255
    finally:
        model.close()
    model = PPO("envs:MaskedChoiceEnv", verbose=0, backend="ray", num_workers=2, **TINY)  # invalid actions raise
    try:
        model.learn(256)
        assert model.buffer.masks.shape == (32, 4, 5)
        assert model.buffer.masks.gather(-1, model.buffer.acts.unsqueeze(-1)).all()
    finally:
        model.close()


def test_killed_worker_is_restarted_and_its_slice_recollected(local_ray, tmp_path, caplog):
    settings = dict(TINY, n_steps=50, num_envs=2, batch_size=50, checkpoint_every=0)
    model = PPO("envs:SlowFixedEpisodeEnv", verbose=0, backend="ray", num_workers=2, run_dir=tmp_path, **settings)
    victim = model.workers.worker_pids()[1]
    # Each rollout takes >= 0.25 s (50 steps of 5 ms): the kill lands while training runs, mostly mid-rollout.
    killer = threading.Timer(0.4, os.kill, (victim, signal.SIGKILL))
    try:
        with caplog.at_level(logging.WARNING, logger="ppolearn.distributed"):
            killer.start()
            model.learn(800)
        assert model.num_timesteps == 800 and model.num_updates == 8  # no slice was dropped
        assert model.workers.restarts >= 1
        assert victim not in model.workers.worker_pids()
    finally:
        killer.cancel()
        model.close()
    assert "worker 1 died" in caplog.text and "restarted" in caplog.text
    with (tmp_path / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and int(rows[-1]["worker_restarts"]) >= 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster():
    """A one-node cluster of its own, on loopback: `ray start --head --block`, ended by signalling that process.

    Not `ray stop`: that stops every Ray process on the machine, a user's own cluster or another job's included.
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # this test's driver joins the cluster instead of the module's local Ray
        ray.shutdown()
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    # Ray >= 2.5x protects clusters with a token that `ray start` writes to ~/.ray/auth_token; the driver then
    # needs token mode too (older Ray ignores the variable).
    env = dict(os.environ, PYTHONPATH=WORKER_PATH, RAY_AUTH_MODE="token")
    start = [ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2"]
    start += ["--include-dashboard=false", "--disable-usage-stats", "--block"]
    head = subprocess.Popen(start, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:  # the head's GCS answers on the port once the cluster is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`ray start --head` did not come up (exit code {head.poll()})")
                time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        head.send_signal(signal.SIGTERM)  # --block: the head takes its own processes down with it
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()


def test_cli_trains_through_a_ray_cluster_address(ray_cluster, tmp_path):
    address, env = ray_cluster
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "ppolearn", "train", "--env", "Pendulum-v1", "--backend", "ray"]
    cmd += ["--num-workers", "2", "--ray-address", address, "--total-timesteps", "256", "--run-dir", str(run_dir)]
    cmd += ["--quiet", "--set", "n_steps=32", "--set", "num_envs=4", "--set", "eval_episodes=1"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run_dir / "model.pt").is_file() and (run_dir / "eval.json").is_file()
    assert "backend: ray" in (run_dir / "config.yaml").read_text()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_learner_with_cpu_workers(local_ray):
    model = PPO("Pendulum-v1", verbose=0, backend="ray", num_workers=2, device="cuda", normalize_obs=True, **TINY)
    try:
        model.learn(256)
        assert next(model.actor.parameters()).is_cuda and model.buffer.obs.is_cuda
        assert model.obs_norm.rms.mean.is_cuda
    finally:
        model.close()
