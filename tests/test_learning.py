"""Learning checks: each preset trains to its threshold on the official environment (20 deterministic episodes).

Marked slow (about a minute each on 2 cores); `make test` runs them, `make test-fast` skips them.
"""

import pytest

from ppolearn import PPO, evaluate_policy

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "env_id,threshold",
    [("CartPole-v1", 500.0), ("Pendulum-v1", -200.0), ("Acrobot-v1", -100.0)],
)
def test_preset_reaches_threshold(env_id, threshold):
    model = PPO(env_id, seed=0, verbose=0)
    model.learn()
    result = evaluate_policy(model, episodes=20)
    model.close()
    assert result["mean_return"] >= threshold, result


@pytest.mark.parametrize(
    "env_id,threshold",
    [("CartPole-v1", 500.0), ("Pendulum-v1", -200.0), ("Acrobot-v1", -100.0)],
)
def test_batched_preset_reaches_threshold_on_the_official_env(env_id, threshold):
    """Trained on the ppolearn/ tensor clone (a few seconds), judged on Gymnasium's own environment."""
    model = PPO(f"ppolearn/{env_id}", seed=1, verbose=0, device="cpu")
    model.learn()
    result = evaluate_policy(model, env_id, episodes=20)
    model.close()
    assert result["mean_return"] >= threshold, result
