import numpy as np
import torch

from ppolearn.normalize import ObsNormalizer, RewardScaler, RunningMeanStd


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 4))
    rms = RunningMeanStd((4,), epsilon=0.0 + 1e-12)
    for chunk in np.array_split(data, 7):
        rms.update(torch.as_tensor(chunk))
    assert np.allclose(rms.mean.numpy(), data.mean(0), atol=1e-8)
    assert np.allclose(rms.var.numpy(), data.var(0), atol=1e-8)


def test_combine_is_exact_for_any_split():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 2)), rng.normal(5, 3, size=(50, 2))
    whole = RunningMeanStd((2,), epsilon=1e-12)
    whole.update(torch.as_tensor(np.concatenate([a, b])))
    left, right = RunningMeanStd((2,), epsilon=1e-12), RunningMeanStd((2,), epsilon=1e-12)
    left.update(torch.as_tensor(a))
    right.update(torch.as_tensor(b))
    left.combine(right.mean, right.var, right.count)
    assert torch.allclose(left.mean, whole.mean) and torch.allclose(left.var, whole.var)


def test_obs_normalizer_standardises_and_clips():
    norm = ObsNormalizer(2, clip=3.0, enabled=True)
    rng = np.random.default_rng(2)
    batch = torch.as_tensor(rng.normal([10.0, -5.0], [2.0, 0.1], size=(5000, 2)), dtype=torch.float32)
    out = norm(batch, update=True)
    assert torch.allclose(out.mean(0), torch.zeros(2), atol=0.05)
    assert torch.allclose(out.std(0), torch.ones(2), atol=0.05)
    assert norm(torch.tensor([[1e6, 0.0]]))[0, 0].item() == 3.0
    assert out.dtype == torch.float32


def test_obs_normalizer_off_is_identity():
    norm = ObsNormalizer(2, clip=3.0, enabled=False)
    x = torch.randn(4, 2) * 100
    assert torch.equal(norm(x, update=True), x)


def test_reward_scaler_divides_by_std_of_discounted_return_and_resets_on_done():
    scaler = RewardScaler(num_envs=2, gamma=0.5, clip=100.0, enabled=True)
    done = torch.tensor([False, True])
    scaler(torch.tensor([2.0, 2.0]), done)
    # returns: env0 keeps 2, env1 restarts at 0 after its episode ended
    assert torch.allclose(scaler.returns, torch.tensor([2.0, 0.0], dtype=torch.float64))
    out = scaler(torch.tensor([4.0, 4.0]), torch.tensor([False, False]))
    expected_std = float(np.sqrt(scaler.rms.var.item() + 1e-8))
    assert torch.allclose(out, torch.tensor([4.0, 4.0]) / expected_std, atol=1e-5)
