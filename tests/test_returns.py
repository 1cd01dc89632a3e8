import pytest
import torch

from ppolearn.returns import compute_gae, compute_rtgs, normalize_per_minibatch


def naive_gae(rewards, values, dones, last_value, gamma, lam):
    """One environment at a time, straight from the definition of GAE."""
    T, N = rewards.shape
    adv = torch.zeros(T, N)
    for n in range(N):
        for t in range(T):
            total, discount = 0.0, 1.0
            for k in range(t, T):
                next_v = values[k + 1, n] if k + 1 < T else last_value[n]
                nonterminal = 0.0 if dones[k, n] else 1.0
                delta = rewards[k, n] + gamma * next_v * nonterminal - values[k, n]
                total += discount * delta
                if dones[k, n]:
                    break
                discount *= gamma * lam
            adv[t, n] = total
    return adv


def test_gae_hand_computed():
    # one env, 3 steps, episode ends at step 1; gamma=0.5, lambda=0.5
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [2.0]])
    dones = torch.tensor([[False], [True], [False]])
    last_value = torch.tensor([4.0])
    adv, ret = compute_gae(rewards, values, dones, last_value, gamma=0.5, gae_lambda=0.5)
    # delta_2 = 3 + 0.5*4 - 2 = 3 ; A_2 = 3
    # delta_1 = 2 + 0 - 1 = 1     ; A_1 = 1 (episode ended)
    # delta_0 = 1 + 0.5*1 - 0.5 = 1 ; A_0 = 1 + 0.25 * 1 = 1.25
    assert torch.allclose(adv[:, 0], torch.tensor([1.25, 1.0, 3.0]))
    assert torch.allclose(ret, adv + values)


def test_gae_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    T, N = 17, 5
    rewards = torch.randn(T, N, generator=g)
    values = torch.randn(T, N, generator=g)
    dones = torch.rand(T, N, generator=g) < 0.2
    last_value = torch.randn(N, generator=g)
    adv, _ = compute_gae(rewards, values, dones, last_value, gamma=0.97, gae_lambda=0.9)
    assert torch.allclose(adv, naive_gae(rewards, values, dones, last_value, 0.97, 0.9), atol=1e-5)


def test_lambda_one_without_bootstrap_equals_rewards_to_go():
    g = torch.Generator().manual_seed(1)
    T, N = 20, 3
    rewards = torch.randn(T, N, generator=g)
    values = torch.randn(T, N, generator=g)  # any baseline: it cancels at lambda = 1
    dones = torch.rand(T, N, generator=g) < 0.15
    _, returns = compute_gae(rewards, values, dones, torch.zeros(N), gamma=0.9, gae_lambda=1.0)
    assert torch.allclose(returns, compute_rtgs(rewards, dones, 0.9), atol=1e-5)


def test_rewards_to_go_by_hand():
    rewards = torch.tensor([[1.0], [1.0], [1.0], [1.0]])
    dones = torch.tensor([[False], [True], [False], [False]])
    rtgs = compute_rtgs(rewards, dones, gamma=0.5)
    assert torch.allclose(rtgs[:, 0], torch.tensor([1.5, 1.0, 1.5, 1.0]))


@pytest.mark.parametrize("n, batch_size", [(12, 4), (14, 4), (13, 4), (5, 8), (6, 1)])
def test_normalize_per_minibatch_matches_one_minibatch_at_a_time(n, batch_size):
    advantages = torch.randn(n, generator=torch.Generator().manual_seed(n))
    expected = []
    for chunk in advantages.split(batch_size):  # what update() did per minibatch before
        expected.append((chunk - chunk.mean()) / (chunk.std() + 1e-8) if len(chunk) > 1 else chunk)
    got = normalize_per_minibatch(advantages, batch_size)
    assert got.shape == advantages.shape
    assert torch.allclose(got, torch.cat(expected), atol=1e-6)
