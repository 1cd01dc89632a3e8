"""Evaluation that can be trusted: interval coverage on known distributions, seed blocks that never meet,
parallel episodes equal to sequential ones, and evaluation during training (curve, best model, stop)."""

import json

import numpy as np
import pytest
from envs import FixedEpisodeEnv, StillOrMovingEnv

from ppolearn import PPO, evaluate_policy
from ppolearn.cli import main
from ppolearn.config import build_config
from ppolearn.envs.success import Target
from ppolearn.errors import ConfigError
from ppolearn.evaluation import TEST_SEED, VALIDATION_SEED, check_disjoint, training_seeds
from ppolearn.stats import (
    aggregate_seeds,
    iqm,
    mean_interval,
    stratified_bootstrap_interval,
    t_quantile,
    wilson_interval,
)

TINY = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 2, "net_arch": [16]}


# --- the statistics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("df, exact", [(2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (99, 1.984)])
def test_t_quantile_matches_the_table(df, exact):
    assert t_quantile(0.975, df) == pytest.approx(exact, abs=0.04 if df == 2 else 2e-3)


def test_t_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    for n in (5, 20, 100):  # small samples are where a normal (z) interval would undercover
        samples = rng.normal(3.0, 2.0, size=(2000, n))
        covered = [low <= 3.0 <= high for low, high in map(mean_interval, samples)]
        assert 0.935 <= np.mean(covered) <= 0.965, (n, np.mean(covered))


def test_wilson_interval_covers_near_the_edges():
    rng = np.random.default_rng(1)
    for p in (0.5, 0.9, 0.98):
        wins = rng.binomial(100, p, size=3000)
        covered = [low <= p <= high for low, high in (wilson_interval(w, 100) for w in wins)]
        assert np.mean(covered) >= 0.92, (p, np.mean(covered))  # the normal interval falls to ~0.86 at 0.98
    assert wilson_interval(100, 100)[1] == 1.0 and wilson_interval(100, 100)[0] < 1.0  # never collapses
    assert wilson_interval(0, 100)[0] == 0.0 and wilson_interval(0, 100)[1] > 0.0


def test_iqm_trims_a_quarter_from_each_end_like_scipy():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3..6
    assert iqm([1, 2, 3, 4, 1000]) == pytest.approx(3.0)  # one wild seed of five is trimmed
    assert iqm([7.0]) == 7.0


def test_stratified_bootstrap_interval_contains_the_iqm_and_covers():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(200):  # 10 runs of one task from N(0, 1): the IQM's interval covers the true centre 0
        low, high = stratified_bootstrap_interval(rng.normal(size=10), reps=500, seed=int(rng.integers(1 << 30)))
        covered += low <= 0.0 <= high
    assert covered / 200 >= 0.85  # percentile bootstrap undercovers a little at n = 10, never badly
    scores = rng.normal(size=(5, 3))  # 5 seeds x 3 tasks: resampling stays within each task
    low, high = stratified_bootstrap_interval(scores)
    assert low <= iqm(scores) <= high
    assert stratified_bootstrap_interval(scores) == (low, high)  # seeded: the same scores, the same interval


def test_aggregate_seeds_reports_iqm_interval_and_extremes():
    agg = aggregate_seeds([-150.0, -160.0, -170.0, -300.0, -155.0])
    assert agg["iqm"] == pytest.approx(-161.667, abs=1e-3) and agg["seeds"] == 5
    assert agg["min"] == -300.0 and agg["max"] == -150.0
    assert agg["iqm_ci_low"] <= agg["iqm"] <= agg["iqm_ci_high"]


# --- seeds -----------------------------------------------------------------------------------------------


def test_seed_blocks_are_disjoint_and_overlap_is_refused():
    config = build_config({"seed": 3, "num_envs": 8, "n_steps": 16, "batch_size": 16})
    seen = training_seeds(config, num_timesteps=128 * 10)  # 10 updates: resets from seeds 3 .. 3 + 10 + 7
    assert seen == range(3, 21)
    check_disjoint(config, 1280, TEST_SEED, 100)
    check_disjoint(config, 1280, VALIDATION_SEED, 100)
    assert VALIDATION_SEED >= TEST_SEED + 100_000  # the two evaluation blocks never meet either
    with pytest.raises(ConfigError, match="overlap the training seeds 3..20"):
        check_disjoint(config, 1280, 0, 100)
    with pytest.raises(ConfigError, match="overlap"):
        check_disjoint(config, 1280, 20, 1)
    with pytest.raises(ConfigError, match="evaluation seed -50 is not allowed"):  # Gymnasium refuses it at reset
        check_disjoint(config, 1280, -50, 2)


def test_evaluate_refuses_training_seeds(tmp_path, capsys):
    model = PPO("Pendulum-v1", verbose=0, seed=0, **TINY)
    with pytest.raises(ConfigError, match="overlap the training seeds"):
        evaluate_policy(model, episodes=5, seed=0)


# --- evaluation ------------------------------------------------------------------------------------------


def test_parallel_episodes_equal_sequential_ones():
    model = PPO("Pendulum-v1", verbose=0, seed=1, **TINY)
    model.learn(64)
    one_by_one = evaluate_policy(model, episodes=6, parallel=1)
    side_by_side = evaluate_policy(model, episodes=6, parallel=4)  # slots refill with later seeds
    assert one_by_one["episode_returns"] == pytest.approx(side_by_side["episode_returns"], abs=1e-3)
    assert one_by_one["seeds"] == [TEST_SEED, TEST_SEED + 5]
    low, high = one_by_one["return_ci95"]
    assert low <= one_by_one["mean_return"] <= high


def test_looping_episodes_are_the_timed_out_ones_that_go_round():
    still = PPO(lambda: StillOrMovingEnv(moving=False), verbose=0, seed=0, **TINY)
    result = evaluate_policy(still, lambda: StillOrMovingEnv(moving=False), episodes=4)
    assert result["looping_episodes"] == 4 and result["mean_length"] == 30
    moving = PPO(lambda: StillOrMovingEnv(moving=True), verbose=0, seed=0, **TINY)
    assert evaluate_policy(moving, lambda: StillOrMovingEnv(moving=True), episodes=4)["looping_episodes"] == 0
    ended = PPO(lambda: FixedEpisodeEnv(length=30), verbose=0, seed=0, **TINY)  # terminates: not a time-out
    assert evaluate_policy(ended, lambda: FixedEpisodeEnv(length=30), episodes=2)["looping_episodes"] == 0


def test_success_criterion_travels_from_a_batched_clone_to_the_official_env():
    model = PPO("ppolearn/Pendulum-v1", verbose=0, seed=0, num_envs=4, n_steps=16, batch_size=64)
    assert model.config.success == "pendulum_upright" and model.config.target == "mean_return>=-200"
    result = evaluate_policy(model, "Pendulum-v1", episodes=3)
    assert result["success_rate"] is not None and result["success_ci95"] is not None


def test_target_parses_and_judges():
    target = Target.parse("success_rate>=0.95")
    assert target.reached({"success_rate": 0.95}) and not target.reached({"success_rate": 0.9})
    assert not target.reached({"success_rate": None})
    assert Target.parse(" mean_return > -200 ").reached({"mean_return": -199.0})
    with pytest.raises(ConfigError, match="not understood"):
        Target.parse("return>=-200")
    with pytest.raises(ConfigError, match="target='mean_return=>1'"):
        build_config({"target": "mean_return=>1"})
    with pytest.raises(ConfigError, match="stop_at_target=true needs a target"):
        build_config({"stop_at_target": True})


# --- evaluation during training --------------------------------------------------------------------------


def test_eval_during_training_logs_keeps_best_and_stops_at_target(tmp_path):
    # FixedEpisodeEnv succeeds at the end of every 3-step episode: any policy reaches success_rate >= 0.9
    model = PPO(
        "envs:FixedEpisodeEnv",
        run_dir=tmp_path,
        verbose=0,
        eval_every=64,
        eval_during_episodes=4,
        eval_episodes=10,
        target="success_rate>=0.9",
        stop_at_target=True,
        **TINY,
    )
    model.learn(64 * 20)
    assert model.num_timesteps == 64  # stopped at the first evaluation that confirmed the target
    summary = model.evaluator.summary()
    assert summary["target_reached"]["step"] == 64 and summary["target_reached"]["episodes"] == 10
    assert summary["best_model"]["step"] == 64 and (tmp_path / "best_model.pt").is_file()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert float(rows[1].split(",")[header.index("eval_success_rate")]) == 1.0
    assert any(p.name.startswith("step_") for p in (tmp_path / "checkpoints").iterdir())  # saved at the stop


def test_eval_every_without_an_env_to_copy_is_a_clear_error():
    model = PPO(FixedEpisodeEnv(), verbose=0, eval_every=64, **{**TINY, "num_envs": 1, "batch_size": 32})
    with pytest.raises(ConfigError, match="pass eval_env="):
        model.learn(64)
    model = PPO(
        FixedEpisodeEnv(),
        verbose=0,
        eval_every=32,
        eval_env="envs:FixedEpisodeEnv",
        num_envs=1,
        **{k: v for k, v in TINY.items() if k != "num_envs"},
    )
    model.learn(64)
    assert model.evaluator.best is not None


def test_evaluator_state_survives_a_resume(tmp_path):
    args = ["train", "--env", "envs:FixedEpisodeEnv", "--run-dir", str(tmp_path), "--quiet", "--eval-every", "64"]
    tiny = ["--set", "n_steps=32", "--set", "num_envs=2", "--set", "batch_size=32", "--set", "net_arch=[16]"]
    small = ["--set", "eval_episodes=5", "--set", "eval_during_episodes=2", "--set", "checkpoint_every=1"]
    assert main([*args, *tiny, *small, "--total-timesteps", "128", "--set", "target=success_rate>=0.5"]) == 0
    first = json.loads((tmp_path / "eval.json").read_text())
    assert first["target_reached"]["step"] == 64 and first["reached"] is True
    assert main(["train", "--resume", str(tmp_path), "--total-timesteps", "256", "--quiet"]) == 0
    resumed = json.loads((tmp_path / "eval.json").read_text())
    assert resumed["num_timesteps"] == 256
    assert resumed["target_reached"]["step"] == 64  # when it was first reached, carried through the resume


def test_cli_stop_at_with_a_bad_target_is_one_line(tmp_path, capsys):
    code = main(["train", "--env", "CartPole-v1", "--run-dir", str(tmp_path), "--stop-at", "return>=5", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "target='return>=5' is not allowed" in err
