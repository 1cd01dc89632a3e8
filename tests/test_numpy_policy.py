"""The rollout's step in numpy (ppolearn/numpy_policy.py): the same actions, log-probabilities and values as
the torch forward to float32 rounding, the same random draws, the current weights after optimiser steps and
re-homing, and the torch path wherever the numpy one does not apply."""

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

from ppolearn.config import build_config
from ppolearn.envs.spaces import ActionSpec, ObsSpec
from ppolearn.numpy_policy import NUMPY_MAX_MACS, NumpyPolicy
from ppolearn.optim import FlatParameters, adam
from ppolearn.policy import build_policy

S = gym.spaces
OBS = S.Box(-5, 5, (6,), np.float32)


def _policy(action_space: gym.Space, **settings):
    cfg = build_config({"net_arch": [32, 32], "log_std_init": -0.5}, settings)
    return build_policy(ObsSpec.from_space(OBS), ActionSpec.from_space(action_space), cfg)


def _torch_act(policy, obs, seed, mask=None):
    """The torch path's step: the head's sample and the critic, called directly."""
    generator = torch.Generator().manual_seed(seed)
    action, log_prob = policy.actor.sample(obs, generator, mask)
    return action, log_prob, policy.critic(obs)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


BOX_CASES = [
    (S.Box(-1, 1, (2,), np.float32), {}),  # no mapping onto the bounds
    (S.Box(-2, 6, (3,), np.float32), {"scale_actions": "true"}),  # mapped: centre and half-range
    (S.Box(-1, 1, (2,), np.float32), {"activation": "relu"}),
    (S.Box(-1, 1, (2,), np.float32), {"activation": "elu"}),
]


@pytest.mark.parametrize("space,settings", BOX_CASES)
@torch.no_grad()
def test_gaussian_step_matches_torch(space, settings):
    policy = _policy(space, **settings)
    assert policy._numpy is not None
    obs = torch.randn(4, 6) * 2
    assert policy._numpy.fits(obs)
    action, log_prob, value = policy.act(obs, torch.Generator().manual_seed(3))
    ref_action, ref_log_prob, ref_value = _torch_act(policy, obs, 3)
    assert action.dtype == ref_action.dtype == torch.float32 and action.shape == ref_action.shape
    _close(action, ref_action)  # same noise: the draw comes from the same torch generator
    _close(log_prob, ref_log_prob)
    _close(value, ref_value)
    _close(policy.value(obs), ref_value)
    _close(policy.mode(obs), policy.actor.mode(obs))
    assert not torch.equal(action, policy.act(obs, torch.Generator().manual_seed(4))[0])  # other seed, other noise


@pytest.mark.parametrize("masked", [False, True])
@torch.no_grad()
def test_categorical_step_matches_torch(masked):
    policy = _policy(S.Discrete(5))
    obs = torch.randn(8, 6)
    mask = None
    if masked:
        mask = torch.ones(8, 5, dtype=torch.bool)
        mask[:, 1] = False
        mask[0, :4] = False  # the first row may only take choice 4
    for seed in range(20):
        action, log_prob, value = policy.act(obs, torch.Generator().manual_seed(seed), mask)
        ref_action, ref_log_prob, ref_value = _torch_act(policy, obs, seed, mask)
        assert action.dtype == torch.int64
        assert torch.equal(action, ref_action)
        _close(log_prob, ref_log_prob)
        _close(value, ref_value)
    if masked:
        assert (action != 1).all() and action[0] == 4
    assert torch.equal(policy.mode(obs, mask), policy.actor.mode(obs, mask))


@torch.no_grad()
def test_views_follow_optimizer_steps_and_rehoming():
    policy = _policy(S.Box(-1, 1, (2,), np.float32))
    obs = torch.randn(4, 6)
    policy.act(obs, torch.Generator().manual_seed(0))  # builds the views on the parameters' first memory
    params = FlatParameters([policy])  # re-homes every parameter into one vector: new memory
    optimizer = adam(params, lr=0.1)
    with torch.enable_grad():
        loss = policy.critic(obs).sum() + policy.actor.mean_net(obs).sum() + policy.actor.log_std.sum()
        loss.backward()
    optimizer.step()  # in place on the vector
    action, log_prob, value = policy.act(obs, torch.Generator().manual_seed(1))
    ref_action, ref_log_prob, ref_value = _torch_act(policy, obs, 1)
    _close(action, ref_action)
    _close(log_prob, ref_log_prob)
    _close(value, ref_value)


@torch.no_grad()
def test_copies_rebuild_their_own_views():
    policy = _policy(S.Discrete(3))
    obs = torch.randn(2, 6)
    policy.value(obs)
    for clone in (copy.deepcopy(policy), pickle.loads(pickle.dumps(policy))):
        for p in clone.parameters():
            p.add_(0.5)  # the clone's weights differ from the original's
        _close(clone.value(obs), clone.critic(obs))
        assert not torch.allclose(clone.value(obs), policy.value(obs))


def test_torch_path_where_numpy_does_not_apply():
    policy = _policy(S.Box(-1, 1, (2,), np.float32))
    small = torch.randn(4, 6)
    widest = 32 * 32
    large = torch.randn(NUMPY_MAX_MACS // widest + 1, 6)
    with torch.no_grad():
        assert policy._numpy.fits(small)
        assert not policy._numpy.fits(large)  # numpy's BLAS would start a second thread
        assert not policy._numpy.fits(small.double())
        assert not policy._numpy.fits(small[0])  # one observation without its batch dimension
    assert not policy._numpy.fits(small)  # gradients recorded: the update's forward is torch's
    value = policy.value(small)
    assert value.requires_grad
    # heads and policies without a numpy version keep the torch path altogether
    assert _policy(S.MultiDiscrete([2, 3]))._numpy is None
    assert _policy(S.MultiBinary(3))._numpy is None
    assert _policy(S.Discrete(3), memory="lstm")._numpy is None
    assert NumpyPolicy.supports(_policy(S.Discrete(3)).actor)
