"""Property-based checks: whatever configuration or command line comes in, the result is a run or one
clear error line, never a traceback."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppolearn import PPO, PPOConfig
from ppolearn import run as run_module
from ppolearn.cli import main
from ppolearn.config import build_config, field_names
from ppolearn.errors import ConfigError
from ppolearn.evaluation import Episode, summarize

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(string.printable, max_size=12),
    st.lists(st.integers(-5, 300), max_size=4),
)
keys = st.one_of(st.sampled_from(field_names()), st.text(string.ascii_letters + "_", min_size=1, max_size=15))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_any_config_is_valid_or_one_clear_config_error(raw):
    try:
        cfg = build_config(raw)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(cfg, PPOConfig)


flag_values = st.one_of(
    st.sampled_from(["0", "1", "-3", "1e3", "abc", "", "CartPole-v1", "NoSuch-v0", "cuda", "cpu", "nan"]),
    st.text(string.ascii_letters + string.digits + "=-_.:/[]", max_size=10),
)
set_pairs = st.builds(lambda k, v: f"{k}={v}", st.sampled_from(field_names() + ["bogus"]), flag_values)
train_flags = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["--total-timesteps", "--seed", "--num-envs", "--device", "--env"]), flag_values),
        st.tuples(st.just("--set"), set_pairs),
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(train_flags)
def test_any_train_command_line_runs_or_fails_in_one_line(monkeypatch, capsys, tmp_path, flags):
    started = []
    monkeypatch.chdir(tmp_path)  # the default run directories are created under ./runs
    monkeypatch.setattr(run_module, "train", lambda env, cfg, run_dir, quiet, **kw: started.append(cfg) or _FAKE_RESULT)
    argv = ["train", "--env", "CartPole-v1"] + [part for pair in flags for part in pair]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors exit through SystemExit
        code = exc.code
    err = capsys.readouterr().err.strip()
    if code == 0:
        assert len(started) == 1 and isinstance(started[0], PPOConfig)
    else:
        assert len(err.splitlines()) == 1 and err.startswith("ppolearn: ") and "Traceback" not in err
        assert "internal error" not in err


_FAKE_RESULT = summarize([Episode(0.0, 1, None, None)], "CartPole-v1", seed=10_000)  # what run.train returns

small_configs = st.fixed_dictionaries(
    {
        "n_steps": st.integers(1, 16),
        "num_envs": st.integers(1, 3),
        "n_epochs": st.integers(1, 3),
        "gamma": st.floats(0.01, 1.0),
        "gae_lambda": st.floats(0.0, 1.0),
        "clip_range": st.floats(0.01, 0.99),
        "clip_range_vf": st.one_of(st.none(), st.floats(0.01, 10)),
        "ent_coef": st.floats(0, 0.1),
        "target_kl": st.one_of(st.none(), st.floats(1e-4, 1)),
        "normalize_advantage": st.booleans(),
        "normalize_obs": st.booleans(),
        "normalize_reward": st.booleans(),
        "anneal_lr": st.booleans(),
        "net_arch": st.lists(st.integers(1, 8), min_size=1, max_size=2),
        "activation": st.sampled_from(["tanh", "relu", "elu"]),
    }
)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@settings(max_examples=15, deadline=None)
@given(cfg=small_configs, minibatches=st.integers(1, 4))
def test_every_valid_small_config_trains(env_id, cfg, minibatches):
    rollout = cfg["n_steps"] * cfg["num_envs"]
    cfg["batch_size"] = rollout // minibatches if rollout % minibatches == 0 else rollout
    model = PPO(env_id, verbose=0, **cfg)
    model.learn(rollout * 2)
    assert model.num_timesteps == rollout * 2
    model.close()
