import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Independent, Normal

from ppolearn.envs.spaces import ActionSpec, action_scaling
from ppolearn.networks import (
    NUMPY_TANH_MIN,
    CategoricalActor,
    Critic,
    GaussianActor,
    build_actor,
    tanh,
)


def test_gaussian_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    actor = GaussianActor(4, 3, [16], log_std_init=-0.5)
    with torch.no_grad():
        actor.log_std.copy_(torch.tensor([-0.5, 0.1, 0.7]))
    obs = torch.randn(32, 4)
    g = torch.Generator().manual_seed(0)
    actions, sample_log_prob = actor.sample(obs, g)
    dist = Independent(Normal(actor(obs), actor.log_std.exp()), 1)
    log_prob, entropy = actor.evaluate(obs, actions)
    assert torch.allclose(log_prob, dist.log_prob(actions), atol=1e-5)
    assert torch.allclose(sample_log_prob, dist.log_prob(actions), atol=1e-5)
    assert torch.allclose(entropy, dist.entropy(), atol=1e-5)


@pytest.mark.parametrize("rows", [4, 2 * NUMPY_TANH_MIN // 64])  # torch's kernel, then numpy's
def test_tanh_matches_torch_in_value_and_gradient(rows, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # the default torch_threads; pytest's may differ
    x = (3 * torch.randn(rows, 64, generator=torch.Generator().manual_seed(0))).requires_grad_()
    reference = x.detach().clone().requires_grad_()
    y, expected = tanh(x), torch.tanh(reference)
    assert (type(y.grad_fn).__name__ == "_NumpyTanhBackward") == (x.numel() >= NUMPY_TANH_MIN)
    weights = torch.randn(rows, 64, generator=torch.Generator().manual_seed(1))
    (y * weights).sum().backward()
    (expected * weights).sum().backward()
    assert torch.allclose(y, expected, atol=1e-6)
    assert torch.allclose(x.grad, reference.grad, atol=1e-6)
    with torch.no_grad():  # the rollout's case: no graph, same values
        assert torch.allclose(tanh(x), expected, atol=1e-6)


def test_categorical_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    actor = CategoricalActor(4, 5, [16], ortho_init=False)  # non-tiny logits
    obs = torch.randn(64, 4)
    actions, sample_log_prob = actor.sample(obs, torch.Generator().manual_seed(0))
    dist = Categorical(logits=actor(obs))
    log_prob, entropy = actor.evaluate(obs, actions)
    assert torch.allclose(log_prob, dist.log_prob(actions), atol=1e-5)
    assert torch.allclose(sample_log_prob, dist.log_prob(actions), atol=1e-5)
    assert torch.allclose(entropy, dist.entropy(), atol=1e-5)
    assert torch.equal(actor.mode(obs), dist.probs.argmax(-1))


def test_categorical_samples_follow_the_probabilities():
    actor = CategoricalActor(1, 3, [4])
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()
        actor.logits_net[-1].bias.copy_(torch.log(torch.tensor([0.2, 0.3, 0.5])))
    actions, _ = actor.sample(torch.zeros(20000, 1), torch.Generator().manual_seed(0))
    freq = torch.bincount(actions, minlength=3).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.2, 0.3, 0.5]), atol=0.015)


def test_orthogonal_init_gains():
    torch.manual_seed(0)
    actor = GaussianActor(8, 2, [64, 64])
    critic = Critic(8, [64, 64])
    head = actor.mean_net[-1].weight
    # an orthogonal matrix scaled by the gain has singular values equal to the gain
    assert torch.allclose(torch.linalg.svdvals(head), torch.full((2,), 0.01), atol=1e-6)
    assert torch.allclose(torch.linalg.svdvals(critic.net[-1].weight), torch.ones(1), atol=1e-6)
    hidden = torch.linalg.svdvals(actor.mean_net[0].weight)
    assert torch.allclose(hidden, torch.full_like(hidden, np.sqrt(2)), atol=1e-5)
    assert torch.count_nonzero(actor.mean_net[0].bias) == 0


@pytest.mark.parametrize(
    "space,cls", [(gym.spaces.Box(-1, 1, (2,)), GaussianActor), (gym.spaces.Discrete(4), CategoricalActor)]
)
def test_build_actor_by_space(space, cls):
    assert isinstance(build_actor(3, ActionSpec.from_space(space), [8], "tanh", True, 0.0), cls)


def test_scaled_gaussian_is_the_unit_gaussian_mapped_onto_the_bounds():
    """N(center + half * mu, (half * std)^2), in the environment's units; log-probabilities and entropy are
    that Gaussian's, and the untrained policy starts mid-range."""
    torch.manual_seed(0)
    center, half = torch.tensor([5.0, 0.0]), torch.tensor([5.0, 50.0])
    actor = GaussianActor(4, 2, [16], center=center.numpy(), half=half.numpy())
    assert actor.scaled
    obs = torch.randn(64, 4)
    unit_mean = actor.mean_net(obs)
    dist = Independent(Normal(center + half * unit_mean, half * actor.log_std.exp()), 1)
    actions, sample_log_prob = actor.sample(obs, torch.Generator().manual_seed(0))
    log_prob, entropy = actor.evaluate(obs, actions)
    assert torch.allclose(actor.mode(obs), dist.mean, atol=1e-5)
    assert torch.allclose(log_prob, dist.log_prob(actions), atol=1e-4)
    assert torch.allclose(sample_log_prob, dist.log_prob(actions), atol=1e-4)
    assert torch.allclose(entropy, dist.entropy(), atol=1e-5)
    assert ((actor.mode(obs) - center).abs() < 0.05 * half).all()  # head gain 0.01: near mid-range
    assert 20 < actions[:, 1].std() < 80  # noise on the range's scale (std 50), not 1 unit of 100
    # the same unit-space network and noise give the same PPO ratio as unscaled: log-probs differ by a constant
    plain = GaussianActor(4, 2, [16])
    plain.load_state_dict(actor.state_dict())
    unit_actions, unit_log_prob = plain.sample(obs, torch.Generator().manual_seed(0))
    assert torch.allclose(actions, center + half * unit_actions, atol=1e-4)
    assert torch.allclose(sample_log_prob, unit_log_prob - torch.log(half).sum(), atol=1e-4)
    assert set(actor.state_dict()) == set(plain.state_dict())  # the map is not saved: it follows from the space


def test_an_unscaled_head_runs_the_same_numbers():
    torch.manual_seed(0)
    actor = GaussianActor(3, 2, [8], center=np.zeros(2), half=np.ones(2))
    plain = GaussianActor(3, 2, [8])
    plain.load_state_dict(actor.state_dict())
    obs = torch.randn(5, 3)
    assert not actor.scaled  # not one op more: bitwise the numbers of a head without the map
    sampled = [a.sample(obs, torch.Generator().manual_seed(1)) for a in (actor, plain)]
    assert all(torch.equal(x, y) for x, y in zip(*sampled))


@pytest.mark.parametrize(
    "low, high, auto, true",
    [
        (-1.0, 1.0, False, True),  # already the unit range: mapping it changes nothing
        (-2.0, 2.0, False, True),  # std 1 fits (a Pendulum's torque, the robustness set's turntable)
        (-0.4, 0.4, False, True),  # within a factor of 4
        (0.0, 10.0, True, True),  # a valve: mean 0 is a closed one
        (0.0, 1.0, True, True),  # a heater's power: 0 at the lower bound
        (-50.0, 50.0, True, True),  # std 1 covers 1% of the range
        (-0.1, 0.1, True, True),  # nearly every sample of std 1 clipped
        (-np.inf, np.inf, False, False),  # no finite bounds: nothing to map onto
        (-3.4e38, 3.4e38, False, False),  # float32's max standing for "unbounded": std 3e38 would overflow
        (0.0, 2e6, False, False),  # a half-range of 1e6 or more says nothing about the useful actions
    ],
)
def test_action_scaling_maps_the_dimensions_that_need_it(low, high, auto, true):
    unit = ([0.0], [1.0])
    mapped = ([(high + low) / 2], [(high - low) / 2])
    assert [x.tolist() for x in action_scaling([low], [high], "auto")] == list(mapped if auto else unit)
    assert [x.tolist() for x in action_scaling([low], [high], "true")] == list(mapped if true else unit)
    assert [x.tolist() for x in action_scaling([low], [high], "false")] == list(unit)


def test_action_scaling_is_per_dimension_and_build_actor_follows_the_setting():
    center, half = action_scaling([0.0, -1.0], [10.0, 1.0], "auto")  # a valve beside a [-1, 1] steering
    assert center.tolist() == [5.0, 0.0] and half.tolist() == [5.0, 1.0]
    box = ActionSpec.from_space(gym.spaces.Box(0.0, 10.0, (1,), np.float32))
    assert build_actor(4, box, [8], "tanh", True, 0.0, scale_actions="auto").scaled
    assert not build_actor(4, box, [8], "tanh", True, 0.0, scale_actions="false").scaled
