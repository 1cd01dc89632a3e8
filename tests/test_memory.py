"""The recurrent policy (memory: lstm | gru): states reset at episode ends and never leak into the next
episode, the time-limit bootstrap reads the ended episode's state, the update re-runs exactly what the
rollout computed, predict carries the state as sb3-contrib's RecurrentPPO, and every path (batched envs,
Ray workers, evaluation, save/load, resume) keeps it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from envs import BrightPixelEnv, CueRecallEnv, TensorPointEnv, ZeroStartEnv

from ppolearn import PPO
from ppolearn.checkpoint import list_checkpoints
from ppolearn.cli import main
from ppolearn.config import build_config
from ppolearn.errors import ConfigError
from ppolearn.evaluation import evaluate_policy
from ppolearn.policy import RecurrentPolicy

TINY = {"n_steps": 16, "num_envs": 4, "batch_size": 32, "n_epochs": 2, "net_arch": [16], "memory_size": 8}
KINDS = ["lstm", "gru"]


class FiveFrameBrightPixelEnv(BrightPixelEnv):
    """BrightPixelEnv whose episodes last 5 steps: images through a CNN into the memory core, mid-episode
    rollout starts."""

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.t += 1
        obs, reward, _, truncated, info = super().step(action)
        return obs, reward, self.t >= 5, truncated, info


def _record_core_calls(policy: RecurrentPolicy):
    """Every call of the memory core during a rollout: (input features, state in, state out)."""
    calls = []

    def hook(_module, args, output):
        calls.append((args[0].clone(), args[1].clone(), output[1].clone()))

    return calls, policy.memory.register_forward_hook(hook)


def test_config_takes_lstm_gru_or_null_in_one_line():
    assert build_config({"memory": "null"}).memory is None
    assert build_config({"memory": "gru"}).memory == "gru"
    with pytest.raises(ConfigError, match=r"^memory='rnn' is not allowed: must be 'lstm', 'gru' or null"):
        build_config({"memory": "rnn"})
    with pytest.raises(ConfigError, match="memory_size"):
        build_config({"memory_size": 0})


def test_minibatches_are_whole_env_sequences():
    # batch_size is read as env sequences x n_steps, rounded down to whole sequences dividing num_envs
    lstm = {"memory": "lstm"}
    assert build_config(lstm, {"n_steps": 128, "num_envs": 8, "batch_size": 256}).minibatch_envs == 2
    assert build_config(lstm, {"n_steps": 256, "num_envs": 8, "batch_size": 64}).minibatch_envs == 1
    assert build_config(lstm, {"n_steps": 16, "num_envs": 6, "batch_size": 64}).minibatch_envs == 3
    assert build_config(lstm, {"n_steps": 16, "num_envs": 4, "batch_size": 128}).minibatch_envs == 4
    with pytest.raises(ConfigError, match="must divide"):  # feed-forward minibatches stay as they were
        build_config({"n_steps": 16, "num_envs": 6, "batch_size": 64})


@pytest.mark.parametrize("kind", KINDS)
def test_no_state_leaks_across_episodes(kind):
    """Episodes of 2 steps whose first observation is all zeros: at every episode's first step the core
    must be fed the zero state and (zero input, zero state) must give the zero output, however much
    state the previous episode built up."""
    model = PPO(ZeroStartEnv(length=2), seed=0, verbose=0, normalize_obs=False, memory=kind, **TINY)
    calls, handle = _record_core_calls(model.policy)
    for _ in range(2):  # the second rollout starts mid-stream, from the state the first one left
        model.rollout()
    handle.remove()
    acts = [call for i, call in enumerate(calls) if i % (TINY["n_steps"] + 1) != TINY["n_steps"]]  # not last_value
    assert len(acts) == 2 * TINY["n_steps"]
    for t, (features, state_in, state_out) in enumerate(acts):
        first = features.abs().sum(-1) == 0  # the envs at their episode's first step
        assert first.any() if t % 2 == 0 else not first.any()
        assert torch.equal(state_in[first], torch.zeros_like(state_in[first]))
        assert torch.equal(state_out[first], torch.zeros_like(state_out[first]))
        assert (state_out[~first].abs().sum(-1) > 0).all()  # ...while the second steps leave a state behind
    # the buffer's dones say where, and the stored start states are the ones the rollout began from
    assert model.buffer.dones[1::2].all() and not model.buffer.dones[0::2].any()
    assert torch.equal(model.buffer.hidden, torch.zeros_like(model.buffer.hidden))  # episodes end at rollout ends


@pytest.mark.parametrize("kind", KINDS)
def test_time_limit_bootstrap_reads_the_ended_episodes_state(kind):
    model = PPO(ZeroStartEnv(length=3, truncate=True), seed=0, verbose=0, memory=kind, **TINY)
    calls, handle = _record_core_calls(model.policy)
    model.rollout()
    handle.remove()
    i = 0
    for step in range(TINY["n_steps"]):
        after_step = calls[i][2]  # act()
        i += 1
        if (step + 1) % 3 == 0:  # every env hit its time limit: value(final_obs) for the bootstrap
            bootstrap_state = calls[i][1]
            assert torch.equal(bootstrap_state, after_step) and (after_step.abs().sum(-1) > 0).all()
            i += 1
            next_state = calls[i][1]  # ...and only then does the next episode start from zeros
            assert torch.equal(next_state, torch.zeros_like(next_state))
    assert i == len(calls) - 1  # then last_value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("env", ["cue", "image"])
def test_update_rerun_reproduces_the_rollout(kind, env):
    """Before any gradient step each ratio is 1: with a learning rate too small to move anything, one epoch
    of several minibatches of sequences that start mid-episode and hold episode ends must find every
    action's log-probability as the rollout had it (clip_fraction counts ratios off 1 by more than 1e-5)."""
    make = CueRecallEnv if env == "cue" else FiveFrameBrightPixelEnv
    cfg = dict(TINY, memory=kind, n_epochs=1, batch_size=16, learning_rate=1e-12, clip_range=1e-5)
    model = PPO(make, seed=1, verbose=0, **cfg)
    model.learn(2 * 64)  # 32 steps of 3-step episodes: the next rollout starts mid-episode
    assert model.policy.get_hidden_state().abs().sum() > 0
    model.rollout()
    batch = model.buffer.batch(0.99, 0.95)
    assert batch.dones.any() and batch.hidden.abs().sum() > 0
    stats = model.update(batch)
    assert stats["clip_fraction"] == 0.0 and stats["approx_kl"] < 1e-10
    # ...and the check has teeth: the same batch from the wrong (zero) start states is off
    batch.hidden = torch.zeros_like(batch.hidden)
    assert model.update(batch)["clip_fraction"] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_predict_takes_and_returns_the_state_as_recurrent_ppo(kind, tmp_path):
    model = PPO(CueRecallEnv, seed=0, verbose=0, memory=kind, **TINY)
    model.learn(64)
    env = CueRecallEnv()
    obs, _ = env.reset(seed=3)
    action, state = model.predict(obs)
    assert isinstance(state, tuple) and len(state) == (2 if kind == "lstm" else 1)
    assert all(part.shape == (1, 1, 8) for part in state)
    batch = np.stack([obs, obs, obs])
    actions, states = model.predict(batch, deterministic=True)
    assert actions.shape == (3,) and all(part.shape == (1, 3, 8) for part in states)
    # episode_start zeroes the state where it is True: the same as starting from None there
    _, after = model.predict(batch, states, episode_start=np.array([True, False, True]))
    _, fresh = model.predict(batch, None)
    for a, f in zip(after, fresh):
        assert np.array_equal(a[:, [0, 2]], f[:, [0, 2]]) and not np.array_equal(a[:, 1], f[:, 1])
    with pytest.raises(ConfigError, match="state holds"):
        model.predict(obs, (np.zeros((1, 1, 3)),))
    # predict never moves the rollout's own state
    hidden = model.policy.get_hidden_state().clone()
    model.predict(batch, states)
    assert torch.equal(model.policy.get_hidden_state(), hidden)

    path = model.save(tmp_path / "model.pt")
    loaded = PPO.load(path)
    assert loaded.config.memory == kind and loaded.policy.is_recurrent
    sequence = [env.reset(seed=4)[0]] + [env.step(0)[0] for _ in range(2)]
    runs = []
    for m in (model, loaded):
        state, out = None, []
        for step, o in enumerate(sequence):
            action, state = m.predict(o, state, episode_start=np.array([step == 0]))
            out.append((int(action), [part.copy() for part in state]))
        runs.append(out)
    for (a1, s1), (a2, s2) in zip(*runs):
        assert a1 == a2 and all(np.array_equal(x, y) for x, y in zip(s1, s2))


def test_feed_forward_predict_still_returns_no_state():
    model = PPO(CueRecallEnv, seed=0, verbose=0, **TINY)
    assert not model.policy.is_recurrent
    assert model.predict(np.zeros(2, np.float32))[1] is None


@pytest.mark.parametrize("kind", KINDS)
def test_evaluation_carries_and_resets_the_state_per_episode(kind):
    """Episodes side by side must score as each episode run alone from a zero state."""
    model = PPO(CueRecallEnv, seed=0, verbose=0, memory=kind, **TINY)
    model.learn(128)
    side_by_side = evaluate_policy(model, CueRecallEnv, episodes=12, parallel=5)
    alone = []
    for i in range(12):
        env = CueRecallEnv()
        obs, _ = env.reset(seed=side_by_side["seeds"][0] + i)
        state, done, ret = None, False, 0.0
        while not done:
            action, state = model.predict(obs, state)
            obs, reward, terminated, truncated, _ = env.step(action)
            ret, done = ret + reward, terminated or truncated
        alone.append(round(ret, 4))
    assert side_by_side["episode_returns"] == alone


@pytest.mark.parametrize("kind", KINDS)
def test_batched_env_and_exact_resume_with_memory(kind, tmp_path):
    """A batched VecEnv trains; its checkpoint keeps the envs' hidden states mid-episode, so a resumed run
    equals a straight one bit for bit."""
    cfg = dict(TINY, memory=kind, seed=7)
    straight = PPO(TensorPointEnv(), run_dir=tmp_path / "straight", verbose=0, **cfg)
    straight.learn(64 * 4)
    first = PPO(TensorPointEnv(), run_dir=tmp_path / "split", verbose=0, **cfg)
    first.learn(64 * 2)
    first.close()
    ckpt = list_checkpoints(tmp_path / "split" / "checkpoints")[-1]
    resumed = PPO.load(ckpt, env=TensorPointEnv(), run_dir=tmp_path / "split", verbose=0)
    assert resumed.policy.get_hidden_state().abs().sum() > 0  # mid-episode: horizon 25, 2 x 16 steps
    resumed.learn(64 * 2, reset_num_timesteps=False)
    for a, b in zip(straight.policy.state_dict().values(), resumed.policy.state_dict().values()):
        assert torch.equal(a, b)


def test_command_line_trains_evaluates_and_renders_a_recurrent_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    settings = ["memory=gru", "memory_size=8", "n_steps=16", "batch_size=32", "n_epochs=1", "eval_episodes=2"]
    args = ["train", "--env", "Pendulum-v1", "--total-timesteps", "64", "--num-envs", "2", "--run-dir", str(run_dir)]
    assert main([*args, *(x for pair in settings for x in ("--set", pair)), "--quiet"]) == 0
    assert "memory: gru" in (run_dir / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--json", "--episodes", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 2
    assert main(["render", str(run_dir), "--out", str(tmp_path / "policy.gif")]) == 0
    assert (tmp_path / "policy.gif").stat().st_size > 0


def test_torch_batched_clone_trains_with_memory():
    model = PPO("ppolearn/Pendulum-v1", seed=0, verbose=0, memory="gru", **TINY)
    model.learn(128)
    assert model.policy.get_hidden_state().shape == (4, 8)
    assert model.buffer.hidden.shape == (4, 8)


def test_gymnasium_resume_restarts_episodes_and_states(tmp_path):
    """Gymnasium envs cannot hand over their episodes, so a resumed run restarts them: the hidden state
    starts from zeros with them (not from the state of episodes that are gone)."""
    cfg = dict(TINY, memory="lstm")
    PPO(CueRecallEnv, run_dir=tmp_path / "a", verbose=0, **cfg).learn(64)
    ckpt = list_checkpoints(tmp_path / "a" / "checkpoints")[-1]
    model = PPO.load(ckpt, env=CueRecallEnv, run_dir=tmp_path / "b", verbose=0)
    assert model.policy.get_hidden_state() is None
    model.learn(64, reset_num_timesteps=False)
    assert model.num_timesteps == 128


def test_ray_workers_keep_their_states_and_send_the_start_states(tmp_path):
    ray = pytest.importorskip("ray")
    import os
    from pathlib import Path

    tests_dir = Path(__file__).parent
    path = os.pathsep.join([str(tests_dir.parent), str(tests_dir), os.environ.get("PYTHONPATH", "")])
    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        cfg = dict(TINY, memory="lstm", backend="ray", num_workers=2, learning_rate=1e-12, clip_range=1e-5)
        cfg.update(n_epochs=1, batch_size=16)
        model = PPO("envs:CueRecallEnv", verbose=0, **cfg)
        model.learn(64)
        model.rollout()  # the second iteration: workers continue their episodes and their states
        batch = model.buffer.batch(0.99, 0.95)
        assert batch.hidden.shape == (4, 16) and (batch.hidden.abs().sum(-1) > 0).any()
        assert model.update(batch)["clip_fraction"] == 0.0  # the learner re-runs what the workers ran
        model.close()
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("memory", [None, "lstm"])
def test_only_memory_solves_cue_recall(memory):
    model = PPO(
        CueRecallEnv,
        seed=0,
        verbose=0,
        memory=memory,
        memory_size=32,
        n_steps=32,
        num_envs=8,
        batch_size=64,
        net_arch=[32],
        learning_rate=1e-3,
        eval_every=0,
    )
    model.learn(20_000)
    success = evaluate_policy(model, CueRecallEnv, episodes=100)["success_rate"]
    if memory is None:
        assert success < 0.7  # chance is 0.5: the last observation does not say the cue
    else:
        assert success >= 0.95
