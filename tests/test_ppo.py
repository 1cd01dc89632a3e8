import gymnasium as gym
import numpy as np
import pytest
import torch
from envs import BoundedActionEnv, FixedEpisodeEnv, GoalDictEnv, SequenceObsEnv

from ppolearn import PPO
from ppolearn.errors import CheckpointError, ConfigError, EnvError

TINY = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 2, "net_arch": [16]}


def test_learn_logs_metrics_and_counts_steps():
    model = PPO("CartPole-v1", verbose=0, **TINY)
    model.learn(256)
    assert model.num_timesteps == 256 and model.num_updates == 4
    stats = model.recent_episode_metrics()
    assert stats["mean_return"] > 0 and stats["mean_length"] > 0


def test_same_seed_gives_identical_metrics_and_weights(tmp_path):
    def train(run):
        model = PPO("Pendulum-v1", seed=3, run_dir=tmp_path / run, verbose=0, **TINY)
        model.learn(320)
        rows = (tmp_path / run / "metrics.csv").read_text().splitlines()
        return [",".join(r.split(",")[2:-1]) for r in rows], model  # drop time_s and sps (wall-clock)

    rows_a, a = train("a")
    rows_b, b = train("b")
    assert rows_a == rows_b and len(rows_a) == 6
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters()):
        assert torch.equal(pa, pb)
    rows_c, _ = (lambda m: ([], m))(PPO("Pendulum-v1", seed=4, verbose=0, **TINY).learn(320))
    assert not torch.equal(next(a.actor.parameters()), next(_.actor.parameters()))


def test_save_load_predicts_identically_with_normalisation(tmp_path):
    model = PPO("Pendulum-v1", seed=0, verbose=0, normalize_obs=True, **TINY)
    model.learn(256)
    assert model.obs_norm.rms.count > 200  # statistics were collected and must travel with the model
    path = model.save(tmp_path / "m.pt")
    loaded = PPO.load(path)
    obs = np.random.default_rng(0).uniform(-1, 1, size=(50, 3)).astype(np.float32)
    a, _ = model.predict(obs, deterministic=True)
    b, _ = loaded.predict(obs, deterministic=True)
    assert np.array_equal(a, b)
    single, _ = loaded.predict(obs[0])
    # a batch of 1 and a batch of 50 go through different BLAS kernels: equal up to float32 rounding only
    assert single.shape == (1,) and np.allclose(single, b[0], rtol=0, atol=1e-6)
    assert np.all(np.abs(b) <= 2.0)  # clipped to Pendulum's bounds


def test_predict_discrete_returns_env_actions():
    model = PPO("CartPole-v1", verbose=0, **TINY)
    action, state = model.predict(np.zeros(4, np.float32))
    assert state is None and int(action) in (0, 1)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    env.step(model.predict(obs)[0])


def test_dict_observations_are_flattened_in_goal_order(tmp_path):
    model = PPO(GoalDictEnv, verbose=0, **TINY)
    assert model.obs_spec.keys == ["observation", "achieved_goal", "desired_goal"] and model.obs_spec.dim == 3
    model.learn(128)
    obs = GoalDictEnv().reset(seed=0)[0]
    loaded = PPO.load(model.save(tmp_path / "goal.pt"))
    assert model.predict(obs)[0] == loaded.predict(obs)[0]


def test_env_forms_id_entry_point_module_id_instance_factory():
    for spec in ["CartPole-v1", "envs:FixedEpisodeEnv", "envs:ppolearn_tests/GoalDict-v0"]:
        PPO(spec, verbose=0, **TINY).learn(64)
    PPO(FixedEpisodeEnv(), verbose=0, **TINY).learn(64)  # an instance, deep-copied for the second env
    PPO(lambda: FixedEpisodeEnv(length=4), verbose=0, **TINY).learn(64)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("NoSuchEnv-v0", "unknown environment 'NoSuchEnv-v0'"),
        ("CartPol-v1", "did you mean 'CartPole-v1'"),
        ("no_such_module:Env-v0", "cannot import module 'no_such_module'"),
        ("envs:NoSuchClass", "module 'envs' has no environment class or id 'NoSuchClass'"),
        (SequenceObsEnv, "observation space Sequence is not supported"),
    ],
)
def test_unusable_environments_are_one_clear_error(spec, message):
    with pytest.raises(EnvError) as err:
        PPO(spec, verbose=0, **TINY)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_loading_with_an_env_of_other_spaces_is_refused(tmp_path):
    path = PPO("CartPole-v1", verbose=0, **TINY).save(tmp_path / "cp.pt")
    with pytest.raises(CheckpointError, match="trained on observations of size 4"):
        PPO.load(path, env="Pendulum-v1")


def test_loaded_model_keeps_training(tmp_path):
    model = PPO("CartPole-v1", verbose=0, **TINY)
    model.learn(128)
    loaded = PPO.load(model.save(tmp_path / "m.pt"), env="CartPole-v1")
    loaded.learn(128, reset_num_timesteps=False)
    assert loaded.num_timesteps == 256


def test_target_kl_stops_epochs_early():
    model = PPO("CartPole-v1", verbose=0, target_kl=1e-9, learning_rate=0.01, **{**TINY, "n_epochs": 10})
    model.rollout()
    stats = model.update(model.buffer.batch(0.99, 0.95))
    assert stats["epochs"] < 10


def test_anneal_lr_decays_to_zero():
    model = PPO("CartPole-v1", verbose=0, anneal_lr=True, learning_rate=1e-3, **TINY)
    model.learn(256)
    lr = model.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(1e-3 * (1 - 192 / 256))  # the last of 4 updates started at step 192


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from ppolearn.errors import ConfigError

    with pytest.raises(ConfigError, match="CUDA is not available"):
        PPO("CartPole-v1", device="cuda", verbose=0, **TINY)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_learner_trains_and_predicts():
    model = PPO("Pendulum-v1", device="cuda", verbose=0, **TINY)
    model.learn(128)
    assert next(model.actor.parameters()).is_cuda
    assert model.predict(np.zeros(3, np.float32))[0].shape == (1,)


@pytest.mark.parametrize("bound", [float(np.finfo(np.float32).max), 1e7])
def test_default_trains_where_finite_bounds_stand_for_unbounded(bound):
    """float32's max (or 1e7) as a bound means "no useful range": the default leaves it unmapped, so the
    policy starts at std 1 and nothing overflows."""
    model = PPO(lambda: BoundedActionEnv(-bound, bound), verbose=0, **TINY)
    assert model.config.scale_actions == "auto" and not model.policy.actor.scaled
    model.learn(2 * model.config.rollout_size)
    assert np.isfinite(model.predict(np.zeros(2, np.float32))[0]).all()


def test_default_maps_a_valve_and_keeps_it_through_save_and_load(tmp_path):
    model = PPO(lambda: BoundedActionEnv(0.0, 10.0), verbose=0, **TINY)
    actor = model.policy.actor
    assert actor.scaled and actor.action_center.tolist() == [5.0] and actor.action_half.tolist() == [5.0]
    model.learn(model.config.rollout_size)
    obs = np.array([[1.0, 0.0], [1.0, 0.3]], np.float32)
    loaded = PPO.load(model.save(tmp_path / "valve.pt"))
    assert loaded.policy.actor.scaled
    assert np.array_equal(loaded.predict(obs)[0], model.predict(obs)[0])
    with pytest.raises(ConfigError, match="scale_actions"):
        PPO.load(tmp_path / "valve.pt", scale_actions="false")
