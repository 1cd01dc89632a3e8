"""The same PPO written CleanRL's way, to time ppolearn against something other than SB3's overheads.

A benchmark-only, single-file PPO in the style of CleanRL's ``ppo_continuous_action.py`` (our own code: one
loop, storage tensors, Gymnasium's wrappers for normalisation), with that script's default settings: 1 env,
2,048 steps a rollout, 10 epochs of 32 minibatches, lr 3e-4 annealed, gamma 0.99, GAE 0.95, clip 0.2 (value
loss clipped too), entropy 0, grad-norm 0.5, observations and rewards normalised and clipped at 10,
64x64 tanh networks with orthogonal init. ppolearn runs the same settings through its config. Both train
Pendulum-v1 for ``--steps`` steps with one torch thread; their in-process training seconds are compared,
and each policy is judged on the same 100 test episodes (seeds 10,000-10,099), so that speed is not bought
with a worse policy. Runs alternate; medians are reported.

    python -m benchmarks.cleanrl_style [--steps 40960] [--repeats 3] [--table]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from benchmarks.evaluate import evaluate_episodes
from benchmarks.markdown import write_section

ROOT = Path(__file__).resolve().parent.parent
ENV = "Pendulum-v1"
ARGS = dict(num_steps=2048, num_minibatches=32, update_epochs=10, learning_rate=3e-4, gamma=0.99, gae_lambda=0.95)
ARGS.update(clip_coef=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5)
PPOLEARN = {
    "num_envs": 1,
    "n_steps": ARGS["num_steps"],
    "batch_size": ARGS["num_steps"] // ARGS["num_minibatches"],
    "n_epochs": ARGS["update_epochs"],
    "target_kl": None,  # CleanRL's default: every epoch runs
    "scale_actions": "false",  # CleanRL's Gaussian is in the environment's units (clipped by a wrapper)
    "learning_rate": ARGS["learning_rate"],
    "anneal_lr": True,
    "gamma": ARGS["gamma"],
    "gae_lambda": ARGS["gae_lambda"],
    "clip_range": ARGS["clip_coef"],
    "clip_range_vf": ARGS["clip_coef"],
    "ent_coef": ARGS["ent_coef"],
    "vf_coef": ARGS["vf_coef"],
    "max_grad_norm": ARGS["max_grad_norm"],
    "normalize_obs": True,
    "normalize_reward": True,
    "clip_obs": 10.0,
    "clip_reward": 10.0,
    "net_arch": [64, 64],
    "eval_every": 0,
}


def make_env(gamma: float) -> gym.Env:
    env = gym.make(ENV)
    env = gym.wrappers.FlattenObservation(env)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = gym.wrappers.ClipAction(env)
    env = gym.wrappers.NormalizeObservation(env)
    env = gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10), env.observation_space)
    env = gym.wrappers.NormalizeReward(env, gamma=gamma)
    return gym.wrappers.TransformReward(env, lambda reward: np.clip(reward, -10, 10))


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, act_dim), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None) -> tuple:
        mean = self.actor_mean(x)
        std = torch.exp(self.actor_logstd.expand_as(mean))
        probs = torch.distributions.Normal(mean, std)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)


def train_cleanrl_style(total_timesteps: int, seed: int) -> tuple:
    """CleanRL's loop; returns (training seconds, a batch policy for the raw observations)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    envs = gym.vector.SyncVectorEnv([lambda: make_env(ARGS["gamma"])])
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    agent = Agent(obs_dim, act_dim)
    optimizer = torch.optim.Adam(agent.parameters(), lr=ARGS["learning_rate"], eps=1e-5)
    n, batch_size = ARGS["num_steps"], ARGS["num_steps"]
    minibatch_size = batch_size // ARGS["num_minibatches"]
    obs = torch.zeros((n, 1, obs_dim))
    actions = torch.zeros((n, 1, act_dim))
    logprobs, rewards, dones, values = (torch.zeros((n, 1)) for _ in range(4))

    start = time.perf_counter()
    next_obs, _ = envs.reset(seed=seed)
    next_obs, next_done = torch.Tensor(next_obs), torch.zeros(1)
    num_iterations = total_timesteps // batch_size
    for iteration in range(1, num_iterations + 1):
        optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * ARGS["learning_rate"]
        for step in range(n):
            obs[step], dones[step] = next_obs, next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step], logprobs[step] = action, logprob
            next_obs, reward, terminations, truncations, _ = envs.step(action.cpu().numpy())
            next_done = np.logical_or(terminations, truncations)
            rewards[step] = torch.tensor(reward).view(-1)
            next_obs, next_done = torch.Tensor(next_obs), torch.Tensor(next_done)

        with torch.no_grad():  # GAE, bootstrapping from the value of the next observation (as CleanRL)
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(n)):
                nextnonterminal = 1.0 - (next_done if t == n - 1 else dones[t + 1])
                nextvalues = next_value if t == n - 1 else values[t + 1]
                delta = rewards[t] + ARGS["gamma"] * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + ARGS["gamma"] * ARGS["gae_lambda"] * nextnonterminal * lastgaelam
            returns = advantages + values

        b_obs, b_logprobs = obs.reshape((-1, obs_dim)), logprobs.reshape(-1)
        b_actions, b_advantages = actions.reshape((-1, act_dim)), advantages.reshape(-1)
        b_returns, b_values = returns.reshape(-1), values.reshape(-1)
        b_inds = np.arange(batch_size)
        for _epoch in range(ARGS["update_epochs"]):
            np.random.shuffle(b_inds)
            for begin in range(0, batch_size, minibatch_size):
                mb = b_inds[begin : begin + minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                ratio = (newlogprob - b_logprobs[mb]).exp()
                mb_adv = b_advantages[mb]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - ARGS["clip_coef"], 1 + ARGS["clip_coef"])
                ).mean()
                newvalue = newvalue.view(-1)
                v_unclipped = (newvalue - b_returns[mb]) ** 2
                v_clipped = b_values[mb] + torch.clamp(newvalue - b_values[mb], -ARGS["clip_coef"], ARGS["clip_coef"])
                v_loss = 0.5 * torch.max(v_unclipped, (v_clipped - b_returns[mb]) ** 2).mean()
                loss = pg_loss - ARGS["ent_coef"] * entropy.mean() + v_loss * ARGS["vf_coef"]
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), ARGS["max_grad_norm"])
                optimizer.step()
    seconds = time.perf_counter() - start

    norm = envs.envs[0].get_wrapper_attr("obs_rms")  # NormalizeObservation's statistics, frozen for evaluation

    def policy(raw: np.ndarray) -> np.ndarray:
        x = np.clip((raw - norm.mean) / np.sqrt(norm.var + 1e-8), -10, 10)
        with torch.no_grad():
            return agent.actor_mean(torch.as_tensor(x, dtype=torch.float32)).numpy()

    return seconds, policy


def train_ppolearn(total_timesteps: int, seed: int) -> tuple:
    from ppolearn import PPO

    model = PPO(ENV, seed=seed, verbose=0, **PPOLEARN)
    start = time.perf_counter()
    model.learn(total_timesteps)
    return time.perf_counter() - start, lambda obs: model.predict(obs, deterministic=True)[0]


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_960)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--table", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "cleanrl_style.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows: Dict[str, List[Dict[str, Any]]] = {"cleanrl-style": [], "ppolearn": []}
    for seed in range(args.repeats):  # alternating, the same seed for both
        for name, train in (("cleanrl-style", train_cleanrl_style), ("ppolearn", train_ppolearn)):
            seconds, policy = train(args.steps, seed)
            returns = evaluate_episodes(policy, ENV, episodes=100)
            rows[name].append({"seed": seed, "train_s": seconds, "mean_return": float(np.mean(returns))})
            print(name, json.dumps(rows[name][-1]), flush=True)
    med = {k: statistics.median(r["train_s"] for r in v) for k, v in rows.items()}
    lines = [
        f"`python -m benchmarks.cleanrl_style --steps {args.steps} --repeats {args.repeats} --table`: {ENV}, "
        f"CleanRL's `ppo_continuous_action.py` defaults (1 env, 2,048 steps, 10 epochs x 32 minibatches, "
        f"normalised observations and rewards), {args.steps:,} steps, one torch thread; training seconds "
        f"in-process, medians of {args.repeats} alternating runs (seeds 0-{args.repeats - 1}).",
        "",
        "| | CleanRL-style script | ppolearn | CleanRL-style / ppolearn |",
        "|---|---:|---:|---:|",
        f"| training (s) | {med['cleanrl-style']:.2f} | {med['ppolearn']:.2f} | "
        f"**{med['cleanrl-style'] / med['ppolearn']:.2f}x** |",
        "| mean return, 100 test episodes, per seed | "
        + " | ".join(", ".join(f"{r['mean_return']:.0f}" for r in rows[k]) for k in rows)
        + " | |",
    ]
    table = "\n".join(lines)
    print(table)
    Path(args.results).write_text(json.dumps(rows, indent=1))
    if args.table:
        markers = ("<!-- cleanrl:start -->", "<!-- cleanrl:end -->")
        write_section(ROOT / "BENCHMARKS.md", *markers, "### Same work, CleanRL's way", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
