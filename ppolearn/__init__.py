"""ppolearn: train a policy with PPO-Clip to reach a target state in a given environment."""

from ppolearn.config import PPOConfig
from ppolearn.envs import make_env
from ppolearn.errors import PPOLearnError
from ppolearn.evaluation import evaluate_policy
from ppolearn.ppo import PPO
from ppolearn.tune import tune  # Optuna is imported only when tune() runs

__all__ = ["PPO", "PPOConfig", "PPOLearnError", "evaluate_policy", "make_env", "tune"]
__version__ = "0.1.0"
