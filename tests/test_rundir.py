"""A run is never lost: an occupied run directory is refused (or moved aside on request), a directory being
trained into is held by an OS lock that dies with its process, and default directories never collide."""

import gc
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_faults import _start_training, _wait_for_rows

from ppolearn import PPO
from ppolearn.checkpoint import list_checkpoints, safe_load
from ppolearn.cli import main
from ppolearn.errors import EnvError, RunDirError
from ppolearn.rundir import LOCK_FILE, artefacts, claim, make_default_run_dir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the lock needs fcntl")

TINY = ["--set", "n_steps=32", "--set", "batch_size=32", "--set", "n_epochs=1", "--set", "net_arch=[16]"]
TRAIN = ["train", "--env", "CartPole-v1", "--total-timesteps", "64", "--num-envs", "2", *TINY, "--quiet"]
TINY_PPO = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 1, "net_arch": [16]}

# Holds DIR/.lock as ppolearn does, from another process, until its stdin closes.
HOLDER = (
    "import fcntl, os, sys\n"
    "fd = os.open(os.path.join(sys.argv[1], '.lock'), os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode())\n"
    "print('held', flush=True); sys.stdin.read()\n"
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    assert main([*TRAIN, "--set", "eval_episodes=1", "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


@pytest.fixture
def held_elsewhere(tmp_path):
    """A function that holds a directory's lock from another process; returns that process's PID."""
    holders = []

    def hold(directory: Path) -> int:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(directory)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        holders.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc.pid

    yield hold
    for proc in holders:
        proc.stdin.close()
        proc.wait(timeout=30)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ppolearn: error: "), err
    return err[0]


def test_training_into_a_finished_run_is_refused_and_changes_nothing(run_copy, capsys):
    before = {p.relative_to(run_copy): p.read_bytes() for p in run_copy.rglob("*") if p.is_file()}
    assert main([*TRAIN[:2], "Pendulum-v1", *TRAIN[3:], "--run-dir", str(run_copy)]) == 2
    line = _one_error_line(capsys)
    assert f"run directory '{run_copy}' already holds a run (model.pt, checkpoints/, metrics.csv, ...)" in line
    assert f"--resume {run_copy}" in line and "another --run-dir" in line and "--overwrite" in line
    after = {p.relative_to(run_copy): p.read_bytes() for p in run_copy.rglob("*") if p.is_file()}
    assert after == before  # model.pt byte for byte, metrics.csv, config.yaml, the lock file's PID too


def test_real_process_refusal_is_one_line_exit_2(run_copy):
    cmd = [sys.executable, "-m", "ppolearn", *TRAIN, "--run-dir", str(run_copy)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "already holds a run" in proc.stderr


@pytest.mark.parametrize(
    "leftover", ["model.pt", "checkpoints/step_000000000064.pt", "metrics.csv", "config.yaml", "eval.json"]
)
def test_any_run_artefact_makes_a_directory_occupied(tmp_path, leftover):
    (tmp_path / leftover).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / leftover).write_text("x")
    assert artefacts(tmp_path)
    with pytest.raises(RunDirError, match="already holds a run"):
        claim(tmp_path, fresh=True)
    with claim(tmp_path, fresh=False):  # resuming it is fine
        pass


def test_new_empty_or_unrelated_directories_are_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("mine")
    (tmp_path / "notes" / LOCK_FILE).write_text("12345")  # left by a run that ended: means nothing
    for name in ("new", "empty", "notes"):
        with claim(tmp_path / name, fresh=True) as held:
            assert held.locked and held.moved_to is None
    assert (tmp_path / "notes" / "README.txt").read_text() == "mine"


def test_overwrite_moves_the_old_run_aside_says_where_and_trains(run_copy, capsys):
    old_model = (run_copy / "model.pt").read_bytes()
    args = [*TRAIN[:2], "Pendulum-v1", *TRAIN[3:], "--set", "eval_episodes=1", "--run-dir", str(run_copy)]
    assert main([*args, "--overwrite"]) == 0
    aside = run_copy.parent / "run.old-1"
    assert f"ppolearn: moved the earlier run in '{run_copy}' to '{aside}'" in capsys.readouterr().err
    assert (aside / "model.pt").read_bytes() == old_model and "CartPole-v1" in (aside / "config.yaml").read_text()
    assert safe_load(run_copy / "model.pt")["env_id"] == "Pendulum-v1"
    assert len((run_copy / "metrics.csv").read_text().splitlines()) == 1 + 1  # the new run's rows only
    assert main([*args, "--overwrite"]) == 0  # again: the next free name, nothing replaced
    assert (run_copy.parent / "run.old-2" / "model.pt").is_file() and (aside / "model.pt").read_bytes() == old_model


def test_overwrite_from_python(run_copy):
    model = PPO("CartPole-v1", run_dir=run_copy, overwrite=True, verbose=0, **TINY_PPO)
    try:
        assert not (run_copy / "model.pt").exists() and (run_copy.parent / "run.old-1" / "model.pt").is_file()
    finally:
        model.close()
    with pytest.raises(RunDirError, match="already holds a run"):
        PPO("CartPole-v1", run_dir=run_copy.parent / "run.old-1", verbose=0, **TINY_PPO)


def test_overwrite_with_resume_is_refused(run_copy, capsys):
    assert main(["train", "--resume", str(run_copy), "--overwrite"]) == 2
    assert "--overwrite starts a new run" in _one_error_line(capsys)


def test_a_held_directory_is_refused_with_the_holder_pid_and_stays_readable(run_copy, tmp_path, held_elsewhere, capsys):
    pid = held_elsewhere(run_copy)
    model_before = (run_copy / "model.pt").read_bytes()
    assert main(["train", "--resume", str(run_copy), "--total-timesteps", "128", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert f"run directory '{run_copy}' is in use by process {pid}" in line
    assert main([*TRAIN, "--run-dir", str(run_copy), "--overwrite"]) == 2  # not even moved aside
    assert f"in use by process {pid}" in _one_error_line(capsys)
    assert not (run_copy.parent / "run.old-1").exists() and (run_copy / "model.pt").read_bytes() == model_before

    empty = tmp_path / "empty"
    empty.mkdir()
    held_elsewhere(empty)
    assert main([*TRAIN, "--run-dir", str(empty)]) == 2
    assert "is in use by process" in _one_error_line(capsys)

    # readers take no lock
    assert main(["eval", str(run_copy), "--episodes", "1", "--json"]) == 0
    assert main(["plot", str(run_copy), "--out", str(tmp_path / "curve.png")]) == 0
    assert main(["render", str(run_copy), "--out", str(tmp_path / "p.gif")]) == 0


def test_a_model_holds_its_run_dir_until_close(tmp_path):
    model = PPO("CartPole-v1", run_dir=tmp_path, verbose=0, checkpoint_every=1, **TINY_PPO)
    model.learn(64)
    checkpoint = list_checkpoints(tmp_path / "checkpoints")[-1]
    with pytest.raises(RunDirError, match=rf"in use by this process \(PID {os.getpid()}\): close\(\) the model"):
        PPO.load(checkpoint, env="CartPole-v1", run_dir=tmp_path, verbose=0)
    model.close()
    resumed = PPO.load(checkpoint, env="CartPole-v1", run_dir=tmp_path, verbose=0)
    del resumed  # dropping the model releases it too
    gc.collect()
    with claim(tmp_path, fresh=False):
        pass


def test_a_model_that_fails_to_build_holds_nothing(tmp_path):
    with pytest.raises(EnvError):
        PPO("NoSuchEnv-v0", run_dir=tmp_path, verbose=0)
    with claim(tmp_path, fresh=True):
        pass


def _wait_for(started, stop) -> None:
    started.set()
    stop.wait(60)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_children_do_not_keep_the_lock(tmp_path):
    held = claim(tmp_path, fresh=True)
    ctx = multiprocessing.get_context("fork")
    started, stop = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_wait_for, args=(started, stop))  # as a forked env worker, alive after its learner
    child.start()
    assert started.wait(60)  # past the fork handlers
    try:
        held.release()
        with claim(tmp_path, fresh=False):
            pass
    finally:
        stop.set()
        child.join(timeout=60)


def test_after_sigkill_resume_works_at_once(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start_training(run_dir, ["--set", "vec_env=async"])  # forked env workers must not keep the lock
    _wait_for_rows(run_dir, 2, proc)
    proc.kill()  # SIGKILL: no handler, no clean-up
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    step = int(safe_load(list_checkpoints(run_dir / "checkpoints")[-1])["num_timesteps"])
    target = step + 2 * 512
    argv = ["train", "--resume", str(run_dir), "--total-timesteps", str(target), "--quiet"]
    assert main(argv) == 0
    assert int(safe_load(run_dir / "model.pt")["num_timesteps"]) == target
    steps = [int(r.split(",")[0]) for r in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(512, target + 1, 512))  # no duplicated or out-of-order rows


def test_default_run_dirs_count_up(tmp_path):
    root = tmp_path / "runs"
    first = make_default_run_dir("ppolearn/Pendulum-v1", 3, root)
    assert first == root / "ppolearn_Pendulum-v1_s3_1" and first.is_dir()
    (root / "ppolearn_Pendulum-v1_s3_7").mkdir()
    (root / "ppolearn_Pendulum-v1_s3_9.old-1").mkdir()  # not a default name
    assert make_default_run_dir("ppolearn/Pendulum-v1", 3, root).name == "ppolearn_Pendulum-v1_s3_8"
    assert make_default_run_dir("ppolearn/Pendulum-v1", 4, root).name == "ppolearn_Pendulum-v1_s4_1"


def _make_defaults(root: str, count: int, queue) -> None:
    queue.put([str(make_default_run_dir("CartPole-v1", 0, root)) for _ in range(count)])


def test_default_run_dirs_are_unique_when_started_at_once(tmp_path):
    root = tmp_path / "runs"
    made, barrier = [], threading.Barrier(12)

    def make() -> None:
        barrier.wait()
        made.append(make_default_run_dir("CartPole-v1", 0, root))

    threads = [threading.Thread(target=make) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 12

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_make_defaults, args=(str(root), 5, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    from_procs = [name for _ in procs for name in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert len(set(from_procs)) == 20
    names = sorted(p.name for p in root.iterdir())
    assert names == sorted(f"CartPole-v1_s0_{n}" for n in range(1, 33))


def test_a_failed_train_leaves_no_default_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--env", "envs:NoSuchClass"]) == 2
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
