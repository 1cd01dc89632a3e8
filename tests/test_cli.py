import json
import subprocess
import sys

import pytest

from ppolearn.cli import main

TINY = ["--set", "n_steps=32", "batch_size=32", "--set", "n_epochs=2", "net_arch=[16]"]  # pairs after one --set too


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "pendulum"
    args = ["train", "--env", "Pendulum-v1", "--total-timesteps", "256", "--num-envs", "2", "--seed", "1"]
    assert main([*args, *TINY, "--set", "eval_episodes=2", "--run-dir", str(run_dir), "--quiet"]) == 0
    return run_dir


def test_train_writes_a_complete_run_dir(pendulum_run):
    names = {p.name for p in pendulum_run.iterdir()}
    assert {"config.yaml", "model.pt", "checkpoints", "metrics.csv", "tb", "learning_curve.png", "eval.json"} <= names
    header = (pendulum_run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["step", "time_s"]
    assert {"mean_return", "success_rate", "actor_loss", "critic_loss", "approx_kl", "clip_fraction"} <= set(header)
    assert {"explained_variance", "sps", "entropy", "learning_rate"} <= set(header)
    assert len((pendulum_run / "metrics.csv").read_text().splitlines()) == 1 + 4  # one row per update
    assert any((pendulum_run / "tb").iterdir())
    result = json.loads((pendulum_run / "eval.json").read_text())
    assert result["env"] == "Pendulum-v1" and result["episodes"] == 2
    config = (pendulum_run / "config.yaml").read_text()
    assert "env: Pendulum-v1" in config and "gamma: 0.9" in config  # the preset was applied


def test_eval_json_is_exactly_one_object(pendulum_run, capsys):
    assert main(["eval", str(pendulum_run), "--json", "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    keys = {"env", "episodes", "seeds", "mean_return", "std_return", "return_ci95", "mean_length", "success_rate"}
    keys |= {"success_ci95", "mean_steps_to_success", "episode_returns", "episode_lengths", "episode_successes"}
    assert keys <= set(result)
    assert result["episodes"] == 3 and result["mean_length"] == 200 and result["seeds"] == [10_000, 10_002]
    assert len(result["episode_returns"]) == 3 and result["return_ci95"][0] <= result["mean_return"]
    assert result["success_rate"] is not None  # the Pendulum-v1 preset's pendulum_upright criterion


def test_eval_is_deterministic_and_stochastic_differs(pendulum_run, capsys):
    main(["eval", str(pendulum_run), "--json", "--episodes", "2"])
    main(["eval", str(pendulum_run), "--json", "--episodes", "2"])
    main(["eval", str(pendulum_run), "--json", "--episodes", "2", "--stochastic"])
    a, b, c = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert a == b and a["mean_return"] != c["mean_return"]


def test_eval_on_another_env_with_other_spaces_is_refused(pendulum_run, capsys):
    assert main(["eval", str(pendulum_run), "--env", "CartPole-v1"]) == 2
    assert "other observation or action spaces" in capsys.readouterr().err


def test_render_and_plot(pendulum_run, tmp_path):
    gif, png = tmp_path / "p.gif", tmp_path / "c.png"
    assert main(["render", str(pendulum_run), "--out", str(gif)]) == 0
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a") and gif.stat().st_size < 2_000_000
    assert main(["plot", str(pendulum_run), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_drawn_beside_the_evaluation_is_written_or_its_failure_raised(pendulum_run, tmp_path):
    from ppolearn.errors import PPOLearnError
    from ppolearn.plots import CurvePlotter

    png = tmp_path / "beside.png"
    assert CurvePlotter().draw(pendulum_run / "metrics.csv", png)() == png and png.read_bytes()[:4] == b"\x89PNG"
    wait = CurvePlotter().draw(tmp_path / "missing.csv", tmp_path / "never.png")
    with pytest.raises(PPOLearnError, match="no metrics.csv at"):
        wait()
    assert not (tmp_path / "never.png").exists()
    unused = CurvePlotter()  # training failed: closed without drawing, the child ends
    child = unused._child
    unused.close()
    assert child is None or not child.is_alive()


def test_presets_lists_and_shows(capsys):
    assert main(["presets"]) == 0
    assert "Pendulum-v1" in capsys.readouterr().out.split()
    assert main(["presets", "--show", "CartPole-v1"]) == 0
    assert "n_steps: 32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
        (["train", "--env", "CartPole-v1", "--set", "gamma=2"], "gamma=2.0 is not allowed"),
        (["train", "--env", "CartPole-v1", "--set", "gama=0.9"], "did you mean 'gamma'"),
        (["train", "--env", "CartPole-v1", "--config", "/no/such.yaml"], "does not exist"),
        (["train"], "train needs --env"),
        (["eval", "/no/such/run"], "run directory '/no/such/run' does not exist"),
        (["render", "/no/such/run"], "does not exist"),
        (["plot", "/no/such/run"], "does not exist"),
        (["presets", "--show", "Nope-v0"], "no preset for 'Nope-v0'"),
        (["train", "--resume", "/no/such/run"], "no checkpoint"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_real_process_unknown_env_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "ppolearn", "train", "--env", "NoSuchEnv-v0"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "ppolearn: error: unknown environment 'NoSuchEnv-v0' (see gymnasium.pprint_registry() for the ids)"
    ]


def test_real_process_ends_quickly_with_every_file_and_line_written(tmp_path):
    """The command skips the interpreter's tear-down: nothing it printed or wrote may be lost to that."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "ppolearn", "train", "--env", "Pendulum-v1", "--total-timesteps", "128"]
    cmd += ["--num-envs", "2", *TINY, "eval_episodes=3", "--run-dir", str(run_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "over 3 episodes" in proc.stdout and proc.stdout.endswith("\n")
    assert json.loads((run_dir / "eval.json").read_text())["episodes"] == 3
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 1 + 2
