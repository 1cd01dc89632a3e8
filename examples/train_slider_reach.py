"""Train the example SliderReach-v0 from Python with ppolearn's defaults, then evaluate it.

Run from the repository root: ``python examples/train_slider_reach.py [TOTAL_TIMESTEPS]``.
"""

from __future__ import annotations

import json
import sys

from slider_reach import SliderReachEnv  # noqa: F401  (importing registers SliderReach-v0)

from ppolearn import PPO
from ppolearn.evaluation import evaluate_policy


def main(total_timesteps: int = 100_000) -> None:
    model = PPO("SliderReach-v0", seed=0, total_timesteps=total_timesteps)
    model.learn()
    model.save("runs/slider_reach_python/model.pt")
    result = evaluate_policy(model, episodes=100)  # 100 unseen starts: a figure with its 95% interval
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("episode_")}, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
