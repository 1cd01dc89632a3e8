"""`ppolearn tune`: tiny studies (seconds) on CartPole and the hand-made environments of tests/envs.py."""

import csv

import pytest
import yaml

pytest.importorskip("optuna")

import envs  # noqa: E402

from ppolearn.cli import main  # noqa: E402
from ppolearn.tune import load_study_summary, run_trial, trial_config, tune  # noqa: E402
from ppolearn.tune_space import fit_to_budget, load_space, space_specs, to_config_values  # noqa: E402

# a space of tiny networks and short rollouts: a trial trains in well under a second
TINY_SPACE = {"n_steps": [16, 32], "n_minibatches": [1, 2], "net_width": [16], "n_epochs": 2}
QUICK = ["--budget", "512", "--seeds", "2", "--episodes", "5", "--evals", "2", "--quiet"]


def write_space(path, space):
    path.write_text(yaml.safe_dump(space))
    return str(path)


@pytest.fixture(scope="module")
def cartpole_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    space = write_space(root / "space.yaml", TINY_SPACE)
    study = root / "study"
    args = ["tune", "--env", "CartPole-v1", "--trials", "3", "--space", space, "--study-dir", str(study), *QUICK]
    assert main(args) == 0
    return study


def test_study_writes_best_yaml_that_train_takes(cartpole_study, tmp_path):
    names = {p.name for p in cartpole_study.iterdir()}
    assert {"study.db", "best.yaml", "trials.csv", "trials.md", "history.png", "best_curve.png"} <= names
    best = yaml.safe_load((cartpole_study / "best.yaml").read_text())
    assert best["total_timesteps"] == 512 and best["net_arch"] == [16, 16] and best["n_epochs"] == 2
    assert (best["n_steps"] * best["num_envs"]) % best["batch_size"] == 0
    run_dir = tmp_path / "run"
    config = str(cartpole_study / "best.yaml")
    args = ["train", "--env", "CartPole-v1", "--config", config, "--run-dir", str(run_dir), "--quiet"]
    assert main([*args, "--set", "eval_episodes=2"]) == 0
    trained = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert {k: trained[k] for k in best} == best
    rows = list(csv.DictReader((cartpole_study / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["complete"] * 3
    assert (cartpole_study / "trials.md").read_text().startswith("| trial | success_rate |")


def test_resumed_study_keeps_its_trials_and_adds_more(cartpole_study, capsys):
    before = load_study_summary(cartpole_study)
    summary = tune("CartPole-v1", trials=1, study_dir=cartpole_study, resume=True, quiet=True)
    after = load_study_summary(cartpole_study)
    assert after["trials"] == before["trials"] + 1 == summary["trials"]
    assert after["settings"] == before["settings"]  # the budget, seeds and space it was started with
    assert len(list(csv.DictReader((cartpole_study / "trials.csv").open()))) == after["trials"]
    # a study is never started over by accident, nor resumed with other settings
    assert main(["tune", "--env", "CartPole-v1", "--study-dir", str(cartpole_study), "--quiet"]) == 2
    assert "already holds a study" in capsys.readouterr().err
    args = ["tune", "--env", "CartPole-v1", "--study-dir", str(cartpole_study), "--resume", "--budget", "1024"]
    assert main(args) == 2
    assert "started with budget=512" in capsys.readouterr().err


def test_resume_refuses_when_the_preset_or_defaults_changed(cartpole_study, monkeypatch, capsys):
    """Trials start from the preset over the defaults of the ppolearn running them: a study begun under
    other settings would mix incomparable trials, so resume names what changed and stops."""
    import dataclasses
    import importlib

    tune_module = importlib.import_module("ppolearn.tune")  # the module (ppolearn.tune is also the function)

    before = load_study_summary(cartpole_study)["trials"]
    real = tune_module.resolve_config
    changed = lambda *args: dataclasses.replace(real(*args), n_epochs=7)  # noqa: E731 - a new default
    monkeypatch.setattr(tune_module, "resolve_config", changed)
    assert main(["tune", "--env", "CartPole-v1", "--study-dir", str(cartpole_study), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "n_epochs 20 -> 7" in err and "start another study" in err and len(err.strip().splitlines()) == 1
    assert load_study_summary(cartpole_study)["trials"] == before  # nothing was added


def test_env_kwargs_and_wrappers_build_every_trial_and_go_into_best_yaml(tmp_path, capsys):
    space = write_space(tmp_path / "space.yaml", TINY_SPACE)
    study = tmp_path / "study"
    wrapper = "gymnasium.wrappers.TimeAwareObservation"  # needs the time limit the kwargs below do not remove
    args = ["tune", "--env", "envs:FixedEpisodeEnv", "--env-kwargs", "length:6", "truncate:true"]
    args += ["--env-wrapper", "gymnasium.wrappers.FlattenObservation", "--objective", "mean_return"]
    assert main([*args, "--trials", "1", "--space", space, "--study-dir", str(study), *QUICK]) == 0
    best = yaml.safe_load((study / "best.yaml").read_text())
    assert best["env_kwargs"] == {"length": 6, "truncate": True}
    assert best["env_wrapper"] == ["gymnasium.wrappers.FlattenObservation"]
    settings = load_study_summary(study)["settings"]
    assert trial_config(settings, {}, 0).env_kwargs == {"length": 6, "truncate": True}
    figures = list(csv.DictReader((study / "trials.csv").open()))
    assert float(figures[0]["figure"]) == 6.0  # reward 1 per step for the 6 steps the kwargs give
    # resumed: the same arguments may be given again, others may not
    resume = ["tune", "--env", "envs:FixedEpisodeEnv", "--study-dir", str(study), "--resume", "--trials", "1"]
    assert main([*resume, "--env-kwargs", "length:6", "truncate:true", "--quiet"]) == 0
    assert main([*resume, "--env-wrapper", wrapper, "--quiet"]) == 2
    assert "started with env_wrapper=" in capsys.readouterr().err


def test_crashing_trial_is_recorded_failed_and_the_study_goes_on(tmp_path):
    envs.CrashOnceEnv.crashes_left = 1
    space = write_space(tmp_path / "space.yaml", TINY_SPACE)
    study = tmp_path / "study"
    args = ["tune", "--env", "envs:CrashOnceEnv", "--trials", "2", "--space", space, "--study-dir", str(study)]
    assert main([*args, *QUICK]) == 0
    assert load_study_summary(study)["states"] == ["FAIL", "COMPLETE"]
    rows = list(csv.DictReader((study / "trials.csv").open()))
    assert "simulator crashed once" in rows[0]["fail_reason"] and rows[1]["fail_reason"] == ""
    assert yaml.safe_load((study / "best.yaml").read_text())["total_timesteps"] == 512


def test_a_study_where_every_trial_fails_says_why_in_one_line(tmp_path, capsys):
    space = write_space(tmp_path / "space.yaml", TINY_SPACE)
    args = ["tune", "--env", "envs:ExplodingEnv", "--trials", "2", "--space", space, "--study-dir", str(tmp_path / "s")]
    assert main([*args, *QUICK]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no trial" in err and "simulator exploded" in err


@pytest.mark.parametrize(
    "space, message",
    [
        ({"learning_rte": [1e-3]}, "unknown search space key 'learning_rte'; did you mean 'learning_rate'?"),
        ({"learning_rate": {"low": 1e-3, "high": 1e-4}}, "empty range: low=0.001 must be below high=0.0001"),
        ({"gamma": {"low": 0.9}}, "a range is {low: L, high: H}"),
        ({"gamma": []}, "empty list of choices"),
        ({"gamma": [[0.9, 0.99]]}, "a choice must be a single value"),
        ({"gamma": [1.5]}, "gamma=1.5 is not allowed"),
        ({"batch_size": [64]}, "search n_minibatches instead"),
        ({"anneal_lr": {"low": 0, "high": 1}}, "give choices [false, true]"),
        ([1, 2], "must hold a mapping of key: value, not list"),
    ],
)
def test_bad_space_file_is_one_line_and_exit_2(tmp_path, capsys, space, message):
    path = write_space(tmp_path / "space.yaml", space)
    args = ["tune", "--env", "CartPole-v1", "--space", path, "--study-dir", str(tmp_path / "s"), *QUICK]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "s").exists()  # nothing created for a study that cannot start


def test_budget_below_one_rollout_is_one_line_and_exit_2(tmp_path, capsys):
    path = write_space(tmp_path / "space.yaml", TINY_SPACE)
    args = ["tune", "--env", "CartPole-v1", "--space", path, "--study-dir", str(tmp_path / "s"), "--budget", "100"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget 100 is smaller than one rollout: n_steps=16 * num_envs=8 = 128" in err


def test_missing_space_file_and_nothing_to_resume(tmp_path, capsys):
    assert main(["tune", "--env", "CartPole-v1", "--space", str(tmp_path / "none.yaml")]) == 2
    assert f"space file '{tmp_path / 'none.yaml'}' does not exist" in capsys.readouterr().err
    assert main(["tune", "--env", "CartPole-v1", "--study-dir", str(tmp_path / "s"), "--resume"]) == 2
    assert "no study to resume" in capsys.readouterr().err


def test_space_keeps_batch_size_a_divisor_and_fits_the_budget():
    space = fit_to_budget(load_space({"n_steps": [16, 32, 64, 100]}), budget=512, num_envs=8)
    assert space_specs(space)["n_steps"] == [16, 32, 64]  # 100 * 8 > 512: never drawn
    base = trial_config(
        {"env": "CartPole-v1", "budget": 512, "evals": 2, "episodes": 5, "target": None},
        {"n_steps": 25, "n_minibatches": 3, "net_width": 8, "net_depth": 3},
        seed=0,
    )
    assert base.net_arch == [8, 8, 8] and base.rollout_size == 200 and base.batch_size == 50  # 66 -> divisor 50
    assert to_config_values({"n_steps": 32, "n_minibatches": 64}, base)["batch_size"] == 4  # 256 / 64


def test_a_trial_behind_the_others_is_pruned_at_an_evaluation(tmp_path):
    import optuna

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    settings = {
        "env": "CartPole-v1",
        "budget": 512,
        "seeds": 2,
        "objective": "mean_return",
        "episodes": 5,
        "evals": 4,
        "target": None,
        "space": space_specs(load_space(TINY_SPACE)),
    }
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(lambda trial: run_trial(trial, settings), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    # the first evaluation, after one or two rollouts of 128 steps: 1/4 or 2/4 of seed 0's budget
    assert trial.last_step in (1, 2)
    assert trial.user_attrs["pruned_at"] in ("step 128 of seed 0", "step 256 of seed 0")


@pytest.mark.slow
def test_two_jobs_run_trials_in_parallel_processes(tmp_path):
    space = write_space(tmp_path / "space.yaml", TINY_SPACE)
    study = tmp_path / "study"
    args = ["tune", "--env", "CartPole-v1", "--trials", "4", "--jobs", "2", "--space", space]
    assert main([*args, "--study-dir", str(study), *QUICK]) == 0
    assert load_study_summary(study)["states"].count("COMPLETE") == 4


@pytest.mark.slow
def test_ray_backend_runs_trials_as_ray_tasks(tmp_path):
    pytest.importorskip("ray")
    space = write_space(tmp_path / "space.yaml", TINY_SPACE)
    study = tmp_path / "study"
    args = ["tune", "--env", "CartPole-v1", "--trials", "2", "--jobs", "2", "--backend", "ray", "--space", space]
    assert main([*args, "--study-dir", str(study), *QUICK]) == 0
    assert load_study_summary(study)["states"] == ["COMPLETE", "COMPLETE"]


def test_an_interrupted_study_resumes_with_its_trials(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    space = write_space(tmp_path / "space.yaml", TINY_SPACE)
    study = tmp_path / "study"
    args = ["tune", "--env", "CartPole-v1", "--trials", "100", "--space", space, "--study-dir", str(study)]
    quick = [a for a in QUICK if a != "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # a background job (`make test &` from a non-interactive shell) inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: give the child the default disposition, as a terminal would
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppolearn", *args, *quick],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_sigint,
    )
    for line in proc.stdout:
        if line.startswith("trial 0:"):  # one trial done: stop the study in the middle of the next
            proc.send_signal(signal.SIGINT)
            break
    proc.stdout.read()
    assert proc.wait(timeout=60) == 130
    states = load_study_summary(study)["states"]
    assert states[0] == "COMPLETE" and "RUNNING" not in states
    tune("CartPole-v1", trials=1, study_dir=study, resume=True, quiet=True)
    assert load_study_summary(study)["states"] == [*states, "COMPLETE"]


def test_parameter_importances_are_drawn_once_trials_differ(tmp_path):
    import optuna

    from ppolearn.tune import _plot_importance

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 0, 1) + 0.01 * t.suggest_int("width", 1, 4), n_trials=12)
    assert _plot_importance(study, tmp_path / "importance.png") == tmp_path / "importance.png"
    assert _plot_importance(optuna.create_study(), tmp_path / "importance.png") is None  # no trials: no (stale) plot
    assert not (tmp_path / "importance.png").exists()
