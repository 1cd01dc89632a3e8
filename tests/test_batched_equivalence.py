"""The batched clones against Gymnasium's own environments: same states + same actions -> same outputs.

Each step, every clone environment is put in exactly the state its Gymnasium twin is in (so float rounding
cannot accumulate into chaotic divergence), both take the same action, and observation, reward,
terminated and truncated must agree. Some twins start close to the time limit so truncation at 100 / 200 /
500 / 999 steps is checked too. Tolerance: atol 1e-5 with a float64 clone (Gymnasium computes in float64 and
returns float32 observations), atol 1e-4 (relative 1e-5 on rewards) with the default float32 clone.
PointReach's is_success must agree exactly, except where the distance or speed lies within that atol of its
threshold (where float rounding may legitimately decide either way).
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ppolearn.envs import batched_ids, make_env, make_vec_env, official_id
from ppolearn.envs.registry import batched_class

N_ENVS = 6
STEPS = 600  # crosses CartPole's and Acrobot's 500-step limit; the near-limit twins cover 200 and 999


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit:
    while not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env


def _state(env: gym.Env) -> np.ndarray:
    env = env.unwrapped
    if hasattr(env, "state"):  # classic control
        return np.asarray(env.state, dtype=np.float64)
    return np.concatenate([env.pos, env.vel, env.goal])  # PointReach: the clone's (pos, vel, goal) layout


def _flat_box(space: gym.Space, clone) -> gym.spaces.Box:
    """The official observation space as the clone emits it: Dict entries concatenated in ObsSpec's order."""
    if isinstance(space, gym.spaces.Box):
        return space
    parts = [space[k] for k in clone.obs_spec.keys]
    return gym.spaces.Box(np.concatenate([p.low for p in parts]), np.concatenate([p.high for p in parts]))


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
@pytest.mark.parametrize("env_id", batched_ids())
def test_clone_matches_gymnasium_step_by_step(env_id, dtype, atol):
    clone = batched_class(env_id)(N_ENVS, dtype=dtype)
    clone.reset(seed=0)
    twins = [make_env(official_id(env_id)) for _ in range(N_ENVS)]
    limit = clone.max_episode_steps
    for i, twin in enumerate(twins):
        twin.reset(seed=i)
        if i % 2:  # start half of them near the time limit so truncation is compared as well
            _time_limit(twin)._elapsed_steps = limit - 20 - i
            clone.elapsed[i] = limit - 20 - i
    rng = np.random.default_rng(0)
    returns, lengths = np.zeros(N_ENVS), np.array([int(clone.elapsed[i]) for i in range(N_ENVS)])
    saw_truncation = False
    for _ in range(STEPS):
        clone.state = torch.as_tensor(np.stack([_state(t) for t in twins]), dtype=dtype)
        if clone.action_spec.is_discrete:
            actions = rng.integers(0, clone.action_spec.dim, N_ENVS)
            env_actions = actions
        else:  # beyond the bounds on purpose: both sides must clip the same way (as GymVecEnv does)
            shape = (N_ENVS, clone.action_spec.dim)
            actions = rng.uniform(-1.5, 1.5, shape).astype(np.float32) * np.float32(clone.action_spec.high[0])
            env_actions = clone.action_spec.to_env(actions, batched=True)
        step = clone.step(torch.as_tensor(actions))
        for i, twin in enumerate(twins):
            obs, reward, terminated, truncated, info = twin.step(env_actions[i])
            returns[i] += reward
            lengths[i] += 1
            assert bool(step.terminated[i]) == terminated, f"{env_id} env {i}: terminated differs"
            assert bool(step.truncated[i]) == truncated, f"{env_id} env {i}: truncated differs"
            np.testing.assert_allclose(step.reward[i].item(), reward, atol=atol, rtol=1e-5)
            obs = clone.obs_spec.encode(obs)
            np.testing.assert_allclose(step.final_obs[i].numpy(), obs, atol=atol, rtol=1e-5)
            if terminated or truncated:
                if "is_success" not in info:  # tasks without a success notion report NaN, as GymVecEnv does
                    assert np.isnan(step.episode_success[i].item())
                saw_truncation |= truncated
                assert step.episode_length[i].item() == lengths[i]
                np.testing.assert_allclose(step.episode_return[i].item(), returns[i], rtol=1e-4, atol=1e-3)
                twin.reset(seed=int(rng.integers(1 << 30)))
                returns[i], lengths[i] = 0.0, 0
            else:
                np.testing.assert_allclose(step.obs[i].numpy(), obs, atol=atol, rtol=1e-5)
    assert saw_truncation, f"{env_id}: the time limit was never reached"


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_point_reach_clone_matches_is_success_step_by_step(dtype, atol):
    """A noisy PD controller drives the point onto the goal (and, at times, into the walls) so that
    is_success is both true and false; it must agree every step, and at the 100-step limit as episode_success."""
    clone = batched_class("ppolearn/PointReachBatched-v0")(N_ENVS, dtype=dtype)
    clone.reset(seed=0)
    twins = [make_env("ppolearn/PointReach-v0") for _ in range(N_ENVS)]
    for i, twin in enumerate(twins):
        twin.reset(seed=i)
        _time_limit(twin)._elapsed_steps = clone.elapsed[i] = 7 * i  # staggered episode ends
    rng = np.random.default_rng(1)
    radius, stop = clone.target_radius, clone.stop_speed
    successes = ended_successes = ended = 0
    for _ in range(400):
        states = np.stack([_state(t) for t in twins])
        clone.state = torch.as_tensor(states, dtype=dtype)
        pos, vel, goal = np.split(states, 3, axis=1)
        actions = 4.0 * (goal - pos) - 3.0 * vel + rng.normal(0.0, 0.05, pos.shape)  # often beyond [-1, 1]
        wild = rng.random(N_ENVS) < 0.1  # sometimes a random push, out of bounds too
        actions[wild] = rng.uniform(-3.0, 3.0, (int(wild.sum()), 2))
        actions = actions.astype(np.float32)
        step = clone.step(torch.as_tensor(actions))
        done = step.terminated | step.truncated
        # per-step success: the clone's state where the episode goes on, episode_success where it ended
        clone_success = torch.where(done, step.episode_success == 1.0, clone.success(clone.state)).numpy()
        assert torch.isnan(step.episode_success[~done]).all()
        for i, twin in enumerate(twins):
            obs, reward, terminated, truncated, info = twin.step(clone.action_spec.to_env(actions[i]))
            u = twin.unwrapped
            assert (bool(step.terminated[i]), bool(step.truncated[i])) == (terminated, truncated)
            np.testing.assert_allclose(step.reward[i].item(), reward, atol=atol, rtol=1e-5)
            np.testing.assert_allclose(step.final_obs[i].numpy(), clone.obs_spec.encode(obs), atol=atol)
            margin = min(abs(np.linalg.norm(u.pos - u.goal) - radius), abs(np.linalg.norm(u.vel) - stop))
            if margin > atol:
                assert bool(clone_success[i]) == info["is_success"], f"env {i}: is_success differs"
            successes += info["is_success"]
            if truncated:
                ended += 1
                ended_successes += info["is_success"]
                twin.reset(seed=int(rng.integers(1 << 30)))
    assert ended >= N_ENVS and 0 < ended_successes < ended and successes > 0


@pytest.mark.parametrize("env_id", batched_ids())
def test_reset_draws_from_the_official_start_distribution(env_id):
    clone = make_vec_env(env_id, 4096)
    obs = clone.reset(seed=1).numpy()
    space = _flat_box(make_env(official_id(env_id)).observation_space, clone)
    assert obs.shape == (4096, space.shape[0]) and obs.dtype == np.float32
    assert all(space.contains(o) for o in obs[:64])
    again = make_vec_env(env_id, 4096).reset(seed=1).numpy()
    assert np.array_equal(obs, again)  # seeded resets are reproducible


def test_autoreset_hands_back_final_obs_and_fresh_starts():
    env = make_vec_env("ppolearn/Pendulum-v1", 8)
    env.reset(seed=0)
    for _ in range(199):
        step = env.step(torch.zeros(8, 1))
    assert not step.truncated.any()
    step = env.step(torch.zeros(8, 1))
    assert step.truncated.all() and (step.episode_length == 200).all()
    assert not torch.equal(step.obs, step.final_obs)  # obs is already the next episode's first observation
    assert (env.elapsed == 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("env_id", batched_ids())
def test_clone_on_cuda_matches_the_cpu_clone(env_id):
    cpu, gpu = make_vec_env(env_id, 64, device="cpu"), make_vec_env(env_id, 64, device="cuda")
    cpu.reset(seed=0)
    gpu.reset(seed=0)
    gpu.state = cpu.state.to("cuda")  # same states; the two devices' RNG streams differ
    actions = (
        torch.rand(64, *cpu.action_spec.shape or ()) * 2 - 1
        if not cpu.action_spec.is_discrete
        else (torch.randint(0, cpu.action_spec.dim, (64,)))
    )
    a, b = cpu.step(actions), gpu.step(actions.to("cuda"))
    assert b.obs.is_cuda
    assert torch.allclose(a.reward, b.reward.cpu(), atol=1e-4)
    assert torch.equal(a.terminated, b.terminated.cpu())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_a_cuda_clone():
    from ppolearn import PPO

    model = PPO("ppolearn/Pendulum-v1", device="cuda", verbose=0, num_envs=64, n_steps=8, batch_size=128, n_epochs=1)
    model.learn(64 * 8 * 2)
    assert model.num_timesteps == 1024 and next(model.actor.parameters()).is_cuda


def test_a_ready_vec_env_on_the_learners_device_is_used_as_it_is():
    from envs import TensorPointEnv

    env = TensorPointEnv()
    assert make_vec_env(env, 4, device="cpu") is env


def test_on_device_moves_tensors_and_keeps_the_envs_own_attributes():
    from envs import TensorPointEnv

    from ppolearn.envs import OnDevice, same_device

    inner = TensorPointEnv()
    env = OnDevice(inner, torch.device("cpu"))
    assert env.num_envs == 4 and env.obs_spec is inner.obs_spec and env.env_id == inner.env_id
    assert hasattr(env, "state_dict") and env.state_dict().keys() == inner.state_dict().keys()
    step = env.step(torch.zeros(4, 1))
    assert step.obs.shape == (4, 2) and step.obs.device.type == "cpu"
    assert same_device("cuda", "cuda:0") and not same_device("cpu", "cuda") and not same_device("cuda:1", "cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_vec_env_with_a_cuda_learner():
    from envs import TensorPointEnv

    from ppolearn import PPO

    model = PPO(TensorPointEnv(), device="cuda", verbose=0, n_steps=16, batch_size=32, n_epochs=1)
    model.learn(64)
    assert model.buffer.obs.is_cuda and model.num_timesteps == 64
