"""Every Gymnasium space: observation encodings, MultiDiscrete / MultiBinary heads, saving and loading models
of each, env_kwargs and env_wrapper from the command line and config files, and small tasks each head has to
learn."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from envs import FixedEpisodeEnv, MultiBinaryActionEnv, MultiDiscreteActionEnv, TupleObsEnv
from torch.distributions import Bernoulli, Categorical

from ppolearn import PPO
from ppolearn.checkpoint import safe_load
from ppolearn.cli import main
from ppolearn.config import build_config
from ppolearn.envs import GymVecEnv
from ppolearn.envs.spaces import ActionSpec, ObsSpec
from ppolearn.errors import ConfigError, EnvError
from ppolearn.evaluation import evaluate_policy
from ppolearn.networks import BernoulliActor, MultiCategoricalActor

S = gym.spaces
TINY = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 2, "net_arch": [16]}
SOLVE = {"n_steps": 64, "batch_size": 128, "learning_rate": 1e-3, "normalize_reward": False, "verbose": 0}
FROZEN_LAKE_4X4 = {"map_name": "4x4", "is_slippery": False}


# --- observation encodings ------------------------------------------------------------------------------


def test_discrete_is_one_hot_from_its_start():
    spec = ObsSpec.from_space(S.Discrete(4, start=1))
    assert spec.dim == 4
    np.testing.assert_array_equal(spec.encode(3), [0, 0, 1, 0])
    np.testing.assert_array_equal(spec.encode(np.array([1, 4]), batched=True), [[1, 0, 0, 0], [0, 0, 0, 1]])
    assert spec.encode(3).dtype == np.float32
    with pytest.raises(EnvError, match="outside its space"):
        spec.encode(0)


def test_multi_discrete_is_one_one_hot_per_entry():
    spec = ObsSpec.from_space(S.MultiDiscrete([2, 3], start=[0, 1]))
    assert spec.dim == 5
    np.testing.assert_array_equal(spec.encode(np.array([1, 3])), [0, 1, 0, 0, 1])
    batch = spec.encode(np.array([[0, 1], [1, 2]]), batched=True)
    np.testing.assert_array_equal(batch, [[1, 0, 1, 0, 0], [0, 1, 0, 1, 0]])


def test_multi_binary_and_box_of_any_shape_are_flattened():
    bits = ObsSpec.from_space(S.MultiBinary([2, 2]))
    np.testing.assert_array_equal(bits.encode(np.array([[1, 0], [0, 1]], np.int8)), [1, 0, 0, 1])
    box = ObsSpec.from_space(S.Box(-1, 1, (2, 3), np.float32))
    assert box.dim == 6 and box.encode(np.ones((5, 2, 3)), batched=True).shape == (5, 6)


def test_nested_dict_and_tuple_keep_a_fixed_order():
    space = S.Dict(
        {
            "zeta": S.Discrete(2),
            "alpha": S.Tuple((S.Box(-1, 1, (1,), np.float32), S.MultiBinary(2))),
            "observation": S.Box(-5, 5, (1,), np.float32),
        }
    )
    spec = ObsSpec.from_space(space)
    assert spec.keys == ["observation", "alpha", "zeta"] and spec.dim == 1 + 3 + 2
    obs = {"zeta": 1, "alpha": (np.array([0.5], np.float32), np.array([1, 0], np.int8)), "observation": [3.0]}
    np.testing.assert_array_equal(spec.encode(obs), [3.0, 0.5, 1, 0, 0, 1])
    batch = {k: v for k, v in obs.items()}
    batch["zeta"] = np.array([1, 0])
    batch["alpha"] = (np.array([[0.5], [0.25]], np.float32), np.array([[1, 0], [0, 0]], np.int8))
    batch["observation"] = np.array([[3.0], [4.0]], np.float32)
    assert spec.is_batched(batch) and not spec.is_batched(obs)
    np.testing.assert_array_equal(spec.encode(batch, batched=True)[1], [4.0, 0.25, 0, 0, 1, 0])
    assert ObsSpec(**spec.to_dict()) == spec  # plain data: a model loads without its environment
    with pytest.raises(EnvError, match="observation does not fit Dict"):
        spec.encode(np.zeros(6))
    with pytest.raises(EnvError, match="observation does not fit Dict"):
        spec.is_batched({"zeta": 1})
    box = ObsSpec.from_space(S.Box(-1, 1, (4,), np.float32))
    for wrong in (np.zeros(3), "abc"):  # what predict() hands it: a wrong size, not a number
        with pytest.raises(EnvError, match=r"observation does not fit Box\(4,\)"):
            box.encode(wrong)


def test_a_text_entry_is_dropped_with_one_warning():
    space = S.Dict({"image": S.Box(0, 255, (2,), np.uint8), "mission": S.Text(10)})
    with pytest.warns(UserWarning, match=r"observation\['mission'\] is a text space \(Text\); ppolearn drops it"):
        spec = ObsSpec.from_space(space)
    assert spec.dim == 2
    np.testing.assert_array_equal(spec.encode({"image": np.array([1, 2], np.uint8), "mission": "go"}), [1, 2])
    with pytest.raises(EnvError, match="nothing ppolearn can encode"), pytest.warns(UserWarning):
        ObsSpec.from_space(S.Text(5))


def test_gymnasium_vector_batches_encode_as_single_observations():
    env = GymVecEnv(TupleObsEnv, num_envs=3)
    obs = env.reset(seed=0)
    singles = [TupleObsEnv() for _ in range(3)]
    expected = [env.obs_spec.encode(e.reset(seed=i)[0]) for i, e in enumerate(singles)]
    np.testing.assert_array_equal(obs.numpy(), np.stack(expected))
    env.close()


def test_specs_saved_before_the_layout_still_load():
    old_dict = {"dim": 3, "keys": ["observation", "achieved_goal", "desired_goal"], "shapes": [[1], [1], [1]]}
    box = S.Box(-2, 2, (1,), np.float32)
    goal = S.Dict({"desired_goal": box, "observation": box, "achieved_goal": box})
    assert ObsSpec(**old_dict) == ObsSpec.from_space(goal)
    assert ObsSpec(**{"dim": 4, "keys": None, "shapes": [[4]]}) == ObsSpec.from_space(S.Box(-1, 1, (4,)))
    old_action = {"kind": "discrete", "dim": 3, "low": None, "high": None, "shape": None, "start": 0}
    assert ActionSpec(**old_action) == ActionSpec.from_space(S.Discrete(3))


def test_a_model_file_with_old_spec_dicts_loads_and_predicts(tmp_path):
    model = PPO("CartPole-v1", verbose=0, **TINY)
    path = model.save(tmp_path / "new.pt")
    data = safe_load(path)
    data["obs_spec"] = {"dim": 4, "keys": None, "shapes": [[4]]}
    data["action_spec"] = {"kind": "discrete", "dim": 2, "low": None, "high": None, "shape": None, "start": 0}
    data["format_version"] = 1
    # formats 1 and 2 saved the actor and critic apart, not one policy state dict
    policy = data.pop("policy")
    for part in ("actor", "critic"):
        data[part] = {k[len(part) + 1 :]: v for k, v in policy.items() if k.startswith(part + ".")}
    torch.save(data, tmp_path / "old.pt")
    old = PPO.load(tmp_path / "old.pt", env="CartPole-v1")  # the spaces check passes against the real env
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(old.predict(obs)[0], model.predict(obs)[0])
    old.close()
    model.close()


# --- action heads ---------------------------------------------------------------------------------------


def test_multi_discrete_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    nvec = [2, 3, 5]
    actor = MultiCategoricalActor(4, nvec, [16], ortho_init=False)
    obs = torch.randn(64, 4)
    actions, sample_log_prob = actor.sample(obs, torch.Generator().manual_seed(0))
    assert actions.shape == (64, 3) and all((actions[:, i] < n).all() for i, n in enumerate(nvec))
    dists = [Categorical(logits=part) for part in actor(obs).split(nvec, dim=-1)]
    expected = sum(d.log_prob(actions[:, i]) for i, d in enumerate(dists))
    log_prob, entropy = actor.evaluate(obs, actions)
    assert torch.allclose(log_prob, expected, atol=1e-5) and torch.allclose(sample_log_prob, expected, atol=1e-5)
    assert torch.allclose(entropy, sum(d.entropy() for d in dists), atol=1e-5)
    mode = actor.mode(obs)
    assert torch.equal(mode, torch.stack([d.probs.argmax(-1) for d in dists], -1))


def test_multi_binary_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    actor = BernoulliActor(4, 6, [16], ortho_init=False)
    obs = torch.randn(64, 4)
    actions, sample_log_prob = actor.sample(obs, torch.Generator().manual_seed(0))
    dist = Bernoulli(logits=actor(obs))
    expected = dist.log_prob(actions.float()).sum(-1)
    log_prob, entropy = actor.evaluate(obs, actions)
    assert torch.allclose(log_prob, expected, atol=1e-5) and torch.allclose(sample_log_prob, expected, atol=1e-5)
    assert torch.allclose(entropy, dist.entropy().sum(-1), atol=1e-5)
    assert torch.equal(actor.mode(obs), (dist.probs > 0.5).long())


def test_multi_kinds_are_handed_to_the_env_in_its_dtype_and_shape():
    multi = ActionSpec.from_space(S.MultiDiscrete([[2, 3], [4, 5]], start=[[1, 1], [0, 0]]))
    assert multi.dim == 4 and multi.nvec == [2, 3, 4, 5]
    out = multi.to_env(np.array([[1, 2, 3, 4]]), batched=True)
    assert out.shape == (1, 2, 2) and out.dtype == np.int64
    assert S.MultiDiscrete([[2, 3], [4, 5]], start=[[1, 1], [0, 0]]).contains(out[0])
    bits = ActionSpec.from_space(S.MultiBinary(3))
    assert bits.to_env(np.array([1, 0, 1])).dtype == np.int8
    assert ActionSpec(**multi.to_dict()) == multi


# --- models of every kind: train, save, load without the environment, predict ----------------------------


@pytest.mark.parametrize(
    "env, kwargs",
    [
        ("FrozenLake-v1", {"env_kwargs": FROZEN_LAKE_4X4}),
        (TupleObsEnv, {}),
        (MultiDiscreteActionEnv, {}),
        (MultiBinaryActionEnv, {}),
    ],
)
def test_save_load_and_predict(env, kwargs, tmp_path):
    model = PPO(env, verbose=0, **TINY, **kwargs)
    model.learn(128)
    loaded = PPO.load(model.save(tmp_path / "m.pt"))  # no environment needed to predict
    probe = model.env.envs.envs[0]
    observations = [probe.reset(seed=i)[0] for i in range(4)]
    for obs in observations:
        action, _ = loaded.predict(obs)
        assert probe.action_space.contains(action)
        np.testing.assert_array_equal(action, model.predict(obs)[0])
    evaluate_policy(loaded, env, episodes=3)  # a batch of such observations, stepped in the real env
    model.close()


def test_frozen_lake_4x4_trains_and_reports_success():
    model = PPO("FrozenLake-v1", verbose=0, **TINY, env_kwargs=FROZEN_LAKE_4X4)  # preset: frozenlake_goal
    model.learn(256)
    assert model.obs_spec.dim == 16 and model.config.success == "frozenlake_goal"
    assert evaluate_policy(model, episodes=2)["success_rate"] is not None
    model.close()


def test_env_kwargs_need_an_env_ppolearn_builds():
    with pytest.raises(ConfigError, match="env_kwargs"):
        PPO(FixedEpisodeEnv(), verbose=0, env_kwargs={"length": 4}, **TINY)


# --- the heads learn: small tasks solved on every unseen episode -----------------------------------------


@pytest.mark.parametrize("env", [TupleObsEnv, MultiDiscreteActionEnv, MultiBinaryActionEnv])
def test_each_head_learns_its_toy_task(env):
    model = PPO(env, seed=0, **SOLVE)
    model.learn(4096)
    assert evaluate_policy(model, env, episodes=100)["success_rate"] == 1.0
    model.close()


def test_frozen_lake_4x4_not_slippery_is_solved():
    model = PPO("FrozenLake-v1", seed=1, verbose=0, env_kwargs=FROZEN_LAKE_4X4)
    model.learn(10_240)
    result = evaluate_policy(model, episodes=20)
    assert result["success_rate"] == 1.0 and result["mean_length"] == 6  # the shortest path
    model.close()


# --- env_kwargs from the command line ---------------------------------------------------------------------

CLI_TINY = ["--total-timesteps", "128", "--num-envs", "2", "--quiet", "--set", "n_steps=32", "--set", "batch_size=32"]
CLI_TINY += ["--set", "eval_episodes=2", "--set", "n_epochs=1"]


def test_env_kwargs_are_recorded_and_rebuild_the_same_env(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("env_kwargs:\n  length: 5\n  truncate: true\n")
    run_dir = tmp_path / "run"
    args = ["train", "--env", "envs:FixedEpisodeEnv", "--config", str(config), "--env-kwargs", "length:7"]
    assert main([*args, *CLI_TINY, "--run-dir", str(run_dir)]) == 0
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())["env_kwargs"]
    assert recorded == {"length": 7, "truncate": True}  # the command line wins key by key
    assert json.loads((run_dir / "eval.json").read_text())["mean_length"] == 7
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--json", "--episodes", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["episode_lengths"] == [7, 7, 7]
    assert main(["train", "--resume", str(run_dir), "--total-timesteps", "256", "--quiet"]) == 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["env_kwargs"] == recorded


def test_env_kwargs_through_set(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "--env", "envs:FixedEpisodeEnv", "--set", "env_kwargs={length: 4}", *CLI_TINY]
    assert main([*args, "--run-dir", str(run_dir)]) == 0
    assert json.loads((run_dir / "eval.json").read_text())["mean_length"] == 4


def test_an_unknown_env_kwarg_is_one_line(tmp_path, capsys):
    args = ["train", "--env", "FrozenLake-v1", "--env-kwargs", "map_nam:8x8", *CLI_TINY]
    assert main([*args, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ppolearn: error: cannot make environment 'FrozenLake-v1'") and "map_nam" in err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()
    assert main(["train", "--env", "FrozenLake-v1", "--env-kwargs", "map_name=8x8", *CLI_TINY]) == 2
    assert "expects NAME:VALUE" in capsys.readouterr().err


def test_render_builds_the_env_with_its_kwargs(tmp_path):
    from PIL import Image

    run_dir = tmp_path / "run"
    args = ["train", "--env", "FrozenLake-v1", "--env-kwargs", "desc:[SFFG]", "is_slippery:False", *CLI_TINY]
    assert main([*args, "--run-dir", str(run_dir)]) == 0
    assert main(["render", str(run_dir), "--out", str(tmp_path / "p.gif")]) == 0
    assert Image.open(tmp_path / "p.gif").size == (240, 60)  # the one-row map given, not the default 4x4


# --- env_wrapper: the user's wrappers, as rl-baselines3-zoo writes them -------------------------------------

TIME_LIMIT = "gymnasium.wrappers.TimeLimit"


def test_env_wrapper_forms_in_a_config():
    assert build_config({"env_wrapper": "gymnasium.wrappers.FlattenObservation"}).env_wrapper == [
        "gymnasium.wrappers.FlattenObservation"
    ]
    given = ["a.B", {"c.d:E": {"k": 1}}, {"f.G": None}]
    assert build_config({"env_wrapper": given}).env_wrapper == ["a.B", {"c.d:E": {"k": 1}}, {"f.G": {}}]
    assert build_config({"env_wrapper": "[a.B, {c.D: {k: 2}}]"}).env_wrapper == ["a.B", {"c.D": {"k": 2}}]  # --set
    assert build_config({"env_wrapper": None}).env_wrapper == [] == build_config({}).env_wrapper
    for bad in ([1], [{"a.B": 3}], [{"a.B": {}, "c.D": {}}], [""], 5, True, "5", {1, 2}):  # "5": --set env_wrapper=5
        with pytest.raises(ConfigError, match="env_wrapper="):
            build_config({"env_wrapper": bad})


def test_env_wrapper_is_recorded_and_rebuilds_the_same_env(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"env_wrapper:\n  - {TIME_LIMIT}:\n      max_episode_steps: 4\n")
    run_dir = tmp_path / "run"
    args = ["train", "--env", "envs:FixedEpisodeEnv", "--env-kwargs", "length:9", "--config", str(config)]
    assert main([*args, *CLI_TINY, "--run-dir", str(run_dir)]) == 0
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())["env_wrapper"]
    assert recorded == [{TIME_LIMIT: {"max_episode_steps": 4}}]
    assert json.loads((run_dir / "eval.json").read_text())["mean_length"] == 4  # cut by the wrapper, not at 9
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--json", "--episodes", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["episode_lengths"] == [4, 4, 4]
    assert main(["train", "--resume", str(run_dir), "--total-timesteps", "256", "--quiet"]) == 0
    assert PPO.load(run_dir / "model.pt").num_timesteps == 256
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["env_wrapper"] == recorded


def test_a_wrapper_that_changes_the_observation_space(tmp_path, capsys):
    # FlattenObservation turns the Tuple (Discrete, Box) into one Box: the policy, the saved model and every
    # later rebuild see the flat vector (an unwrapped env would not match the saved spaces)
    flatten = "gymnasium.wrappers.FlattenObservation"
    model = PPO("envs:TupleObsEnv", verbose=0, env_wrapper=flatten, **TINY)
    assert model.obs_spec.describe() != PPO("envs:TupleObsEnv", verbose=0, **TINY).obs_spec.describe()
    model.learn(64)
    model.save(tmp_path / "m.pt")
    loaded = PPO.load(tmp_path / "m.pt")
    assert loaded.config.env_wrapper == [flatten]
    assert evaluate_policy(loaded, episodes=3)["mean_length"] == 1
    model.close()
    main(["check-env", "envs:TupleObsEnv", "--env-wrapper", flatten])  # (the test env has no time limit: rc 1)
    assert capsys.readouterr().out.startswith("observations: Box(5,)")  # 3 one-hot + 2


def test_a_bad_wrapper_is_one_line_and_leaves_no_run(tmp_path, capsys):
    cases = {
        "nosuch_module.Wrap": "cannot import module 'nosuch_module'",
        "gymnasium.wrappers.NoSuchWrapper": "has no class or function 'NoSuchWrapper'",
        TIME_LIMIT: "failed on the environment: TypeError",  # its max_episode_steps is required
        "numpy.pi": "has no class or function 'pi'",
    }
    for path, message in cases.items():
        run_dir = tmp_path / "run"
        assert main(["train", "--env", "CartPole-v1", "--env-wrapper", path, *CLI_TINY, "--run-dir", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ppolearn: error: env_wrapper '{path}'") and message in err, err
        assert err.count("\n") == 1 and not run_dir.exists()
    with pytest.raises(ConfigError, match="env_wrapper wraps an environment ppolearn builds"):
        PPO(FixedEpisodeEnv(), verbose=0, env_wrapper="gymnasium.wrappers.FlattenObservation", **TINY)


def test_wrappers_given_to_make_vec_env_directly():
    from ppolearn.envs import make_vec_env

    env = make_vec_env("CartPole-v1", 2, env_wrapper="gymnasium.wrappers.TimeAwareObservation")  # one, not a list
    assert env.obs_spec.dim == 4 + 1
    env.close()
    with pytest.raises(ConfigError, match="neither a path"):  # the config's own check of the form
        make_vec_env("CartPole-v1", 2, env_wrapper=[{"a.B": {}, "c.D": {}}])
