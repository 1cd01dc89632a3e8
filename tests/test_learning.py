"""Learning checks: each preset trains to its target on the official environment (100 unseen episodes).

Marked slow (about a minute each on 2 cores); `make test` runs them, `make test-fast` skips them.
"""

import pytest

from ppolearn import PPO, evaluate_policy
from ppolearn.envs.success import Target

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1"])
def test_preset_reaches_its_target_on_100_unseen_episodes(env_id):
    """One seed of the suite's protocol (benchmarks/suite.py runs all five): 100 episodes, seeds 10000+."""
    model = PPO(env_id, seed=0, verbose=0)
    model.learn()
    result = evaluate_policy(model, episodes=100)
    model.close()
    assert Target.parse(model.config.target).reached(result), result


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1"])
def test_batched_preset_reaches_its_target_on_the_official_env(env_id):
    """Trained on the ppolearn/ tensor clone (seconds), judged on 100 episodes of Gymnasium's own env."""
    model = PPO(f"ppolearn/{env_id}", seed=1, verbose=0, device="cpu")
    model.learn()
    result = evaluate_policy(model, env_id, episodes=100)
    model.close()
    assert Target.parse(model.config.target).reached(result), result
